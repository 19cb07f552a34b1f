"""Proc connector sensor against the real kernel: fork/exec/exit of real commands, loss accounting, parser fuzz."""

from __future__ import annotations

import struct
import subprocess
import sys
import threading

from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import Collector, require_root

from garrison.runtime.sensors.proc_connector import (
    CN_IDX_PROC,
    PROC_EVENT_EXEC,
    PROC_EVENT_FORK,
    ProcConnectorSensor,
    parse_message,
)


def _message(what: int, payload: bytes, seq: int = 7, cpu: int = 1) -> bytes:
    event = struct.pack("=IIQ", what, cpu, 123_000_000_000) + payload
    cn = struct.pack("=IIIIHH", CN_IDX_PROC, 1, seq, 0, len(event), 0) + event
    return struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn


def test_fork_exec_exit_of_a_real_command() -> None:
    require_root()
    sensor = ProcConnectorSensor()
    assert sensor.available() is None
    got = Collector()
    sensor.start(got)
    try:
        proc = subprocess.Popen(["/bin/true", "--marker"])
        proc.wait()
        pid = proc.pid
        exits = got.wait_for(lambda e: e.type == "procexit" and e.proc.pid == pid)
    finally:
        sensor.stop()
    assert exits, "no exit event for the child"
    mine = [e for e in got.snapshot() if e.proc.pid == pid]
    types = [e.type for e in mine]
    assert types[0] == "clone" and "execve" in types and types[-1] == "procexit"
    fork = mine[0]
    import os

    assert fork.proc.ppid == os.getpid()
    assert exits[0].args["status"] == 0
    stats = sensor.stats()
    assert stats.received >= 3 and stats.errors == 0 and stats.lost == 0 and not stats.running


def test_uid_change_is_reported() -> None:
    require_root()
    sensor = ProcConnectorSensor()
    got = Collector(lambda e: e.type == "setuid")
    sensor.start(got)
    try:
        proc = subprocess.run([sys.executable, "-c", "import os; os.setuid(65534)"], check=True)
        assert proc.returncode == 0
        found = got.wait_for(lambda e: e.proc.uid == 65534 and e.proc.euid == 65534)
    finally:
        sensor.stop()
    assert found and found[0].args["euid"] == 65534


def test_loss_is_counted_when_the_reader_stalls() -> None:
    """A tiny socket buffer and a stalled reader: the kernel drops, we count exactly via sequence gaps."""
    require_root()
    sensor = ProcConnectorSensor(rcvbuf=1024)
    gate = threading.Event()

    def slow(_event: object) -> None:
        gate.wait(10)

    sensor.start(slow)
    try:
        flood = (
            "import os\nfor _ in range(3000):\n    p = os.fork()\n    if p == 0: os._exit(0)\n    os.waitpid(p, 0)\n"
        )
        subprocess.run([sys.executable, "-c", flood], check=True)
        gate.set()
        subprocess.run(["/bin/true"], check=True)  # one more event per CPU after the stall closes gaps
        subprocess.run(["taskset", "-c", "0", "/bin/true"], check=False)
        subprocess.run(["taskset", "-c", "1", "/bin/true"], check=False)
        import time

        time.sleep(0.5)
    finally:
        gate.set()
        sensor.stop()
    stats = sensor.stats()
    assert stats.extra.get("enobufs", 0) >= 1
    # 3000 forks x 2 events; the stalled 1 KiB buffer holds a handful: most are dropped and counted
    assert stats.lost >= 100
    assert stats.lost > stats.received


def test_parse_known_messages() -> None:
    cpu, seq, event = parse_message(_message(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 11, 11)), 1000.0)
    assert (cpu, seq) == (1, 7)
    assert event is not None and event.type == "clone" and event.proc.pid == 11 and event.proc.ppid == 10
    assert event.time == 1123.0
    _, _, thread = parse_message(_message(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 12, 10)))
    assert thread is None  # new thread, not a process
    _, _, exe = parse_message(_message(PROC_EVENT_EXEC, struct.pack("=ii", 42, 42)))
    assert exe is not None and exe.type == "execve" and exe.proc.pid == 42


@given(st.binary(max_size=200))
def test_parser_fuzz_raises_only_value_error(data: bytes) -> None:
    try:
        parse_message(data)
    except ValueError:
        pass


@given(st.integers(0, 2**32 - 1), st.binary(max_size=40))
def test_parser_fuzz_structured(what: int, payload: bytes) -> None:
    try:
        parse_message(_message(what, payload))
    except ValueError:
        pass


def test_idle_reader_stops_promptly() -> None:
    """The blocking receive wakes on its timeout, so stop() does not wait for another event."""
    require_root()
    import time

    sensor = ProcConnectorSensor()
    sensor.start(lambda _e: None)
    time.sleep(0.5)
    start = time.monotonic()
    sensor.stop()
    assert time.monotonic() - start < 1.0 and not sensor.stats().running


def test_a_burst_is_read_completely_and_in_order() -> None:
    """300 fork/exit pairs back to back: every one delivered, per-CPU sequence numbers contiguous."""
    require_root()
    sensor = ProcConnectorSensor()
    got = Collector()
    sensor.start(got)
    try:
        burst = "import os\nfor _ in range(300):\n    p = os.fork()\n    if p == 0: os._exit(0)\n    os.waitpid(p, 0)\n"
        parent = subprocess.Popen([sys.executable, "-c", burst])
        parent.wait()
        got.wait_for(lambda e: e.type == "procexit" and e.proc.pid == parent.pid, timeout=10)
    finally:
        sensor.stop()
    forks = [e for e in got.snapshot() if e.type == "clone" and e.proc.ppid == parent.pid]
    exits = {e.proc.pid for e in got.snapshot() if e.type == "procexit"}
    assert len(forks) == 300 and {e.proc.pid for e in forks} <= exits
    nums = [e.num for e in got.snapshot()]
    assert nums == sorted(nums) and sensor.stats().lost == 0


def test_parse_rejects_foreign_and_short_payloads() -> None:
    fork = _message(PROC_EVENT_FORK, struct.pack("=iiii", 10, 10, 11, 11))
    foreign = fork[:16] + struct.pack("=I", CN_IDX_PROC + 1) + fork[20:]
    try:
        parse_message(foreign)
    except ValueError as err:
        assert "idx 2" in str(err)
    else:
        raise AssertionError("a message of another connector was accepted")
    try:
        parse_message(_message(PROC_EVENT_EXEC, b"\0" * 4))
    except ValueError as err:
        assert "truncated (4 < 8 bytes)" in str(err)
    else:
        raise AssertionError("a truncated exec event was accepted")
    cpu, seq, exe = parse_message(_message(PROC_EVENT_EXEC, struct.pack("=ii", 43, 42), seq=9, cpu=0), 0.5)
    assert (cpu, seq) == (0, 9) and exe is not None and (exe.proc.pid, exe.proc.tid, exe.time) == (42, 43, 123.5)
