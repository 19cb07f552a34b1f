"""Tracepoints read through ``perf_event_open(2)`` ring buffers, by hand (ctypes, mmap, struct).

Why this exists: every consumer of the raw ``sys_enter``/``sys_exit`` tracepoints adds a probe,
and the kernel keeps its static-call fast path only while a tracepoint has a single probe. An
ftrace instance attaches ``ftrace_syscall_enter``; perf events and the BPF programs bpftrace
attaches both go through ``perf_syscall_enter``. Reading our tracepoints through perf as well
leaves one probe per raw tracepoint on the node (a getpid loop under the default sensor set:
+108 ns a syscall with an ftrace instance next to bpftrace, +17 ns with perf rings instead).

Why by hand: no maintained Python library reads perf tracepoint rings without compiling
something. BCC and its Python front end compile C through LLVM at run time; the ``perf`` module
of linux-perf is a C extension built with the kernel's tools and shipped only by distributions
for their own Python, not on PyPI; the PyPI projects named like it are benchmark runners. What
we need is small: one ``perf_event_attr``, four ioctls, an mmap'd ring and five record types.

Layout of one tracepoint comes from ``events/<group>/<name>/format`` (its ``ID`` and the
``offset``/``size``/``signed`` of each field). Integer fields of 1, 2, 4 or 8 bytes are decoded,
arrays of that total size too, as native integers (what the ftrace ``fields`` option prints, so
``inet_sock_set_state``'s ``__u8 saddr[4]`` is the little-endian word the sensor unpacks), by the
field's ``signed`` flag; ``__data_loc``/``__rel_loc`` strings and wider arrays are left out.
``common_*`` fields are left out too (the sample carries pid and tid).

One perf event per (tracepoint, online CPU): ``pid=-1``, ``sample_period=1``, ``sample_type`` TID,
TIME and RAW, ``CLOCK_MONOTONIC`` timestamps (as ftrace's ``trace_clock=mono``), created disabled,
the ftrace filter string attached with ``PERF_EVENT_IOC_SET_FILTER`` (the same filter engine as
ftrace, run in the kernel before the record is stored), then enabled once everything is set up.
Each CPU has one ring (1 + 2^n pages, n from the per-CPU size in KiB, like ftrace's
``buffer_size_kb``) mapped from its first event; the CPU's other events are redirected into it
(``PERF_EVENT_IOC_SET_OUTPUT``), so a reader polls one fd per CPU.

Wake-ups: ``wakeup_events=1``. After in-kernel filtering these tracepoints fire hundreds of times a
second at most and each record is a security signal that responders act on, so latency matters
more than the one irq_work a record costs; a watermark would hold a lone ``ptrace`` attach in the
ring until the poll timeout. Bursts do not cost a wake-up each: the reader drains everything
present per wake-up, and the kernel does not re-queue a pending wake-up.

Comms: samples carry no task name, and a short-lived attacker is gone before its record is read,
so the first event of each CPU also reports execs, name changes, forks and exits (``comm``,
``comm_exec``, ``task``; costs nothing per syscall, one record per exec, fork and exit); replayed
in time order with the samples they give each :class:`Sample` the comm its thread had then, as
ftrace's comm cache did. Tasks that neither exec'd nor were forked since ``open()`` have none.

Loss: the ring is mapped writable, so the kernel honours ``data_tail`` and never overwrites; what
did not fit is reported in the next ``PERF_RECORD_LOST`` record it can store, counted in
:attr:`PerfTracepoints.lost`. Records are merged across CPUs by timestamp within each drain.
CPUs that come online later are not watched (the events are per CPU); restart the sensor.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import mmap
import os
import platform
import re
import resource
import select
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from garrison.runtime.sensors.interface import SensorError

# perf_event_open(2) syscall numbers (asm-generic for the newer architectures)
_SYSCALL_NR = {
    "x86_64": 298, "amd64": 298, "aarch64": 241, "arm64": 241, "riscv64": 241, "loongarch64": 241,
    "i386": 336, "i686": 336, "armv7l": 364, "armv8l": 364, "ppc64le": 319, "ppc64": 319, "s390x": 331,
}  # fmt: skip
PERF_TYPE_TRACEPOINT = 2
PERF_SAMPLE_TID = 1 << 1
PERF_SAMPLE_TIME = 1 << 2
PERF_SAMPLE_RAW = 1 << 10
PERF_SAMPLE_CGROUP = 1 << 21  # the task's cgroup v2 id (5.7+, CONFIG_CGROUP_PERF)
SAMPLE_TYPE = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW
PERF_RECORD_COMM = 3
PERF_RECORD_EXIT = 4
PERF_RECORD_LOST = 2
PERF_RECORD_FORK = 7
PERF_RECORD_SAMPLE = 9
PERF_FLAG_FD_CLOEXEC = 1 << 3
CLOCK_MONOTONIC = 1
# perf_event_attr flag bits
_DISABLED = 1 << 0
_COMM = 1 << 9  # PERF_RECORD_COMM at exec and prctl(PR_SET_NAME)
_TASK = 1 << 13  # PERF_RECORD_FORK/EXIT
_SAMPLE_ID_ALL = 1 << 18  # pid, tid, time after every non-sample record too
_COMM_EXEC = 1 << 24
_USE_CLOCKID = 1 << 25
_MAX_COMMS = 1 << 16
_EXIT_GRACE_NS = 2_000_000_000  # a thread's comm is kept this long after its exit for records read late
# perf_event_attr up to PERF_ATTR_SIZE_VER5 (112 bytes; clockid needs VER3+):
# type size config sample_period sample_type read_format flags wakeup_events bp_type config1 config2
# branch_sample_type sample_regs_user sample_stack_user clockid sample_regs_intr aux_watermark
# sample_max_stack __reserved_2
_ATTR = struct.Struct("=IIQQQQQIIQQQQIiQIHH")
# perf_event_mmap_page: where data_head, data_tail and data_offset are
_HEAD_AT, _TAIL_AT, _DATA_OFFSET_AT = 1024, 1032, 1040  # data_size follows data_offset
_HEADER = struct.Struct("=IHH")  # type, misc, size
_SAMPLE = struct.Struct("=IIQI")  # pid, tid, time, raw size (then the raw tracepoint record)
_LOST = struct.Struct("=QQ")  # id, lost
_COMM_IDS = struct.Struct("=II")  # pid, tid (then the NUL-terminated name, then the sample id)
_TASK_REC = struct.Struct("=IIIIQ")  # pid, ppid, tid, ptid, time
_ID_TIME = struct.Struct("=Q")  # last field of the sample id trailer (pid, tid, time)
_ID_SIZE = 16
_U16 = struct.Struct("=H")
_U64 = struct.Struct("=Q")
_MAX_PAGES = 1 << 16  # 256 MiB a CPU with 4 KiB pages: beyond any sane buffer_kb


def _ioc(write: bool, nr: int, size: int) -> int:
    """``_IO``/``_IOW('$', nr, size)``; powerpc, mips and sparc lay the direction bits out differently."""
    machine = platform.machine()
    if not write:
        return (0x24 << 8) | nr
    if machine.startswith(("ppc", "mips", "sparc")):
        return (4 << 29) | (size << 16) | (0x24 << 8) | nr
    return (1 << 30) | (size << 16) | (0x24 << 8) | nr


PERF_EVENT_IOC_ENABLE = _ioc(False, 0, 0)
PERF_EVENT_IOC_DISABLE = _ioc(False, 1, 0)
PERF_EVENT_IOC_SET_OUTPUT = _ioc(False, 5, 0)
PERF_EVENT_IOC_SET_FILTER = _ioc(True, 6, ctypes.sizeof(ctypes.c_void_p))


class PerfError(SensorError):
    """The perf backend cannot be set up (the message names the tracepoint and the cause)."""


class PerfUnavailable(PerfError):
    """The kernel refused ``perf_event_open`` or the ring's mmap: callers may fall back to ftrace."""

    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err


class FormatError(PerfError):
    """A tracepoint ``format`` file we cannot use (garbled, truncated, not a trace event format)."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    offset: int
    size: int
    signed: bool
    type: str

    @property
    def decodable(self) -> bool:
        """An integer (or an array as wide as one) we decode; not a ``__data_loc``/``__rel_loc`` string."""
        return self.size in (1, 2, 4, 8) and "__data_loc" not in self.type and "__rel_loc" not in self.type


_CODES = {(1, True): "b", (1, False): "B", (2, True): "h", (2, False): "H",
          (4, True): "i", (4, False): "I", (8, True): "q", (8, False): "Q"}  # fmt: skip
_FIELD_LINE = re.compile(
    r"field:(?P<decl>[^;]*);[ \t]*offset:(?P<offset>[0-9]{1,6});[ \t]*size:(?P<size>[0-9]{1,6});"
    r"[ \t]*signed:(?P<signed>[01]);[ \t]*"
)
_DECL = re.compile(r"(?:^|[\s*])(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*(?P<array>\[[^\]]*\])?[ \t]*$")
_MAX_RECORD = 0xFFFF  # a perf record's size is a u16


@dataclass(frozen=True, slots=True)
class EventFormat:
    """One tracepoint's id and field layout, with a precompiled decoder for its raw records."""

    name: str
    id: int
    fields: tuple[Field, ...]
    names: tuple[str, ...]
    decoder: struct.Struct

    def decode(self, buf: bytes | memoryview, offset: int = 0, size: int | None = None) -> dict[str, int]:
        """The decodable non-``common_`` fields of the raw record at ``buf[offset:]``; ``FormatError`` if it is short."""
        have = len(buf) - offset if size is None else size
        if have < self.decoder.size:
            raise FormatError(f"{self.name}: record of {have} bytes, the format needs {self.decoder.size}")
        return dict(zip(self.names, self.decoder.unpack_from(buf, offset), strict=True))


def parse_format(text: str, where: str = "format") -> EventFormat:
    """The ``EventFormat`` of a tracefs ``format`` file's text; ``FormatError`` naming ``where`` and the
    line when the text is not one we can use (never another exception)."""
    name = ""
    ident: int | None = None
    fields: list[Field] = []
    seen: set[str] = set()
    for num, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("name:"):
            name = line[5:].strip()
            if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,128}", name):
                raise FormatError(f"{where}: line {num}: bad event name {name[:40]!r}")
        elif line.startswith("ID:"):
            value = line[3:].strip()
            if not re.fullmatch(r"[0-9]{1,5}", value) or not 0 < int(value) <= 0xFFFF:
                raise FormatError(f"{where}: line {num}: bad ID {value[:40]!r} (want 1..65535)")
            ident = int(value)
        elif line.startswith("field:"):
            m = _FIELD_LINE.fullmatch(line)
            if m is None:
                raise FormatError(f"{where}: line {num}: not a field line: {line[:80]!r}")
            decl = m["decl"].strip()
            d = _DECL.search(decl)
            if d is None:
                raise FormatError(f"{where}: line {num}: no field name in {decl[:60]!r}")
            fname, offset, size = d["name"], int(m["offset"]), int(m["size"])
            if fname in seen:
                raise FormatError(f"{where}: line {num}: field {fname!r} declared twice")
            if offset + size > _MAX_RECORD:
                raise FormatError(f"{where}: line {num}: field {fname!r} ends at byte {offset + size}, past a record")
            seen.add(fname)
            ftype = decl[: d.start("name")].strip() + (d["array"] or "")
            fields.append(Field(fname, offset, size, m["signed"] == "1", ftype))
    if ident is None:
        raise FormatError(f"{where}: no 'ID:' line (not a tracepoint format file?)")
    if not any(f.name == "common_type" and f.offset == 0 and f.size == 2 for f in fields):
        raise FormatError(f"{where}: no 2-byte common_type field at offset 0 (not a trace event format?)")
    return _compile(name or where, ident, tuple(fields), where)


def _compile(name: str, ident: int, fields: tuple[Field, ...], where: str) -> EventFormat:
    wanted = sorted((f for f in fields if f.decodable and not f.name.startswith("common_")), key=lambda f: f.offset)
    code = ["="]
    pos = 0
    for f in wanted:
        if f.offset < pos:
            raise FormatError(f"{where}: field {f.name!r} at offset {f.offset} overlaps the field before it")
        if f.offset > pos:
            code.append(f"{f.offset - pos}x")
        code.append(_CODES[f.size, f.signed])
        pos = f.offset + f.size
    return EventFormat(name, ident, fields, tuple(f.name for f in wanted), struct.Struct("".join(code)))


def read_format(root: Path, group: str, name: str) -> EventFormat:
    """The format of ``events/<group>/<name>`` under a tracefs mount."""
    path = root / "events" / group / name / "format"
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise FormatError(f"tracefs: cannot read {path}: {err.strerror}") from err
    return parse_format(text, where=f"tracefs: {path}")


def online_cpus(text: str | None = None) -> list[int]:
    """CPU numbers of ``/sys/devices/system/cpu/online`` (``0-3,6``)."""
    if text is None:
        try:
            text = Path("/sys/devices/system/cpu/online").read_text()
        except OSError:
            return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus or [0]


@dataclass(frozen=True, slots=True)
class TracepointSpec:
    """One tracepoint to read and its ftrace filter (empty: every hit)."""

    group: str
    name: str
    filter: str = ""


class Sample(NamedTuple):
    """One decoded tracepoint hit: ``pid`` is the thread group, ``tid`` the thread, ``time_ns``
    CLOCK_MONOTONIC; ``comm`` the thread's name as the kernel last announced it ("" if not since
    we started: the task is older than the reader)."""

    name: str
    pid: int
    tid: int
    cpu: int
    time_ns: int
    fields: dict[str, int]
    comm: str = ""
    cgroup: int = 0  # cgroup v2 id of the task when it hit the tracepoint (0: the kernel gives none)


class _Task(NamedTuple):
    """A side-band record: ``op`` is PERF_RECORD_COMM (``comm`` set), _FORK (``ptid`` the creator) or _EXIT."""

    time_ns: int
    op: int
    tid: int
    ptid: int
    comm: str


_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _errname(err: int) -> str:
    return f"{errno.errorcode.get(err, f'errno {err}')} ({os.strerror(err)})"


_HINTS = {
    errno.EACCES: "needs root (CAP_PERFMON or CAP_SYS_ADMIN), or kernel.perf_event_paranoid / lockdown forbids it",
    errno.EPERM: "a seccomp or container policy, lockdown or missing CAP_PERFMON forbids perf_event_open",
    errno.ENOENT: "the kernel has no perf tracepoint support for it (CONFIG_PERF_EVENTS, CONFIG_EVENT_TRACING)",
    errno.EINVAL: "the kernel rejected the attributes or the CPU (a kernel before 4.1 without use_clockid? CPU offline?)",
    errno.ENOSYS: "the kernel has no perf_event_open (CONFIG_PERF_EVENTS off)",
    errno.ENODEV: "the CPU went offline",
    errno.EMFILE: "out of file descriptors (RLIMIT_NOFILE)",
}


def _perf_event_open(attr: bytes, cpu: int) -> int:
    """The fd, or ``-errno``."""
    machine = platform.machine()
    nr = _SYSCALL_NR.get(machine)
    if nr is None:
        return -errno.ENOSYS
    buf = ctypes.create_string_buffer(attr, len(attr))
    lib = _lib()
    fd = int(
        lib.syscall(
            ctypes.c_long(nr), buf, ctypes.c_long(-1), ctypes.c_long(cpu), ctypes.c_long(-1),
            ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC),
        )
    )  # fmt: skip
    return fd if fd >= 0 else -ctypes.get_errno()


def _ioctl(fd: int, request: int, arg: int | bytes = 0) -> int:
    """0, or the errno."""
    lib = _lib()
    value: ctypes.c_char_p | ctypes.c_long = ctypes.c_char_p(arg) if isinstance(arg, bytes) else ctypes.c_long(arg)
    if int(lib.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), value)) < 0:
        return ctypes.get_errno() or errno.EIO
    return 0


def _ring_pages(buffer_kb: int) -> int:
    """Data pages of one CPU's ring: the largest power of two within ``buffer_kb`` (at least one)."""
    pages = max(1, buffer_kb * 1024 // mmap.PAGESIZE)
    return min(1 << (pages.bit_length() - 1), _MAX_PAGES)


class _Ring:
    """One CPU's mmap'd ring: records between ``data_tail`` and ``data_head``."""

    def __init__(self, cpu: int, fd: int, pages: int) -> None:
        self.cpu = cpu
        self.fd = fd
        self.mm = mmap.mmap(fd, (1 + pages) * mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._head: ctypes.c_uint64 | None = ctypes.c_uint64.from_buffer(self.mm, _HEAD_AT)
        self._tail: ctypes.c_uint64 | None = ctypes.c_uint64.from_buffer(self.mm, _TAIL_AT)
        offset, size = struct.unpack_from("=QQ", self.mm, _DATA_OFFSET_AT)
        # kernels before 4.1 leave these zero: data right after the control page
        self.offset = offset or mmap.PAGESIZE
        self.size = size or pages * mmap.PAGESIZE

    def take(self) -> tuple[bytes, bool]:
        """The bytes of every record present (copied out), after which the space is handed back to
        the kernel; and whether the head was inconsistent (then the ring is skipped to it)."""
        assert self._head is not None and self._tail is not None
        head, tail = self._head.value, self._tail.value
        if head == tail:
            return b"", False
        count = head - tail
        if count < 0 or count > self.size:
            self._tail.value = head
            return b"", True
        start = tail % self.size
        first = min(count, self.size - start)
        mm, off = self.mm, self.offset
        data = mm[off + start : off + start + first]
        if count > first:
            data += mm[off : off + count - first]
        self._tail.value = head
        return data, False

    def close(self) -> None:
        self._head = self._tail = None  # release the buffer exports before unmapping
        try:
            self.mm.close()
        except BufferError:  # pragma: no cover - a view still alive: the mapping goes with it
            pass


class PerfTracepoints:
    """Tracepoints of all online CPUs read through perf rings; see the module docstring.

    ``open()`` sets everything up and enables the events (raising :class:`PerfUnavailable` when the
    kernel refuses perf, :class:`PerfError` for anything else); ``poll()`` waits for records;
    ``read()`` yields every record present as :class:`Sample`, oldest first; ``close()`` releases
    everything. ``lost`` counts records the kernel could not store, ``errors`` records we could not
    decode.
    """

    def __init__(
        self,
        root: Path,
        specs: Sequence[TracepointSpec],
        *,
        buffer_kb: int = 2048,
        cpus: Iterable[int] | None = None,
        wakeup_events: int = 1,
        track_comm: bool = True,
    ) -> None:
        self.root = root
        self.specs = list(specs)
        self.buffer_kb = buffer_kb
        self.cpus = list(cpus) if cpus is not None else None
        self.wakeup_events = max(1, wakeup_events)
        self.track_comm = track_comm
        self.comms: dict[int, tuple[str, int]] = {}  # tid -> (comm, since when), from COMM/FORK records
        self._exited: list[tuple[int, int]] = []  # (exit time, tid) whose comm goes after the grace
        self.formats: dict[int, EventFormat] = {}
        self.lost = 0
        self.errors = 0
        self._fds: list[int] = []
        self._rings: list[_Ring] = []
        self._poller: select.poll | None = None
        self._lock = threading.Lock()  # read() against close() from another thread
        # every sample also carries its task's cgroup id, which attributes the event to its
        # container without /proc (the process may be gone); dropped on kernels that refuse it
        self.sample_type = SAMPLE_TYPE | PERF_SAMPLE_CGROUP

    # -- setup ------------------------------------------------------------------------------
    def open(self) -> None:
        if self._rings:
            return
        if not self.specs:
            raise PerfError("tracefs: no tracepoint to open")
        cpus = self.cpus if self.cpus is not None else online_cpus()
        formats = [read_format(self.root, s.group, s.name) for s in self.specs]
        self.formats = {f.id: f for f in formats}
        _raise_fd_limit(len(self.specs) * len(cpus))
        pages = _ring_pages(self.buffer_kb)
        try:
            for cpu in cpus:
                leader: _Ring | None = None
                for spec, fmt in zip(self.specs, formats, strict=True):
                    fd = self._open_one(spec, fmt, cpu, leader is None and self.track_comm)
                    if leader is None:
                        try:
                            leader = _Ring(cpu, fd, pages)
                        except OSError as exc:
                            raise PerfUnavailable(
                                f"tracefs: mmap of a {pages * mmap.PAGESIZE // 1024} KiB perf ring on cpu {cpu} "
                                f"failed: {_errname(exc.errno or errno.EIO)} (kernel.perf_event_mlock_kb?)",
                                exc.errno or errno.EIO,
                            ) from exc
                        self._rings.append(leader)
                    elif (err := _ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, leader.fd)) != 0:
                        raise PerfError(
                            f"tracefs: PERF_EVENT_IOC_SET_OUTPUT of {spec.group}:{spec.name} on cpu {cpu}: {_errname(err)}"
                        )
            for fd in self._fds:
                if (err := _ioctl(fd, PERF_EVENT_IOC_ENABLE)) != 0:
                    raise PerfError(f"tracefs: PERF_EVENT_IOC_ENABLE failed: {_errname(err)}")
        except BaseException:
            self.close()
            raise
        poller = select.poll()
        for ring in self._rings:
            poller.register(ring.fd, select.POLLIN)
        self._poller = poller

    def _open_one(self, spec: TracepointSpec, fmt: EventFormat, cpu: int, side_band: bool) -> int:
        """One disabled event; ``side_band``: it also reports the CPU's execs, forks and exits (for comms)."""
        flags = _DISABLED | _USE_CLOCKID | _SAMPLE_ID_ALL | (_COMM | _COMM_EXEC | _TASK if side_band else 0)
        attr = _ATTR.pack(
            PERF_TYPE_TRACEPOINT, _ATTR.size, fmt.id, 1, self.sample_type, 0, flags,
            self.wakeup_events, 0, 0, 0, 0, 0, 0, CLOCK_MONOTONIC, 0, 0, 0, 0,
        )  # fmt: skip
        fd = _perf_event_open(attr, cpu)
        if fd == -errno.EINVAL and self.sample_type & PERF_SAMPLE_CGROUP and not self._fds:
            self.sample_type &= ~PERF_SAMPLE_CGROUP  # older kernel, or no CONFIG_CGROUP_PERF
            return self._open_one(spec, fmt, cpu, side_band)
        if fd < 0:
            err = -fd
            hint = _HINTS.get(err, "")
            raise PerfUnavailable(
                f"tracefs: perf_event_open({spec.group}:{spec.name}, id {fmt.id}, cpu {cpu}) refused: "
                f"{_errname(err)}{'; ' + hint if hint else ''}",
                err,
            )
        self._fds.append(fd)
        if spec.filter and (err := _ioctl(fd, PERF_EVENT_IOC_SET_FILTER, spec.filter.encode())) != 0:
            raise PerfError(f"tracefs: filter {spec.filter!r} of {spec.group}:{spec.name} rejected: {_errname(err)}")
        return fd

    # -- reading ----------------------------------------------------------------------------
    def fds(self) -> list[int]:
        """One pollable fd per CPU ring."""
        return [r.fd for r in self._rings]

    def poll(self, timeout_ms: int) -> bool:
        """Wait up to ``timeout_ms`` for a ring to signal records; True if one did."""
        poller = self._poller
        if poller is None:
            return False
        try:
            ready = poller.poll(timeout_ms)
        except InterruptedError:
            return False
        for fd, mask in ready:
            if mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                # the event is gone (its CPU went offline): stop polling it, still drain it
                with contextlib.suppress(KeyError):
                    poller.unregister(fd)
        return bool(ready)

    def read(self) -> list[Sample]:
        """Every record present in every ring, oldest first (merged by timestamp), with its comm."""
        out: list[Sample | _Task] = []
        chunks: list[tuple[int, bytes]] = []
        with self._lock:  # closed meanwhile: no rings left, nothing read
            for ring in self._rings:
                data, broken = ring.take()
                if broken:
                    self.errors += 1
                if data:
                    chunks.append((ring.cpu, data))
        for cpu, data in chunks:
            self._parse(cpu, data, out)
        if len(chunks) > 1:
            out.sort(key=lambda s: s.time_ns)
        return self._name(out)

    def _name(self, items: list[Sample | _Task]) -> list[Sample]:
        """Samples with the comm their thread had then, replaying the side-band records in time order."""
        comms = self.comms
        samples: list[Sample] = []
        last = 0
        for item in items:
            last = item.time_ns
            if isinstance(item, Sample):
                entry = comms.get(item.tid) or comms.get(item.pid)
                samples.append(item._replace(comm=entry[0]) if entry else item)
            elif item.op == PERF_RECORD_COMM:
                comms.pop(item.tid, None)  # (re)inserted last: the oldest go first when the map is full
                comms[item.tid] = (item.comm, item.time_ns)
            elif item.op == PERF_RECORD_FORK:
                if parent := comms.get(item.ptid):
                    comms.pop(item.tid, None)
                    comms[item.tid] = (parent[0], item.time_ns)
            else:
                self._exited.append((item.time_ns, item.tid))
        cutoff = last - _EXIT_GRACE_NS
        if self._exited and self._exited[0][0] < cutoff:
            keep: list[tuple[int, int]] = []
            for when, tid in self._exited:
                if when >= cutoff:
                    keep.append((when, tid))
                elif (entry := comms.get(tid)) is not None and entry[1] <= when:  # not a newer owner of the tid
                    del comms[tid]
            self._exited = keep
        if len(comms) > _MAX_COMMS:  # exits we never saw (lost records): drop the oldest half
            for tid in list(comms)[: len(comms) // 2]:
                del comms[tid]
        return samples

    def _parse(self, cpu: int, data: bytes, out: list[Sample | _Task]) -> None:
        pos, end = 0, len(data)
        formats = self.formats
        while pos + _HEADER.size <= end:
            kind, _misc, size = _HEADER.unpack_from(data, pos)
            if size < _HEADER.size or pos + size > end:
                self.errors += 1  # a torn or garbled record: the rest of this chunk cannot be framed
                return
            body = pos + _HEADER.size
            if kind == PERF_RECORD_SAMPLE and size >= _HEADER.size + _SAMPLE.size:
                pid, tid, when, raw = _SAMPLE.unpack_from(data, body)
                at = body + _SAMPLE.size
                fmt = formats.get(_U16.unpack_from(data, at)[0]) if 2 <= raw <= pos + size - at else None
                if fmt is None:
                    self.errors += 1
                else:
                    try:
                        fields = fmt.decode(data, at, raw)
                        cgroup = 0
                        if self.sample_type & PERF_SAMPLE_CGROUP and at + raw + 8 <= pos + size:
                            cgroup = _U64.unpack_from(data, at + raw)[0]  # the u64 after the raw data
                        out.append(Sample(fmt.name, pid, tid, cpu, when, fields, cgroup=cgroup))
                    except FormatError:
                        self.errors += 1
            elif kind == PERF_RECORD_LOST and size >= _HEADER.size + _LOST.size:
                self.lost += _LOST.unpack_from(data, body)[1]
            elif kind == PERF_RECORD_COMM and size >= _HEADER.size + _COMM_IDS.size + _ID_SIZE:
                _pid, tid = _COMM_IDS.unpack_from(data, body)
                name = data[body + _COMM_IDS.size : pos + size - _ID_SIZE].split(b"\0", 1)[0]
                when = _ID_TIME.unpack_from(data, pos + size - 8)[0]
                out.append(_Task(when, kind, tid, 0, name.decode("utf-8", "replace")))
            elif kind in (PERF_RECORD_FORK, PERF_RECORD_EXIT) and size >= _HEADER.size + _TASK_REC.size:
                _pid, _ppid, tid, ptid, when = _TASK_REC.unpack_from(data, body)
                out.append(_Task(when, kind, tid, ptid, ""))
            pos += size

    # -- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._poller = None
            for fd in self._fds:
                _ioctl(fd, PERF_EVENT_IOC_DISABLE)
            for ring in self._rings:
                ring.close()
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
            self._rings.clear()

    def __enter__(self) -> PerfTracepoints:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_fd_limit(needed: int) -> None:
    """Lift the soft RLIMIT_NOFILE (up to the hard one) when one event per tracepoint and CPU would not fit."""
    with contextlib.suppress(OSError, ValueError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        in_use = len(os.listdir("/proc/self/fd"))
        want = in_use + needed + 64
        if soft != resource.RLIM_INFINITY and soft < want:
            top = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
