#!/bin/sh
# Fileless execution: load a binary into an anonymous memfd and exec it (T1620). The payload is
# a copy of `true`; nothing touches the disk.
# Expected: Garrison Fileless Execution via Memfd.
set -eu
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
python3 - <<'PY'
import os, shutil, sys
src = os.path.realpath(shutil.which("true") or "/bin/true")
fd = os.memfd_create("garrison-sim", 0)
os.write(fd, open(src, "rb").read())
pid = os.fork()
if pid == 0:
    try:
        os.execv(f"/proc/self/fd/{fd}", ["garrison-sim"])
    except OSError as e:
        print(f"exec denied: {e}")
        os._exit(126)
_, status = os.waitpid(pid, 0)
print(f"done: memfd exec exit status {os.waitstatus_to_exitcode(status)}")
PY
