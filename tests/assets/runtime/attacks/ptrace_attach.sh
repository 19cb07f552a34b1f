#!/bin/sh
# Process injection groundwork: PTRACE_ATTACH to a child we started, then detach (T1055.008).
# Nothing is read or written in the traced process; the child is killed afterwards.
# Expected: Garrison Ptrace Attach.
set -eu
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
python3 - <<'PY'
import ctypes, os, signal, subprocess
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
child = subprocess.Popen(["sleep", "30"])
try:
    rc = libc.ptrace(PTRACE_ATTACH, child.pid, None, None)
    if rc == 0:
        os.waitpid(child.pid, 0)
        libc.ptrace(PTRACE_DETACH, child.pid, None, None)
        print(f"done: attached to {child.pid}")
    else:
        print(f"done: attach refused: {os.strerror(ctypes.get_errno())}")
finally:
    child.send_signal(signal.SIGKILL)
    child.wait()
PY
