"""Pipeline and ``garrison sensor``: real sensors -> table -> rules -> responders -> JSON-lines alert sink."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tests.runtime._sensorkit import Collector, require_root

from garrison.model.runtime import Alert, Container, Event, EventKind, Priority, Process
from garrison.runtime.pipeline import AlertSink, Pipeline, alert_record
from garrison.runtime.process import ProcessTable
from garrison.runtime.rules import load_rules
from garrison.runtime.sensors import ProcConnectorSensor, TracefsSensor, build_sensors, parse_selection
from garrison.runtime.sensors.interface import SensorError

RULES = """
- rule: Sensor Test Ptrace Attach
  desc: a process attaches to another with ptrace
  condition: evt.type=ptrace and evt.arg.request contains PTRACE_ATTACH and proc.name=python3
  output: ptrace attach by %proc.name (parent=%proc.pname cmdline=%proc.cmdline)
  priority: WARNING
  tags: [process, T1055.008]
"""
ATTACH = "import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)"


class StandIn:
    """A rule evaluator stand-in: fires on every ptrace event (the pipeline only needs the protocol)."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def event_types(self) -> set[str] | None:
        return {"ptrace"}

    def evaluate(self, event: Event) -> list[Alert]:
        self.seen.append(event)
        if event.type != "ptrace" or event.args.get("pid") != 1 or event.args.get("request") != 16:
            return []  # only our attach to init, not whatever else the machine is tracing
        return [Alert(event.time, "stand-in", Priority.NOTICE, f"ptrace by {event.proc.name}", ["T1055"], event=event)]


class Recorder:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def handle(self, alert: Alert) -> list[Event]:
        self.alerts.append(alert)
        proc = alert.event.proc if alert.event else Process(pid=0)
        return [Event(alert.time, "alert", EventKind.RESPONSE, "responder", proc, args={"action": "alert"})]


def _python3() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def test_pipeline_enriches_evaluates_responds_and_writes(tmp_path: Path) -> None:
    require_root()
    rules = StandIn()
    out = tmp_path / "alerts.jsonl"
    sink = AlertSink(out)
    responder = Recorder()
    tracefs = TracefsSensor(event_types=rules.event_types())
    pipeline = Pipeline([ProcConnectorSensor(), tracefs], rules, sink=sink, responders=[responder])
    pipeline.start()
    try:
        assert tracefs.enabled == ["ptrace"]  # only the tracepoints the rules can match
        shell = subprocess.run(["/bin/sh", "-c", f"{_python3()} -c '{ATTACH}'; true"], check=True)
        assert shell.returncode == 0
        deadline = time.monotonic() + 5
        while sink.written == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pipeline.stop()
        sink.close()
    lines = out.read_text().splitlines()
    assert len(lines) >= 1
    rec = json.loads(lines[0])
    assert rec["rule"] == "stand-in" and rec["priority"] == "Notice" and rec["tags"] == ["T1055"]
    assert rec["proc.name"].startswith("python3") and rec["proc.pname"] == "sh"
    assert rec["container.id"] == "host" and rec["output_fields"]["evt.type"] == "ptrace"
    assert rec["actions"] == ["alert"] and responder.alerts
    assert "k8s.pod.name" in rec and rec["time"].endswith("Z")
    status = pipeline.status()
    assert status["pipeline"]["dropped"] == 0 and status["pipeline"]["alerts"] >= 1
    assert {s["sensor"] for s in status["sensors"]} == {"proc", "tracefs"}


def test_pipeline_with_the_rule_engine(tmp_path: Path) -> None:
    require_root()
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    ruleset = load_rules([rules_file])
    assert ruleset.event_types() == {"ptrace"}
    got: list[Alert] = []

    class ListSink(AlertSink):
        def write(self, alert: Alert, responses: Sequence[Event] = ()) -> None:
            got.append(alert)

    sink = ListSink(tmp_path / "unused.jsonl")
    pipeline = Pipeline([TracefsSensor(event_types=ruleset.event_types())], ruleset, sink=sink)
    pipeline.start()
    try:
        subprocess.run([_python3(), "-c", ATTACH], check=True)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pipeline.stop()
        sink.close()
    assert got and got[0].rule == "Sensor Test Ptrace Attach"
    assert "ptrace attach by python3" in got[0].output
    assert "T1055.008" in alert_record(got[0])["mitre"]


def test_queue_overflow_is_counted_not_blocking() -> None:
    table = ProcessTable()
    pipeline = Pipeline([], None, table=table, queue_size=3, attributor=False, annotate=False, scan=False)
    for i in range(10):
        pipeline.submit(Event(0.0, "ptrace", EventKind.PRIVILEGE, "tracefs", Process(pid=i + 1)))
    assert pipeline.stats.dropped == 7 and pipeline.stats.submitted == 10


def test_selection_and_unavailable_sensors_are_explained() -> None:
    assert parse_selection("auto") is None
    assert parse_selection("audit, proc,audit") == ["audit", "proc"]
    try:
        parse_selection("audit,kprobe")
    except SensorError as err:
        assert "kprobe" in str(err) and "choose from" in str(err)
    else:
        raise AssertionError("unknown sensor accepted")
    chosen, skipped = build_sensors(None, event_types={"ptrace"})
    names = {s.name for s in chosen}
    assert {"proc", "tracefs"} <= names
    assert "bpftrace" in skipped and "openat" in skipped["bpftrace"]  # the rules need no string syscalls
    assert "ebpf" in skipped and "openat" in skipped["ebpf"]
    full, why = build_sensors(None)
    if any(s.name == "ebpf" for s in full):  # where our own programs load, bpftrace is not started beside them
        assert "bpftrace" in why and "ebpf" in why["bpftrace"]
    assert "audit" in skipped and "opt-in" in skipped["audit"]  # the default set leaves audit out (overhead)
    with_audit, why = build_sensors(None, event_types={"ptrace"}, with_audit=True)
    # chosen, unless another test's audit sensor holds the kernel's one audit connection right now
    # (then it is skipped with that reason, never as opt-in)
    assert "audit" in {s.name for s in with_audit} or ("audit" in why and "opt-in" not in why["audit"])


def _garrison(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "garrison.cli.main", *args], capture_output=True, text=True)


def test_cli_run_writes_alerts_until_sigterm(tmp_path: Path) -> None:
    require_root()
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    out = tmp_path / "alerts.jsonl"
    status = tmp_path / "status.json"
    cmd = [
        sys.executable,
        "-m",
        "garrison.cli.main",
        "sensor",
        "run",
        "--rules",
        str(rules_file),
        "--output",
        str(out),
        "--sensors",
        "proc,tracefs",
        "--status-file",
        str(status),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status.exists(), proc.stderr.read() if proc.poll() is not None and proc.stderr else "no status"
        subprocess.run([_python3(), "-c", ATTACH], check=True)
        deadline = time.monotonic() + 10
        while (not out.exists() or not out.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = out.read_text().splitlines()  # flushed while still running
        shown = _garrison("sensor", "status", "--status-file", str(status), "--format", "json")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    rec = json.loads(lines[0])
    assert rec["rule"] == "Sensor Test Ptrace Attach" and rec["priority"] == "Warning"
    assert rec["proc.name"] == "python3" and "T1055.008" in rec["tags"]
    assert shown.returncode == 0 and {s["sensor"] for s in json.loads(shown.stdout)["sensors"]} == {"proc", "tracefs"}
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert logs and all({"time", "level", "msg"} <= set(x) for x in logs)
    assert json.loads(status.read_text())["stopped"] is True


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = _garrison("sensor", "run", "--sensors", "audit,kprobe", "--duration", "1", "--output", str(tmp_path / "a"))
    assert bad.returncode == 2 and "kprobe" in bad.stderr and "Traceback" not in bad.stderr
    missing = _garrison("sensor", "run", "--rules", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken.yaml"
    broken.write_text("- rule: x\n  condition: evt.type=\n")
    invalid = _garrison("sensor", "run", "--rules", str(broken), "--duration", "1")
    assert invalid.returncode == 2 and "broken.yaml" in invalid.stderr and "Traceback" not in invalid.stderr
    status = _garrison("sensor", "status", "--status-file", str(tmp_path / "none.json"))
    assert status.returncode == 2 and "none.json" in status.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    unreadable = _garrison("sensor", "status", "--status-file", str(garbage))
    assert unreadable.returncode == 2 and "garbage.json" in unreadable.stderr
    fmt = _garrison("sensor", "list", "--format", "xml")
    assert fmt.returncode == 2 and "--format" in fmt.stderr


def test_cli_list() -> None:
    require_root()
    res = _garrison("sensor", "list", "--format", "json")
    assert res.returncode == 0
    rows = {r["sensor"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"proc", "audit", "fanotify", "tracefs", "ebpf", "bpftrace"}
    assert rows["proc"]["available"] is True and rows["tracefs"]["available"] is True
    table = _garrison("sensor", "list")
    assert table.returncode == 0 and "proc" in table.stdout


def test_collector_helper_times_out() -> None:
    c = Collector()
    assert c.wait_for(lambda e: True, timeout=0.05) == []


def test_fanotify_only_when_needed() -> None:
    require_root()
    _, skipped = build_sensors(None, event_types={"execve"})
    assert "fanotify" in skipped and "--protect" in skipped["fanotify"]
    chosen, _ = build_sensors(None, event_types={"execve"}, decide=lambda e: True)
    assert "fanotify" in {s.name for s in chosen}


def test_cli_protect_needs_fanotify(tmp_path: Path) -> None:
    res = _garrison(
        "sensor", "run", "--protect", "--sensors", "proc", "--duration", "1", "--output", str(tmp_path / "a")
    )
    assert res.returncode == 2 and "--protect needs the fanotify sensor" in res.stderr


class Counting:
    """A rule evaluator stand-in that records the order events reach it."""

    def __init__(self) -> None:
        self.nums: list[int] = []

    def event_types(self) -> set[str] | None:
        return None

    def evaluate(self, event: Event) -> list[Alert]:
        self.nums.append(event.num)
        return []


def test_worker_keeps_order_and_stop_drains_the_queue() -> None:
    rules = Counting()
    pipeline = Pipeline([], rules, attributor=False, annotate=False, scan=False)
    pipeline.start()
    n = 20000
    for i in range(n):
        pipeline.submit(Event(0.0, "ptrace", EventKind.PRIVILEGE, "tracefs", Process(pid=i + 1), num=i))
    pipeline.stop(drain_seconds=30)
    assert pipeline.stats.submitted == n and pipeline.stats.dropped == 0
    assert pipeline.stats.processed == n and rules.nums == list(range(n))
    assert pipeline.status()["pipeline"]["queued"] == 0


def test_worker_wakes_for_a_lone_event_after_a_quiet_spell() -> None:
    """After a quiet spell the worker sleeps until a sensor wakes it: one event is handled at once,
    not at the worker's one-second safety timeout."""
    rules = Counting()
    pipeline = Pipeline([], rules, attributor=False, annotate=False, scan=False)
    pipeline.start()
    try:
        for i in range(3):
            time.sleep(0.3)  # longer than the batch nap: the worker is asleep
            start = time.monotonic()
            pipeline.submit(Event(0.0, "ptrace", EventKind.PRIVILEGE, "tracefs", Process(pid=1), num=i))
            while len(rules.nums) <= i and time.monotonic() - start < 2:
                time.sleep(0.001)
            assert time.monotonic() - start < 0.5 and rules.nums == list(range(i + 1))
    finally:
        pipeline.stop()


def test_exec_storm_through_the_pipeline_loses_nothing() -> None:
    """2,000 execs at 2k/s through the proc connector and the whole pipeline: nothing lost or
    dropped, every exec enriched (the generator as parent) and attributed to the host."""
    require_root()
    from tests.runtime._sensorkit import exec_storm

    execs: dict[int, Event] = {}

    def seen(event: Event) -> None:
        if event.type == "execve":
            execs[event.proc.pid] = event

    sensor = ProcConnectorSensor()
    pipeline = Pipeline([sensor], Counting(), on_event=seen)
    pipeline.start()
    try:
        pids, _rate = exec_storm(2000, 2000, "pipeline-storm")
        deadline = time.monotonic() + 10
        while not set(pids) <= set(execs) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pipeline.stop()
    assert sensor.stats().lost == 0 and pipeline.stats.dropped == 0 and pipeline.stats.errors == 0
    missing = set(pids) - set(execs)
    assert not missing, f"{len(missing)} execs never reached the rules"
    mine = [execs[p] for p in pids]
    generator = {e.proc.ppid for e in mine}
    assert len(generator) == 1 and all(e.proc.ancestors and e.proc.ancestors[0].name == "storm" for e in mine)
    assert all(e.container.id == "host" for e in mine)


class _Cgroups:
    """Attribution by cgroup text only: a stand-in for the live resolver (the processes here
    never exist, as a short-lived process is gone by the time its events are attributed)."""

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts

    def resolve(self, pid: int, fallback_pids: object = ()) -> Container:
        return Container()  # gone, no ancestors known: the host, as the live resolver would say

    def cgroup_text(self, pid: int) -> str:
        text = self.texts.get(pid)
        if text is None:
            raise OSError("gone")
        return text

    def resolve_cgroup(self, text: str) -> Container:
        return Container(id=text.rsplit("-", 1)[-1][:12]) if "libpod-" in text else Container()


class _ProcStandIn:
    """The proc connector as the pipeline sees it: a sensor named ``proc`` with its progress
    (``caught_up``), moved by the test; the real reader moves it as it hands events on, and to
    now whenever its socket has been empty for a moment."""

    name = "proc"

    def __init__(self, caught_up: float = float("inf")) -> None:
        self.caught_up = caught_up

    def start(self, sink: object) -> None:
        pass

    def stop(self) -> None:
        pass


def _in_container_pipeline(sensor: object, parent: int, cid: str, on_event: Callable[[Event], object]) -> Pipeline:
    """A pipeline fed by hand, with ``sensor`` standing in for the proc connector and ``parent``
    (a live process) in container ``cid``; attribution from cgroup texts only (``_Cgroups``)."""
    return Pipeline(
        [sensor],  # type: ignore[list-item]
        None,
        attributor=_Cgroups({parent: f"0::/machine.slice/libpod-{cid}.scope/container"}),  # type: ignore[arg-type]
        annotate=False,
        scan=False,
        on_event=on_event,
    )


def test_event_of_a_process_not_reported_yet_waits_for_the_proc_connector() -> None:
    """A tracepoint record that reaches the worker before the proc connector's fork of its
    (short-lived, containerised) process waits for it and is attributed to the container; one
    whose process never shows up goes through after the wait, and a known process never waits."""
    cid = "0123456789ab" * 4
    parent, child, stranger = os.getpid(), 2_000_000_001, 2_000_000_002  # the last two never exist
    seen: list[tuple[str, int, str]] = []
    pipeline = _in_container_pipeline(
        _ProcStandIn(), parent, cid, lambda e: seen.append((e.type, e.proc.pid, e.container.id))
    )
    pipeline.start()
    try:
        pipeline.submit(Event(0.0, "execve", EventKind.PROCESS, "proc_connector", Process(pid=parent)))
        while len(seen) < 1:
            time.sleep(0.001)
        start = time.monotonic()
        pipeline.submit(Event(0.0, "unshare", EventKind.PRIVILEGE, "tracefs", Process(pid=child)))  # ahead of its fork
        pipeline.submit(Event(0.0, "ptrace", EventKind.PRIVILEGE, "tracefs", Process(pid=parent)))  # known: no wait
        time.sleep(0.05)
        pipeline.submit(Event(0.0, "clone", EventKind.PROCESS, "proc_connector", Process(pid=child, ppid=parent)))
        pipeline.submit(Event(0.0, "setns", EventKind.PRIVILEGE, "tracefs", Process(pid=stranger)))  # never reported
        while len(seen) < 5 and time.monotonic() - start < 3:
            time.sleep(0.001)
        waited = time.monotonic() - start
    finally:
        pipeline.stop()
    assert seen[1] == ("ptrace", parent, cid[:12])
    assert seen[2] == ("clone", child, cid[:12]) and seen[3] == ("unshare", child, cid[:12])
    assert seen[4] == ("setns", stranger, "host") and Pipeline.DEFER_SECONDS <= waited < 2


def test_event_after_its_pids_previous_owner_exited_is_not_the_previous_owners() -> None:
    """pid reuse: a tracepoint record stamped after the exit of the pid's previous owner (a
    container process) belongs to a newer process; it waits for the proc connector's report of
    that process and is not attributed to the previous owner's container. A late record of the
    previous owner (stamped before its exit) still is."""
    cid = "fedcba987654" * 4
    parent, pid = os.getpid(), 2_000_000_003  # the second never exists
    seen: list[tuple[str, float, str]] = []
    pipeline = _in_container_pipeline(
        _ProcStandIn(), parent, cid, lambda e: seen.append((e.type, e.time, e.container.id))
    )
    pipeline.start()
    try:
        pipeline.submit(Event(99.0, "execve", EventKind.PROCESS, "proc_connector", Process(pid=parent)))
        pipeline.submit(Event(99.5, "clone", EventKind.PROCESS, "proc_connector", Process(pid=pid, ppid=parent)))
        pipeline.submit(Event(100.0, "procexit", EventKind.PROCESS, "proc_connector", Process(pid=pid)))
        while len(seen) < 3:
            time.sleep(0.001)
        pipeline.submit(Event(99.9, "setns", EventKind.PRIVILEGE, "tracefs", Process(pid=pid)))  # late, old owner
        pipeline.submit(Event(101.0, "mount", EventKind.PRIVILEGE, "tracefs", Process(pid=pid)))  # the new owner
        time.sleep(0.05)
        pipeline.submit(Event(100.9, "clone", EventKind.PROCESS, "proc_connector", Process(pid=pid, ppid=1)))
        deadline = time.monotonic() + 3
        while len(seen) < 6 and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        pipeline.stop()
    by_type = {t: c for t, _w, c in seen}
    assert by_type["setns"] == cid[:12]
    assert by_type["mount"] == "host"
    assert [t for t, _w, _c in seen].index("mount") > [t for t, _w, _c in seen].index("setns")


def test_tracepoint_record_waits_until_the_proc_connector_has_caught_up() -> None:
    """A tracepoint record stamped later than the proc connector's progress waits for it: here
    the pid's previous owner (in a container) exited and a host process took the pid, and the
    record must be attributed with what the proc connector reports, not with the cached answer."""
    cid = "abcabcabcabc" * 4
    parent, pid = os.getpid(), 2_000_000_004  # the second never exists
    proc = _ProcStandIn(caught_up=0.0)
    seen: list[tuple[str, str]] = []
    pipeline = _in_container_pipeline(proc, parent, cid, lambda e: seen.append((e.type, e.container.id)))
    pipeline.start()
    try:
        pipeline.submit(Event(199.0, "execve", EventKind.PROCESS, "proc_connector", Process(pid=parent)))
        pipeline.submit(Event(199.1, "clone", EventKind.PROCESS, "proc_connector", Process(pid=pid, ppid=parent)))
        proc.caught_up = 199.1
        while len(seen) < 2:
            time.sleep(0.001)
        pipeline.submit(Event(200.0, "mount", EventKind.PRIVILEGE, "tracefs", Process(pid=pid)))  # ahead
        time.sleep(0.05)
        assert [t for t, _c in seen] == ["execve", "clone"]  # still waiting
        pipeline.submit(Event(199.5, "procexit", EventKind.PROCESS, "proc_connector", Process(pid=pid)))
        pipeline.submit(Event(199.8, "clone", EventKind.PROCESS, "proc_connector", Process(pid=pid, ppid=1)))
        proc.caught_up = 200.5
        deadline = time.monotonic() + 3
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        pipeline.stop()
    assert seen[1] == ("clone", cid[:12])
    assert seen[-1] == ("mount", "host")


def _nice(path: str) -> int:
    stat = Path(path).read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])  # field 19 of /proc/.../stat


def test_sensor_threads_and_bpftrace_run_at_the_sensor_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reader threads, the worker and the bpftrace child get the sensor's nice value (so a busy
    node does not starve the sensor into reading /proc after processes are gone); the rest of
    the process, and what it starts, keeps its own."""
    require_root()
    monkeypatch.setenv("GARRISON_SENSOR_NICE", "-7")
    from garrison.runtime.sensors.bpftrace import BpftraceSensor

    bpf = BpftraceSensor(event_types={"execve"})
    pipeline = Pipeline([ProcConnectorSensor(), bpf], None, attributor=False, annotate=False, scan=False)
    before = os.getpriority(os.PRIO_PROCESS, 0)
    pipeline.start()
    try:
        names = {
            t.name: _nice(f"/proc/{os.getpid()}/task/{t.native_id}/stat")
            for t in threading.enumerate()
            if t.name.startswith("garrison-")
        }
        main_nice = _nice(f"/proc/{os.getpid()}/task/{threading.main_thread().native_id}/stat")
        child = subprocess.run(["sh", "-c", "cut -d' ' -f19 /proc/self/stat"], capture_output=True, text=True)
        assert bpf._proc is not None
        bpf_nice = _nice(f"/proc/{bpf._proc.pid}/stat")
    finally:
        pipeline.stop()
    assert names.get("garrison-proc") == -7 and names.get("garrison-bpftrace") == -7, names
    assert names.get("garrison-pipeline") == -7 and bpf_nice == -7
    assert main_nice == before and int(child.stdout) == before
