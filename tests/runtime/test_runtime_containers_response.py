"""Responders on real podman containers: kill, pause/unpause (cgroup freezer), quarantine (nftables)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._containers import Containers, RunningContainer, running_containers
from tests.runtime._sensorkit import http_answers

from garrison.core.errors import ConfigError
from garrison.model.runtime import Alert, Container, Event, EventKind, Priority, Process
from garrison.network.dataplane.nft import Nft
from garrison.network.dataplane.quarantine import quarantined
from garrison.runtime.containers import ContainerResolver
from garrison.runtime.response import (
    QUARANTINE_TABLE,
    Action,
    Responder,
    ResponsePolicy,
    ResponseRule,
    kill_process,
    load_policy,
    policy_from_data,
)

# renamed into place, so a read never sees the file truncated half-way through a write
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/counter.new; mv /tmp/counter.new /tmp/counter; sleep 0.05; done"


@pytest.fixture
def containers() -> Iterator[Containers]:
    yield from running_containers()


def _alert(
    pid: int, rule: str = "Test rule", tags: list[str] | None = None, prio: Priority = Priority.WARNING
) -> Alert:
    event = Event(time=time.time(), type="execve", kind=EventKind.PROCESS, sensor="test", proc=Process(pid=pid))
    return Alert(time=event.time, rule=rule, priority=prio, output="x", tags=tags or [], event=event)


def _policy(*actions: Action, dry_run: bool = False) -> ResponsePolicy:
    return ResponsePolicy([ResponseRule(list(actions), rules=["Test rule"])], dry_run=dry_run)


def _counter(c: RunningContainer) -> int:
    text = Path(f"/proc/{c.pid}/root/tmp/counter").read_text().strip()
    return int(text) if text else 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def test_kill_process_in_container(containers: Containers) -> None:
    # The container's init must not depend on the victim: with ``sh -c "sleep 300 & wait"`` the
    # shell's ``wait`` returns as soon as the sleep is killed and the container exits, so whether
    # its init was still alive at the last assertion was a race the test lost under load. Here
    # init loops on its own and the victim is a separately exec'd process, found by its argv
    # (``podman top`` may run before it exists).
    c = containers.run("busybox", "sh", "-c", "while :; do sleep 1; done")
    c.exec("sleep", "301", detach=True)
    deadline = time.monotonic() + 20
    victims: list[int] = []
    while not victims:
        assert time.monotonic() < deadline, "the exec'd victim never appeared in the container"
        victims = [p for p in c.pids() if _cmdline(p) == ["sleep", "301"]]
        if not victims:
            time.sleep(0.1)
    victim = victims[0]
    responder = Responder(_policy(Action.KILL))
    alert = _alert(victim)
    events = responder.handle(alert)
    assert [e.args["result"] for e in events] == ["ok"]
    assert events[0].kind is EventKind.RESPONSE and events[0].type == "response.kill"
    assert events[0].container.full_id == c.id  # attributed even though the alert's event was not
    assert not _alive(victim)
    assert alert.actions == ["kill"]
    assert _alive(c.pid)  # only the process, not the container


def test_kill_refuses_init_and_self_and_reports_gone() -> None:
    assert kill_process(1).startswith("refused")
    assert kill_process(os.getpid()).startswith("refused")
    assert kill_process(2**22 + 4321).startswith("gone")


def test_pause_freezes_and_unpause_resumes(containers: Containers) -> None:
    c = containers.run("busybox", "sh", "-c", COUNTER)
    time.sleep(0.5)
    responder = Responder(_policy(Action.PAUSE))
    events = responder.handle(_alert(c.pid))
    assert events[0].args["result"] == "ok", events[0].args
    frozen_at = _counter(c)
    time.sleep(0.6)
    assert _counter(c) == frozen_at, "the counter kept increasing in a paused container"
    assert Path(f"/proc/{c.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("S", "D", "T")
    thawed = responder.unpause(events[0].container, c.pid)
    assert thawed.args["result"] == "ok" and thawed.kind is EventKind.RESPONSE
    deadline = time.monotonic() + 5  # a loaded machine may take a moment to schedule the thawed tasks
    while _counter(c) <= frozen_at and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _counter(c) > frozen_at, "the counter did not resume after unpause"


def test_pause_refuses_host_process() -> None:
    responder = Responder(_policy(Action.PAUSE))
    events = responder.handle(_alert(os.getpid()))
    assert events[0].args["result"] == "refused: process is not in a container"
    assert events[0].res == -1


def _wait_listening(ip: str, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not http_answers(ip, port):
        assert time.monotonic() < deadline, f"{ip}:{port} never answered"
        time.sleep(0.2)


def test_quarantine_blocks_tcp_to_container_and_release_restores(containers: Containers) -> None:
    c = containers.run("debian", "python3", "-m", "http.server", "8080")
    ip = c.ip
    _wait_listening(ip, 8080)
    responder = Responder(_policy(Action.QUARANTINE))
    events = responder.handle(_alert(c.pid))
    assert events[0].args["result"] == "ok", events[0].args
    assert events[0].args["target"] == c.id[:12]
    assert not http_answers(ip, 8080), "quarantined container still accepts TCP connections"
    assert ip in quarantined(Nft()), "the host side did not go through the network dataplane's quarantine set"
    # outbound from the container is cut too (the host's address on the podman bridge)
    out = c.exec(
        "python3",
        "-c",
        "import socket\ntry:\n socket.create_connection(('10.88.0.1', 22), 1)\n"
        " print('open')\nexcept OSError as e:\n print(type(e).__name__)",
        check=False,
    )
    assert "open" not in out
    # a container able to flush its own table (privileged) stays cut off by the host-side rules
    subprocess.run(
        ["nsenter", f"--net=/proc/{c.pid}/ns/net", "nft", "delete", "table", "inet", QUARANTINE_TABLE], check=True
    )
    assert not http_answers(ip, 8080), "host-side quarantine rules do not hold"
    assert responder.release(c.id[:12]) == "ok"
    _wait_listening(ip, 8080, timeout=5)
    # the host table is the dataplane's (shared with `garrison policy`): only our address leaves it
    assert ip not in quarantined(Nft())
    netns_tables = subprocess.run(
        ["nsenter", f"--net=/proc/{c.pid}/ns/net", "nft", "list", "tables"], capture_output=True, text=True
    ).stdout
    assert QUARANTINE_TABLE not in netns_tables


def test_quarantine_refuses_host_network(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300", extra=["--network", "host"])
    responder = Responder(_policy(Action.QUARANTINE))
    events = responder.handle(_alert(c.pid))
    assert events[0].args["result"] == "refused: container shares the host network namespace"


def test_dry_run_touches_nothing(containers: Containers) -> None:
    c = containers.run("busybox", "sh", "-c", COUNTER)
    responder = Responder(_policy(Action.KILL, Action.PAUSE, Action.QUARANTINE, dry_run=True))
    alert = _alert(c.pid)
    events = responder.handle(alert)
    assert [e.args["action"] for e in events] == ["kill", "pause", "quarantine"]
    assert {e.args["result"] for e in events} == {"dry-run"}
    assert all(e.args["dry_run"] is True for e in events)
    before = _counter(c)
    time.sleep(0.4)
    assert _alive(c.pid) and _counter(c) > before


def test_deny_exec_after_the_fact_is_not_applicable() -> None:
    responder = Responder(_policy(Action.DENY_EXEC))
    events = responder.handle(_alert(os.getpid()))
    assert events[0].args["result"].startswith("not-applicable")


def test_policy_matching() -> None:
    policy = policy_from_data(
        {
            "response": {
                "default": ["alert"],
                "rules": [
                    {"rule": "Drop and execute*", "actions": ["kill"]},
                    {"tags": ["T1611"], "actions": ["pause", "quarantine"]},
                    {"priority": "critical", "actions": "kill"},
                ],
            }
        }
    )
    assert policy.actions_for(_alert(1, rule="Drop and execute new binary in container")) == [Action.KILL]
    assert policy.actions_for(_alert(1, rule="x", tags=["T1611"])) == [Action.PAUSE, Action.QUARANTINE]
    assert policy.actions_for(_alert(1, rule="x", tags=["T1611"], prio=Priority.EMERGENCY)) == [
        Action.PAUSE,
        Action.QUARANTINE,
        Action.KILL,
    ]
    assert policy.actions_for(_alert(1, rule="x", prio=Priority.ERROR)) == [Action.ALERT]


def test_load_policy_file_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("response:\n  dry_run: true\n  rules:\n    - rules: [A, B]\n      actions: [kill]\n")
    assert load_policy(good).dry_run is True
    cases = {
        "response:\n  rules:\n    - rule: A\n      actions: [explode]\n": r"response\.rules\[0\]\.actions: unknown action 'explode'",
        "response:\n  rules:\n    - actions: [kill]\n": r"response\.rules\[0\]: needs at least one of",
        "response:\n  rules:\n    - rule: A\n      priority: loud\n      actions: [kill]\n": r"unknown priority 'loud'",
        "response:\n  bogus: 1\n": r"response: unknown key\(s\) \['bogus'\]",
        "response:\n  default: []\n": r"response\.default: needs at least one action",
        "response: [\n": r"line \d+ column \d+",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as info:
            load_policy(path)
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(["kill", "pause", "A", "critical", "T1611", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["rule", "rules", "tags", "priority", "actions", "default", "x"]), inner)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["rules", "default", "dry_run", "other"]), _yaml_values, max_size=3))
def test_policy_parser_fuzz(data: dict[str, Any]) -> None:
    try:
        policy = policy_from_data({"response": data}, "fuzz.yaml")
    except ConfigError as e:
        assert str(e).startswith("fuzz.yaml: ") and "\n" not in str(e)
        return
    assert policy.actions_for(_alert(1)) != []


def test_responder_records_to_sink_and_attributes(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300", labels={"io.kubernetes.pod.name": "p1"})
    sunk: list[Event] = []
    responder = Responder(_policy(Action.ALERT), resolver=ContainerResolver(), sink=sunk.append)
    events = responder.handle(_alert(c.pid))
    assert sunk == events and events[0].container.pod_name == "p1"
    assert events[0].to_dict()["kind"] == "response"
    assert isinstance(events[0].container, Container)
