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
# busybox picks its applet by the name it is run as: its copy keeps that name (a copy named
# "dropped" would exit at once, "applet not found", instead of running as a payload does)
case "$src" in */busybox) name=busybox; set -- sleep 0.5 ;; *) name=dropped; set -- 0.5 ;; esac
cp "$src" "$dir/$name"
chmod +x "$dir/$name"
"$dir/$name" "$@" || true
echo "done: executed $dir/$name (copy of $src)"
