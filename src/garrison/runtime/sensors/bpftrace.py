"""Optional bpftrace backend: syscalls whose interesting arguments are strings (``openat``,
``linkat``, ``symlinkat``), which plain tracefs tracepoints print only as pointers.

We generate a bpftrace script over the ``syscalls:sys_enter_*`` tracepoints (no kprobes, so it
runs on kernels where kprobes are absent), filter in the kernel (write opens, or opens under
``/etc`` and ``/root``, and never our own pid), start ``bpftrace -f json`` and read its JSON lines:
``printf`` records become events, ``lost_events`` records add to ``lost``. Spawning the tool is
what makes this optional: it needs the ``bpftrace`` package (``apt-get install bpftrace``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time

from garrison.model.runtime import Event, EventKind, FileDescriptor, Process
from garrison.runtime.sensors.interface import EventSink, SensorError, SensorStats, is_root

logger = logging.getLogger(__name__)

SEP = "\x1f"
# bytes of each string argument; two of them must fit the 512-byte BPF stack with the printf record
STRLEN = 112
OPEN_TYPES = frozenset({"open", "openat", "openat2", "creat"})
LINK_TYPES = frozenset({"link", "linkat"})
SYMLINK_TYPES = frozenset({"symlink", "symlinkat"})


def build_script(self_pid: int, event_types: set[str] | None) -> str:
    """The bpftrace program for the wanted event types (all three families when ``None``)."""
    parts: list[str] = []
    want = event_types
    if want is None or want & OPEN_TYPES:
        parts.append(
            "tracepoint:syscalls:sys_enter_openat\n"
            f'/ pid != {self_pid} && ((args->flags & 3) != 0 || strncmp(str(args->filename), "/etc/", 5) == 0'
            ' || strncmp(str(args->filename), "/root/", 6) == 0) /\n'
            f'{{ printf("openat{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%d{SEP}%d\\n", pid, tid, comm, '
            "str(args->filename), args->flags, args->mode); }"
        )
    if want is None or want & LINK_TYPES:
        parts.append(
            f"tracepoint:syscalls:sys_enter_linkat / pid != {self_pid} /\n"
            f'{{ printf("linkat{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%s\\n", pid, tid, comm, '
            "str(args->oldname), str(args->newname)); }"
        )
    if want is None or want & SYMLINK_TYPES:
        parts.append(
            f"tracepoint:syscalls:sys_enter_symlinkat / pid != {self_pid} /\n"
            f'{{ printf("symlinkat{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%s\\n", pid, tid, comm, '
            "str(args->oldname), str(args->newname)); }"
        )
    return "\n".join(parts) + "\n"


def parse_record(line: str, when: float) -> tuple[Event | None, int]:
    """``(event, lost)`` from one ``bpftrace -f json`` line; ValueError when it is not JSON we know."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("bpftrace output is not an object")
    kind = obj.get("type")
    if kind == "lost_events":
        data = obj.get("data")
        return None, int(data.get("events", 0)) if isinstance(data, dict) else 0
    if kind != "printf":
        return None, 0
    text = str(obj.get("data", "")).rstrip("\n")
    fields = text.split(SEP)
    if len(fields) < 5:
        raise ValueError(f"bpftrace record with {len(fields)} fields")
    etype, pid, tid, comm = fields[0], int(fields[1]), int(fields[2]), fields[3]
    proc = Process(pid=pid, tid=tid, name=comm)
    if etype == "openat" and len(fields) >= 7:
        path, flags, mode = fields[4], int(fields[5]), int(fields[6])
        fd = FileDescriptor(type="file", name=path, nameraw=path)
        args = {"name": path, "flags": flags, "mode": mode}
        return Event(when, "openat", EventKind.FILE, "bpftrace", proc, fd=fd, args=args), 0
    if etype in ("linkat", "symlinkat") and len(fields) >= 6:
        target, linkpath = fields[4], fields[5]
        args = {"target": target, "linkpath": linkpath}
        fd = FileDescriptor(type="file", name=linkpath)
        return Event(when, etype, EventKind.FILE, "bpftrace", proc, fd=fd, args=args), 0
    raise ValueError(f"unknown bpftrace record {etype!r}")


class BpftraceSensor:
    """String-argument file syscalls through a bpftrace child process."""

    name = "bpftrace"

    def __init__(self, *, event_types: set[str] | None = None, binary: str | None = None) -> None:
        self.event_types = event_types
        self.binary = binary or shutil.which("bpftrace") or ""
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._stats = SensorStats(self.name)
        self._attached = threading.Event()

    def available(self) -> str | None:
        if (why := is_root()) is not None:
            return f"bpftrace: {why}"
        if not self.binary:
            return "bpftrace: not installed; apt-get install bpftrace (optional backend)"
        want = self.event_types
        if want is not None and not want & (OPEN_TYPES | LINK_TYPES | SYMLINK_TYPES):
            return "bpftrace: the loaded rules use none of openat/linkat/symlinkat"
        return None

    def start(self, sink: EventSink) -> None:
        if self._proc is not None:
            return
        if (why := self.available()) is not None:
            raise SensorError(why)
        script = build_script(os.getpid(), self.event_types)
        try:
            self._proc = subprocess.Popen(
                [self.binary, "-B", "line", "-f", "json", "-e", script],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL if not os.environ.get("GARRISON_DEBUG") else None,
                text=True,
                bufsize=1,
                env={**os.environ, "BPFTRACE_STRLEN": str(STRLEN)},
            )
        except OSError as err:
            raise SensorError(f"bpftrace: cannot start {self.binary}: {err.strerror}") from err
        self._stats.running = True
        self._thread = threading.Thread(target=self._run, args=(sink,), name="garrison-bpftrace", daemon=True)
        self._thread.start()
        attached = self._attached.wait(15)
        code = self._proc.poll()
        if not attached or code is not None:
            self.stop()
            raise SensorError(
                f"bpftrace: probes did not attach (exit {code}); run with GARRISON_DEBUG=1 to see bpftrace's error"
            )

    def _run(self, sink: EventSink) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stats = self._stats
        for line in proc.stdout:
            if not line.strip():
                continue
            if '"attached_probes"' in line:
                self._attached.set()
                continue
            if not self._attached.is_set():
                continue
            try:
                event, lost = parse_record(line, time.time())
            except (ValueError, TypeError):
                stats.errors += 1
                continue
            stats.lost += lost
            if event is None:
                continue
            stats.received += 1
            event.num = stats.received
            try:
                sink(event)
            except Exception:
                stats.errors += 1
                logger.exception("bpftrace sink failed")
        self._attached.set()  # exited: wake start() so it can report the failure

    def stop(self) -> None:
        proc = self._proc
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._proc = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._stats.running = False

    def stats(self) -> SensorStats:
        return self._stats
