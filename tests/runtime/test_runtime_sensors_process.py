"""Process table: /proc scan, ancestry of real processes, vanished processes, bounds, memfd executables."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.model.runtime import Event, EventKind, Process
from garrison.runtime.process import ProcessTable, copy_process, merge_into, read_file, read_proc


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


def _merge_reference(dst: Process, src: Process) -> None:
    """The merge rule as first written (one generic test per field): the fast merge must agree."""
    for f in dataclasses.fields(Process):
        name = f.name
        if name in ("pid", "ancestors", "args", "tid"):
            continue
        have = getattr(dst, name)
        if (have is None or have == "" or (have == 0 and name in ("ppid", "tty"))) and (
            value := getattr(src, name)
        ) not in (None, ""):
            setattr(dst, name, value)
    if not dst.args and src.args:
        dst.args = list(src.args)


_texts = st.sampled_from(["", "sh", "/bin/sh"])
_ints = st.none() | st.integers(0, 3)
_processes = st.builds(
    Process,
    pid=st.integers(1, 5),
    ppid=st.integers(0, 3),
    tid=st.integers(0, 3),
    name=_texts,
    exe=_texts,
    exepath=_texts,
    args=st.lists(_texts, max_size=2),
    cwd=_texts,
    uid=_ints,
    gid=_ints,
    euid=_ints,
    egid=_ints,
    loginuid=st.none() | st.integers(-1, 2),
    sid=_ints,
    pgid=_ints,
    tty=st.integers(0, 2),
    vpid=_ints,
    start_time=st.none() | st.floats(0, 10),
    exe_upper_layer=st.none() | st.booleans(),
    exe_from_memfd=st.none() | st.booleans(),
    exe_writable=st.none() | st.booleans(),
    env=st.none() | st.dictionaries(_texts, _texts, max_size=1),
    user_name=_texts,
    group_name=_texts,
    cap_effective=_ints,
    cap_permitted=_ints,
)


@given(_processes, _processes)
def test_merge_into_agrees_with_the_field_by_field_rule(dst: Process, src: Process) -> None:
    expected = copy_process(dst)
    expected.args = list(dst.args)
    _merge_reference(expected, src)
    merge_into(dst, src)
    assert dst == expected


@given(_processes)
def test_copy_process_is_a_shallow_copy(proc: Process) -> None:
    copied = copy_process(proc)
    assert copied == dataclasses.replace(proc) and copied is not proc
    assert copied.args is proc.args  # shared, as dataclasses.replace shares them


def test_zombie_keeps_its_name_and_credentials() -> None:
    """A process that exited but is not reaped yet: stat and status answer, nothing else is read."""
    child = subprocess.Popen(["/bin/true"])
    try:
        deadline = time.monotonic() + 5
        while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "child did not become a zombie"
            time.sleep(0.01)
        proc = read_proc(child.pid)
    finally:
        child.wait()
    assert proc is not None and proc.name == "true" and proc.ppid == os.getpid()
    assert proc.args == [] and proc.exe == "" and proc.exepath == "" and proc.cwd == ""
    assert proc.uid == os.getuid() and proc.gid == os.getgid() and proc.exe_from_memfd is None


def test_read_proc_reads_capabilities_and_login_uid() -> None:
    status = open("/proc/self/status").read()
    wanted = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Cap")}
    me = read_proc(os.getpid())
    assert me is not None
    assert me.cap_effective == int(wanted["CapEff"], 16) and me.cap_permitted == int(wanted["CapPrm"], 16)
    raw = int(open("/proc/self/loginuid").read())
    assert me.loginuid == (-1 if raw == 4294967295 else raw)


def test_read_file_reads_past_the_first_buffer(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 64)  # 16 KiB: four times the first read
    assert read_file(str(big)) == big.read_bytes()
    assert read_file(str(big), size=100) == big.read_bytes()
    assert read_file("/proc/self/cmdline") == open("/proc/self/cmdline", "rb").read()
    with pytest.raises(FileNotFoundError):
        read_file(str(tmp_path / "missing"))


def test_exec_read_of_a_vanished_process_says_so() -> None:
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    table = ProcessTable()
    exec_event = Event(1.0, "execve", EventKind.PROCESS, "proc_connector", Process(pid=gone.pid))
    assert table.observe(exec_event) is False and table.stats.proc_reads == 1
    mine = Event(1.0, "execve", EventKind.PROCESS, "proc_connector", Process(pid=os.getpid()))
    assert table.observe(mine) is True and table.get(os.getpid()) is not None


def test_recycled_pid_is_read_again() -> None:
    """An entry whose pid now names a process that started later (pid reuse) is replaced by a
    fresh read; the same process, a gone one, or an event older than the live process leave it."""
    pid = os.getpid()
    real = read_proc(pid)
    assert real is not None
    table = ProcessTable()
    table._put(dataclasses.replace(real, start_time=real.start_time - 60, args=["previous", "owner"]))
    assert not table.recycled(pid, real.start_time - 30)  # an event of the previous owner
    assert table.recycled(pid, time.time())
    fresh = table.get(pid)
    assert fresh is not None and fresh.args == real.args and abs(fresh.start_time - real.start_time) < 0.1
    assert not table.recycled(pid, time.time())  # now current
    assert not table.recycled(2_000_000_000, time.time())  # unknown pid
    before = time.time()
    child = subprocess.Popen(["sleep", "5"])
    try:  # start times are exact enough to tell owners of a pid apart (btime is whole seconds)
        started = read_proc(child.pid)
        assert started is not None and before - 0.05 <= started.start_time <= time.time() + 0.05
    finally:
        child.kill()
        child.wait()
