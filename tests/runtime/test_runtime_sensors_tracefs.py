"""tracefs sensor against the real kernel: privilege/namespace/socket/memfd/TCP events, filters, cleanup."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import Collector, require_root

from garrison.runtime.sensors.tracefs import (
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


def test_privilege_events_with_falco_arguments() -> None:
    require_root()
    sensor = TracefsSensor()
    assert sensor.available() is None
    got = Collector()
    sensor.start(got)
    try:
        assert len(_instances()) == 1
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
    assert mine["setresuid"].args == {"ruid": 0, "euid": 0, "suid": 0, "res": 0}
    assert mine["setuid"].args["uid"] == 0
    # in-kernel filters: the UDP socket and PTRACE_PEEKTEXT never reached us
    sockets = [e for e in got.snapshot() if e.proc.pid == pid and e.type == "socket"]
    assert len(sockets) == 1
    ptraces = [e for e in got.snapshot() if e.proc.pid == pid and e.type == "ptrace"]
    assert [e.args["request"] for e in ptraces] == [16]
    assert _instances() == set()  # cleaned up
    assert sensor.stats().lost == 0


def test_tcp_listen_connect_accept_are_attributed() -> None:
    require_root()
    sensor = TracefsSensor(event_types={"connect", "accept", "listen"})
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
        got.wait_for(lambda e: e.type == "connect" and e.res != 0, timeout=5)
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
    assert not stale.exists()


def test_overruns_are_counted() -> None:
    """A 4 KiB buffer, no reading for a while, a flood of matching events: the kernel's drops show up as lost."""
    require_root()
    import threading

    gate = threading.Event()
    sensor = TracefsSensor(event_types={"setuid"}, buffer_kb=4)
    sensor.start(lambda e: gate.wait(10))
    try:
        flood = "import os\nfor _ in range(50000):\n    os.setuid(0)\n"
        subprocess.run([sys.executable, "-c", flood], check=True)
        sensor._refresh_lost()
        lost = sensor.stats().lost
    finally:
        gate.set()
        sensor.stop()
    assert lost > 0


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
