"""tracefs sensor against the real kernel: privilege/namespace/socket/memfd/TCP events, filters, cleanup,
through both backends (perf rings, the default; the ftrace instance, the fallback)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import Collector, require_root
from tests.runtime.test_runtime_perf_ring import SECCOMP_DENY_PERF

from garrison.model.runtime import Event
from garrison.runtime.sensors import SensorError, make_sensor
from garrison.runtime.sensors.tracefs import (
    BACKEND_ENV,
    RECENT_CONNECT_SECONDS,
    TCP_FILTER,
    TracefsSensor,
    _Decoder,
    _mount,
    find_tracefs,
    parse_line,
)

ATTACK = r"""
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.unshare(0x04000000)                       # CLONE_NEWUTS
fd = os.memfd_create("payload", 1)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # filtered out in the kernel
libc.ptrace(16, 1, 0, 0)                       # PTRACE_ATTACH to init: fails, still reported
libc.ptrace(1, 1, 0, 0)                        # PTRACE_PEEKTEXT: filtered out in the kernel
libc.syscall(323, 0)                           # userfaultfd
os.setresuid(0, 0, 0)
os.setuid(0)
import sys; sys.stdin.read()                   # stay alive (so the pid is not reused) until the test is done
"""


def _instances() -> set[str]:
    root = find_tracefs()
    assert root is not None
    return {p.name for p in (root / "instances").iterdir() if p.name.startswith(f"garrison_{os.getpid()}_")}


BACKENDS = [pytest.param("perf", id="perf"), pytest.param("ftrace", id="ftrace")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_privilege_events_with_falco_arguments(backend: str) -> None:
    require_root()
    sensor = TracefsSensor(backend=backend)
    assert sensor.available() is None
    got = Collector()
    started = time.time()
    sensor.start(got)
    try:
        # perf: no trace instance, so no ftrace probe on the raw syscall tracepoints
        assert len(_instances()) == (1 if backend == "ftrace" else 0)
        assert sensor.stats().extra["backend"] == backend and sensor.stats().to_dict()["backend"] == backend
        assert "ptrace" in sensor.enabled and "inet_sock_set_state" in sensor.enabled
        child = subprocess.Popen([sys.executable, "-c", ATTACK], stdin=subprocess.PIPE)
        pid = child.pid
        wanted = {"unshare", "memfd_create", "socket", "ptrace", "userfaultfd", "setresuid", "setuid"}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # per-CPU buffers: events of one task may surface out of order
            if wanted <= {e.type for e in got.snapshot() if e.proc.pid == pid}:
                break
            time.sleep(0.05)
    finally:
        sensor.stop()
        if child.stdin is not None:
            child.stdin.close()
        child.wait()
    mine = {e.type: e for e in got.snapshot() if e.proc.pid == pid}
    assert mine["unshare"].args["flags"] == "CLONE_NEWUTS" and mine["unshare"].res == 0
    assert mine["memfd_create"].args["flags"] == "MFD_CLOEXEC" and mine["memfd_create"].res >= 3
    sock = mine["socket"]
    assert sock.args["domain"] == 17 and sock.fd is not None and sock.fd.sockfamily == "packet"
    assert sock.proc.name == "python3" or sock.proc.name.startswith("python")
    ptr = mine["ptrace"]
    assert ptr.args["request"] == 16 and ptr.args["pid"] == 1 and ptr.res < 0
    assert "userfaultfd" in mine
    setres = dict(mine["setresuid"].args)
    assert isinstance(setres.pop("cgroup_id", 1), int)  # perf only: the task's cgroup
    assert setres == {"ruid": 0, "euid": 0, "suid": 0, "res": 0}
    assert mine["setuid"].args["uid"] == 0
    # in-kernel filters: the UDP socket and PTRACE_PEEKTEXT never reached us
    sockets = [e for e in got.snapshot() if e.proc.pid == pid and e.type == "socket"]
    assert len(sockets) == 1
    ptraces = [e for e in got.snapshot() if e.proc.pid == pid and e.type == "ptrace"]
    assert [e.args["request"] for e in ptraces] == [16]
    assert _instances() == set()  # cleaned up
    assert sensor.stats().lost == 0 and sensor.stats().errors == 0
    for event in mine.values():  # kernel timestamps on the epoch, as the pipeline orders them
        assert started - 1 <= event.time <= time.time() + 1 and event.sensor == "tracefs"
    assert mine["ptrace"].proc.tid == pid


def test_default_backend_is_perf_and_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    sensor = make_sensor("tracefs", event_types={"setuid"})
    assert isinstance(sensor, TracefsSensor) and sensor.choice == "auto"
    assert "backend" not in sensor.stats().extra  # not started yet
    sensor.start(lambda e: None)
    try:
        assert sensor.stats().extra["backend"] == "perf" and _instances() == set()
    finally:
        sensor.stop()
    assert sensor.stats().extra["backend"] == "perf"  # still says what ran
    monkeypatch.setenv(BACKEND_ENV, "ftrace")
    assert TracefsSensor().choice == "ftrace"
    monkeypatch.setenv(BACKEND_ENV, "bogus")
    try:
        TracefsSensor()
    except SensorError as err:
        assert "unknown backend 'bogus'" in str(err) and BACKEND_ENV in str(err)
    else:
        raise AssertionError("an unknown backend must be refused")


FALLBACK = r"""
import os, sys, time
from garrison.runtime.sensors import SensorError
from garrison.runtime.sensors.tracefs import TracefsSensor
try:
    TracefsSensor(event_types={"setuid"}, backend="perf").start(lambda e: None)
except SensorError as err:
    print("refused:", err)
got = []
sensor = TracefsSensor(event_types={"setuid"})
sensor.start(got.append)
os.setuid(0)
deadline = time.monotonic() + 5
while time.monotonic() < deadline and not any(e.proc.pid == os.getpid() for e in got):
    time.sleep(0.05)
sensor.stop()
print("backend:", sensor.stats().extra["backend"])
print("reason:", sensor.fallback_reason)
print("setuid:", {e.args["uid"] for e in got if e.proc.pid == os.getpid()})  # glibc: one call per thread
"""


def test_auto_falls_back_to_ftrace_when_the_kernel_refuses_perf() -> None:
    """Under a seccomp policy that forbids perf_event_open (as some container runtimes set), the
    default backend reads through an ftrace instance instead; ``perf`` asked for explicitly is a
    clear error naming the tracepoint and the errno."""
    require_root()
    out = subprocess.run(
        [sys.executable, "-c", SECCOMP_DENY_PERF + FALLBACK], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    refused, backend, reason, setuid = out
    assert refused.startswith("refused: tracefs: perf_event_open(syscalls:sys_enter_setuid") and "EPERM" in refused
    assert backend == "backend: ftrace"
    assert "EPERM" in reason and "sys_enter_setuid" in reason
    assert setuid == "setuid: {0}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_tcp_listen_connect_accept_are_attributed(backend: str) -> None:
    require_root()
    sensor = TracefsSensor(event_types={"connect", "accept", "listen"}, backend=backend)
    got = Collector(lambda e: e.type in ("connect", "accept", "listen"))
    sensor.start(got)
    try:
        assert sensor.enabled == ["inet_sock_set_state"]  # only what the rules need
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        cport = client.getsockname()[1]
        refused = socket.socket()
        refused.bind(("127.0.0.1", 0))
        dead = refused.getsockname()[1]
        refused.close()
        try:
            socket.create_connection(("127.0.0.1", dead), timeout=2)
        except OSError:
            pass
        got.wait_for(  # ours: under load another process's refused connect may come first
            lambda e: e.type == "connect" and e.res != 0 and e.fd is not None and e.fd.server_port == dead,
            timeout=10,
        )
        for s in (client, conn, server):
            s.close()
    finally:
        sensor.stop()
    me = os.getpid()
    events = got.snapshot()
    listen = [e for e in events if e.type == "listen" and e.fd is not None and e.fd.server_port == port]
    assert listen and listen[0].proc.pid == me
    conn_ev = [e for e in events if e.type == "connect" and e.fd is not None and e.fd.server_port == port]
    assert conn_ev and conn_ev[0].proc.pid == me and conn_ev[0].res == 0
    assert conn_ev[0].fd.name == f"127.0.0.1:{cport}->127.0.0.1:{port}"
    acc = [e for e in events if e.type == "accept" and e.fd is not None and e.fd.server_port == port]
    assert acc and acc[0].proc.pid == me and acc[0].fd.client_port == cport
    failed = [e for e in events if e.type == "connect" and e.fd is not None and e.fd.server_port == dead]
    assert failed and failed[0].res == -111


REVERSE = r"""
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
r, w = os.pipe()
os.dup2(w, 1)              # stdout onto a pipe: no socket, nothing a rule asks about
os.dup2(s.fileno(), 50)    # not onto stdio: filtered out in the kernel
os.dup2(s.fileno(), 2)     # stderr onto the TCP connection: the reverse-shell step
sys.stdin.read()
"""


@contextlib.contextmanager
def _dup2_child(
    script: str, types: set[str], backend: str
) -> Iterator[tuple[TracefsSensor, Collector, socket.socket, subprocess.Popen[bytes]]]:
    """A started sensor collecting dup2/dup3 events, a listening server, and ``script`` running in a
    child told the server's port (its stdin a pipe); all stopped, closed and reaped afterwards."""
    require_root()
    sensor = TracefsSensor(event_types=types, backend=backend)
    got = Collector(lambda e: e.type in ("dup2", "dup3"))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    sensor.start(got)
    child = subprocess.Popen([sys.executable, "-c", script, str(server.getsockname()[1])], stdin=subprocess.PIPE)
    try:
        yield sensor, got, server, child
    finally:
        sensor.stop()
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
        server.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_dup2_onto_stdio_of_a_tcp_connection(backend: str) -> None:
    with _dup2_child(REVERSE, {"dup2", "dup3"}, backend) as (sensor, got, server, child):
        port = server.getsockname()[1]
        conn, (_, cport) = server.accept()
        found = got.wait_for(lambda e: e.proc.pid == child.pid, timeout=10)
        time.sleep(0.3)  # a wrongly reported dup2 would come with or right after it
    conn.close()
    mine = [e for e in got.snapshot() if e.proc.pid == child.pid]
    assert mine == found and len(mine) == 1
    ev = mine[0]
    assert ev.args["newfd"] == 2 and ev.args["res"] == 2 and ev.res == 2 and ev.args["oldfd"] >= 3
    assert ev.fd is not None and ev.fd.num == 2 and ev.fd.name == f"127.0.0.1:{cport}->127.0.0.1:{port}"
    assert sensor.stats().extra["backend"] == backend


RESET_THEN_DUP = r"""
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sys.stdin.readline()            # the peer resets the connection meanwhile
try:
    s.recv(1)
except ConnectionResetError:
    pass
a, b = socket.socketpair()
os.dup2(a.fileno(), 1)          # a unix socket onto stdout (journald's, for a service): no network peer
os.dup2(s.fileno(), 2)          # the TCP connection, closed by now: in no socket table any more
sys.stdin.read()
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_dup2_of_a_connection_closed_before_the_read_counts_and_a_unix_socket_never(backend: str) -> None:
    """A reverse-shell session can end before a lagging reader looks at the fd (the socket is in
    no TCP table then): the dup2 still reports the program's TCP connection; a unix socket on
    stdio is no network peer."""
    with _dup2_child(RESET_THEN_DUP, {"dup2", "dup3", "connect"}, backend) as (_, got, server, child):
        port = server.getsockname()[1]
        conn, (_, cport) = server.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        found = got.wait_for(lambda e: e.proc.pid == child.pid, timeout=10)
        time.sleep(0.3)
    mine = [e for e in got.snapshot() if e.proc.pid == child.pid]
    assert mine == found and len(mine) == 1 and mine[0].res == 2
    assert mine[0].fd is not None and mine[0].fd.name == f"127.0.0.1:{cport}->127.0.0.1:{port}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_process_gone_before_its_record_is_read_keeps_its_name(backend: str, tmp_path: Path) -> None:
    """A ptrace attach by a process that exited before the sensor read the record is still
    named: from ftrace's comm cache, or from the kernel's exec records in perf's ring (the
    live /proc comm, which the decoder prefers, is gone by then)."""
    require_root()
    import threading

    gone = tmp_path / "garrison-gone"  # its comm after exec
    gone.symlink_to(sys.executable)
    attach = "import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)"
    blocked, gate = threading.Event(), threading.Event()
    got = Collector()
    blocker: subprocess.Popen[bytes] | None = None

    def sink(event: Event) -> None:
        if blocker is not None and event.proc.pid == blocker.pid:
            blocked.set()
            gate.wait(10)  # holds the reader until the second process is gone
        got(event)

    sensor = TracefsSensor(event_types={"ptrace"}, backend=backend)
    sensor.start(sink)
    try:
        blocker = subprocess.Popen(
            [sys.executable, "-c", f"{attach}\nimport sys; sys.stdin.read()"], stdin=subprocess.PIPE
        )
        assert blocked.wait(10)
        target = subprocess.Popen([str(gone), "-c", attach])
        target.wait()  # exited and reaped: /proc/PID/comm is gone
        gate.set()
        found = got.wait_for(lambda e: e.proc.pid == target.pid, timeout=10)
    finally:
        gate.set()
        sensor.stop()
        if blocker is not None:
            assert blocker.stdin is not None
            blocker.stdin.close()
            blocker.wait()
    assert found and found[0].type == "ptrace" and found[0].args["request"] == 16
    assert found[0].proc.name == "garrison-gone"


def test_stale_instances_of_dead_sensors_are_removed() -> None:
    require_root()
    root = find_tracefs() or Path("/sys/kernel/tracing")
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    stale = root / "instances" / f"garrison_{dead.pid}_0"
    stale.mkdir()
    sensor = TracefsSensor(event_types={"ptrace"})
    sensor.start(lambda e: None)
    sensor.stop()
    assert sensor.stats().extra["backend"] == "perf"  # the perf backend clears them too: each keeps an ftrace probe
    assert not stale.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_overruns_are_counted(backend: str) -> None:
    """A 4 KiB buffer, no reading for a while, a flood of matching events: the kernel's drops show up as lost.

    ftrace counts drops in its per-CPU stats, readable at once; perf reports them in a
    PERF_RECORD_LOST it stores once the reader has made room, so there the sink is released and
    one more event is made before the count is read."""
    require_root()
    import threading

    gate = threading.Event()
    sensor = TracefsSensor(event_types={"setuid"}, buffer_kb=4, backend=backend)
    sensor.start(lambda e: gate.wait(10))
    try:
        # on one CPU: perf's LOST record goes to the ring that lost, with the next record stored there
        flood = "import os\nos.sched_setaffinity(0, {0})\nfor _ in range(50000):\n    os.setuid(0)\n"
        subprocess.run([sys.executable, "-c", flood], check=True)
        if backend == "perf":
            gate.set()
            deadline = time.monotonic() + 10
            while sensor.stats().lost == 0 and time.monotonic() < deadline:
                subprocess.run([sys.executable, "-c", flood.replace("50000", "1")], check=True)
                time.sleep(0.2)
        sensor._refresh_lost()
        lost = sensor.stats().lost
    finally:
        gate.set()
        sensor.stop()
    assert lost > 0
    if backend == "perf":  # (trace_pipe prints "[LOST n EVENTS]" lines, which count as errors there)
        assert sensor.stats().errors == 0  # dropped records are lost, not garbled


def test_parse_line_with_fields_option() -> None:
    line = (
        "          python3-4869    (   4869) [001]  3809.120403: sys_enter_ptrace: __syscall_nr=0x65 (101) "
        "request=0x10 (16) pid=0x1 (1) addr=0x0 (0) data=0x0 (0)"
    )
    parsed = parse_line(line)
    assert parsed is not None
    comm, tid, tgid, cpu, ts, name, fields = parsed
    assert (comm, tid, tgid, cpu, name) == ("python3", 4869, 4869, 1, "sys_enter_ptrace")
    assert ts == 3809.120403 and fields["request"] == 16 and fields["pid"] == 1
    assert parse_line("garbage") is None
    assert "newstate == 2" in TCP_FILTER


@given(st.text(max_size=200))
def test_parse_line_fuzz(text: str) -> None:
    parse_line(text)  # never raises: returns None or a tuple


def test_dup2_of_a_gone_process_takes_its_own_recent_connection_only() -> None:
    """A dup2 onto stdio whose process is gone before its fd table is read borrows the last TCP
    connection seen for its pid only when the same program connected shortly before: pids are
    recycled within seconds on a busy node, and a shell redirecting to /dev/null must not inherit
    the connection of an earlier owner of its pid."""
    gone = 2_000_000_000  # no such process: /proc reads fail as for one that exited

    def connect(dec: _Decoder, comm: str, ts: float, sk: int) -> None:
        base = {"skaddr": sk, "sport": 40000, "dport": 4444, "family": 2, "saddr": 0x0100007F, "daddr": 0x0100007F}
        dec.decode((comm, gone, gone, 0, ts, "inet_sock_set_state", {**base, "oldstate": 7, "newstate": 2}))
        dec.decode((comm, gone, gone, 0, ts, "inet_sock_set_state", {**base, "oldstate": 2, "newstate": 1}))

    def dup2(dec: _Decoder, comm: str, ts: float) -> object:
        dec.decode((comm, gone, gone, 0, ts, "sys_enter_dup2", {"oldfd": 3, "newfd": 1}))
        return dec.decode((comm, gone, gone, 0, ts + 0.001, "sys_exit_dup2", {"ret": 1}))

    dec = _Decoder(0.0)
    connect(dec, "bash", 100.0, 1)
    shell = dup2(dec, "bash", 100.01)  # bash -i >& /dev/tcp/...: the same program, milliseconds later
    assert shell is not None and shell.fd is not None and shell.fd.name == "127.0.0.1:40000->127.0.0.1:4444"
    assert shell.fd.num == 1
    dec = _Decoder(0.0)
    connect(dec, "curl", 100.0, 2)
    assert dup2(dec, "sh", 100.5) is None  # another program under a recycled pid
    dec = _Decoder(0.0)
    connect(dec, "sh", 100.0, 3)
    assert dup2(dec, "sh", 100.0 + RECENT_CONNECT_SECONDS + 1) is None  # long after: not the same session
    dec = _Decoder(0.0)
    connect(dec, "bash", 100.0, 4)
    unnamed = dup2(dec, "<...>", 100.2)  # the trace's comm cache lost the name of the exited shell
    assert unnamed is not None and unnamed.fd is not None and unnamed.fd.num == 1


def test_mount_flags_named_as_falco_names_them() -> None:
    assert _mount({"flags": 0xC0ED0000 | 0x1000 | 0x20 | 0x1}) == {"flags": "MS_RDONLY|MS_REMOUNT|MS_BIND"}
    assert _mount({"flags": 0}) == {"flags": "0"}
    assert _mount({"flags": 0x80000000}) == {"flags": "0x80000000"}  # unknown bits stay visible


def test_perf_records_carry_the_tasks_cgroup_id() -> None:
    """Each syscall record read through perf names its task's cgroup (v2 id = the cgroup
    directory's inode), which attributes it to its container once the process is gone."""
    require_root()
    rel = next(
        line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")
    )
    expected = os.stat(f"/sys/fs/cgroup{rel.strip()}").st_ino
    sensor = TracefsSensor(event_types={"setuid"}, backend="perf")
    got = Collector(lambda e: e.type == "setuid")
    sensor.start(got)
    try:
        child = subprocess.run([sys.executable, "-c", "import os; os.setuid(0)"], check=True)
        assert child.returncode == 0
        found = got.wait_for(lambda e: e.args.get("cgroup_id") == expected, timeout=10)
    finally:
        sensor.stop()
    assert found and found[0].args["uid"] == 0
