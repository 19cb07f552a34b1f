"""fanotify sensor against the real kernel, on a private tmpfs: exec deny/allow, timeout, notifications, overflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import Collector, require_root

from garrison.model.runtime import Event
from garrison.runtime.sensors.fanotify import FanotifySensor, parse_events
from garrison.runtime.sensors.interface import SensorError


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of our own: marks on it see only this test's activity, nobody else's execs wait on us."""
    require_root()
    point = tmp_path / "mnt"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _tool(mount: Path) -> Path:
    target = mount / "tool"
    shutil.copy("/bin/true", target)
    target.chmod(0o755)
    return target


def _fanotify_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[fanotify]":
                count += 1
        except OSError:
            pass
    return count


def test_exec_denied_then_allowed(mount: Path) -> None:
    tool = _tool(mount)
    block = {"on": True}
    asked: list[Event] = []

    def decide(event: Event) -> bool:
        asked.append(event)
        return not (block["on"] and event.fd is not None and event.fd.name == str(tool))

    before = _fanotify_fds()
    sensor = FanotifySensor(
        [str(mount)], events=["open_exec_perm"], decide=decide, timeout_ms=2000, trust_descendants=False
    )
    got = Collector()
    sensor.start(got)
    try:
        for _ in range(3):  # blocking works on every retry
            with pytest.raises(PermissionError):
                subprocess.run([str(tool)], check=True)
        block["on"] = False
        assert subprocess.run([str(tool)], check=False).returncode == 0
    finally:
        sensor.stop()
    assert sensor.stats().extra["denied"] == 3
    assert len(asked) == 4 and all(e.args["perm"] and isinstance(e.args["fd"], int) for e in asked)
    assert all(e.proc.pid > 0 and e.proc.pid != os.getpid() for e in asked)
    seen = [e for e in got.snapshot() if e.type == "open_exec"]
    assert len(seen) == 4 and all("fd" not in e.args for e in seen)  # the sink never gets a live descriptor
    assert _fanotify_fds() == before  # no fd, so no marks, left behind


def test_slow_or_failing_hook_times_out_to_allow(mount: Path) -> None:
    tool = _tool(mount)

    def slow(_event: Event) -> bool:
        time.sleep(3)
        return False

    sensor = FanotifySensor([str(mount)], decide=slow, timeout_ms=300, trust_descendants=False)
    sensor.start(lambda e: None)
    try:
        start = time.monotonic()
        assert subprocess.run([str(tool)], check=False).returncode == 0
        took = time.monotonic() - start
        sensor.decide = lambda e: 1 / 0 == 0  # raises: allowed at once
        assert subprocess.run([str(tool)], check=False).returncode == 0
    finally:
        sensor.stop()
    assert 0.25 <= took < 2.5
    stats = sensor.stats()
    assert stats.extra["timeouts"] == 1 and stats.errors == 1 and stats.extra["denied"] == 0


def test_notifications_carry_paths(mount: Path) -> None:
    tool = _tool(mount)
    sensor = FanotifySensor([str(mount)], events=["open_exec", "close_write", "open", "modify"])
    got = Collector()
    sensor.start(got)
    try:
        script = f"open({str(mount / 'note.txt')!r}, 'w').write('x')"
        subprocess.run([sys.executable, "-c", script], check=True)
        subprocess.run([str(tool)], check=True)
        got.wait_for(lambda e: e.type == "open_exec", timeout=5)
        got.wait_for(lambda e: e.type == "close", timeout=5)
    finally:
        sensor.stop()
    events = got.snapshot()
    closes = [e for e in events if e.type == "close" and e.fd is not None and e.fd.name == str(mount / "note.txt")]
    assert closes and closes[0].args["write"] is True and closes[0].proc.pid != os.getpid()
    assert any(e.type == "write" and e.fd is not None and e.fd.name.endswith("note.txt") for e in events)
    assert any(e.type == "open_exec" and e.fd is not None and e.fd.name == str(tool) for e in events)


def test_queue_overflow_is_counted(mount: Path) -> None:
    gate = threading.Event()
    sensor = FanotifySensor([str(mount)], events=["close_write"])
    sensor.start(lambda e: gate.wait(15))
    try:
        flood = f"import os\nfor i in range(20000):\n    open(os.path.join({str(mount)!r}, str(i)), 'w').close()\n"
        subprocess.run([sys.executable, "-c", flood], check=True)
        gate.set()
        deadline = time.monotonic() + 20
        while sensor.stats().lost == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        gate.set()
        sensor.stop()
    stats = sensor.stats()
    assert stats.lost >= 1 and stats.extra["overflows"] >= 1
    assert stats.received < 20000


def test_bad_event_kind_is_a_clear_error() -> None:
    with pytest.raises(SensorError, match="unknown event kinds"):
        FanotifySensor(["/"], events=["exec_everything"])


def test_mark_on_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    require_root()
    sensor = FanotifySensor([str(tmp_path / "missing")])
    with pytest.raises(SensorError, match="cannot mark"):
        sensor.start(lambda e: None)


@given(st.binary(max_size=120))
def test_parse_events_fuzz(data: bytes) -> None:
    try:
        parse_events(data)
    except ValueError:
        pass


def test_marks_added_while_running(mount: Path, tmp_path: Path) -> None:
    """A mount marked after start (a new container's root) is guarded from then on."""
    second = tmp_path / "second"
    second.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(second)], check=True)
    try:
        tool = _tool(second)
        sensor = FanotifySensor(
            [str(mount)], events=["open_exec_perm"], decide=lambda e: False, timeout_ms=2000, trust_descendants=False
        )
        sensor.start(lambda e: None)
        try:
            assert subprocess.run([str(tool)], check=False).returncode == 0  # not marked yet
            assert sensor.add_mark(str(second)) is True
            assert sensor.add_mark(str(second)) is False  # once
            with pytest.raises(PermissionError):
                subprocess.run([str(tool)], check=True)
        finally:
            sensor.stop()
    finally:
        subprocess.run(["umount", "-l", str(second)], check=False)


def test_our_own_tools_are_never_held(mount: Path) -> None:
    """Execs by the sensor's descendants (tools it runs) are allowed without asking the hook."""
    tool = _tool(mount)
    asked: list[Event] = []

    def deny(event: Event) -> bool:
        asked.append(event)
        return False

    sensor = FanotifySensor([str(mount)], events=["open_exec_perm"], decide=deny, timeout_ms=5000)
    sensor.start(lambda e: None)
    try:
        start = time.monotonic()
        assert subprocess.run(["/bin/sh", "-c", str(tool)], check=False).returncode == 0
        took = time.monotonic() - start
    finally:
        sensor.stop()
    assert asked == [] and took < 2
