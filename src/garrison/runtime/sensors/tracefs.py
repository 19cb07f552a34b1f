"""Syscall and socket tracepoints, filtered in the kernel, read through perf rings (ftrace as fallback).

Works where kprobes and BPF-LSM do not: static tracepoints need only ``CONFIG_FTRACE_SYSCALLS``.
We enable only the tracepoints the loaded rules need and attach an in-kernel filter to each
(``socket`` only for ``AF_PACKET`` or ``SOCK_RAW``, ``ptrace`` only for
attach/seize/poke/setregs/traceme, TCP state changes only for connect/accept/listen transitions).

Backend ``perf`` (the default, :mod:`~garrison.runtime.sensors.perf_ring`): one
``perf_event_open`` tracepoint event per tracepoint and CPU, the same filter strings set with
``PERF_EVENT_IOC_SET_FILTER``, records read from one mmap'd ring per CPU. The sensor still needs
tracefs mounted: the events' ids and field layouts come from ``events/*/*/format``. Why perf:
bpftrace attaches its programs to syscall tracepoints through perf (``perf_syscall_enter``); an
ftrace instance next to it adds a second probe (``ftrace_syscall_enter``) to the raw
``sys_enter``/``sys_exit`` tracepoints, which takes every syscall on the node off the
single-probe fast path (a loop of an untraced syscall, getpid, on this 2-vCPU VM: 205 ns a call
bare, 313 ns under the default sensor set with an ftrace instance, 222 ns with perf).
A record's comm is the one its thread last had by the kernel's exec and fork records since we
started (what ftrace's comm cache gave; the live ``/proc`` one still wins); field values
follow each field's ``signed`` flag (the ftrace text prints every 4- and 8-byte field signed: the
two differ only for unsigned pointers and addresses with the top bit set).

Backend ``ftrace`` (fallback, only when the kernel refuses ``perf_event_open`` or its ring
mmap: seccomp, lockdown, no ``CONFIG_PERF_EVENTS``): our own trace instance
(``instances/garrison_<pid>``, so we never disturb the global buffer or another tracer) whose
``trace_pipe`` we read. Text, not ``trace_pipe_raw``: with the instance option ``fields`` the
kernel prints every field as ``name=0xHEX (DEC)`` (6.x kernels), so one regex parses every event;
``record-tgid`` adds the thread-group id, ``trace_clock=mono`` gives timestamps on perf's
``CLOCK_MONOTONIC``. The backend is chosen by ``backend=`` or ``GARRISON_TRACEFS_BACKEND``
(``auto``, ``perf``, ``ftrace``); ``stats().extra["backend"]`` says which one runs.

Syscall enter events carry the arguments and exit events the result: for each filtered syscall
we enable both and pair them per thread; ``socket`` (high volume) is reported at entry. The TCP
tracepoint ``sock:inet_sock_set_state`` runs in the context of whichever task is current, which
for handshake completion is a softirq: we remember the task that moved a socket to ``SYN_SENT``
(``connect``) or ``LISTEN`` (``listen``) by socket address and port, and attribute the
``ESTABLISHED`` transition to it, as Falco's ``connect``/``accept`` exit events would. IPv6
addresses are arrays neither backend decodes; IPv6 connections carry ports only.

Loss: neither buffer overwrites. perf: the ``PERF_RECORD_LOST`` records the kernel stores once
there is room again; ftrace: ``dropped events`` plus ``overrun`` in ``per_cpu/cpu*/stats``.
Both are summed into ``lost``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import errno
import logging
import os
import re
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from garrison.model.runtime import Event, EventKind, FileDescriptor, Process
from garrison.runtime.sensors.interface import (
    EventSink,
    SensorError,
    SensorStats,
    flag_names,
    is_root,
    monotonic_to_epoch,
    sensor_thread,
)
from garrison.runtime.sensors.perf_ring import PerfTracepoints, PerfUnavailable, TracepointSpec

logger = logging.getLogger(__name__)

TRACEFS_PATHS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))

SOCKET_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
CLONE_FLAGS = {
    0x00020000: "CLONE_NEWNS", 0x02000000: "CLONE_NEWCGROUP", 0x04000000: "CLONE_NEWUTS", 0x08000000: "CLONE_NEWIPC",
    0x10000000: "CLONE_NEWUSER", 0x20000000: "CLONE_NEWPID", 0x40000000: "CLONE_NEWNET", 0x00000080: "CLONE_NEWTIME",
    0x00000200: "CLONE_FS", 0x00000400: "CLONE_FILES", 0x00040000: "CLONE_SYSVSEM",
}  # fmt: skip
MOUNT_FLAGS = {
    0x1: "MS_RDONLY", 0x2: "MS_NOSUID", 0x4: "MS_NODEV", 0x8: "MS_NOEXEC", 0x10: "MS_SYNCHRONOUS", 0x20: "MS_REMOUNT",
    0x40: "MS_MANDLOCK", 0x80: "MS_DIRSYNC", 0x400: "MS_NOATIME", 0x800: "MS_NODIRATIME", 0x1000: "MS_BIND",
    0x2000: "MS_MOVE", 0x4000: "MS_REC", 0x8000: "MS_SILENT", 0x10000: "MS_POSIXACL", 0x20000: "MS_UNBINDABLE",
    0x40000: "MS_PRIVATE", 0x80000: "MS_SLAVE", 0x100000: "MS_SHARED", 0x200000: "MS_RELATIME",
    0x400000: "MS_KERNMOUNT", 0x800000: "MS_I_VERSION", 0x1000000: "MS_STRICTATIME", 0x2000000: "MS_LAZYTIME",
}  # fmt: skip
_MS_MGC_MSK = 0xFFFF0000
_MS_MGC_VAL = 0xC0ED0000


def _mount(f: dict[str, int]) -> dict[str, Any]:
    """Mount flags named as Falco names them (the old ``MS_MGC_VAL`` magic in the top half dropped)."""
    flags = f.get("flags", 0)
    if flags & _MS_MGC_MSK == _MS_MGC_VAL:
        flags &= ~_MS_MGC_MSK
    return {"flags": flag_names(flags, MOUNT_FLAGS)}


MEMFD_FLAGS = {1: "MFD_CLOEXEC", 2: "MFD_ALLOW_SEALING", 4: "MFD_HUGETLB", 8: "MFD_NOEXEC_SEAL", 16: "MFD_EXEC"}
#: how long after a process's TCP connect a dup2 of a process gone before its fds could be read
#: is still taken to have duplicated that connection (reverse shells dup2 within milliseconds)
RECENT_CONNECT_SECONDS = 5.0
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 7: "CLOSE", 10: "LISTEN"}

_LINE = re.compile(r"^\s*(.*)-(\d+)\s+\(\s*(\d+|-+)\)\s+\[(\d+)\]\s+(?:\S+\s+)?(\d+\.\d+): (\w+): ?(.*)$")
_FIELD = re.compile(r"(\w+)=(\S+)(?: \((-?\d+)\))?")

Formatter = Callable[[dict[str, int]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Tracepoint:
    """One Falco event type and the tracefs events/filter that produce it."""

    type: str
    kind: EventKind
    syscall: str = ""  # sys_enter_<syscall>/sys_exit_<syscall>; empty for non-syscall tracepoints
    filter: str = ""
    paired: bool = True  # report at exit (with the result); False = report at entry
    fmt: Formatter | None = None
    rename: dict[str, str] = field(default_factory=dict)  # tracefs field -> Falco arg name
    exit_filter: str = ""  # in-kernel filter on sys_exit_<syscall> (by ``ret``)


def _ptrace(f: dict[str, int]) -> dict[str, Any]:
    return {"request": f.get("request", 0), "pid": f.get("pid", 0), "addr": f.get("addr", 0), "data": f.get("data", 0)}


def _socket(f: dict[str, int]) -> dict[str, Any]:
    fam = f.get("family", 0)
    return {"domain": fam, "type": f.get("type", 0) & 0xF, "proto": f.get("protocol", 0)}


def _flags(name: str, src: str, table: dict[int, str]) -> Formatter:
    def fmt(f: dict[str, int]) -> dict[str, Any]:
        return {name: flag_names(f.get(src, 0), table)}

    return fmt


def _copy(**names: str) -> Formatter:
    def fmt(f: dict[str, int]) -> dict[str, Any]:
        return {falco: f.get(src, 0) for falco, src in names.items()}

    return fmt


def _setns(f: dict[str, int]) -> dict[str, Any]:
    return {"fd": f.get("fd", 0), "nstype": flag_names(f.get("flags", 0), CLONE_FLAGS)}


_SOCK_RAW_TYPES = " || ".join(f"type == {3 | extra}" for extra in (0, 0x800, 0x80000, 0x80800))
# traceme, poketext, pokedata, setregs, attach, seize: the requests that inject into or take over a process
_PTRACE_FILTER = "request == 0 || request == 4 || request == 5 || request == 13 || request == 16 || request == 16902"
TRACEPOINTS: tuple[Tracepoint, ...] = (
    Tracepoint("ptrace", EventKind.PRIVILEGE, "ptrace", _PTRACE_FILTER, fmt=_ptrace),
    Tracepoint("setuid", EventKind.PRIVILEGE, "setuid", fmt=_copy(uid="uid")),
    Tracepoint("setgid", EventKind.PRIVILEGE, "setgid", fmt=_copy(gid="gid")),
    Tracepoint("setreuid", EventKind.PRIVILEGE, "setreuid", fmt=_copy(ruid="ruid", euid="euid")),
    Tracepoint("setregid", EventKind.PRIVILEGE, "setregid", fmt=_copy(rgid="rgid", egid="egid")),
    Tracepoint("setresuid", EventKind.PRIVILEGE, "setresuid", fmt=_copy(ruid="ruid", euid="euid", suid="suid")),
    Tracepoint("setresgid", EventKind.PRIVILEGE, "setresgid", fmt=_copy(rgid="rgid", egid="egid", sgid="sgid")),
    Tracepoint("capset", EventKind.PRIVILEGE, "capset", fmt=_copy()),
    # packet sockets, and raw *IP* sockets: netlink sockets are SOCK_RAW too (ip, nft, iptables, udev
    # open them all the time) and are no sniffing or spoofing capability, so the kernel drops them
    Tracepoint(
        "socket",
        EventKind.NETWORK,
        "socket",
        f"family == 17 || ((family == 2 || family == 10) && ({_SOCK_RAW_TYPES}))",
        paired=False,
        fmt=_socket,
    ),
    # dup2/dup3 onto stdin/stdout/stderr: the reverse-shell step; the duplicated fd is read from /proc at exit
    Tracepoint(
        "dup2", EventKind.NETWORK, "dup2", "newfd <= 2", fmt=_copy(oldfd="oldfd", newfd="newfd"), exit_filter="ret <= 2"
    ),
    Tracepoint(
        "dup3",
        EventKind.NETWORK,
        "dup3",
        "newfd <= 2",
        fmt=_copy(oldfd="oldfd", newfd="newfd", flags="flags"),
        exit_filter="ret <= 2",
    ),
    Tracepoint("unshare", EventKind.PRIVILEGE, "unshare", fmt=_flags("flags", "unshare_flags", CLONE_FLAGS)),
    Tracepoint("setns", EventKind.PRIVILEGE, "setns", fmt=_setns),
    Tracepoint("mount", EventKind.PRIVILEGE, "mount", fmt=_mount),
    Tracepoint("init_module", EventKind.PRIVILEGE, "init_module", fmt=_copy(length="len")),
    Tracepoint("finit_module", EventKind.PRIVILEGE, "finit_module", fmt=_copy(fd="fd", flags="flags")),
    Tracepoint("bpf", EventKind.PRIVILEGE, "bpf", fmt=_copy(cmd="cmd")),
    Tracepoint("memfd_create", EventKind.PROCESS, "memfd_create", fmt=_flags("flags", "flags", MEMFD_FLAGS)),
    Tracepoint("userfaultfd", EventKind.PRIVILEGE, "userfaultfd", fmt=_copy(flags="flags")),
)
TCP_TYPES = frozenset({"connect", "accept", "accept4", "listen"})
TCP_FILTER = "protocol == 6 && (newstate == 2 || newstate == 10 || oldstate == 2 || (oldstate == 3 && newstate == 1))"


def parse_line(line: str) -> tuple[str, int, int, int, float, str, dict[str, int]] | None:
    """``(comm, tid, tgid, cpu, timestamp, event, fields)`` of one trace_pipe line; ``None`` if not an event."""
    m = _LINE.match(line)
    if m is None:
        return None
    comm, tid, tgid, cpu, ts, name, rest = m.groups()
    fields: dict[str, int] = {}
    for key, raw, dec in _FIELD.findall(rest):
        try:
            fields[key] = int(dec) if dec else int(raw, 0)
        except ValueError:
            continue
    if not fields and rest.startswith("0x"):  # sys_exit_* without the fields option: "0x0"
        with contextlib.suppress(ValueError):
            fields["ret"] = int(rest.split()[0], 16)
    tg = int(tgid) if tgid.isdigit() else int(tid)
    return comm.strip(), int(tid), tg or int(tid), int(cpu), float(ts), name, fields


def _ip4(value: int) -> str:
    return socket.inet_ntoa(struct.pack("<I", value & 0xFFFFFFFF))


def find_tracefs() -> Path | None:
    for path in TRACEFS_PATHS:
        if (path / "instances").is_dir():
            return path
    return None


def mount_tracefs() -> Path:
    """Mount tracefs at /sys/kernel/tracing when nothing is mounted; raise SensorError if we cannot."""
    found = find_tracefs()
    if found is not None:
        return found
    target = TRACEFS_PATHS[0]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mount(b"tracefs", str(target).encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise SensorError(
            f"tracefs: not mounted and mounting failed ({os.strerror(err)}); "
            f"run as root or: mount -t tracefs tracefs {target}"
        )
    return target


BACKENDS = ("auto", "perf", "ftrace")
#: environment override of the backend (``auto``: perf, ftrace when the kernel refuses perf)
BACKEND_ENV = "GARRISON_TRACEFS_BACKEND"
Parsed = tuple[str, int, int, int, float, str, dict[str, int]]


class TracefsSensor:
    """Privilege, namespace, module, BPF and TCP state events from tracefs tracepoints."""

    name = "tracefs"

    def __init__(
        self, *, event_types: set[str] | None = None, buffer_kb: int = 2048, backend: str | None = None
    ) -> None:
        choice = (backend or os.environ.get(BACKEND_ENV, "") or "auto").strip().lower()
        if choice not in BACKENDS:
            raise SensorError(f"tracefs: unknown backend {choice!r} ({BACKEND_ENV}); choose auto, perf or ftrace")
        self.event_types = event_types
        self.buffer_kb = buffer_kb
        self.choice = choice
        self.backend = ""  # the one running (or last run): perf or ftrace
        self.fallback_reason = ""  # why auto fell back to ftrace
        self._root: Path | None = None
        self._inst: Path | None = None
        self._fd: int | None = None
        self._reader: PerfTracepoints | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stats = SensorStats(self.name)
        self.enabled: list[str] = []
        self.missing: list[str] = []

    def available(self) -> str | None:
        if (why := is_root()) is not None:
            return f"tracefs: {why}"
        root = find_tracefs()
        if root is None:
            if not Path("/sys/kernel/tracing").is_dir():
                return "tracefs: kernel has no tracefs (CONFIG_TRACING); use the audit and proc sensors"
            return None  # not mounted: start() mounts it
        if not (root / "events" / "syscalls").is_dir():
            return "tracefs: no syscall tracepoints (kernel needs CONFIG_FTRACE_SYSCALLS)"
        return None

    def _wanted(self) -> list[Tracepoint]:
        types = self.event_types
        return [tp for tp in TRACEPOINTS if types is None or tp.type in types]

    def _plan(self, events: Path) -> list[TracepointSpec]:
        """The tracepoints (with their filters) the wanted event types need, of those this kernel has."""
        self.enabled, self.missing = [], []
        specs: list[TracepointSpec] = []
        for tp in self._wanted():
            if not (events / "syscalls" / f"sys_enter_{tp.syscall}").is_dir():
                self.missing.append(tp.type)
                continue
            specs.append(TracepointSpec("syscalls", f"sys_enter_{tp.syscall}", tp.filter))
            if tp.paired:  # exits cannot be matched to filtered entries in the kernel; narrow them by result
                specs.append(TracepointSpec("syscalls", f"sys_exit_{tp.syscall}", tp.exit_filter))
            self.enabled.append(tp.type)
        if self.event_types is None or self.event_types & TCP_TYPES:
            if (events / "sock" / "inet_sock_set_state").is_dir():
                specs.append(TracepointSpec("sock", "inet_sock_set_state", TCP_FILTER))
                self.enabled.append("inet_sock_set_state")
            else:
                self.missing.append("inet_sock_set_state")
        if self.missing:
            logger.info("tracefs: tracepoints absent on this kernel: %s", ", ".join(self.missing))
        return specs

    def _write(self, rel: str, value: str) -> None:
        assert self._inst is not None
        (self._inst / rel).write_text(value)

    def start(self, sink: EventSink) -> None:
        if self._inst is not None or self._reader is not None or self._thread is not None:
            return
        if (why := self.available()) is not None:
            raise SensorError(why)
        root = mount_tracefs()
        self._root = root
        self._remove_stale(root)  # a leftover instance keeps the ftrace probe on every syscall
        specs = self._plan(root / "events")
        run: Callable[[EventSink], None]
        if self.choice != "ftrace" and self._start_perf(root, specs):
            run = self._run_perf
        else:
            self._start_ftrace(root, specs)
            run = self._run_ftrace
        self._stop.clear()
        self._stats.running = True
        self._thread = sensor_thread(run, sink, name="garrison-tracefs")
        self._thread.start()

    def _start_perf(self, root: Path, specs: list[TracepointSpec]) -> bool:
        """Open the perf events; False (auto only) when the kernel refuses perf and ftrace should serve."""
        reader = PerfTracepoints(root, specs, buffer_kb=self.buffer_kb)
        if specs:
            try:
                reader.open()
            except PerfUnavailable as err:
                if self.choice == "perf":
                    raise
                self.fallback_reason = str(err)
                logger.warning(
                    "%s; reading the tracepoints through an ftrace instance instead (a second syscall "
                    "tracepoint probe next to BPF programs: slower syscalls node-wide)",
                    err,
                )
                return False
        self._reader = reader
        self.backend = "perf"
        return True

    def _start_ftrace(self, root: Path, specs: list[TracepointSpec]) -> None:
        inst = root / "instances" / f"garrison_{os.getpid()}_{id(self) & 0xFFFF:x}"
        try:
            inst.mkdir()
        except OSError as err:
            raise SensorError(f"tracefs: cannot create trace instance {inst}: {err.strerror}") from err
        self._inst = inst
        try:
            self._configure(specs)
            self._fd = os.open(inst / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        except OSError as err:
            self._cleanup()
            raise SensorError(f"tracefs: cannot configure {inst}: {err.strerror}") from err
        self.backend = "ftrace"

    def _configure(self, specs: list[TracepointSpec]) -> None:
        assert self._inst is not None
        self._write("buffer_size_kb", str(self.buffer_kb))
        self._write("trace_clock", "mono")
        for opt, val in (("irq-info", "0"), ("record-tgid", "1"), ("fields", "1"), ("overwrite", "0")):
            with contextlib.suppress(OSError):
                self._write(f"options/{opt}", val)
        for spec in specs:
            event = self._inst / "events" / spec.group / spec.name
            if spec.filter:
                (event / "filter").write_text(spec.filter)
            (event / "enable").write_text("1")
        self._write("tracing_on", "1")

    def _remove_stale(self, root: Path) -> None:
        """Remove instances left by garrison processes that died without cleaning up."""
        with contextlib.suppress(OSError):
            for inst in (root / "instances").iterdir():
                parts = inst.name.split("_")
                if len(parts) >= 2 and parts[0] == "garrison" and parts[1].isdigit():
                    pid = int(parts[1])
                    if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                        _disable_and_remove(inst)

    def _cleanup(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._inst is not None:
            _disable_and_remove(self._inst)
            self._inst = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._refresh_lost()
        self._cleanup()
        self._stats.running = False

    def _refresh_lost(self) -> None:
        if self._reader is not None:
            self._stats.lost = self._reader.lost
            return
        if self._inst is None:
            return
        total = 0
        with contextlib.suppress(OSError):
            for cpu in (self._inst / "per_cpu").iterdir():
                for line in (cpu / "stats").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in ("overrun", "dropped events"):
                        total += int(value.strip() or 0)
        self._stats.lost = total

    def _run_perf(self, sink: EventSink) -> None:
        reader = self._reader
        assert reader is not None
        stats = self._stats
        state = _Decoder(monotonic_to_epoch())
        errors = 0
        while not self._stop.is_set():
            if not reader.fds():
                self._stop.wait(0.2)  # nothing to read (no wanted tracepoint on this kernel)
                continue
            reader.poll(200)
            for s in reader.read():
                # the task's cgroup for syscall records; a TCP state change can run in a softirq
                # on behalf of another task, and is attributed to the connecting task by the decoder
                cgroup = s.cgroup if s.name.startswith("sys_") else 0
                self._deliver(state, (s.comm, s.tid, s.pid, s.cpu, s.time_ns / 1e9, s.name, s.fields), sink, cgroup)
            stats.lost = reader.lost
            if reader.errors != errors:  # records we could not frame or decode
                stats.errors += reader.errors - errors
                errors = reader.errors

    def _run_ftrace(self, sink: EventSink) -> None:
        fd = self._fd
        assert fd is not None
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        rest = b""
        state = _Decoder(monotonic_to_epoch())
        ticks = 0
        while not self._stop.is_set():
            ready = poller.poll(200)
            ticks += 1
            if ticks % 5 == 0:
                self._refresh_lost()
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError as err:
                if err.errno == errno.EINTR:
                    continue
                self._stats.errors += 1
                break
            if not chunk:
                continue
            data = rest + chunk
            lines = data.split(b"\n")
            rest = lines.pop()
            for raw in lines:
                self._handle(state, raw.decode("utf-8", "replace"), sink)

    def _handle(self, state: _Decoder, line: str, sink: EventSink) -> None:
        parsed = parse_line(line)
        if parsed is None:
            if line.strip():
                self._stats.errors += 1
            return
        self._deliver(state, parsed, sink)

    def _deliver(self, state: _Decoder, parsed: Parsed, sink: EventSink, cgroup: int = 0) -> None:
        stats = self._stats
        stats.received += 1
        try:
            event = state.decode(parsed)
        except (KeyError, ValueError, struct.error):
            stats.errors += 1
            return
        if event is None:
            return
        if cgroup:  # the kernel's cgroup of the task (perf): attribution once the process is gone
            event.args["cgroup_id"] = cgroup
        event.num = stats.received
        try:
            sink(event)
        except Exception:
            stats.errors += 1
            logger.exception("tracefs sink failed")

    def stats(self) -> SensorStats:
        self._stats.extra["tracepoints"] = len(self.enabled)
        if self.backend:
            # SensorStats.extra is typed for counters; to_dict() spreads it into the status JSON as is
            cast("dict[str, object]", self._stats.extra)["backend"] = self.backend
        return self._stats


_BY_SYSCALL = {tp.syscall: tp for tp in TRACEPOINTS}


class _Decoder:
    """Turns parsed trace lines into events: pairs syscall enter/exit, attributes TCP transitions."""

    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.pending: dict[tuple[int, str], Event] = {}
        self.connecting: dict[int, tuple[int, int, str]] = {}  # skaddr -> (tgid, tid, comm)
        self.listening: dict[int, tuple[int, int, str]] = {}  # port -> (tgid, tid, comm)
        # tgid -> (its last connected TCP socket, when, comm): a pid is recycled within seconds on
        # a busy node, so the entry speaks for a dup2 only from the same program, shortly after
        self.established: dict[int, tuple[FileDescriptor, float, str]] = {}

    def decode(self, parsed: Parsed) -> Event | None:
        comm, tid, tgid, _cpu, ts, name, f = parsed
        if name.startswith("sys_exit_") and (tid, name[9:]) not in self.pending:
            return None  # exit of a call the enter filter rejected (most exits): no /proc read for it
        # The comm in a trace line is looked up at read time in the kernel's pid -> comm cache,
        # which can be stale (recorded before an exec, or for an earlier owner of a recycled pid):
        # the live process's comm wins while it exists.
        comm = _comm(tgid) or ("" if comm == "<...>" else comm)
        when = ts + self.offset
        if name.startswith("sys_enter_"):
            tp = _BY_SYSCALL.get(name[10:])
            if tp is None:
                return None
            args = tp.fmt(f) if tp.fmt is not None else {}
            event = Event(when, tp.type, tp.kind, "tracefs", Process(pid=tgid, tid=tid, name=comm), args=args)
            if tp.type == "socket":
                family = {1: "unix", 16: "netlink", 17: "packet"}.get(f.get("family", 0), "ip")
                event.fd = FileDescriptor(type="socket", sockfamily=family, l4proto="raw" if args["type"] == 3 else "")
                event.args["name"] = SOCKET_FAMILIES.get(f.get("family", 0), "")
            if not tp.paired:
                event.dir = ">"
                return event
            if len(self.pending) > 4096:
                self.pending.clear()
            self.pending[(tid, tp.syscall)] = event
            return None
        if name.startswith("sys_exit_"):
            done = self.pending.pop((tid, name[9:]), None)
            if done is None:
                return None  # exit of a call the enter filter rejected
            event = done
            event.res = f.get("ret", 0)
            event.args["res"] = event.res
            event.time = when
            if event.type in ("dup2", "dup3") and 0 <= event.res <= 2:
                try:
                    event.fd = socket_fd(tgid, event.res)
                except OSError:
                    # exited (or a zombie) before we read its fd table, or the socket is closed
                    # already (a session that ended while we lagged): its last TCP connection seen here
                    last = self.established.get(tgid)
                    # the same program (a name unknown on either side, read after the process
                    # was gone with an evicted trace comm, does not tell programs apart)
                    same = last is not None and (last[2] == comm or not last[2] or not comm)
                    if last is not None and same and 0 <= when - last[1] <= RECENT_CONNECT_SECONDS:
                        event.fd = dataclasses.replace(last[0], num=event.res)
                    else:
                        event.fd = None
                if event.fd is None:
                    return None  # stdio redirected to a file or pipe: nothing a rule asks about
            return event
        if name == "inet_sock_set_state":
            return self._tcp(comm, tid, tgid, when, f)
        return None

    def _tcp(self, comm: str, tid: int, tgid: int, when: float, f: dict[str, int]) -> Event | None:
        old, new, sk = f.get("oldstate", 0), f.get("newstate", 0), f.get("skaddr", 0)
        sport, dport = f.get("sport", 0), f.get("dport", 0)
        v4 = f.get("family", 2) == 2
        saddr = _ip4(f.get("saddr", 0)) if v4 else ""
        daddr = _ip4(f.get("daddr", 0)) if v4 else ""
        if new == 2:  # CLOSE -> SYN_SENT, in the connecting task
            if len(self.connecting) > 65536:
                self.connecting.clear()
            self.connecting[sk] = (tgid, tid, comm)
            return None
        if new == 10:  # -> LISTEN, in the listening task
            self.listening[sport] = (tgid, tid, comm)
            fd = FileDescriptor(type="ipv4" if v4 else "ipv6", l4proto="tcp", name=f"{saddr}:{sport}",
                                server_ip=saddr, server_port=sport, local_ip=saddr, local_port=sport, sockfamily="ip")  # fmt: skip
            return Event(when, "listen", EventKind.NETWORK, "tracefs", Process(pid=tgid, tid=tid, name=comm), fd=fd)
        if old == 2:  # SYN_SENT -> ESTABLISHED (connected) or CLOSE (refused, timed out)
            owner = self.connecting.pop(sk, None)
            pid, ptid, pcomm = owner if owner else (0, 0, "")
            fd = FileDescriptor(type="ipv4" if v4 else "ipv6", l4proto="tcp", name=f"{saddr}:{sport}->{daddr}:{dport}",
                                client_ip=saddr, client_port=sport, server_ip=daddr, server_port=dport,
                                local_ip=saddr, local_port=sport, remote_ip=daddr, remote_port=dport, sockfamily="ip")  # fmt: skip
            res = 0 if new == 1 else -errno.ECONNREFUSED
            if new == 1 and pid:
                if len(self.established) > 16384:
                    self.established.clear()
                self.established[pid] = (fd, when, pcomm)
            return Event(when, "connect", EventKind.NETWORK, "tracefs", Process(pid=pid, tid=ptid, name=pcomm),
                         fd=fd, res=res, args={"res": res})  # fmt: skip
        if old == 3 and new == 1:  # SYN_RECV -> ESTABLISHED: accepted by the port's listener
            owner = self.listening.get(sport)
            pid, ptid, pcomm = owner if owner else (0, 0, "")
            fd = FileDescriptor(type="ipv4" if v4 else "ipv6", l4proto="tcp", name=f"{daddr}:{dport}->{saddr}:{sport}",
                                client_ip=daddr, client_port=dport, server_ip=saddr, server_port=sport,
                                local_ip=saddr, local_port=sport, remote_ip=daddr, remote_port=dport, sockfamily="ip")  # fmt: skip
            return Event(when, "accept", EventKind.NETWORK, "tracefs", Process(pid=pid, tid=ptid, name=pcomm), fd=fd)
        return None


def _socket_row(pid: int, table: str, inode: str, col: int = 9) -> list[str] | None:
    """The columns of the row of ``/proc/PID/net/TABLE`` whose inode column (``col``: 9 for
    tcp/udp, 6 for unix) is ``inode``, else ``None``; ``OSError`` when the table cannot be read."""
    for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
        cols = line.split()
        if len(cols) > col and cols[col] == inode:
            return cols
    return None


def _tcp_table(pid: int, inode: str) -> tuple[str, str, int, str, int] | None:
    """(family, local ip, local port, remote ip, remote port) of a TCP socket inode, from the
    process's own network namespace (``/proc/PID/net/tcp{,6}``)."""
    for name, fam in (("tcp", "ipv4"), ("tcp6", "ipv6")):
        try:
            cols = _socket_row(pid, name, inode)
        except OSError:
            return None
        if cols is not None:
            (lip, lport), (rip, rport) = (c.split(":") for c in cols[1:3])
            return fam, _hexip(lip), int(lport, 16), _hexip(rip), int(rport, 16)
    return None


def _other_socket(pid: int, inode: str) -> bool:
    """Whether a socket inode is a unix or UDP socket of the process's network namespace (a closed
    TCP socket is in no table: its inode reads 0 in TIME_WAIT)."""
    for name, col in (("unix", 6), ("udp", 9), ("udp6", 9)):
        with contextlib.suppress(OSError):
            if _socket_row(pid, name, inode, col) is not None:
                return True
    return False


def _hexip(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def socket_fd(pid: int, num: int) -> FileDescriptor | None:
    """The TCP socket behind ``/proc/PID/fd/NUM`` as an fd (Falco's tuple naming), else None;
    ``OSError`` when the descriptor cannot be read (the process is gone).

    Read at the syscall's exit from the reader thread, so a process that closes the socket within
    microseconds is missed; a reverse shell keeps it open for its whole session."""
    link = os.readlink(f"/proc/{pid}/fd/{num}")  # OSError: gone, the caller decides
    if not link.startswith("socket:["):
        return None
    found = _tcp_table(pid, link[8:-1])
    if found is None:
        if _other_socket(pid, link[8:-1]):
            return None  # a unix or UDP socket (a service's stdio is often journald's unix socket)
        raise OSError(errno.ENOENT, "socket closed since (in no socket table)", link)  # the caller decides
    fam, lip, lport, rip, rport = found
    return FileDescriptor(
        num=num, type=fam, l4proto="tcp", name=f"{lip}:{lport}->{rip}:{rport}", client_ip=lip, client_port=lport,
        server_ip=rip, server_port=rport, local_ip=lip, local_port=lport, remote_ip=rip, remote_port=rport,
        sockfamily="ip", connected=True,
    )  # fmt: skip


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read().strip().decode("utf-8", "replace")
    except OSError:
        return ""  # gone: the process table marks the event partial


def _disable_and_remove(inst: Path) -> None:
    with contextlib.suppress(OSError):
        (inst / "tracing_on").write_text("0")
    with contextlib.suppress(OSError):
        (inst / "events" / "enable").write_text("0")
    for _ in range(20):
        try:
            inst.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY:
                logger.warning("tracefs: cannot remove %s: %s", inst, err.strerror)
                return
            threading.Event().wait(0.05)
    logger.warning("tracefs: instance %s still busy; remove it with rmdir", inst)
