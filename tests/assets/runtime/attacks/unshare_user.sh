#!/bin/sh
# Privilege escalation groundwork: create a user namespace (T1611), the first step of many
# container escapes. Runs `true` inside it and exits.
# Expected: Garrison User Namespace Created in Container.
set -eu
command -v unshare >/dev/null || { echo "SKIP: unshare missing"; exit 77; }
unshare -U true 2>&1 || unshare -U -r true 2>&1 || true
echo "done: unshare -U"
