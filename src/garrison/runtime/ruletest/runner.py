"""Runs rule-test suites against the live sensor pipeline.

One pipeline (the real sensors, the given rules) is started once for all suites; every case then
runs its command and the runner decides which alerts are the case's:

* **host** cases: the command is our child; an alert belongs to the case when its process is that
  child or descends from it. Descent is read from the proc connector's fork records (kept by
  :class:`_TrackingPipeline` as they are submitted, so a process that has already exited when
  its alert is checked still links up) and from the alert's enriched ancestry.
* **container** cases: the command runs with ``podman exec`` in a long-lived container started
  for the suite (one per image and privilege, the suite's directory mounted read-only at
  ``/suite`` and used as working directory); an alert belongs to the case when it is attributed
  to that container and its event happened between the command's start and the case's deadline.

A case passes when each ``expect`` entry is matched by one of its alerts that reached the runner
no later than ``within_seconds`` after the command finished, or, for ``expect_none``, when none
of its alerts is at or above the priority by then. The reported latency is the time from the
kernel event to the alert reaching the runner.

Podman runs as Garrison's tests run it (cgroupfs manager, file events backend, runc), overridable
with ``GARRISON_PODMAN`` (the podman command line, split on spaces).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from garrison.core.errors import GarrisonError
from garrison.model.runtime import Alert, Event
from garrison.runtime.pipeline import Pipeline
from garrison.runtime.ruletest.suite import Case, Expectation, Suite

DEFAULT_PODMAN = "podman --cgroup-manager=cgroupfs --events-backend=file --runtime /usr/sbin/runc"
LATE_GRACE = 3.0  # seconds past a case's window an expected alert is still waited for, to report it as late
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


def podman_argv() -> list[str]:
    return shlex.split(os.environ.get("GARRISON_PODMAN", DEFAULT_PODMAN))


@dataclass(slots=True)
class Seen:
    """An alert as the runner received it."""

    arrived: float
    alert: Alert

    @property
    def latency(self) -> float:
        return self.arrived - self.alert.event.time if self.alert.event is not None else 0.0


@dataclass(slots=True)
class CaseResult:
    suite: str
    case: Case
    passed: bool
    reason: str = ""
    duration: float = 0.0
    exit_code: int | None = None
    output: str = ""
    matched: list[tuple[Expectation, Seen | None]] = field(default_factory=list)
    alerts: list[Seen] = field(default_factory=list)  # every alert attributed to the case


class _Collector:
    """A pipeline responder that only records alerts (in arrival order)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.cond = threading.Condition()

    def handle(self, alert: Alert) -> list[Event]:
        with self.cond:
            self.seen.append(Seen(time.time(), alert))
            self.cond.notify_all()
        return []

    def since(self, index: int) -> list[Seen]:
        with self.cond:
            return self.seen[index:]

    def mark(self) -> int:
        with self.cond:
            return len(self.seen)


class _TrackingPipeline(Pipeline):
    """The pipeline, plus a child -> parent map from the proc connector's fork records."""

    parents: dict[int, int]

    def submit(self, event: Event) -> None:
        if event.type == "clone" and event.sensor == "proc_connector":
            if len(self.parents) > 262144:
                self.parents.clear()
            self.parents[event.proc.pid] = event.proc.ppid
        super().submit(event)


@dataclass(slots=True)
class _Box:
    """A container started for a suite's cases."""

    id: str
    name: str


class RuleTestRunner:
    """Starts the sensor pipeline with ``ruleset`` and ``sensors`` once, runs suites, stops it."""

    def __init__(self, ruleset: object, sensors: Sequence[object], *, settle: float = 0.5) -> None:
        self.ruleset = ruleset
        self.sensors = list(sensors)
        self.settle = settle
        self.collector = _Collector()
        self.pipeline: _TrackingPipeline | None = None
        self._boxes: dict[tuple[str, bool, str], _Box] = {}
        self._podman = podman_argv()

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self, suites: Sequence[Suite]) -> list[CaseResult]:
        results: list[CaseResult] = []
        try:
            for suite in suites:  # containers first: the runtime starting them is no case's doing
                for case in suite.cases:
                    if case.where == "container":
                        self._box(case, suite)
            pipeline = _TrackingPipeline(self.sensors, self.ruleset, responders=[self.collector])  # type: ignore[arg-type]
            pipeline.parents = {}
            self.pipeline = pipeline
            pipeline.start()
            time.sleep(self.settle)
            for suite in suites:
                results.extend(self.run_case(suite, case) for case in suite.cases)
        finally:
            if self.pipeline is not None:
                self.pipeline.stop()
            for box in self._boxes.values():
                self._podman_run("rm", "-f", "-t", "0", box.id, check=False)
            self._boxes.clear()
        return results

    def _podman_run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run([*self._podman, *args], capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise GarrisonError(f"podman {args[0]} failed: {e}") from e
        if check and proc.returncode != 0:
            raise GarrisonError(f"podman {args[0]} failed: {' '.join(proc.stderr.split())[:300]}")
        return proc

    def _box(self, case: Case, suite: Suite) -> _Box:
        root = str(suite.path.resolve().parent)
        key = (case.image, case.privileged, root)
        box = self._boxes.get(key)
        if box is not None:
            return box
        if shutil.which(self._podman[0]) is None:
            raise GarrisonError(f"case {case.name!r} runs in a container but {self._podman[0]} is not installed")
        name = f"garrison-rules-test-{uuid.uuid4().hex[:10]}"
        args = ["run", "-d", "--name", name, *ULIMITS, "-v", f"{root}:/suite:ro", "-w", "/suite"]
        if case.privileged:
            args.append("--privileged")
        cid = self._podman_run(*args, case.image, "sleep", "infinity").stdout.strip()
        box = _Box(cid, name)
        self._boxes[key] = box
        return box

    # -- one case ----------------------------------------------------------------------------
    def run_case(self, suite: Suite, case: Case) -> CaseResult:
        assert self.pipeline is not None, "run() starts the pipeline"
        box = self._box(case, suite) if case.where == "container" else None
        result = CaseResult(suite.name, case, passed=False)
        scratch = Path(tempfile.mkdtemp(prefix="garrison-rules-test-"))
        try:
            if case.setup:
                code, out = self._exec(case.setup, box, suite, scratch, case.timeout)
                if code != 0:
                    result.reason = f"setup exited {code}: {_tail(out)}"
                    return result
            mark = self.collector.mark()
            start = time.time()
            root_pid, code, out = self._exec_tracked(case.command, box, suite, scratch, case.timeout)
            end = time.time()
            result.exit_code, result.output, result.duration = code, out, end - start
            deadline = end + case.within
            self._wait(case, box, root_pid, mark, start, deadline)
            if case.expect and case.expect_none is None and not self._met(case, box, root_pid, mark, start, deadline):
                # too late to pass, but say how late: wait a little longer for the report's sake
                self._wait(case, box, root_pid, mark, start, deadline + LATE_GRACE)
            late_end = deadline + LATE_GRACE
            mine = [s for s in self.collector.since(mark) if self._belongs(s, box, root_pid, start, late_end)]
            result.alerts = mine
            if code not in case.allowed_exit_codes:
                result.reason = f"command exited {code}: {_tail(out)}"
                return result
            self._judge(case, result, mine, deadline)
            return result
        finally:
            if case.cleanup:
                self._exec(case.cleanup, box, suite, scratch, case.timeout)
            shutil.rmtree(scratch, ignore_errors=True)

    def _judge(self, case: Case, result: CaseResult, mine: list[Seen], deadline: float) -> None:
        in_time = [s for s in mine if s.arrived <= deadline]
        problems: list[str] = []
        for exp in case.expect:
            hit = next((s for s in in_time if exp.matches(s.alert.rule, s.alert.tags, s.alert.priority)), None)
            result.matched.append((exp, hit))
            if hit is None:
                late = next((s for s in mine if exp.matches(s.alert.rule, s.alert.tags, s.alert.priority)), None)
                if late is not None:
                    after = late.arrived - deadline + case.within
                    problems.append(
                        f"{exp.describe()} fired late: {after:.2f}s after the command, "
                        f"{late.latency:.2f}s after the event"
                    )
                else:
                    problems.append(f"no alert {exp.describe()}")
        if case.expect_none is not None:
            floor = case.expect_none
            loud = [s for s in in_time if s.alert.priority.at_least(floor)]
            if loud:
                names = sorted({s.alert.rule for s in loud})
                problems.append(f"{len(loud)} alert(s) at or above {floor.label()}: {', '.join(names)}")
        result.passed = not problems
        result.reason = "; ".join(problems)

    def _met(self, case: Case, box: _Box | None, root: int, mark: int, start: float, deadline: float) -> bool:
        with self.collector.cond:
            mine = [s for s in self.collector.seen[mark:] if self._belongs(s, box, root, start, deadline)]
        return all(any(e.matches(s.alert.rule, s.alert.tags, s.alert.priority) for s in mine) for e in case.expect)

    def _wait(self, case: Case, box: _Box | None, root: int, mark: int, start: float, deadline: float) -> None:
        """Until every expectation is met (or, for ``expect_none``, the window has passed)."""
        cond = self.collector.cond
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            if case.expect and case.expect_none is None and self._met(case, box, root, mark, start, deadline):
                return
            with cond:
                cond.wait(min(left, 0.05))

    def _belongs(self, seen: Seen, box: _Box | None, root: int, start: float, deadline: float) -> bool:
        event = seen.alert.event
        if event is None:
            return False
        if box is not None:
            c = event.container
            same = (bool(c.full_id) and c.full_id == box.id) or (bool(c.id) and box.id.startswith(c.id))
            return same and start - 0.05 <= event.time <= deadline
        if not event.container.is_host:
            return False
        return self._descends(event, root)

    def _descends(self, event: Event, root: int) -> bool:
        pids = {event.proc.pid, event.proc.ppid, *(a.pid for a in event.proc.ancestors)}
        if root in pids:
            return True
        assert self.pipeline is not None
        parents = self.pipeline.parents
        pid = event.proc.pid
        for _ in range(64):
            pid = parents.get(pid, 0)
            if pid <= 1:
                return False
            if pid == root:
                return True
        return False

    # -- commands ----------------------------------------------------------------------------
    def _argv(self, command: Sequence[str], box: _Box | None) -> list[str]:
        if box is None:
            return list(command)
        return [*self._podman, "exec", box.id, *command]

    def _env(self, suite: Suite, scratch: Path) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(scratch), "GARRISON_SUITE_DIR": str(suite.path.resolve().parent)}

    def _exec(
        self, command: Sequence[str], box: _Box | None, suite: Suite, scratch: Path, timeout: float
    ) -> tuple[int, str]:
        _, code, out = self._exec_tracked(command, box, suite, scratch, timeout)
        return code, out

    def _exec_tracked(
        self, command: Sequence[str], box: _Box | None, suite: Suite, scratch: Path, timeout: float
    ) -> tuple[int, int, str]:
        """(pid of the child we started, exit code, combined output)."""
        try:
            proc = subprocess.Popen(
                self._argv(command, box),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=str(suite.path.resolve().parent),
                env=self._env(suite, scratch),
                start_new_session=True,
            )
        except OSError as e:
            return 0, 127, f"cannot run {command[0]}: {e.strerror}"
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, _ = proc.communicate()
            return proc.pid, -9, (out or "") + f"\n(timed out after {timeout}s)"
        return proc.pid, proc.returncode, out or ""


def _tail(text: str, n: int = 300) -> str:
    return " ".join(text.split())[-n:]
