"""perf tracepoint rings against the real kernel: fields, in-kernel filters, wrap-around, loss,
refusal messages, cleanup; and the format-file parser on hostile text."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.runtime._sensorkit import require_root

from garrison.runtime.sensors.perf_ring import (
    PERF_RECORD_COMM,
    PERF_RECORD_EXIT,
    PERF_RECORD_FORK,
    PERF_RECORD_LOST,
    PERF_RECORD_SAMPLE,
    FormatError,
    PerfError,
    PerfTracepoints,
    PerfUnavailable,
    Sample,
    TracepointSpec,
    online_cpus,
    parse_format,
    read_format,
)
from garrison.runtime.sensors.tracefs import _PTRACE_FILTER, TRACEPOINTS, find_tracefs, mount_tracefs

#: Python run first in a child so that the kernel refuses it perf_event_open (seccomp, EPERM): the
#: refusal a container policy gives, without touching the node's settings
SECCOMP_DENY_PERF = r"""
import ctypes, platform, struct
_nr = {"x86_64": 298, "aarch64": 241, "riscv64": 241}[platform.machine()]
_libc = ctypes.CDLL(None, use_errno=True)
_prog = ctypes.create_string_buffer(b"".join([
    struct.pack("=HBBI", 0x20, 0, 0, 0),                  # A = seccomp_data.nr
    struct.pack("=HBBI", 0x15, 0, 1, _nr),                # perf_event_open?
    struct.pack("=HBBI", 0x06, 0, 0, 0x00050000 | 1),     # yes: fail with EPERM
    struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000),         # no: allow
]))
_fprog = ctypes.create_string_buffer(struct.pack("=HxxxxxxQ", 4, ctypes.addressof(_prog)))
assert _libc.prctl(38, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
assert _libc.prctl(22, ctypes.c_ulong(2), ctypes.c_ulong(ctypes.addressof(_fprog)), ctypes.c_ulong(0),
                   ctypes.c_ulong(0)) == 0
"""

CHILD = r"""
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.stdin.readline()                                   # go
os.setuid(0)
libc.ptrace(16, 1, 0, 0)                               # PTRACE_ATTACH to init: fails, still reported
libc.ptrace(1, 1, 0, 0)                                # PTRACE_PEEKTEXT: filtered out in the kernel
os.dup2(1, 2)                                          # onto stderr: reported
os.dup2(1, 50)                                         # elsewhere: filtered out
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)   # reported
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # filtered out
print("done", flush=True)
sys.stdin.readline()
"""


def _root() -> Path:
    require_root()
    return mount_tracefs()


def _spec(syscall: str) -> TracepointSpec:
    tp = next(t for t in TRACEPOINTS if t.syscall == syscall)
    return TracepointSpec("syscalls", f"sys_enter_{syscall}", tp.filter)


def _collect(reader: PerfTracepoints, pred: Callable[[Sample], bool], until: float) -> list[Sample]:
    got: list[Sample] = []
    while time.monotonic() < until:
        reader.poll(100)
        got.extend(s for s in reader.read() if pred(s))
    return got


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_records_arrive_with_fields_and_filters_hold() -> None:
    root = _root()
    specs = [_spec("setuid"), _spec("ptrace"), _spec("dup2"), _spec("socket")]
    specs.append(TracepointSpec("syscalls", "sys_exit_ptrace"))
    assert specs[1].filter == _PTRACE_FILTER
    before = _open_fds()
    reader = PerfTracepoints(root, specs, buffer_kb=256)
    reader.open()
    # an event per tracepoint and CPU, and the dup of each ring's fd its mmap holds
    assert _open_fds() == before + (len(specs) + 1) * len(online_cpus())
    assert len(reader.fds()) == len(online_cpus())  # one ring per CPU, the other events redirected into it
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        # (before t0 the child was still being set up: its pipes were dup2'ed onto stdio before the exec)
        mine = _collect(reader, lambda s: s.pid == child.pid and s.time_ns >= t0, time.monotonic() + 1.0)
        t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    finally:
        reader.close()
        child.stdin.close()
        child.wait()
    assert _open_fds() == before + 1  # every perf fd and mapping released (the child's stdout pipe remains)
    child.stdout.close()
    assert reader.read() == [] and reader.lost == 0 and reader.errors == 0
    by = {}
    for s in mine:
        by.setdefault(s.name, []).append(s)
    assert [s.fields["uid"] for s in by["sys_enter_setuid"]] == [0]
    assert [(s.fields["request"], s.fields["pid"]) for s in by["sys_enter_ptrace"]] == [(16, 1)]  # PEEKTEXT dropped
    assert len(by["sys_exit_ptrace"]) == 2  # exits are unfiltered here: both calls, both failed
    assert all(s.fields["ret"] < 0 for s in by["sys_exit_ptrace"])
    assert [(s.fields["oldfd"], s.fields["newfd"]) for s in by["sys_enter_dup2"]] == [(1, 2)]
    assert [(s.fields["family"], s.fields["type"] & 0xF) for s in by["sys_enter_socket"]] == [(17, 3)]  # no AF_INET
    for s in mine:
        assert s.tid == child.pid and t0 <= s.time_ns <= t1  # CLOCK_MONOTONIC, as ftrace's trace_clock=mono
        assert s.comm == Path(sys.executable).name[:15]  # from the kernel's record of the child's exec
        assert s.cpu in online_cpus()
        assert s.fields["__syscall_nr"] > 0 and not any(k.startswith("common_") for k in s.fields)
    assert [s.time_ns for s in mine] == sorted(s.time_ns for s in mine)


FORKER = r"""
import ctypes, os
ctypes.CDLL(None).prctl(15, b"garrison-fork")   # PR_SET_NAME: a COMM record
if os.fork() == 0:                               # a FORK record: the child inherits the name
    os.setuid(0)
    os._exit(0)
os.wait()
"""


def test_comm_follows_exec_rename_and_fork_of_tasks_started_after_open() -> None:
    """The kernel's exec, rename and fork records name the threads of later samples, also after
    the tasks are gone (as ftrace's comm cache does); a task older than the reader has no comm."""
    root = _root()
    with PerfTracepoints(root, [TracepointSpec("syscalls", "sys_enter_setuid")], buffer_kb=64) as reader:
        old = reader.read()
        os.setuid(0)  # this process predates the reader: nothing told it our name
        child = subprocess.run([sys.executable, "-c", FORKER], check=True)
        assert child.returncode == 0
        time.sleep(0.1)
        got = reader.read()
    assert not old
    mine = [s for s in got if s.pid == os.getpid()]
    assert mine and all(s.comm == "" for s in mine)
    forked = [s for s in got if s.fields["uid"] == 0 and s.comm == "garrison-fork"]
    assert len(forked) == 1 and forked[0].pid != os.getpid()
    assert forked[0].tid not in reader.comms or time.monotonic_ns() < forked[0].time_ns + 2_000_000_000


def test_comm_replay_in_time_order() -> None:
    """Each sample gets the comm its thread had at the sample's time; an exited thread's comm
    stays for records read late, then goes, unless a newer task took the tid meanwhile."""
    from garrison.runtime.sensors.perf_ring import _Task

    reader = PerfTracepoints(Path("/nonexistent"), [])
    s = 1_000_000_000

    def sample(t: int, tid: int, pid: int | None = None) -> Sample:
        return Sample("sys_enter_setuid", pid or tid, tid, 0, t, {"uid": 0})

    got = reader._name(
        [
            _Task(1, PERF_RECORD_COMM, 10, 0, "bash"),
            sample(2, 10),
            _Task(3, PERF_RECORD_FORK, 11, 10, ""),
            sample(4, 11),
            _Task(5, PERF_RECORD_COMM, 11, 0, "nc"),  # the fork execs
            sample(6, 11),
            sample(7, 12, pid=10),  # a thread of 10 we saw no fork of: the group's comm
            sample(8, 99),  # older than the reader: unknown
            _Task(9, PERF_RECORD_EXIT, 11, 10, ""),
            sample(10, 11),  # read after the exit: still named
        ]
    )
    assert [x.comm for x in got] == ["bash", "bash", "nc", "bash", "", "nc"]
    reader._name([_Task(2 * s, PERF_RECORD_COMM, 20, 0, "late")])  # the grace is not over yet
    assert 11 in reader.comms
    reader._name([_Task(3 * s, PERF_RECORD_COMM, 11, 0, "reused"), _Task(3 * s, PERF_RECORD_EXIT, 10, 1, "")])
    assert reader.comms[11][0] == "reused"  # 11's old exit expired, but the tid has a newer owner
    reader._name([_Task(6 * s, PERF_RECORD_COMM, 21, 0, "x")])
    assert 10 not in reader.comms and reader._exited == []


def test_tcp_state_record_decodes_the_ipv4_word() -> None:
    import socket

    root = _root()
    spec = TracepointSpec("sock", "inet_sock_set_state", "protocol == 6 && newstate == 10")
    with PerfTracepoints(root, [spec], buffer_kb=16) as reader:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        got = _collect(reader, lambda s: s.fields["sport"] == port, time.monotonic() + 0.5)
        server.close()
    assert len(got) == 1
    f = got[0].fields
    assert socket.inet_ntoa(f["saddr"].to_bytes(4, "little")) == "127.0.0.1"
    assert (f["oldstate"], f["newstate"], f["family"]) == (7, 10, 2)
    assert "saddr_v6" not in f  # arrays wider than a word are left out


def test_ring_wraps_around_without_loss() -> None:
    """A one-page ring read between bursts that each fill half of it: the records straddle the
    ring's end again and again, none is lost or garbled."""
    root = _root()
    child = subprocess.Popen(
        [sys.executable, "-c", "import os, sys\nfor line in sys.stdin:\n    for _ in range(int(line)): os.getppid()\n"
         "    print('ok', flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    spec = TracepointSpec("syscalls", "sys_enter_getppid", f"common_pid == {child.pid}")
    total = 0
    try:
        with PerfTracepoints(root, [spec], buffer_kb=4) as reader:
            for _ in range(12):
                child.stdin.write("37\n")
                child.stdin.flush()
                assert child.stdout.readline().strip() == "ok"
                got = reader.read()
                assert all(s.name == "sys_enter_getppid" and s.tid == child.pid for s in got)
                total += len(got)
            assert reader.lost == 0 and reader.errors == 0
    finally:
        child.stdin.close()
        child.wait()
    assert total == 12 * 37


def test_tiny_ring_flooded_by_an_unfiltered_tracepoint_counts_lost() -> None:
    """Nobody reads a one-page ring while a loop hits an unfiltered tracepoint: the kernel drops
    what does not fit and says how much in a PERF_RECORD_LOST once there is room again."""
    root = _root()
    # on one CPU: the LOST record goes to the ring that lost, with the next record stored there
    flood = "import os\nos.sched_setaffinity(0, {0})\nfor _ in range(200000):\n    os.getppid()\n"
    with PerfTracepoints(root, [TracepointSpec("syscalls", "sys_enter_getppid")], buffer_kb=4) as reader:
        subprocess.run([sys.executable, "-c", flood], check=True)
        first = reader.read()  # makes room
        subprocess.run([sys.executable, "-c", flood.replace("200000", "100")], check=True)  # stores the LOST record
        second = reader.read()
        assert reader.lost > 0 and reader.errors == 0
        assert first and second and all(s.name == "sys_enter_getppid" for s in first + second)
        assert len(first) < 200000  # most of the flood could not be kept


def test_refusal_names_the_tracepoint_and_errno() -> None:
    root = _root()
    spec = TracepointSpec("syscalls", "sys_enter_ptrace", _PTRACE_FILTER)
    before = _open_fds()
    with pytest.raises(PerfUnavailable) as info:
        PerfTracepoints(root, [spec], cpus=[0, 4095]).open()  # no CPU 4095 here
    assert "sys_enter_ptrace" in str(info.value) and "cpu 4095" in str(info.value) and "EINVAL" in str(info.value)
    assert _open_fds() == before  # the event already opened on CPU 0 was closed again
    script = SECCOMP_DENY_PERF + (
        "from pathlib import Path\n"
        "from garrison.runtime.sensors.perf_ring import PerfTracepoints, PerfUnavailable, TracepointSpec\n"
        "try:\n"
        f"    PerfTracepoints(Path({str(root)!r}), [TracepointSpec('syscalls', 'sys_enter_ptrace')]).open()\n"
        "except PerfUnavailable as err:\n"
        "    print(err.errno, err)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.startswith("1 ") and "perf_event_open(syscalls:sys_enter_ptrace" in out and "EPERM" in out
    with pytest.raises(PerfError, match=r"filter 'nosuch == 1' of syscalls:sys_enter_ptrace rejected: EINVAL"):
        PerfTracepoints(root, [TracepointSpec("syscalls", "sys_enter_ptrace", "nosuch == 1")]).open()
    assert _open_fds() == before
    with pytest.raises(FormatError, match="sys_enter_no_such_call"):
        PerfTracepoints(root, [TracepointSpec("syscalls", "sys_enter_no_such_call")]).open()


def test_every_format_file_of_this_kernel_parses() -> None:
    root = find_tracefs() or _root()
    events = [p for group in ("syscalls", "sock", "sched", "net") for p in (root / "events" / group).glob("*/format")]
    assert len(events) > 100
    for path in events:
        fmt = read_format(root, path.parent.parent.name, path.parent.name)
        assert fmt.id == int((path.parent / "id").read_text()) and fmt.name == path.parent.name
        assert fmt.decoder.size <= 0xFFFF
    ptrace = read_format(root, "syscalls", "sys_enter_ptrace")
    assert ptrace.names == ("__syscall_nr", "request", "pid", "addr", "data")


FORMAT = """name: demo_event
ID: 4242
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int small;\toffset:8;\tsize:4;\tsigned:1;
\tfield:__u8 addr[4];\toffset:12;\tsize:4;\tsigned:0;
\tfield:const void * ptr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] text;\toffset:24;\tsize:4;\tsigned:1;
\tfield:__u8 wide[16];\toffset:28;\tsize:16;\tsigned:0;
\tfield:s16 tiny;\toffset:44;\tsize:2;\tsigned:1;

print fmt: "small=%d", REC->small
"""


def test_format_layout_and_decoding() -> None:
    fmt = parse_format(FORMAT)
    assert (fmt.name, fmt.id, fmt.names) == ("demo_event", 4242, ("small", "addr", "ptr", "tiny"))
    assert [f.type for f in fmt.fields if f.name in ("addr", "text")] == ["__u8[4]", "__data_loc char[]"]
    record = (4242).to_bytes(2, "little") + bytes(6) + (-5).to_bytes(4, "little", signed=True)
    record += (
        bytes([127, 0, 0, 1]) + (2**64 - 1).to_bytes(8, "little") + bytes(20) + (-2).to_bytes(2, "little", signed=True)
    )
    assert fmt.decode(record) == {"small": -5, "addr": 0x0100007F, "ptr": 2**64 - 1, "tiny": -2}
    with pytest.raises(FormatError, match="record of 20 bytes"):
        fmt.decode(record[:20])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("", "no 'ID:' line", id="empty"),
        pytest.param(FORMAT.replace("ID: 4242", "ID: 70000"), "bad ID '70000'", id="id-range"),
        pytest.param(FORMAT.replace("ID: 4242", "ID: x"), "bad ID 'x'", id="id-text"),
        pytest.param(FORMAT.replace("offset:8;", "offset:-8;"), "line 9: not a field line", id="negative-offset"),
        pytest.param(FORMAT.replace("offset:12;", "offset:10;"), "'addr' at offset 10 overlaps", id="overlap"),
        pytest.param(FORMAT.replace("int small", "int tiny"), "'tiny' declared twice", id="duplicate"),
        pytest.param(FORMAT.replace("offset:28;", "offset:65530;"), "ends at byte 65546", id="too-far"),
        pytest.param(FORMAT.replace("common_type", "kind"), "no 2-byte common_type", id="no-common-type"),
        pytest.param(FORMAT.replace("int small", "int 9"), "no field name in 'int 9'", id="no-name"),
        pytest.param(FORMAT.replace("name: demo_event", "name: a b"), "bad event name 'a b'", id="bad-name"),
    ],
)
def test_bad_format_files_give_a_clear_error(text: str, error: str) -> None:
    with pytest.raises(FormatError, match=error) as info:
        parse_format(text, where="tracefs: /x/format")
    assert str(info.value).startswith("tracefs: /x/format")


_LINES = FORMAT.splitlines()


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_format_parser_on_arbitrary_text(text: str) -> None:
    try:
        parse_format(text)
    except FormatError as err:
        assert str(err) and "\n" not in str(err)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_LINES),
            st.builds(
                "\tfield:{} {};\toffset:{};\tsize:{};\tsigned:{};".format,
                st.sampled_from(["int", "u64", "__u8", "__data_loc char[]", "char *", ""]),
                st.from_regex(r"[a-z_]{1,6}(\[[0-9]{0,3}\])?", fullmatch=True),
                st.integers(0, 70000),
                st.integers(0, 20),
                st.integers(0, 1),
            ),
            st.text(max_size=40),
        ),
        max_size=20,
    ),
    st.binary(max_size=96),
)
def test_garbled_format_files_and_records_never_raise_anything_else(lines: list[str], record: bytes) -> None:
    """Format files made of real, plausible and garbage lines parse or give a FormatError; what
    parses decodes any record or gives a FormatError, never a traceback of another kind."""
    try:
        fmt = parse_format("\n".join(lines))
    except FormatError:
        return
    try:
        fields = fmt.decode(record)
    except FormatError:
        return
    assert set(fields) == set(fmt.names)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.lists(st.integers(0, 200), max_size=8))
def test_garbled_ring_bytes_are_counted_not_raised(data: bytes, cuts: list[int]) -> None:
    """Whatever the bytes between tail and head, framing a chunk never raises: what cannot be
    framed or decoded is counted in ``errors``."""
    import struct

    reader = PerfTracepoints(Path("/nonexistent"), [])
    reader.formats = {4242: parse_format(FORMAT)}
    chunk = bytearray(data)
    kinds = (PERF_RECORD_SAMPLE, PERF_RECORD_LOST, PERF_RECORD_COMM, PERF_RECORD_FORK, PERF_RECORD_EXIT, 99)
    for cut in cuts:  # plausible headers at random places
        if cut + 8 <= len(chunk):
            chunk[cut : cut + 8] = struct.pack("=IHH", kinds[cut % len(kinds)], 0, 8 + cut % 64)
    items: list[Any] = []
    reader._parse(0, bytes(chunk), items)
    samples = reader._name(items)  # replaying garbled side-band records never raises either
    assert reader.errors >= 0 and reader.lost >= 0
    assert all(s.name == "demo_event" and isinstance(s.comm, str) for s in samples)
