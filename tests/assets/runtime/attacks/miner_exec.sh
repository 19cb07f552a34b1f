#!/bin/sh
# Resource hijacking: run a process named like a crypto miner (T1496). It is a copy of `sleep`
# named xmrig that sleeps for a moment; no mining, no network.
# Expected: Garrison Known Crypto Miner Executed.
set -eu
src=$(command -v sleep 2>/dev/null || true)
case "$src" in /*) ;; *) src=/bin/busybox ;; esac
src=$(readlink -f "$src")
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cp "$src" "$dir/xmrig"
"$dir/xmrig" 0.2 2>/dev/null || "$dir/xmrig" sleep 0.2 || true
echo "done: ran $dir/xmrig"
