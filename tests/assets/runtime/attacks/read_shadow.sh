#!/bin/sh
# Credential access: read /etc/shadow (T1003.008). Reads and discards; nothing is kept.
# Expected: Garrison Credential File Read.
set -eu
[ -e /etc/shadow ] || { echo "SKIP: no /etc/shadow"; exit 77; }
cat /etc/shadow >/dev/null 2>&1 || true
echo "done: read /etc/shadow"
