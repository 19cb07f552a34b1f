"""fanotify sensor: file open/modify/close-write/exec notifications and exec *permission* events.

``fanotify_init``/``fanotify_mark`` are called through ``ctypes`` on the C library: the standard
library has no binding and the two calls are all we need (the event stream is read with
``os.read`` and decoded with ``struct``; a dependency would add nothing).

Marks are mount marks (``FAN_MARK_MOUNT``) or filesystem marks (``FAN_MARK_FILESYSTEM``) on the
given paths. Each event carries an open file descriptor of the object; its path is
``readlink("/proc/self/fd/N")`` and the descriptor is closed on every path out, answered or not.

Permission events (``FAN_OPEN_EXEC_PERM``, optionally ``FAN_OPEN_PERM``) go to the ``decide``
hook: ``decide(event) -> bool``, ``False`` answers ``FAN_DENY`` (the exec fails with ``EPERM``).
The hook runs on a small worker pool, never on the reader thread, and each pending event has a
deadline: when ``timeout_ms`` passes without an answer the reader answers ``FAN_ALLOW``. So a
slow, stuck or crashing hook cannot hang the machine's execs, and the reader never waits on the
hook. Events caused by our own process or its descendants (tools we run, such as a container
runtime's CLI for metadata) are allowed at once: waiting on them would make us wait on ourselves. A per-event token guards against answering a recycled descriptor number twice.

Loss: ``FAN_Q_OVERFLOW`` (the kernel queue of 16384 events filled up; the kernel drops events
until we catch up and does not say how many) is counted in ``lost`` once per overflow and in
``extra["overflows"]``. Permission events are never dropped: the kernel blocks the caller.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import dataclasses
import errno
import itertools
import logging
import os
import select
import struct
import threading
import time
from collections.abc import Callable, Iterable

from garrison.model.runtime import Event, EventKind, FileDescriptor, Process
from garrison.runtime.sensors.interface import EventSink, SensorError, SensorStats, is_root, sensor_thread

logger = logging.getLogger(__name__)

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_CLASS_CONTENT = 0x4
FAN_UNLIMITED_QUEUE = 0x10
FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MARK_MOUNT = 0x10
FAN_MARK_FILESYSTEM = 0x100

FAN_ACCESS = 0x1
FAN_MODIFY = 0x2
FAN_CLOSE_WRITE = 0x8
FAN_OPEN = 0x20
FAN_OPEN_EXEC = 0x1000
FAN_Q_OVERFLOW = 0x4000
FAN_OPEN_PERM = 0x10000
FAN_OPEN_EXEC_PERM = 0x40000
FAN_ALLOW = 0x1
FAN_DENY = 0x2
FAN_NOFD = -1
PERM_MASK = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM

EVENT_BITS = {
    "open": FAN_OPEN,
    "modify": FAN_MODIFY,
    "close_write": FAN_CLOSE_WRITE,
    "open_exec": FAN_OPEN_EXEC,
    "open_exec_perm": FAN_OPEN_EXEC_PERM,
    "open_perm": FAN_OPEN_PERM,
}
_META = struct.Struct("=IBBHQii")
_RESPONSE = struct.Struct("=iI")

Decide = Callable[[Event], bool]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    libc.fanotify_init.restype = ctypes.c_int
    libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    libc.fanotify_mark.restype = ctypes.c_int
    return libc


def event_types(mask: int) -> list[tuple[str, EventKind, dict[str, object]]]:
    """Map a fanotify mask to ``(Event.type, kind, args)`` items, in the order they happened.

    The kernel merges queued notifications for the same file (``FAN_OPEN|FAN_MODIFY|FAN_CLOSE_WRITE``
    in one record), so one record can stand for several events. Exec opens are ``open_exec``.
    """
    out: list[tuple[str, EventKind, dict[str, object]]] = []
    if mask & (FAN_OPEN_EXEC | FAN_OPEN_EXEC_PERM):
        out.append(("open_exec", EventKind.PROCESS, {"perm": bool(mask & FAN_OPEN_EXEC_PERM)}))
    elif mask & (FAN_OPEN | FAN_OPEN_PERM):
        out.append(("open", EventKind.FILE, {"perm": bool(mask & FAN_OPEN_PERM)}))
    if mask & FAN_MODIFY:
        out.append(("write", EventKind.FILE, {}))
    if mask & FAN_CLOSE_WRITE:
        out.append(("close", EventKind.FILE, {"write": True}))
    return out


def parse_events(data: bytes | memoryview) -> list[tuple[int, int, int]]:
    """``(mask, fd, pid)`` of each event in one read; ValueError on a malformed buffer."""
    out: list[tuple[int, int, int]] = []
    off = 0
    n = len(data)
    while off + _META.size <= n:
        length, vers, _res, meta_len, mask, fd, pid = _META.unpack_from(data, off)
        if length < _META.size or meta_len < _META.size or off + length > n:
            raise ValueError(f"malformed fanotify event (len {length}, metadata {meta_len})")
        if vers != 3:
            raise ValueError(f"unsupported fanotify metadata version {vers}")
        out.append((mask, fd, pid))
        off += length
    if off != n:
        raise ValueError(f"{n - off} trailing bytes in fanotify read")
    return out


def _ours(pid: int, me: int, depth: int = 4) -> bool:
    """``pid`` is us or one of our descendants (a tool we run: allowed at once, or we would wait on ourselves)."""
    for _ in range(depth):
        if pid == me:
            return True
        if pid <= 1:
            return False
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
            pid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return pid == me


class FanotifySensor:
    """File and exec events from fanotify marks; exec permission answers through ``decide``."""

    name = "fanotify"

    def __init__(
        self,
        paths: Iterable[str] = ("/",),
        *,
        events: Iterable[str] = ("open_exec", "close_write"),
        decide: Decide | None = None,
        timeout_ms: int = 1000,
        filesystem: bool = False,
        workers: int = 4,
        trust_descendants: bool = True,
    ) -> None:
        self.trust_descendants = trust_descendants
        self.paths = [str(p) for p in paths]
        wanted = set(events)
        unknown = wanted - set(EVENT_BITS)
        if unknown:
            raise SensorError(f"fanotify: unknown event kinds {sorted(unknown)}; choose from {sorted(EVENT_BITS)}")
        if decide is not None and not wanted & {"open_exec_perm", "open_perm"}:
            wanted.add("open_exec_perm")
        self.mask = 0
        for name in wanted:
            self.mask |= EVENT_BITS[name]
        self.decide = decide
        self.timeout = timeout_ms / 1000.0
        self.filesystem = filesystem
        self._workers = workers
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stats = SensorStats(self.name)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: dict[int, tuple[int, float]] = {}  # fd -> (token, deadline)
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)
        self._self_pid = os.getpid()

    def available(self) -> str | None:
        if (why := is_root()) is not None:
            return f"fanotify: {why}"
        try:
            libc = _libc()
        except (OSError, AttributeError) as err:
            return f"fanotify: C library has no fanotify ({err}); needs glibc >= 2.10"
        fd = libc.fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, os.O_RDONLY)
        if fd < 0:
            code = ctypes.get_errno()
            hint = "kernel needs CONFIG_FANOTIFY_ACCESS_PERMISSIONS" if code == errno.EINVAL else "run as root"
            return f"fanotify: fanotify_init failed ({os.strerror(code)}); {hint}"
        os.close(fd)
        return None

    def start(self, sink: EventSink) -> None:
        if self._fd is not None:
            return
        if (why := self.available()) is not None:
            raise SensorError(why)
        libc = _libc()
        klass = FAN_CLASS_CONTENT if self.mask & PERM_MASK else FAN_CLASS_NOTIF
        fd = libc.fanotify_init(klass | FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC)
        if fd < 0:
            raise SensorError(f"fanotify: fanotify_init failed: {os.strerror(ctypes.get_errno())}")
        kind = FAN_MARK_FILESYSTEM if self.filesystem else FAN_MARK_MOUNT
        for path in self.paths:
            if libc.fanotify_mark(fd, FAN_MARK_ADD | kind, self.mask, -100, path.encode()) != 0:
                err = ctypes.get_errno()
                os.close(fd)
                raise SensorError(f"fanotify: cannot mark {path}: {os.strerror(err)}")
        self._fd = fd
        self._pool = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="garrison-fan-decide")
        self._stop.clear()
        self._stats.running = True
        self._thread = sensor_thread(self._run, sink, name="garrison-fanotify")
        self._thread.start()

    def add_mark(self, path: str) -> bool:
        """Mark one more mount (or filesystem) while running, e.g. a new container's ``/proc/PID/root``."""
        with self._lock:
            if self._fd is None or path in self.paths:
                return False
            kind = FAN_MARK_FILESYSTEM if self.filesystem else FAN_MARK_MOUNT
            if _libc().fanotify_mark(self._fd, FAN_MARK_ADD | kind, self.mask, -100, path.encode()) != 0:
                logger.debug("fanotify: cannot mark %s: %s", path, os.strerror(ctypes.get_errno()))
                return False
            self.paths.append(path)
            return True

    # -- answering ----------------------------------------------------------------------------
    def _respond(self, fd: int, allow: bool) -> None:
        assert self._fd is not None
        try:
            os.write(self._fd, _RESPONSE.pack(fd, FAN_ALLOW if allow else FAN_DENY))
        except OSError as err:
            self._stats.errors += 1
            logger.warning("fanotify: answering fd %d failed: %s", fd, err.strerror)
        if not allow:
            self._stats.extra["denied"] = self._stats.extra.get("denied", 0) + 1

    def _answer(self, fd: int, token: int, allow: bool) -> bool:
        """Answer a pending event once; ``False`` when it was already answered (timeout)."""
        with self._lock:
            entry = self._pending.get(fd)
            if entry is None or entry[0] != token or self._fd is None:
                return False
            del self._pending[fd]
            self._respond(fd, allow)
            os.close(fd)
            return True

    def _decide(self, fd: int, token: int, event: Event) -> None:
        assert self.decide is not None
        try:
            allow = bool(self.decide(event))
        except Exception:
            self._stats.errors += 1
            logger.exception("fanotify decide hook failed; allowing")
            allow = True
        if not self._answer(fd, token, allow):
            self._stats.extra["late_answers"] = self._stats.extra.get("late_answers", 0) + 1

    def _expire(self) -> float:
        """Allow pending events past their deadline; return seconds until the next deadline."""
        now = time.monotonic()
        nearest = 0.2
        with self._lock:
            expired = [(fd, tok) for fd, (tok, dl) in self._pending.items() if dl <= now]
            for _tok, dl in self._pending.values():
                nearest = min(nearest, max(dl - now, 0.001))
        for fd, tok in expired:
            if self._answer(fd, tok, True):
                self._stats.extra["timeouts"] = self._stats.extra.get("timeouts", 0) + 1
        return nearest

    # -- reading ------------------------------------------------------------------------------
    def _run(self, sink: EventSink) -> None:
        fd = self._fd
        assert fd is not None
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        stats = self._stats
        wait = 0.2
        while not self._stop.is_set():
            ready = poller.poll(int(wait * 1000) or 1)
            wait = self._expire()
            if not ready:
                continue
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError as err:
                if self._stop.is_set():
                    break
                stats.errors += 1
                logger.warning("fanotify read failed: %s", err.strerror)
                continue
            try:
                items = parse_events(data)
            except ValueError:
                stats.errors += 1
                continue
            for mask, efd, pid in items:
                self._one(mask, efd, pid, sink)
            wait = self._expire()

    def _one(self, mask: int, efd: int, pid: int, sink: EventSink) -> None:
        stats = self._stats
        if mask & FAN_Q_OVERFLOW:
            stats.lost += 1
            stats.extra["overflows"] = stats.extra.get("overflows", 0) + 1
            if efd >= 0:
                os.close(efd)
            return
        stats.received += 1
        path = ""
        if efd >= 0:
            try:
                path = os.readlink(f"/proc/self/fd/{efd}")
            except OSError:
                path = ""
        now = time.time()
        events = [
            Event(
                time=now,
                type=etype,
                kind=kind,
                sensor="fanotify",
                proc=Process(pid=pid, tid=pid),
                fd=FileDescriptor(num=-1, type="file", name=path),  # closed by the time a sink sees it
                args={"name": path, **args},
                num=stats.received,
            )
            for etype, kind, args in event_types(mask)
        ]
        if not events:
            if efd >= 0:
                os.close(efd)
            return
        event = events[0]
        perm = bool(mask & PERM_MASK) and efd >= 0
        if not perm:
            if efd >= 0:
                os.close(efd)
        elif (
            self.decide is None
            or self._pool is None
            or pid == self._self_pid
            or (self.trust_descendants and _ours(pid, self._self_pid))
        ):
            self._respond(efd, True)
            os.close(efd)
        else:
            token = next(self._tokens)
            with self._lock:
                self._pending[efd] = (token, time.monotonic() + self.timeout)
            # the hook gets the descriptor (valid until answered) in its own copy; the sink's
            # copy must not carry a number that is closed and recycled once we answer
            live = dataclasses.replace(event.fd, num=efd) if event.fd is not None else None
            asked = dataclasses.replace(event, args={**event.args, "fd": efd}, fd=live)
            try:
                self._pool.submit(self._decide, efd, token, asked)
            except RuntimeError:  # pool shut down while stopping
                self._answer(efd, token, True)
        if pid == self._self_pid:
            return
        for one in events:
            try:
                sink(one)
            except Exception:
                stats.errors += 1
                logger.exception("fanotify sink failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            pending = list(self._pending.items())
        for fd, (tok, _dl) in pending:
            self._answer(fd, tok, True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # removes every mark; the kernel allows anything still pending
                self._fd = None
        self._stats.running = False

    def stats(self) -> SensorStats:
        self._stats.extra.setdefault("denied", 0)
        self._stats.extra["pending"] = len(self._pending)
        return self._stats
