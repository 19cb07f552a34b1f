#!/bin/sh
# Drift: copy a binary to a new path at runtime and execute it (T1105, T1204.002). The copy is of
# a harmless program already in the image (sleep/busybox), runs for half a second as a dropped
# payload would, and is deleted afterwards.
# Expected: Garrison Drift Executable From Container Upper Layer (in a container).
set -eu
src=$(command -v sleep 2>/dev/null || true)
case "$src" in /*) ;; *) src=/bin/busybox ;; esac
src=$(readlink -f "$src")
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cp "$src" "$dir/dropped"
chmod +x "$dir/dropped"
"$dir/dropped" 0.5 2>/dev/null || "$dir/dropped" sleep 0.5 || true
echo "done: executed $dir/dropped (copy of $src)"
