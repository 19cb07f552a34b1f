"""``garrison sensor run --response``: rules firing on real containers kill, pause, quarantine and
deny execs, and every action is on the alert line.

The rules are scoped to this test's own containers (by a unique container label), so the policy
never touches anything else running on the machine; the sensors are the real ones.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._containers import Containers, RunningContainer, running_containers
from tests.runtime._sensorkit import http_answers, require_root

from garrison.network.dataplane.nft import Nft
from garrison.network.dataplane.quarantine import quarantined, release
from garrison.runtime.containers import cgroup_dirs

RETRIES = 5
TAG = uuid.uuid4().hex[:8]
NAMES = {k: f"garrison-resp-{k}-{TAG}" for k in ("kill", "pause", "quarantine", "deny")}

RULES = f"""
- rule: Response Test Miner
  desc: a miner-named process in the kill test's container
  condition: evt.type in (execve, execveat) and container.label[garrison.test] = "{NAMES["kill"]}" and proc.name = xmrig
  output: miner %proc.name in %container.id
  priority: CRITICAL
  tags: [T1496]
- rule: Response Test Shadow Read For Pause
  desc: /etc/shadow read in the pause test's container
  condition: evt.type in (open, openat) and container.label[garrison.test] = "{NAMES["pause"]}" and fd.name = /etc/shadow
  output: shadow read by %proc.name in %container.id
  priority: WARNING
  tags: [T1003.008]
- rule: Response Test Shadow Read For Quarantine
  desc: /etc/shadow read in the quarantine test's container
  condition: evt.type in (open, openat) and container.label[garrison.test] = "{NAMES["quarantine"]}" and fd.name = /etc/shadow
  output: shadow read by %proc.name in %container.id
  priority: WARNING
  tags: [T1003.008]
- rule: Response Test Dropped Binary
  desc: a binary from the container's upper layer executed in the deny test's container
  condition: evt.type in (execve, execveat) and container.label[garrison.test] = "{NAMES["deny"]}" and proc.is_exe_upper_layer = true
  output: drift %proc.exepath in %container.id
  priority: CRITICAL
  tags: [T1105]
"""
POLICY = """
response:
  rules:
    - rule: Response Test Miner
      actions: [kill]
    - rule: Response Test Shadow Read For Pause
      actions: [pause]
    - rule: Response Test Shadow Read For Quarantine
      actions: [quarantine]
    - rule: Response Test Dropped Binary
      actions: [deny-exec]
"""


class Sensor:
    """``garrison sensor run`` as a child process; ``alerts()`` reads its output file."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "rules.yaml").write_text(RULES)
        (tmp / "policy.yaml").write_text(POLICY)
        self.out = tmp / "alerts.jsonl"
        self.log = (tmp / "sensor.log").open("w")
        argv = [sys.executable, "-m", "garrison.cli.main", "sensor", "run", "--rules", str(tmp / "rules.yaml")]
        argv += ["--response", str(tmp / "policy.yaml"), "--output", str(self.out)]
        argv += ["--sensors", "proc,fanotify,bpftrace", "--status-file", str(tmp / "status.json")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log)
        self.logpath = tmp / "sensor.log"
        deadline = time.monotonic() + 60
        while "running with sensors" not in self.logpath.read_text():
            assert self.proc.poll() is None, self.logpath.read_text()[-2000:]
            assert time.monotonic() < deadline, "sensor did not start"
            time.sleep(0.1)

    def alerts(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def wait_alert(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [a for a in self.alerts() if pred(a)]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no such alert; got {[a['rule'] for a in self.alerts()]}"
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def sensor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sensor]:
    require_root()
    s = Sensor(tmp_path_factory.mktemp("response"))
    try:
        yield s
    finally:
        s.stop()
    assert s.proc.returncode == 0, s.logpath.read_text()[-2000:]


@pytest.fixture
def containers() -> Iterator[Containers]:
    yield from running_containers()


def _named(containers: Containers, key: str, image: str, *argv: str) -> RunningContainer:
    return containers.run(image, *argv, labels={"garrison.test": NAMES[key]})


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_kill_response(sensor: Sensor, containers: Containers) -> None:
    c = _named(containers, "kill", "busybox", "sleep", "300")
    c.exec("sh", "-c", "cp /bin/busybox /tmp/xmrig && (/tmp/xmrig sleep 60 &)")
    alert = sensor.wait_alert(lambda a: a["rule"] == "Response Test Miner")
    assert alert["actions"] == ["kill"]
    (resp,) = alert["responses"]
    assert resp["action"] == "kill" and resp["result"] == "ok"
    victim = int(alert["proc.pid"])
    assert _state(victim) in ("gone", "Z", "X")
    assert _state(c.pid) not in ("gone", "Z", "X"), "only the process dies, not the container"
    assert alert["container.id"] == c.id[:12]


def test_pause_response(sensor: Sensor, containers: Containers) -> None:
    # the container reads /etc/shadow itself when /tmp/go appears (a `podman exec` would hang on
    # the container it gets frozen in); the test drops the file in through /proc/PID/root
    loop = (
        "while :; do date > /tmp/t; if [ -e /tmp/go ]; then rm /tmp/go; cat /etc/shadow >/dev/null; fi; sleep 0.1; done"
    )
    c = _named(containers, "pause", "busybox", "sh", "-c", loop)
    cgroup = cgroup_dirs(c.pid).unified
    assert cgroup is not None and (cgroup / "cgroup.freeze").exists()
    try:
        Path(f"/proc/{c.pid}/root/tmp/go").write_text("")
        alert = sensor.wait_alert(lambda a: a["rule"] == "Response Test Shadow Read For Pause")
        assert alert["actions"] == ["pause"] and alert["responses"][0]["target"] == c.id[:12]
        assert "frozen 1" in (cgroup / "cgroup.events").read_text().splitlines()
        before = Path(f"/proc/{c.pid}/root/tmp/t").read_text()
        time.sleep(1.2)
        assert Path(f"/proc/{c.pid}/root/tmp/t").read_text() == before, "the paused container kept running"
    finally:
        (cgroup / "cgroup.freeze").write_text("0")


def test_quarantine_response(sensor: Sensor, containers: Containers) -> None:
    c = _named(containers, "quarantine", "debian", "python3", "-m", "http.server", "8080")
    ip = c.ip
    deadline = time.monotonic() + 20
    while not http_answers(ip, 8080):
        assert time.monotonic() < deadline, "http server never answered"
        time.sleep(0.2)
    try:
        c.exec("cat", "/etc/shadow", check=False)
        alert = sensor.wait_alert(lambda a: a["rule"] == "Response Test Shadow Read For Quarantine")
        assert alert["actions"] == ["quarantine"], alert.get("responses")
        assert not http_answers(ip, 8080), "quarantined container still answers TCP"
        assert ip in quarantined(Nft()), "not in the network dataplane's quarantine set"
    finally:
        release(Nft(), ip)


def test_deny_exec_response_every_retry(sensor: Sensor, containers: Containers) -> None:
    c = _named(containers, "deny", "debian", "sleep", "300")
    c.exec("cp", "/usr/bin/id", "/tmp/id")  # also the container's first exec: its root gets marked
    time.sleep(0.5)
    for attempt in range(RETRIES):
        out = c.exec("sh", "-c", "/tmp/id -u 2>&1; echo rc=$?", check=False)
        assert "rc=126" in out, f"attempt {attempt}: dropped binary ran: {out!r}"
        assert "rc=0" in c.exec("sh", "-c", "/usr/bin/id -u; echo rc=$?", check=False), "image binary blocked"
    denied = [a for a in sensor.alerts() if a["rule"] == "Response Test Dropped Binary"]
    assert len(denied) >= RETRIES
    assert all(a["actions"] == ["deny-exec"] and a["responses"][0]["result"] == "ok" for a in denied)
    assert all(a["output_fields"]["fd.name"] == "/tmp/id" for a in denied)
