"""Drift blocking end to end: FanotifySensor exec permission events -> ExecGate/DriftGuard -> EPERM.

The fanotify mark is a mount mark on the container's root overlay (``/proc/PID/root``), so only
that container's execs are judged. Every attempt is retried several times: blocking must hold on
every retry, and the image's own binaries must keep running.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest
from tests._containers import Containers, running_containers

from garrison.model.runtime import Alert, Event, EventKind, Priority, Process
from garrison.runtime.containers import ContainerResolver
from garrison.runtime.drift import DriftGuard, annotate
from garrison.runtime.response import Action, ExecGate, Responder, ResponsePolicy, ResponseRule
from garrison.runtime.sensors.fanotify import FanotifySensor

RETRIES = 5
MEMFD_EXEC = (
    "import os\n"
    "fd = os.memfd_create('payload', 0)\n"
    "os.write(fd, open('/usr/bin/sleep', 'rb').read())\n"
    "os.execv(f'/proc/self/fd/{fd}', ['payload', '300'])\n"
)


@pytest.fixture
def containers() -> Iterator[Containers]:
    yield from running_containers()


def _run_sensor(gate: ExecGate, pid: int) -> tuple[FanotifySensor, list[Event]]:
    seen: list[Event] = []
    sensor = FanotifySensor([f"/proc/{pid}/root"], events=("open_exec_perm",), decide=gate, timeout_ms=2000)
    assert sensor.available() is None, sensor.available()
    sensor.start(seen.append)
    return sensor, seen


@pytest.mark.parametrize("dry_run", [False, True], ids=["protect", "dry-run"])
def test_drifted_exec_denied_every_time(containers: Containers, dry_run: bool) -> None:
    c = containers.run("debian", "sleep", "300")
    c.exec("cp", "/usr/bin/id", "/tmp/id")
    resolver = ContainerResolver()
    responder = Responder(ResponsePolicy(dry_run=dry_run), resolver=resolver)
    gate = ExecGate(responder, drift=DriftGuard(container_of=resolver.resolve))
    sensor, _ = _run_sensor(gate, c.pid)
    try:
        for attempt in range(RETRIES):
            out = c.exec("sh", "-c", "/tmp/id -u 2>&1; echo rc=$?", check=False)
            if dry_run:
                assert "rc=0" in out, f"attempt {attempt}: dry-run blocked: {out!r}"
            else:
                assert "Operation not permitted" in out and "rc=126" in out, f"attempt {attempt}: not blocked: {out!r}"
            image_out = c.exec("sh", "-c", "/usr/bin/id -u; echo rc=$?", check=False)
            assert "rc=0" in image_out, f"attempt {attempt}: image binary blocked: {image_out!r}"
    finally:
        sensor.stop()
    assert len(gate.denied) == RETRIES
    assert {e.args["result"] for e in gate.denied} == {"dry-run" if dry_run else "ok"}
    assert all(e.args["target"] == "/tmp/id" and e.container.full_id == c.id for e in gate.denied)
    assert sensor.stats().extra.get("timeouts", 0) == 0


def test_memfd_exec_detected_and_killed(containers: Containers) -> None:
    # fanotify refuses mount and filesystem marks on the kernel's internal shmem mount (EINVAL), so
    # a memfd exec cannot be held at permission time; it is caught right after the exec instead
    # (exe link "/memfd:...") and the kill responder ends it.
    c = containers.run("debian", "sleep", "300")
    c.exec("sh", "-c", f'python3 -c "{MEMFD_EXEC}" >/dev/null 2>&1 &')
    deadline = time.monotonic() + 20
    pid = 0
    while not pid:
        assert time.monotonic() < deadline, "memfd payload never started"
        for p in c.pids():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{p}/exe").startswith("/memfd:"):
                    pid = p
        time.sleep(0.05)
    event = Event(time=time.time(), type="execve", kind=EventKind.PROCESS, sensor="test", proc=Process(pid=pid))
    assert annotate(event) == "memfd"
    alert = Alert(
        time=event.time, rule="Fileless execution via memfd", priority=Priority.CRITICAL, output="", event=event
    )
    policy = ResponsePolicy([ResponseRule([Action.KILL], rules=["Fileless execution*"])])
    (result,) = Responder(policy).handle(alert)
    assert result.args["result"] == "ok" and result.container.full_id == c.id
    assert not any(os.path.exists(f"/proc/{p}") and p == pid for p in c.pids())


def test_deny_list_blocks_image_binary(containers: Containers) -> None:
    c = containers.run("debian", "sleep", "300")
    resolver = ContainerResolver()
    gate = ExecGate(Responder(resolver=resolver), deny_paths=["/usr/bin/wget", "/usr/bin/whoami"])
    sensor, _ = _run_sensor(gate, c.pid)
    try:
        start = time.monotonic()
        for _ in range(RETRIES):
            assert "rc=126" in c.exec("sh", "-c", "whoami; echo rc=$?", check=False)
        assert "rc=0" in c.exec("sh", "-c", "id -u; echo rc=$?", check=False)
        assert time.monotonic() - start < 30
    finally:
        sensor.stop()
