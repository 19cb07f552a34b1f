#!/bin/sh
# Container escape groundwork: mount a filesystem (T1611). A tmpfs on a temporary directory; in an
# unprivileged container the kernel refuses it (the attempt is what is detected). Unmounted and
# removed on exit.
# Expected: Garrison Mount From Container (when it succeeds in a privileged container).
set -eu
dir=$(mktemp -d); trap 'umount "$dir" 2>/dev/null || true; rmdir "$dir"' EXIT
if mount -t tmpfs garrison-sim "$dir" 2>/dev/null; then echo "mounted tmpfs on $dir"; else echo "mount refused"; fi
echo "done: mount attempt"
