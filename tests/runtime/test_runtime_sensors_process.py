"""Process table: /proc scan, ancestry of real processes, vanished processes, bounds, memfd executables."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from garrison.model.runtime import Event, EventKind, Process
from garrison.runtime.process import ProcessTable, read_proc


def _wait_child(parent: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kids = open(f"/proc/{parent}/task/{parent}/children").read().split()
        except OSError:
            kids = []
        if kids:
            try:
                if open(f"/proc/{kids[0]}/comm").read().strip() == "sleep":  # forked and exec'd
                    return int(kids[0])
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError("child did not appear")


def test_scan_reads_ourselves() -> None:
    table = ProcessTable()
    assert table.scan() > 1
    me = table.get(os.getpid())
    assert me is not None
    assert me.ppid == os.getppid()
    assert os.path.realpath(me.exepath) == os.path.realpath(sys.executable) or "python" in me.exepath
    assert me.cwd == os.getcwd() and me.uid == os.getuid() and me.start_time is not None
    assert me.start_time <= time.time()


def test_ancestry_of_a_real_process_tree() -> None:
    shell = subprocess.Popen(["/bin/sh", "-c", "sleep 5; true"])
    try:
        sleeper = _wait_child(shell.pid)
        table = ProcessTable(depth=3)
        event = Event(time.time(), "execve", EventKind.PROCESS, "test", Process(pid=sleeper))
        table.enrich(event)
    finally:
        shell.kill()
        shell.wait()
    p = event.proc
    assert not event.partial
    assert p.name == "sleep" and p.args == ["5"] and p.ppid == shell.pid
    assert [a.pid for a in p.ancestors[:2]] == [shell.pid, os.getpid()]
    assert p.ancestors[0].name == "sh" and len(p.ancestors) <= 3


def test_vanished_process_gives_a_partial_event() -> None:
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    table = ProcessTable()
    event = Event(time.time(), "ptrace", EventKind.PRIVILEGE, "test", Process(pid=gone.pid, name="true"))
    table.enrich(event)
    assert event.partial and event.proc.name == "true" and table.stats.vanished == 1
    assert read_proc(gone.pid) is None


def test_lifecycle_events_and_graveyard() -> None:
    table = ProcessTable(graveyard_seconds=60)
    parent = read_proc(os.getpid())
    assert parent is not None
    table.observe(Event(1.0, "clone", EventKind.PROCESS, "proc_connector", Process(pid=999_999_1, ppid=os.getpid())))
    child = table.get(999_999_1)
    assert child is not None and child.ppid == os.getpid() and child.exepath == parent.exepath  # inherits until exec
    audit_exec = Process(pid=999_999_1, ppid=os.getpid(), name="evil", exepath="/memfd:x (deleted)", args=["-x"])
    table.observe(Event(2.0, "execve", EventKind.PROCESS, "audit", audit_exec))
    fresh = table.get(999_999_1)
    assert fresh is not None and fresh.name == "evil" and fresh.args == ["-x"] and fresh.exe_from_memfd is True
    assert child.name != "evil"  # published entries are replaced, not mutated
    table.observe(Event(3.0, "procexit", EventKind.PROCESS, "proc_connector", Process(pid=999_999_1)))
    assert 999_999_1 not in table._procs and table.get(999_999_1) is fresh  # late events still find it


def test_table_is_bounded() -> None:
    table = ProcessTable(max_size=10)
    table.scan()
    assert len(table) <= 10 and table.stats.evicted > 0


def test_memfd_executable_is_flagged() -> None:
    code = (
        "import os\n"
        "fd = os.memfd_create('stage2', 0)\n"
        "os.write(fd, open('/bin/sleep', 'rb').read())\n"
        "os.execv(f'/proc/self/fd/{fd}', ['stage2', '5'])\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 5
        proc = None
        while time.monotonic() < deadline:
            proc = read_proc(child.pid)
            if proc is not None and proc.exepath.startswith("/memfd:"):
                break
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    assert proc is not None and proc.exe_from_memfd is True and proc.exepath.startswith("/memfd:stage2")
