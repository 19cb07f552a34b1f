#!/bin/sh
# Persistence: drop a file into /etc/cron.d (T1053.003). The file holds only a comment (no job)
# and is removed on exit; the directory is removed too if this script created it.
# Expected: Garrison Cron Job Written.
set -eu
made=""
[ -d /etc/cron.d ] || { mkdir -p /etc/cron.d; made=1; }
f=/etc/cron.d/garrison-attack-sim-$$
trap 'rm -f "$f"; [ -z "$made" ] || rmdir /etc/cron.d 2>/dev/null || true' EXIT
echo "# garrison attack simulation: no job" >"$f"
echo "done: wrote $f"
