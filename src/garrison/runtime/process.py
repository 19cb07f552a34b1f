"""Process table: pid -> :class:`Process`, fed by the proc connector, audit exec records and ``/proc``.

At start the table scans ``/proc``; afterwards the proc connector's fork/exec/exit/uid events
keep it current, and audit exec records (complete argv, cwd, uids) overwrite what a ``/proc``
read could only guess. :meth:`ProcessTable.enrich` fills an event's process from the table and
attaches the ancestry (``ancestors[0]`` is the parent) up to ``depth`` generations, which is
what Falco's ``proc.pname``/``proc.aname[N]`` read.

Entries are replaced, never mutated, once published: an event's ancestor list points at table
entries directly (no copies on the hot path), and a later exec of that ancestor creates a new
entry instead of rewriting history an alert already carries.

A process can exit before we read ``/proc/<pid>`` (``/bin/true`` lives a millisecond). Such an
event keeps what the sensor saw and is flagged ``partial``; nothing raises. Exited processes
stay in a bounded graveyard for a few seconds so late events (audit records arrive after the
proc connector's exit notification) still find their process. The table is bounded (LRU
eviction, counted) so a fork bomb cannot exhaust our memory.

Reads sit on the sensor's hot path (one ``/proc`` read per exec, from the proc connector's
reader thread), so they use ``os.open``/``os.read`` through one directory descriptor
(:func:`read_file`), skip what a zombie no longer has, and :meth:`ProcessTable.get` takes no
lock (a dict lookup is atomic and published entries never change).
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from garrison.model.runtime import Event, Process

logger = logging.getLogger(__name__)

UpperLayerCheck = Callable[[int, str], bool | None]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _boot_time() -> float:
    """The epoch time of boot, to the microsecond: ``/proc/PID/stat`` start times count clock
    ticks since boot, and they are compared with event times (``btime`` in ``/proc/stat`` is whole
    seconds, too coarse to tell a recycled pid from its previous owner)."""
    # the two clocks are read back to back; a preemption between the reads (a loaded node) would
    # shift every start time by its length, so the tightest of a few bracketed reads is kept
    best, gap = 0.0, float("inf")
    for _ in range(5):
        before = time.clock_gettime(time.CLOCK_BOOTTIME)
        now = time.time()
        after = time.clock_gettime(time.CLOCK_BOOTTIME)
        if after - before < gap:
            best, gap = now - (before + after) / 2, after - before
    return best


_BOOT = _boot_time()


_O_READ = os.O_RDONLY | os.O_CLOEXEC
_O_DIR = os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY


def read_file(path: str, *, dir_fd: int | None = None, size: int = 4096) -> bytes:
    """The content of a small ``/proc`` (or ``/sys``) file; raises ``OSError``.

    Hand-written instead of ``open(path, "rb").read()`` or ``Path.read_bytes()``: those build a
    buffered file object and ``fstat`` it before reading, several times the cost of the three
    system calls this needs, and the sensor reads a handful of such files at every exec. A read
    shorter than the buffer is taken as the end of the file, so no extra read is spent waiting
    for an empty one: regular files and the ``/proc`` files read here (``stat``, ``status``,
    ``cgroup``, ``loginuid``, each generated in one piece, and ``cmdline``) fill the buffer up
    to their end. A multi-record seq file (``mountinfo``) may stop short: do not read it here.
    """
    fd = os.open(path, _O_READ, dir_fd=dir_fd)
    try:
        data = os.read(fd, size)
        if len(data) < size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_bytes(path: str, dir_fd: int | None = None) -> bytes | None:
    try:
        return read_file(path, dir_fd=dir_fd)
    except OSError:
        return None


def _readlink(path: str, dir_fd: int | None = None) -> str:
    try:
        return os.readlink(path, dir_fd=dir_fd)
    except OSError:
        return ""


def _status_int(status: bytes, key: bytes, base: int = 10) -> int | None:
    """The first number of the ``/proc/PID/status`` line ``key`` (``b"\nUid:"``), or ``None``."""
    at = status.find(key)
    if at < 0:
        return None
    end = status.find(b"\n", at + 1)
    fields = status[at + len(key) : end if end >= 0 else len(status)].split()
    try:
        return int(fields[0], base) if fields else None
    except ValueError:
        return None


#: start times closer than this are the same process (clock-tick resolution, clock conversions)
_SAME_START = 0.1


def start_time(pid: int, proc_root: str = "/proc") -> float | None:
    """Epoch start time of a live process from ``/proc/PID/stat``; ``None`` when it is gone."""
    try:
        fd = os.open(f"{proc_root}/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        stat = os.read(fd, 1024)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return _BOOT + int(stat[stat.rindex(b")") + 2 :].split()[19]) / _CLK_TCK
    except (ValueError, IndexError):
        return None


def read_proc(pid: int, proc_root: str = "/proc") -> Process | None:
    """Read one process from ``/proc``; ``None`` when it vanished (or is not a process).

    Every file is opened relative to one descriptor of ``/proc/PID`` (the kernel resolves the
    directory once, and every file read is of the same task); a final ``stat`` by path says
    whether the process was reaped meanwhile, which makes the whole read void.
    """
    base = f"{proc_root}/{pid}"
    try:
        dfd = os.open(base, _O_DIR)
    except OSError:
        return None
    try:
        return _read_proc_at(pid, base, dfd)
    finally:
        os.close(dfd)


def _read_proc_at(pid: int, base: str, dfd: int) -> Process | None:
    stat = _read_bytes("stat", dfd)
    if stat is None:
        return None
    try:
        lpar, rpar = stat.index(b"("), stat.rindex(b")")
        comm = stat[lpar + 1 : rpar].decode("utf-8", "replace")
        rest = stat[rpar + 2 :].split()
        ppid, pgid, sid, tty = int(rest[1]), int(rest[2]), int(rest[3]), int(rest[4])
        start = _BOOT + int(rest[19]) / _CLK_TCK
    except (ValueError, IndexError):
        return None
    state = rest[0]
    if state in (b"X", b"x"):
        # reaped while we read (the open directory keeps the task readable): its ppid reads 0
        return None
    # a zombie (state Z; a short-lived exec is often one by the time we read) has released its
    # memory and files: no command line, no exe or cwd link; its stat, status and loginuid remain
    alive = state != b"Z"
    raw_cmd = (_read_bytes("cmdline", dfd) or b"") if alive else b""
    argv = [a.decode("utf-8", "surrogateescape") for a in raw_cmd.split(b"\0")] if raw_cmd else []
    if argv and argv[-1] == "":
        argv.pop()
    exepath = _readlink("exe", dfd) if alive else ""
    if exepath.endswith(" (deleted)"):
        exepath = exepath[: -len(" (deleted)")]
    proc = Process(
        pid=pid,
        ppid=ppid,
        tid=pid,
        name=comm,
        exe=argv[0] if argv else "",
        exepath=exepath,
        args=argv[1:],
        cwd=_readlink("cwd", dfd) if alive else "",
        sid=sid,
        pgid=pgid,
        tty=tty,
        start_time=start,
        exe_from_memfd=exepath.startswith("/memfd:") if exepath else None,
    )
    try:
        # by path, not through the open directory: this fails once the process is reaped, and a
        # stat read during reaping says ppid 0 (the directory descriptor keeps the task readable)
        st = os.stat(base)
        proc.euid, proc.egid = st.st_uid, st.st_gid
    except OSError:
        return None
    status = _read_bytes("status", dfd)
    if status:
        proc.uid = _status_int(status, b"\nUid:")
        proc.gid = _status_int(status, b"\nGid:")
        proc.cap_permitted = _status_int(status, b"\nCapPrm:", 16)
        proc.cap_effective = _status_int(status, b"\nCapEff:", 16)
    loginuid = _read_bytes("loginuid", dfd)
    if loginuid:
        try:
            value = int(loginuid)
            proc.loginuid = -1 if value == 4294967295 else value
        except ValueError:
            pass
    return proc


_FIELDS = tuple(f.name for f in dataclasses.fields(Process))
_ALL = operator.attrgetter(*_FIELDS)  # every field, in constructor order
_MERGE_FIELDS = tuple(f.name for f in dataclasses.fields(Process) if f.name not in ("pid", "ancestors", "args", "tid"))
# what "unknown" means depends on the field: "" for text, 0 for ppid and tty, None for the rest
_FALSY = tuple(f.name for f in dataclasses.fields(Process) if f.name in _MERGE_FIELDS and f.default in ("", 0))
_OPTIONAL = tuple(f for f in _MERGE_FIELDS if f not in _FALSY)
_FALSY_GET = operator.attrgetter(*_FALSY)
_OPTIONAL_GET = operator.attrgetter(*_OPTIONAL)


def merge_into(dst: Process, src: Process) -> None:
    """Fill ``dst``'s empty fields from ``src`` (what the sensor saw wins over the table).

    Runs for every event a rule can match, so the field values are fetched with one
    ``attrgetter`` call per group and compared by the field's kind of "unknown" (``""``, ``0``
    for ``ppid``/``tty``, ``None``) rather than against all three: an int compared with a string
    takes Python's slow path of reflected comparisons.
    """
    for name, have, value in zip(_FALSY, _FALSY_GET(dst), _FALSY_GET(src), strict=True):
        if not have and value:
            setattr(dst, name, value)
    for name, have, value in zip(_OPTIONAL, _OPTIONAL_GET(dst), _OPTIONAL_GET(src), strict=True):
        if have is None and value is not None:
            setattr(dst, name, value)
    if not dst.args and src.args:
        dst.args = list(src.args)


def copy_process(proc: Process) -> Process:
    """A shallow copy (lists and dicts shared), as ``dataclasses.replace(proc)`` makes, in a
    fraction of its time: one ``attrgetter`` call and a positional construction."""
    return Process(*_ALL(proc))


@dataclasses.dataclass(slots=True)
class TableStats:
    size: int = 0
    scanned: int = 0
    evicted: int = 0
    vanished: int = 0  # events whose process was gone before enrichment (partial events)
    proc_reads: int = 0


class ProcessTable:
    """Bounded pid -> :class:`Process` map with ancestry; thread-safe."""

    def __init__(
        self,
        *,
        max_size: int = 65536,
        depth: int = 8,
        graveyard_seconds: float = 5.0,
        upper_layer: UpperLayerCheck | None = None,
        proc_root: str = "/proc",
    ) -> None:
        self.max_size = max_size
        self.depth = depth
        self.graveyard_seconds = graveyard_seconds
        self.upper_layer = upper_layer
        self.proc_root = proc_root
        # False when a complete exec source (audit) feeds the table: the proc connector's exec
        # notification then needs no /proc read of its own
        self.read_on_exec = True
        self._procs: OrderedDict[int, Process] = OrderedDict()
        self._dead: OrderedDict[int, tuple[float, Process]] = OrderedDict()
        self._exits: dict[int, float] = {}  # pid -> time of the exit event of its (dead) entry
        self._lock = threading.RLock()
        self.stats = TableStats()

    def __len__(self) -> int:
        return len(self._procs)

    def get(self, pid: int) -> Process | None:
        # no lock: a dict lookup is atomic, and entries are replaced, never mutated, once published
        # (the pipeline's worker reads while the proc connector's reader thread writes; taking
        # the lock here made the two threads queue for it at every event)
        proc = self._procs.get(pid)
        if proc is None and (dead := self._dead.get(pid)) is not None:
            proc = dead[1]
        return proc

    def scan(self) -> int:
        """Load every process under ``/proc``; returns how many were read."""
        count = 0
        try:
            names = os.listdir(self.proc_root)
        except OSError:
            return 0
        for name in names:
            if name.isdigit() and (proc := read_proc(int(name), self.proc_root)) is not None:
                self._put(proc)
                count += 1
        self.stats.scanned += count
        return count

    def _put(self, proc: Process) -> None:
        with self._lock:
            if self.upper_layer is not None and proc.exepath and proc.exe_upper_layer is None:
                try:
                    proc.exe_upper_layer = self.upper_layer(proc.pid, proc.exepath)
                except Exception:
                    logger.debug("upper-layer check failed for pid %d", proc.pid, exc_info=True)
            self._procs[proc.pid] = proc
            self._procs.move_to_end(proc.pid)
            self._dead.pop(proc.pid, None)
            self._exits.pop(proc.pid, None)
            while len(self._procs) > self.max_size:
                self._procs.popitem(last=False)
                self.stats.evicted += 1
            self.stats.size = len(self._procs)

    def _load(self, pid: int) -> Process | None:
        self.stats.proc_reads += 1
        proc = read_proc(pid, self.proc_root)
        if proc is not None:
            self._put(proc)
        return proc

    def died_before(self, pid: int, when: float) -> bool:
        """Whether the table's entry for ``pid`` is a process that exited before ``when``: an
        event at ``when`` then belongs to a newer owner of the pid that the proc connector has not
        reported yet (the previous owner's details must not be used for it)."""
        died = self._exits.get(pid)
        return died is not None and pid not in self._procs and died < when - _SAME_START

    def recycled(self, pid: int, when: float) -> bool:
        """Whether ``pid`` now names a newer process than the table's entry, one that started
        before ``when`` (an event of the newer process); the entry is then replaced by a fresh
        read. pid_max is often 32768: under process churn a pid is reused within seconds, and an
        event whose process the proc connector has not reported yet would otherwise be enriched
        with the previous owner's command line, ancestry and container."""
        known = self.get(pid)
        if known is None or not known.start_time:
            return False
        live = start_time(pid, self.proc_root)
        if live is None or live <= known.start_time + _SAME_START or live > when + _SAME_START:
            return False  # gone (nothing to compare), the same process, or newer than the event
        self._load(pid)
        return True

    def lookup(self, pid: int) -> Process | None:
        """The table entry, reading ``/proc`` once when the pid is unknown."""
        if pid <= 0:
            return None
        return self.get(pid) or self._load(pid)

    def observe(self, event: Event) -> bool:
        """Update the table from a lifecycle event (proc connector or audit exec).

        Returns ``False`` when the event's process was looked for in ``/proc`` and is gone
        already (an exec read that found nothing), so callers skip reading more of it.
        """
        p = event.proc
        pid = p.pid
        etype = event.type
        if etype == "clone":
            parent = self.lookup(p.ppid)
            if parent is not None:
                child = copy_process(parent)
                child.pid = child.tid = pid
                child.ppid = p.ppid
                child.start_time = event.time
                child.args = list(parent.args)
                self._put(child)
            else:
                self._load(pid)
        elif etype in ("execve", "execveat"):
            if event.sensor == "audit" and p.exepath:
                known = self.get(pid)
                fresh = dataclasses.replace(p, ancestors=[])
                fresh.args = list(p.args)
                if known is not None:
                    merge_into(fresh, known)
                    fresh.exe_from_memfd = fresh.exepath.startswith("/memfd:")
                    fresh.exe_upper_layer = None
                with self._lock:
                    dead = self._dead.get(pid)
                    if dead is not None:  # exited before its exec record arrived: keep it buried
                        self._dead[pid] = (dead[0], fresh)
                        return True
                self._put(fresh)
            elif self.read_on_exec:
                proc = read_proc(pid, self.proc_root)
                self.stats.proc_reads += 1
                if proc is None:
                    return False
                self._put(proc)
        elif etype == "procexit":
            with self._lock:
                gone = self._procs.pop(pid, None)
                now = time.monotonic()
                if gone is not None:
                    self._dead[pid] = (now, gone)
                    self._exits[pid] = event.time
                while self._dead and (
                    len(self._dead) > self.max_size or next(iter(self._dead.values()))[0] < now - self.graveyard_seconds
                ):
                    old_pid, _ = self._dead.popitem(last=False)
                    self._exits.pop(old_pid, None)
                self.stats.size = len(self._procs)
        elif etype in ("setuid", "setgid", "setsid", "prctl"):
            known = self.get(pid)
            if known is not None:
                updated = copy_process(known)
                for name in ("uid", "euid", "gid", "egid", "sid", "name"):
                    if (value := getattr(p, name)) not in (None, ""):
                        setattr(updated, name, value)
                self._put(updated)
        return True

    def ancestry(self, proc: Process) -> list[Process]:
        """Parents up to ``depth`` generations; stops at pid 1, a loop or an unknown pid."""
        out: list[Process] = []
        seen = {proc.pid}
        ppid = proc.ppid
        while len(out) < self.depth and ppid > 0 and ppid not in seen:
            parent = self.lookup(ppid)
            if parent is None:
                break
            out.append(parent)
            seen.add(ppid)
            ppid = parent.ppid
        return out

    def enrich(self, event: Event) -> Event:
        """Complete ``event.proc`` from the table and attach its ancestry; flag vanished processes."""
        p = event.proc
        if p.pid <= 0:
            event.partial = True
            return event
        known = self.lookup(p.pid)
        if known is None:
            event.partial = True
            self.stats.vanished += 1
        else:
            merge_into(p, known)
        if not p.ancestors:
            p.ancestors = self.ancestry(p)
        return event
