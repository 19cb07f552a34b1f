"""Runtime pipeline: sensors -> process table -> container attribution -> rules -> responders -> alert sink.

Sensors call :meth:`Pipeline.submit` from their reader threads. Process-lifecycle events from the
proc connector update the process table right there (an exec is read from ``/proc`` while the
process most likely still exists); everything then goes through one bounded queue to a single
worker thread, which enriches (ancestry, container, drift origin), evaluates the rules and
hands alerts to the responders and the alert sink. One consumer keeps the table and the rule
engine single-threaded; a full queue drops the event and counts it (``pipeline.dropped``), never
blocks a sensor's kernel reader.

The queue is a ``collections.deque`` rather than ``queue.Queue``: appends and pops are atomic
without a lock, and the worker is woken through a lock only when it sleeps, so the handoff costs
no lock round trip or futex wake-up per event. Under load the worker takes events in batches (it naps a
few milliseconds between them, see :meth:`Pipeline._work`): an exec storm costs a few hundred
wake-ups a second instead of one per event, for at most ``BATCH_NAP`` of added alert latency.

Duplicates across sensors are settled here: when the audit sensor runs, the proc connector's
exec notifications only feed the process table (audit's records are complete); when tracefs runs,
the proc connector's uid/gid/ptrace notifications do the same.

The rule set, the container resolver and the responders are interfaces (:class:`RuleEvaluator`,
:class:`Attributor`, :class:`Responder`) so the pipeline works with whatever the rules engine and
the container/response modules provide, and with stand-ins in tests.
"""

from __future__ import annotations

import collections
import datetime as _dt
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from garrison.model.runtime import Alert, Container, Event, EventKind, Process
from garrison.runtime import execargs
from garrison.runtime.execargs import ExecRecords
from garrison.runtime.process import ProcessTable
from garrison.runtime.sensors.interface import Sensor, SensorError, sensor_thread

logger = logging.getLogger(__name__)

#: sensors whose exec records carry the kernel's argv and executable origin (execargs pairs them)
KERNEL_EXEC_SENSORS = frozenset({"ebpf", "bpftrace"})
#: sensors whose events carry the kernel's time of the event (not the time they were read)
KERNEL_TIME_SENSORS = frozenset({"tracefs", "ebpf"})


class RuleEvaluator(Protocol):
    def evaluate(self, event: Event) -> list[Alert]: ...

    def event_types(self) -> set[str] | None: ...


class Attributor(Protocol):
    def resolve(self, pid: int, fallback_pids: Iterable[int] = ()) -> Container: ...


class Responder(Protocol):
    def handle(self, alert: Alert) -> list[Event]: ...


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def context_fields(event: Event) -> dict[str, Any]:
    """The ``proc.*``, ``user.*``, ``container.*`` and ``k8s.*`` fields an alert line carries."""
    p: Process = event.proc
    c = event.container
    anc = p.ancestors
    out: dict[str, Any] = {
        "evt.type": event.type,
        "evt.time": event.time,
        "evt.res": event.res,
        "proc.pid": p.pid,
        "proc.ppid": p.ppid,
        "proc.name": p.name,
        "proc.exe": p.exe,
        "proc.exepath": p.exepath,
        "proc.cmdline": p.cmdline,
        "proc.args": " ".join(p.args),
        "proc.cwd": p.cwd,
        "proc.tty": p.tty,
        "proc.pname": anc[0].name if anc else None,
        "proc.pcmdline": anc[0].cmdline if anc else None,
        "proc.is_exe_upper_layer": p.exe_upper_layer,
        "proc.is_exe_from_memfd": p.exe_from_memfd,
        "user.uid": p.uid,
        "user.loginuid": p.loginuid,
        "group.gid": p.gid,
        "container.id": c.id,
        "container.name": c.name or None,
        "container.image.repository": c.image_repository or None,
        "container.image.tag": c.image_tag or None,
        "container.privileged": c.privileged,
        "k8s.pod.name": c.pod_name or None,
        "k8s.ns.name": c.pod_namespace or None,
    }
    for i, a in enumerate(anc[1:], start=2):
        out[f"proc.aname[{i}]"] = a.name
    if event.fd is not None and event.fd.name:
        out["fd.name"] = event.fd.name
    if event.partial:
        out["evt.partial"] = True
    return out


def response_record(event: Event) -> dict[str, Any]:
    """A response event (``kind == response``) as it appears in an alert line's ``responses``."""
    return {
        "time": _iso(event.time),
        "action": event.args.get("action", event.type.removeprefix("response.")),
        "result": event.args.get("result", ""),
        "target": event.args.get("target", ""),
        "dry_run": bool(event.args.get("dry_run", False)),
    }


def alert_record(alert: Alert, hostname: str = "", responses: Sequence[Event] = ()) -> dict[str, Any]:
    """One alert as a JSON object: Falco's shape (time, rule, priority, tags, output,
    output_fields) plus the context fields flattened at the top level; ``actions`` names the
    responses that were carried out and ``responses`` records every one attempted (with result)."""
    record: dict[str, Any] = {
        "time": _iso(alert.time),
        "rule": alert.rule,
        "priority": alert.priority.label(),
        "tags": list(alert.tags),
        "source": alert.source,
        "output": alert.output,
        "hostname": hostname,
    }
    fields: dict[str, Any] = {}
    if alert.event is not None:
        fields.update(context_fields(alert.event))
        record["sensor"] = alert.event.sensor
    fields.update(alert.fields)
    record.update({k: v for k, v in fields.items() if k.split(".", 1)[0] in ("proc", "container", "k8s", "user")})
    record["output_fields"] = fields
    if alert.mitre:
        record["mitre"] = alert.mitre
    if alert.actions:
        record["actions"] = list(alert.actions)
    if responses:
        record["responses"] = [response_record(e) for e in responses]
    return record


class AlertSink:
    """Appends one JSON object per alert to a file (or stream) and flushes each line."""

    def __init__(self, target: Path | IO[str]) -> None:
        self._own = isinstance(target, Path)
        self._fh: IO[str] = target.open("a", encoding="utf-8") if isinstance(target, Path) else target
        self._lock = threading.Lock()
        self._host = os.uname().nodename
        self.written = 0

    def write(self, alert: Alert, responses: Sequence[Event] = ()) -> None:
        line = json.dumps(alert_record(alert, self._host, responses), default=str, separators=(",", ":"))
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
            self.written += 1

    def close(self) -> None:
        if self._own:
            self._fh.close()


@dataclass(slots=True)
class PipelineStats:
    submitted: int = 0
    processed: int = 0
    dropped: int = 0
    alerts: int = 0
    responses: int = 0
    errors: int = 0
    exec_corrected: int = 0  # exec notifications whose /proc read was stale, corrected from the kernel's argv


def _default_attributor() -> Attributor | None:
    try:
        from garrison.runtime.containers import ContainerResolver
    except ImportError:
        return None
    return ContainerResolver()


def _default_annotate() -> Callable[[Event], object] | None:
    try:
        from garrison.runtime.drift import annotate
    except ImportError:
        return None
    return annotate


def _exe_origin() -> Callable[[int], str] | None:
    try:
        from garrison.runtime.drift import exe_origin
    except ImportError:
        return None
    return exe_origin


def _path_origin() -> Callable[[Event], object] | None:
    """Origin of an exec'd file for a process that is already gone: the path, seen from a live
    process of the same container (its root and mounts are the container's)."""
    try:
        from garrison.runtime.containers import live_pid
        from garrison.runtime.drift import path_origin
    except ImportError:
        return None

    def judge(event: Event) -> object:
        path = event.proc.exepath
        if not path.startswith("/") or event.container.is_host:
            return None
        pid = live_pid(event.container, event.proc.pid)
        if pid == event.proc.pid or not os.path.isfile(f"/proc/{pid}/root{path}"):
            return None  # no live process of the container found, or no such file (any more)
        origin = path_origin(pid, path)
        if origin != "unknown":
            event.proc.exe_upper_layer = origin == "upper"
            event.proc.exe_from_memfd = origin == "memfd"
        return origin

    return judge


def _in_container(cgroup_text: str) -> bool:
    try:
        from garrison.runtime.containers import match_proc_cgroup
    except ImportError:
        return False
    return match_proc_cgroup(cgroup_text) is not None


class Pipeline:
    """Runs sensors and routes their events through enrichment, rules, responders and the sink."""

    BATCH_NAP = 0.005  # seconds the worker lets events gather after a batch (see :meth:`_work`)
    BATCH_WAKE = 1024  # a backlog this long ends the nap early
    #: how long an event of a process the table does not know yet waits for the proc connector
    #: to report it (see :meth:`_unknown`); at most ``DEFER_MAX`` events wait at once
    DEFER_SECONDS = 0.25
    DEFER_MAX = 4096

    def __init__(
        self,
        sensors: Sequence[Sensor],
        rules: RuleEvaluator | None,
        *,
        sink: AlertSink | None = None,
        responders: Sequence[Responder] = (),
        table: ProcessTable | None = None,
        attributor: Attributor | bool | None = True,
        annotate: Callable[[Event], object] | bool | None = True,
        on_event: Callable[[Event], None] | None = None,
        on_new_container: Callable[[Event], bool] | None = None,
        queue_size: int = 131072,
        scan: bool = True,
    ) -> None:
        self.sensors = list(sensors)
        self.rules = rules
        self.sink = sink
        self.responders = list(responders)
        self.table = table or ProcessTable()
        self.attributor: Attributor | None = (
            _default_attributor() if attributor is True else (None if attributor is False else attributor)
        )
        self.annotate: Callable[[Event], object] | None = (
            _default_annotate() if annotate is True else (None if annotate is False else annotate)
        )
        self.on_event = on_event
        self.on_new_container = on_new_container
        self._seen_containers: set[str] = set()
        self.stats = PipelineStats()
        self._queue: collections.deque[Event] = collections.deque()
        self._queue_size = queue_size
        # the worker's wake-up: a lock held while no wake-up is pending (a binary semaphore that
        # costs one futex call, unlike threading.Event's condition variable); ``_idle`` says the
        # worker found the queue empty and waits on it, so busy periods cost no wake-ups at all
        self._wake = threading.Lock()
        self._wake.acquire()
        self._idle = False
        self._napping = False
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._started: list[Sensor] = []
        self._scan = scan
        names = {s.name for s in self.sensors}
        self._audit = next((s for s in self.sensors if s.name == "audit"), None)
        self._superseded: set[tuple[str, str]] = set()
        if "audit" in names:
            self._superseded |= {("proc_connector", "execve")}
            self.table.read_on_exec = False
        # enrichment and attribution cost more than the rules: events no rule can match only
        # update the process table (``None`` = some rule matches any type)
        self._types: set[str] | None = rules.event_types() if rules is not None else set()
        self._containers: dict[int, Container] = {}
        self._cgroups: dict[int, str] = {}
        # distinct cgroup texts -> (one shared copy, whether it names a container)
        self._texts: dict[str, tuple[str, bool]] = {}
        self._cgroup_text: Callable[[int], str] | None = getattr(self.attributor, "cgroup_text", None)
        self._resolve_cgroup: Callable[[str], Container] | None = getattr(self.attributor, "resolve_cgroup", None)
        self._origins: dict[int, str] = {}
        # pids an exec read found gone (oldest first): attribution asks their ancestors directly
        self._gone: dict[int, None] = {}
        # events waiting for the proc connector to report their process: (deadline, event)
        self._deferred: collections.deque[tuple[float, Event]] = collections.deque()
        # the proc connector's progress (``caught_up``): a tracepoint record from later than that
        # waits, as the process it names may not be in the table yet
        self._proc_reader = next((s for s in sensors if hasattr(s, "caught_up")), None)
        self._path_origin: Callable[[Event], object] | None = _path_origin() if annotate is True else None
        self._resolve_cgroup_id: Callable[[int], Container | None] | None = getattr(
            self.attributor, "resolve_cgroup_id", None
        )
        self._early_origin: Callable[[int], str] | None = _exe_origin() if annotate is True else None
        if "tracefs" in names:
            self._superseded |= {("proc_connector", t) for t in ("setuid", "setgid", "ptrace")}
        # the kernel's argv of each exec (ebpf or bpftrace), for proc connector execs whose /proc read came
        # too late; audit's exec records are complete and need none
        self._execs: ExecRecords | None = ExecRecords() if names & KERNEL_EXEC_SENSORS and "audit" not in names else None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._scan:
            self.table.scan()
        self._stopping = False
        self._wake.acquire(blocking=False)  # no stale wake-up from an earlier run
        self._worker = sensor_thread(self._work, name="garrison-pipeline")
        self._worker.start()
        try:
            for sensor in self.sensors:
                sensor.start(self.submit)
                self._started.append(sensor)
                logger.info("sensor %s started", sensor.name)
        except SensorError:
            self.stop()
            raise

    def stop(self, drain_seconds: float = 2.0) -> None:
        for sensor in reversed(self._started):
            try:
                sensor.stop()
            except Exception:
                logger.exception("stopping sensor %s failed", sensor.name)
        self._started.clear()
        if self._worker is not None:
            # the worker drains what is queued, then returns; a backlog longer than
            # ``drain_seconds`` is left to the daemon thread
            self._stopping = True
            self._wakeup()
            self._worker.join(timeout=drain_seconds)
            self._worker = None

    # -- flow ---------------------------------------------------------------------------------
    def submit(self, event: Event) -> None:
        """Sensor callback: update the table for lifecycle events, then queue for the worker."""
        self.stats.submitted += 1
        if event.sensor == "proc_connector" and event.kind == EventKind.PROCESS:
            alive = True
            try:
                alive = self.table.observe(event)
            except Exception:
                self.stats.errors += 1
                logger.exception("process table update failed")
            if self._cgroup_text is not None and event.type in ("clone", "execve"):
                self._remember_cgroup(event, alive)
        queued = self._queue
        if len(queued) >= self._queue_size:
            self.stats.dropped += 1
            return
        queued.append(event)
        if self._idle or (self._napping and len(queued) >= self.BATCH_WAKE):
            self._wakeup()

    def _wakeup(self) -> None:
        self._idle = False
        try:
            self._wake.release()
        except RuntimeError:
            pass  # already pending (another sensor thread woke the worker first)

    def _remember_cgroup(self, event: Event, alive: bool = True) -> None:
        """Note the cgroup of a process as it forks or execs (it most likely still exists now).

        A short-lived process (``cat /etc/shadow`` in a container) is often gone by the time the
        worker attributes its events, and so are its parents; without this its alerts would
        read as the host's. A fork inherits the parent's cgroup (runtimes move a process into the
        container's cgroup before its exec), an exec reads it again. Oldest entries are evicted
        first, so late events of an exited process still find theirs. ``alive`` is ``False``
        when the process table's exec read found the process gone: no second read is tried.
        """
        assert self._cgroup_text is not None
        cgroups = self._cgroups
        pid = event.proc.pid
        if event.type == "execve":
            self._origins.pop(pid, None)  # the previous program's answer never carries over
        self._gone.pop(pid, None)
        text = cgroups.get(event.proc.ppid) if event.type == "clone" else None
        if text is None:
            try:
                read = self._cgroup_text(pid) if alive else None
            except OSError:
                read = None
            if read is None:
                # gone already: a container cgroup inherited at fork stands (an exec does not move a
                # process); a host one may predate a move into a container (runc exec): dropped
                inherited = cgroups.get(pid)
                if inherited is not None and not self._cgroup_info(inherited)[1]:
                    del cgroups[pid]
                self._gone[pid] = None
                if len(self._gone) > 16384:
                    for old in list(itertools.islice(self._gone, 4096)):
                        del self._gone[old]
                return
            text = self._cgroup_info(read)[0]  # one string per distinct cgroup
        cgroups.pop(pid, None)
        cgroups[pid] = text
        if event.type == "execve" and self._early_origin is not None and self._cgroup_info(text)[1]:
            # the binary's origin (image, upper layer, memfd) needs the live process too
            origin = self._early_origin(pid)
            if origin != "unknown":
                self._origins[pid] = origin
                if len(self._origins) > 16384:
                    for old in list(itertools.islice(self._origins, 4096)):
                        del self._origins[old]
        if len(cgroups) > 65536:
            for old in list(itertools.islice(cgroups, 16384)):
                del cgroups[old]
            if len(self._texts) > 4096:
                self._texts.clear()

    def _cgroup_info(self, text: str) -> tuple[str, bool]:
        """The shared copy of a cgroup text and whether it names a container (parsed once per text)."""
        found = self._texts.get(text)
        if found is None:
            if len(self._texts) >= 8192:
                self._texts.clear()
            found = self._texts[text] = (text, _in_container(text))
        return found

    def _work(self) -> None:
        """Process queued events in arrival order, in batches.

        Waking a thread per event costs more than most events' processing (a futex wake-up and
        a GIL handoff between the sensor's reader and this worker): when the queue runs empty
        right after a batch, the worker naps ``BATCH_NAP`` seconds without asking to be woken,
        so an exec storm is handled in a few hundred batches a second instead of one wake-up
        per event (libscap waits on its empty ring buffers the same way). Only a nap that found
        nothing puts it to sleep until a sensor wakes it, so a quiet node costs no polling and
        the first event after a quiet spell is handled at once. A backlog of ``BATCH_WAKE``
        events ends a nap early.

        A sensor appends and then reads ``_idle``; the worker sets ``_idle`` and then looks at
        the queue again before it sleeps: whichever runs second sees the other's write, so an
        event is never left waiting for the next one (the one-second timeout is a safety net).
        """
        queued = self._queue
        pop = queued.popleft
        wake = self._wake
        deferred = self._deferred
        busy = False
        while True:
            try:
                event = pop()
            except IndexError:
                if deferred:
                    self._release_deferred(force=self._stopping)
                    if deferred:  # still waiting: look again soon, whatever arrives meanwhile
                        self._napping = True
                        wake.acquire(timeout=self.BATCH_NAP)
                        self._napping = False
                        continue
                if self._stopping:
                    return
                if busy:
                    busy = False
                    self._napping = True
                    wake.acquire(timeout=self.BATCH_NAP)
                    self._napping = False
                    continue
                self._idle = True
                if not queued and not self._stopping:
                    wake.acquire(timeout=1.0)
                self._idle = False
                continue
            busy = True
            if event.sensor not in ("proc_connector", "audit") and event.type != "execve":
                self._forget_recycled(event)
                if len(deferred) < self.DEFER_MAX and self._unknown(event):
                    deferred.append((time.monotonic() + self.DEFER_SECONDS, event))
                    continue
            self._safe_process(event)
            if deferred and (not queued or deferred[0][0] <= time.monotonic()):
                self._release_deferred()

    def _forget_recycled(self, event: Event) -> None:
        """When the event's pid now names a newer process than the table's entry, the table has
        re-read it; what this pipeline remembered of the previous owner (container, cgroup, exe
        origin) goes too, so the event is not attributed to the previous owner's container."""
        pid = event.proc.pid
        if pid > 0 and (self._died_before(event) or self.table.recycled(pid, event.time)):
            self._containers.pop(pid, None)
            self._cgroups.pop(pid, None)
            self._origins.pop(pid, None)

    def _safe_process(self, event: Event) -> None:
        try:
            self.process(event)
        except Exception:
            self.stats.errors += 1
            logger.exception("pipeline failed on a %s event from %s", event.type, event.sensor)

    def _unknown(self, event: Event) -> bool:
        """Whether the event's process is one the proc connector has not reported yet.

        Sensors read the kernel on their own threads: under load the tracepoint record of a
        short-lived process (``unshare -U`` in a container) can reach the worker before the proc
        connector's fork and exec of that process, and then its cgroup, parents and command line
        are unknown and the process is gone. Such an event waits up to ``DEFER_SECONDS`` for the
        process to appear in the table (released at once when it does), then goes through as it
        is. Processes present when the sensor started are in the table from its scan.
        """
        pid = event.proc.pid
        return (
            self._cgroup_text is not None
            and self._proc_reader is not None
            and pid > 0
            and (
                self._ahead_of_proc(event)
                or (pid not in self._cgroups and (self.table.get(pid) is None or self._died_before(event)))
            )
        )

    def _ahead_of_proc(self, event: Event) -> bool:
        """A tracepoint record stamped later than everything the proc connector has handed on:
        the fork, exec or exit of its process may still be on the way."""
        reader = self._proc_reader
        return event.sensor in KERNEL_TIME_SENSORS and reader is not None and event.time > reader.caught_up

    def _died_before(self, event: Event) -> bool:
        """The table's entry for the event's pid exited before the event happened: the event is
        a newer owner's. Only for sensors stamped with the kernel's event time (tracefs, ebpf);
        the others stamp events when they read them, which can be after an exit that came first."""
        return event.sensor in KERNEL_TIME_SENSORS and self.table.died_before(event.proc.pid, event.time)

    def _release_deferred(self, force: bool = False) -> None:
        """Process, in order, the waiting events whose wait is over, and, once the queue is empty
        (every lifecycle event handed on before them has been processed, so no cache of this
        pipeline still speaks for a previous owner of their pid), those whose process is known."""
        deferred = self._deferred
        now = time.monotonic()
        settled = not self._queue
        keep: list[tuple[float, Event]] = []
        while deferred:
            deadline, event = deferred.popleft()
            if force or deadline <= now or (settled and not self._unknown(event)):
                self._forget_recycled(event)
                self._safe_process(event)
            else:
                keep.append((deadline, event))
        deferred.extend(keep)

    def process(self, event: Event) -> list[Alert]:
        """Enrich, evaluate and respond to one event (synchronously; also used by tests and replays)."""
        self.stats.processed += 1
        table = self.table
        if event.sensor in KERNEL_EXEC_SENSORS and event.type == "execve":
            return self._exec_record(event)
        if event.sensor == "audit" and event.type in ("execve", "execveat") and event.res == 0:
            table.observe(event)
        if event.type in ("procexit", "execve", "execveat", "clone"):
            # an exec may follow a move into a container's cgroup (runc exec): forget the answer
            # even when no rule reads this event, or later events of the pid keep a stale one
            self._containers.pop(event.proc.pid, None)
        if self.on_event is None and self._types is not None and event.type not in self._types:
            return []
        table.enrich(event)
        record = None
        execs = self._execs if event.type == "execve" and event.sensor == "proc_connector" else None
        if execs is not None:
            record = execs.find(event)
            if record is not None and not execargs.consistent(event, record):
                self.stats.exec_corrected += 1
                event = execargs.with_argv(event, record)
        if self.attributor is not None and event.proc.pid > 0:
            event.container = self._container(event)
            cid = event.container.id
            if self.on_new_container is not None and cid != "host" and cid not in self._seen_containers:
                try:  # done once per container, retried on its next event when it fails (process gone)
                    if self.on_new_container(event):
                        self._seen_containers.add(cid)
                except Exception:
                    self.stats.errors += 1
                    logger.exception("new-container hook failed for %s", cid)
        if self.annotate is not None and not event.container.is_host and event.type in ("execve", "execveat"):
            # always judged afresh at an exec: a table entry copied at fork carries the parent's
            # answer (a shell from the image exec'ing a dropped binary)
            event.proc.exe_upper_layer = None
            event.proc.exe_from_memfd = event.proc.exepath.startswith("/memfd:") if event.proc.exepath else None
            origin = self._origins.get(event.proc.pid)
            if origin is not None:
                event.proc.exe_upper_layer = origin == "upper"
                event.proc.exe_from_memfd = origin == "memfd"
            else:
                try:
                    if self.annotate(event) == "unknown" and self._path_origin is not None:
                        self._path_origin(event)  # gone: judge the file through a live process of its container
                except Exception:
                    self.stats.errors += 1
        if record is not None and not event.container.is_host and (origin := record.args.get("origin")) is not None:
            event.proc.exe_upper_layer = origin == "upper"  # the kernel's answer at the exec itself
        if self.on_event is not None:
            self.on_event(event)
        if self.rules is None or ((event.sensor, event.type) in self._superseded and not self._displaced()):
            return []
        alerts = self.rules.evaluate(event)
        for alert in alerts:
            self._deliver(alert)
        if execs is not None and record is None:
            execs.wait(event, {a.rule for a in alerts})
        return alerts

    def _exec_record(self, record: Event) -> list[Alert]:
        """Keep the kernel's argv of an exec; when its proc connector notification was evaluated
        with another program's command line (or none), evaluate the corrected one: rules that
        fired already do not fire twice."""
        if self._execs is None:
            return []
        waiting = self._execs.add(record)
        if waiting is None or self.rules is None:
            return []
        event, fired = waiting
        fixed = execargs.corrected(event, record)
        if fixed is None:
            return []
        self.stats.exec_corrected += 1
        alerts = [a for a in self.rules.evaluate(fixed) if a.rule not in fired]
        for alert in alerts:
            self._deliver(alert)
        return alerts

    def _displaced(self) -> bool:
        """The audit sensor lost the kernel's audit-daemon role: its exec records stopped coming,
        so the proc connector's exec events are evaluated again."""
        audit = self._audit
        return audit is not None and bool(getattr(audit, "displaced", False))

    def _container(self, event: Event) -> Container:
        """Container of the event's process, cached per pid.

        A child starts in its parent's cgroup, and runtimes move a process into the container's
        cgroup before it execs the container's entrypoint, so the answer can only change at an
        exec: a fork inherits the parent's cached answer, an exec resolves again (one cgroup
        read), an exit forgets the pid.
        """
        pid = event.proc.pid
        cgid = event.args.get("cgroup_id")
        by_id: Container | None = None
        if isinstance(cgid, int) and self._resolve_cgroup_id is not None:
            # the kernel's cgroup at the time of the event (BPF and perf records carry it) outranks
            # the per-pid answer, which can speak for a previous owner of a recycled pid or come
            # from before a move between cgroups; not cached per pid. A "host" answer only where
            # containers get their own v2 cgroup (see ContainerResolver.v2_places_containers)
            try:
                by_id = self._resolve_cgroup_id(cgid)
            except Exception:
                self.stats.errors += 1
                by_id = None
            if by_id is not None and (not by_id.is_host or getattr(self.attributor, "v2_places_containers", False)):
                return by_id
        cache = self._containers
        found = cache.get(pid)
        if found is not None and event.type not in ("execve", "execveat"):
            return found
        if event.type == "clone" and (parent := cache.get(event.proc.ppid)) is not None:
            found = parent
        else:
            assert self.attributor is not None
            try:
                text = self._cgroups.get(pid)
                if by_id is not None:
                    found = by_id  # the kernel's cgroup at the time of the event (BPF sensors carry it)
                elif text is not None and self._resolve_cgroup is not None:
                    found = self._resolve_cgroup(text)  # read at its fork/exec, valid even once it is gone
                else:
                    # the live cgroup of the process, else of its closest live ancestor; a process
                    # found gone at its exec is not looked for again
                    pids = [a.pid for a in event.proc.ancestors]
                    if pids and pid in self._gone:
                        found = self.attributor.resolve(pids[0], pids[1:])
                    else:
                        found = self.attributor.resolve(pid, pids)
            except Exception:
                self.stats.errors += 1
                logger.debug("container attribution failed for pid %d", pid, exc_info=True)
                return event.container
        if len(cache) >= 65536:
            cache.clear()
        cache[pid] = found
        return found

    def _deliver(self, alert: Alert) -> None:
        self.stats.alerts += 1
        responses: list[Event] = []
        for responder in self.responders:
            try:
                actions = responder.handle(alert)
            except Exception:
                self.stats.errors += 1
                logger.exception("responder %s failed", type(responder).__name__)
                continue
            for action in actions:
                self.stats.responses += 1
                responses.append(action)
                name = str(action.args.get("action", action.type))
                if action.res == 0 and name not in alert.actions:
                    alert.actions.append(name)
        if self.sink is not None:
            self.sink.write(alert, responses)

    # -- status -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Counters of every sensor, the table and the pipeline (what ``garrison sensor status`` shows)."""
        return {
            "time": _iso(time.time()),
            "pid": os.getpid(),
            "sensors": [s.stats().to_dict() for s in self.sensors],
            "pipeline": {
                "submitted": self.stats.submitted,
                "processed": self.stats.processed,
                "dropped": self.stats.dropped,
                "queued": len(self._queue),
                "alerts": self.stats.alerts,
                "responses": self.stats.responses,
                "errors": self.stats.errors,
                "exec_corrected": self.stats.exec_corrected,
            },
            "process_table": {
                "size": len(self.table),
                "evicted": self.table.stats.evicted,
                "vanished": self.table.stats.vanished,
            },
        }
