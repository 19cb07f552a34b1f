"""Drift detection: does an executable come from the container's image, or was it added later?

A container's root is an overlay mount: read-only image layers (``lowerdir``) under a writable
``upperdir`` that receives every file created or modified after the container started. A file
exists in the upper directory exactly when it was written at runtime, so the question "was this
binary in the image?" becomes "does ``upperdir/<path>`` exist?". The steps, per file:

1. ``readlink`` of the executable (``/proc/PID/exe``, or the descriptor fanotify hands us at an
   exec permission event): ``/memfd:NAME (deleted)`` is an anonymous memfd (fileless execution);
   a trailing `` (deleted)`` is a binary removed after it was started.
2. ``stat`` of the file gives its device; the mount with that ``major:minor`` in
   ``/proc/PID/mountinfo`` (the longest mount point containing the path) gives the filesystem:
   ``tmpfs``/``ramfs`` (``/dev/shm``, ``--tmpfs`` mounts) is ``"tmpfs"``; ``overlay`` is
   ``"upper"`` when ``upperdir`` + the path relative to the filesystem root exists, else
   ``"image"``. Any other filesystem (a volume, a host bind mount) is ``"unknown"``.

The superblock options (``upperdir=``) are the same in every mount namespace, and the path of
an fd opened inside the container resolves relative to the container's root, so the process's
own ``mountinfo`` answers for both ``/proc/PID/exe`` and fanotify descriptors. Parsed mount tables
are cached by their text (:class:`MountTables`).

:class:`DriftGuard` is the fanotify exec-permission decision hook (``decide(event) -> bool``,
``False`` = deny): it denies executables whose origin is in its ``deny`` set (default
``upper``, ``memfd``, ``tmpfs``) for container processes only, and never raises: anything it
cannot classify is allowed and counted, so a decision hook can never wedge an exec.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from garrison.core.errors import InputError
from garrison.model.runtime import Container, Event

logger = logging.getLogger(__name__)

Origin = Literal["image", "upper", "memfd", "tmpfs", "deleted", "unknown"]
ORIGINS: tuple[Origin, ...] = ("image", "upper", "memfd", "tmpfs", "deleted", "unknown")
TMPFS_TYPES = frozenset({"tmpfs", "ramfs", "devtmpfs"})

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(value: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), value)


@dataclass(frozen=True, slots=True)
class Mount:
    mount_id: int
    dev: tuple[int, int]
    root: str  # path inside the filesystem that is mounted here
    mount_point: str
    fstype: str
    source: str
    super_options: dict[str, str] = field(default_factory=dict)

    @property
    def upperdir(self) -> str:
        return self.super_options.get("upperdir", "")

    @property
    def lowerdirs(self) -> list[str]:
        lower = self.super_options.get("lowerdir", "")
        return [p for p in lower.split(":") if p] if lower else []


def parse_mountinfo(text: str) -> list[Mount]:
    """``/proc/PID/mountinfo`` (proc(5)) as :class:`Mount` records; :class:`InputError` on a bad line."""
    mounts: list[Mount] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        rest = tail.split()
        if not sep or len(fields) < 6 or len(rest) < 2:
            raise InputError(f"line {number} is not a mountinfo record: {line[:80]!r}", input_name="mountinfo")
        major, colon, minor = fields[2].partition(":")
        if not (colon and fields[0].isdigit() and major.isdigit() and minor.isdigit()):
            raise InputError(f"line {number} has a bad mount id or device: {line[:80]!r}", input_name="mountinfo")
        options: dict[str, str] = {}
        if len(rest) > 2:
            for opt in rest[2].split(","):
                key, _, value = opt.partition("=")
                options[key] = _unescape(value)
        mounts.append(
            Mount(
                mount_id=int(fields[0]),
                dev=(int(major), int(minor)),
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fstype=rest[0],
                source=_unescape(rest[1]),
                super_options=options,
            )
        )
    return mounts


def _under(path: str, mount_point: str) -> bool:
    return mount_point == "/" or path == mount_point or path.startswith(mount_point.rstrip("/") + "/")


def find_mount(mounts: Iterable[Mount], dev: tuple[int, int], path: str) -> Mount | None:
    """The mount of device ``dev`` whose mount point is the longest prefix of ``path``."""
    same_dev = [m for m in mounts if m.dev == dev]
    under = [m for m in same_dev if _under(path, m.mount_point)]
    if under:
        return max(under, key=lambda m: len(m.mount_point))
    return same_dev[-1] if same_dev else None


def path_in_fs(mount: Mount, path: str) -> str:
    """``path`` (as seen by the process) relative to the root of the mounted filesystem."""
    if _under(path, mount.mount_point):
        rest = path[len(mount.mount_point.rstrip("/")) :] if mount.mount_point != "/" else path
    else:
        rest = path
    return "/" + "/".join(p for p in (mount.root.strip("/"), rest.strip("/")) if p)


def classify_link(link: str) -> Origin | None:
    """What the exe link text alone says: memfd, deleted, or ``None`` (look at the filesystem)."""
    if link.startswith("/memfd:"):
        return "memfd"
    if link.endswith(" (deleted)"):
        return "deleted"
    return None


def classify_file(mounts: Iterable[Mount], dev: tuple[int, int], path: str) -> Origin:
    """Origin of an existing file of device ``dev`` at ``path`` under the given mount table."""
    mount = find_mount(mounts, dev, path)
    if mount is None:
        return "unknown"
    if mount.fstype in TMPFS_TYPES:
        return "tmpfs"
    if mount.fstype == "overlay" and mount.upperdir:
        upper = mount.upperdir.rstrip("/") + path_in_fs(mount, path)
        return "upper" if os.path.lexists(upper) else "image"
    return "unknown"


class MountTables:
    """Parsed ``/proc/PID/mountinfo`` tables, cached by their text.

    The text is re-read on every call (the kernel generates it in microseconds) and only the
    parse is cached: mount namespace inode numbers and overlay device numbers are both reused
    after a container exits, so neither is a safe cache key on its own.
    """

    def __init__(self, proc: Path = Path("/proc"), max_entries: int = 256) -> None:
        self._proc = proc
        self._max = max_entries
        self._cache: dict[str, list[Mount]] = {}
        self._lock = threading.Lock()

    def mounts(self, pid: int) -> list[Mount]:
        """Mounts of ``pid``'s namespace; raises ``OSError`` when the process is gone."""
        text = (self._proc / str(pid) / "mountinfo").read_text()
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        parsed = parse_mountinfo(text)
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[text] = parsed
        return parsed


_TABLES = MountTables()


def exe_origin(pid: int, *, tables: MountTables | None = None, proc: Path = Path("/proc")) -> Origin:
    """Where the running executable of ``pid`` comes from; ``"unknown"`` when the process is gone."""
    tables = tables or _TABLES
    exe = proc / str(pid) / "exe"
    try:
        link = os.readlink(exe)
        early = classify_link(link)
        if early is not None:
            return early
        st = os.stat(exe)
        dev = (os.major(st.st_dev), os.minor(st.st_dev))
        return classify_file(tables.mounts(pid), dev, link)
    except (OSError, InputError) as e:
        logger.debug("exe_origin(%d): %s", pid, e)
        return "unknown"


def fd_origin(pid: int, fd: int, *, tables: MountTables | None = None) -> Origin:
    """Origin of the file behind our descriptor ``fd`` (fanotify's), as seen by process ``pid``."""
    tables = tables or _TABLES
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
        early = classify_link(link)
        if early is not None:
            return early
        st = os.fstat(fd)
        dev = (os.major(st.st_dev), os.minor(st.st_dev))
        return classify_file(tables.mounts(pid), dev, link)
    except (OSError, InputError) as e:
        logger.debug("fd_origin(%d, %d): %s", pid, fd, e)
        return "unknown"


def path_origin(pid: int, path: str, *, tables: MountTables | None = None) -> Origin:
    """Origin of ``path`` as seen from ``pid``'s root (``/proc/PID/root`` + path)."""
    tables = tables or _TABLES
    early = classify_link(path)
    if early is not None:
        return early
    try:
        st = os.stat(f"/proc/{pid}/root{path}")
        dev = (os.major(st.st_dev), os.minor(st.st_dev))
        return classify_file(tables.mounts(pid), dev, path)
    except (OSError, InputError) as e:
        logger.debug("path_origin(%d, %s): %s", pid, path, e)
        return "unknown"


@dataclass(slots=True)
class DriftStats:
    decisions: int = 0
    denied: int = 0
    unknown: int = 0
    errors: int = 0


class DriftGuard:
    """Exec-permission decision hook: deny executables that are not from the container's image.

    ``decide(event)`` reads, in order: ``event.args["fd"]`` or, for a permission event
    (``args["perm"]``), ``event.fd.num`` (the descriptor fanotify passes, valid while the decision
    is pending), then the path in ``event.fd.name`` or ``event.proc.exepath``. It returns
    ``True`` (allow) for host processes unless ``host=True``, for origins not in ``deny``, and
    whenever it cannot tell. ``deny_paths`` / ``allow_paths`` are glob-free path prefixes that
    force a decision regardless of origin (a deny list for known-bad tools; an allow list for a
    sanctioned runtime installer). ``on_decision`` is called with every verdict (for alerts).
    """

    def __init__(
        self,
        *,
        deny: Iterable[Origin] = ("upper", "memfd", "tmpfs"),
        deny_paths: Iterable[str] = (),
        allow_paths: Iterable[str] = (),
        host: bool = False,
        container_of: Callable[[int], Container] | None = None,
        on_decision: Callable[[Event, Origin, bool], None] | None = None,
        tables: MountTables | None = None,
    ) -> None:
        unknown = set(deny) - set(ORIGINS)
        if unknown:
            raise InputError(f"unknown origin(s) {sorted(unknown)}; known: {list(ORIGINS)}", input_name="drift deny")
        self.deny = frozenset(deny)
        self.deny_paths = tuple(deny_paths)
        self.allow_paths = tuple(allow_paths)
        self.host = host
        self.container_of = container_of
        self.on_decision = on_decision
        self.tables = tables or MountTables()
        self.stats = DriftStats()

    def origin(self, event: Event) -> Origin:
        pid = event.proc.pid
        fd = event.args.get("fd")
        if not isinstance(fd, int) and event.args.get("perm") is True and event.fd is not None:
            fd = event.fd.num  # the fanotify descriptor, open until the permission event is answered
        if isinstance(fd, int) and fd >= 0:
            return fd_origin(pid, fd, tables=self.tables)
        path = event.fd.name if event.fd is not None and event.fd.name else event.proc.exepath
        if not path:
            return "unknown"
        return path_origin(pid, path, tables=self.tables)

    def _path(self, event: Event) -> str:
        if event.fd is not None and event.fd.name:
            return event.fd.name
        return event.proc.exepath

    def decide(self, event: Event) -> bool:
        """``True`` to allow the exec, ``False`` to deny it; never raises."""
        self.stats.decisions += 1
        try:
            container = event.container
            if self.container_of is not None and container.is_host:
                container = self.container_of(event.proc.pid)
            if container.is_host and not self.host:
                return True
            path = self._path(event)
            if path and any(path.startswith(p) for p in self.allow_paths):
                verdict, origin = True, self.origin(event)
            elif path and any(path.startswith(p) for p in self.deny_paths):
                verdict, origin = False, self.origin(event)
            else:
                origin = self.origin(event)
                verdict = origin not in self.deny
            if origin == "unknown":
                self.stats.unknown += 1
            if not verdict:
                self.stats.denied += 1
            if self.on_decision is not None:
                self.on_decision(event, origin, verdict)
            return verdict
        except Exception as e:  # a decision hook must answer, whatever happens
            self.stats.errors += 1
            logger.warning("drift decision failed, allowing: %s", e)
            return True

    __call__ = decide


def annotate(event: Event, *, tables: MountTables | None = None) -> Origin:
    """Fill ``event.proc.exe_upper_layer`` / ``exe_from_memfd`` from :func:`exe_origin` (for exec events)."""
    origin = exe_origin(event.proc.pid, tables=tables)
    if origin != "unknown":
        event.proc.exe_upper_layer = origin == "upper"
        event.proc.exe_from_memfd = origin == "memfd"
    return origin
