#!/bin/sh
# Indicator removal: delete a shell history file (T1070.003). Works on a throwaway HOME, so the
# real history of the user running it is never touched.
# Expected: Garrison Shell History Cleared.
set -eu
home=$(mktemp -d); trap 'rm -rf "$home"' EXIT
printf 'ls\nid\n' >"$home/.bash_history"
rm -f "$home/.bash_history"
echo "done: removed $home/.bash_history"
