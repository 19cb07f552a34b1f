"""Container attribution: which container (and Kubernetes pod) a process belongs to.

Two steps, as Falco does it:

1. **Identity from the cgroup path.** Every runtime puts a container's processes in a cgroup
   whose last component spells the 64-hex container ID, with a runtime-specific prefix and
   suffix (:data:`LAYOUTS`): ``libpod-<id>.scope`` (podman, systemd driver),
   ``/libpod_parent/libpod-<id>`` (podman, cgroupfs driver), ``cri-containerd-<id>.scope`` and
   ``...slice:cri-containerd:<id>`` (containerd), ``crio-<id>.scope`` / ``crio-<id>`` (CRI-O),
   ``docker-<id>.scope`` / ``/docker/<id>`` (Docker), and a bare ``/<id>`` under ``kubepods``
   (containerd with the cgroupfs driver). The layouts are Falco's (libsinsp ``runc.cpp`` and the
   container plugin's matchers): the ID must be exactly 64 hex characters, which is why the
   monitor cgroups ``libpod-conmon-<id>.scope`` and ``crio-conmon-<id>.scope`` do not match and
   conmon counts as a host process. Every line of ``/proc/PID/cgroup`` is tried, so cgroup v1
   (one line per hierarchy), v2 (``0::``) and hybrid hosts all work. As in Falco, any other leaf
   that is exactly 64 hex characters counts as a Docker container (cgroupfs driver, custom parent). The pod UID is taken from
   the ``pod<uid>`` component when the path has one (systemd spells its dashes as ``_``).
2. **Metadata from the runtime**, once per container: ``podman inspect`` / ``docker inspect``
   JSON (:func:`container_from_inspect`) gives name, image name/ID/digest, labels and whether
   the container is privileged; the Kubernetes identity comes from the labels CRI sets on every
   container (``io.kubernetes.pod.name``, ``.pod.namespace``, ``.pod.uid``,
   ``io.kubernetes.container.name``).

Results are cached by the text of ``/proc/PID/cgroup``, so a cached resolve costs one small
``/proc`` read and a dict lookup. Runtime lookups are done by shelling out to the runtime's CLI
rather than speaking its REST socket: podman's socket is a systemd-activated service that is
not running on nodes without systemd, and the CLI reads the same state database.

A process that exits before it is resolved yields :data:`UNKNOWN` (``id == ""``) and is counted
in :attr:`ContainerResolver.stats`; it is never an exception.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError
from garrison.model.runtime import Container
from garrison.runtime.process import read_file

logger = logging.getLogger(__name__)

SHORT_ID_LEN = 12

# CRI label keys (kubelet's pkg/kubelet/types/labels.go).
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"


def _layout(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("<id>", r"(?P<id>[0-9a-fA-F]{64})"))


# (runtime, pattern) tried in order on each cgroup path; the first match wins. Patterns are
# anchored at the end; ``.scope`` layouts may be followed by sub-cgroups (rootless podman's
# ``/container``, systemd inside the container).
LAYOUTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("podman", _layout(r"/libpod-<id>(?:\.scope(?:/.*)?)?$")),
    ("containerd", _layout(r"/cri-containerd-<id>\.scope(?:/.*)?$")),
    ("containerd", _layout(r":cri-containerd:<id>$")),
    ("cri-o", _layout(r"/crio-<id>(?:\.scope(?:/.*)?)?$")),
    ("docker", _layout(r"/docker-<id>\.scope(?:/.*)?$")),
    ("docker", _layout(r"/docker/<id>$")),
    ("containerd", _layout(r"/kubepods[^:]*/<id>$")),
    ("docker", _layout(r"/<id>$")),  # Falco's non-systemd Docker layout: any "/<64 hex>" leaf
)

_POD_UID = re.compile(r"pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})")

UNKNOWN = Container(id="", name="<unknown>")


@dataclass(frozen=True, slots=True)
class CgroupMatch:
    """What a cgroup path says about its container."""

    runtime: str
    full_id: str
    pod_uid: str = ""
    path: str = ""  # the cgroup path that matched (relative to the hierarchy root)

    @property
    def id(self) -> str:
        return self.full_id[:SHORT_ID_LEN]


def match_cgroup_path(path: str) -> CgroupMatch | None:
    """Match one cgroup path (the part after ``hierarchy:controllers:``) against :data:`LAYOUTS`."""
    for runtime, pattern in LAYOUTS:
        m = pattern.search(path)
        if m:
            pod = _POD_UID.search(path)
            pod_uid = pod.group(1).replace("_", "-").lower() if pod else ""
            return CgroupMatch(runtime, m.group("id").lower(), pod_uid, path)
    return None


def parse_proc_cgroup(text: str) -> list[tuple[str, str, str]]:
    """``/proc/PID/cgroup`` as ``(hierarchy_id, controllers, path)`` triples.

    Raises :class:`InputError` on a line that does not have the three colon-separated fields
    the kernel writes (the path itself may contain colons: containerd's ``slice:cri-containerd:``).
    """
    out: list[tuple[str, str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].startswith("/"):
            raise InputError(f"line {number} is not 'id:controllers:/path': {line[:80]!r}", input_name="cgroup")
        out.append((parts[0], parts[1], parts[2]))
    return out


def match_proc_cgroup(text: str) -> CgroupMatch | None:
    """The container a ``/proc/PID/cgroup`` text names, or ``None`` for a host process.

    The unified (``0::``) line is preferred, then the v1 hierarchies in the order the kernel
    lists them; all layouts are tried on each line.
    """
    entries = parse_proc_cgroup(text)
    entries.sort(key=lambda e: e[0] != "0")
    for _, _, path in entries:
        found = match_cgroup_path(path)
        if found:
            return found
    return None


def split_image(ref: str) -> tuple[str, str, str]:
    """``registry/repo:tag@sha256:...`` -> ``(repository, tag, digest)``; a registry port is not a tag."""
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    repo, tag = ref, ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        repo, tag = ref[:colon], ref[colon + 1 :]
    return repo, tag, digest


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{what} is {type(value).__name__}, expected an object", input_name="inspect")
    return {str(k): str(v) for k, v in value.items()}


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{what} is {type(value).__name__}, expected an object", input_name="inspect")
    return value


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what} is {type(value).__name__}, expected a string", input_name="inspect")
    return value


def container_from_inspect(data: Any, runtime: str) -> Container:
    """Build a :class:`Container` from one ``podman inspect`` or ``docker inspect`` object.

    Podman names the image in ``ImageName`` and its ID in ``Image``; Docker puts the name in
    ``Config.Image`` and a ``sha256:``-prefixed ID in ``Image``. Either may carry the CRI labels.
    Raises :class:`InputError` when the JSON does not have the shape those tools print.
    """
    if isinstance(data, list):
        if len(data) != 1:
            raise InputError(f"expected one container, got {len(data)}", input_name="inspect")
        data = data[0]
    if not isinstance(data, Mapping):
        raise InputError(f"expected a JSON object, got {type(data).__name__}", input_name="inspect")
    full_id = _text(data.get("Id"), "Id")
    if not re.fullmatch(r"[0-9a-fA-F]{12,64}", full_id):
        raise InputError(f"Id {full_id[:80]!r} is not a container ID", input_name="inspect")
    config = _obj(data.get("Config"), "Config")
    host_config = _obj(data.get("HostConfig"), "HostConfig")
    labels = _str_map(config.get("Labels"), "Config.Labels")
    image = _text(data.get("ImageName"), "ImageName") or _text(config.get("Image"), "Config.Image")
    image_id = _text(data.get("Image"), "Image").removeprefix("sha256:")
    digest = _text(data.get("ImageDigest"), "ImageDigest")
    repo, tag, ref_digest = split_image(image)
    privileged = host_config.get("Privileged")
    if privileged is not None and not isinstance(privileged, bool):
        raise InputError("HostConfig.Privileged is not a boolean", input_name="inspect")
    name = labels.get(CONTAINER_NAME) or _text(data.get("Name"), "Name").lstrip("/")
    return Container(
        id=full_id[:SHORT_ID_LEN].lower(),
        full_id=full_id.lower(),
        runtime=runtime,
        name=name,
        image=image,
        image_id=image_id,
        image_repository=repo,
        image_tag=tag,
        image_digest=digest or ref_digest,
        privileged=privileged,
        labels=labels,
        pod_name=labels.get(POD_NAME, ""),
        pod_namespace=labels.get(POD_NAMESPACE, ""),
        pod_uid=labels.get(POD_UID, ""),
    )


# A metadata source: (runtime, full container ID) -> Container, or None when it does not know it.
MetadataSource = Callable[[str, str], Container | None]


@dataclass(slots=True)
class CliInspector:
    """Metadata through ``<tool> inspect --type container <id>`` (podman, docker)."""

    runtime: str
    argv: Sequence[str]
    timeout: float = 10.0

    def available(self) -> bool:
        return shutil.which(self.argv[0]) is not None

    def __call__(self, runtime: str, full_id: str) -> Container | None:
        if runtime != self.runtime or not self.available():
            return None
        try:
            proc = subprocess.run(
                [*self.argv, "inspect", "--type", "container", full_id],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            logger.warning("%s inspect %s failed: %s", self.argv[0], full_id[:12], e)
            return None
        if proc.returncode != 0:
            logger.info("%s inspect %s: %s", self.argv[0], full_id[:12], proc.stderr.strip()[:200])
            return None
        try:
            return container_from_inspect(json.loads(proc.stdout), self.runtime)
        except (ValueError, InputError) as e:
            logger.warning("%s inspect %s: unreadable output: %s", self.argv[0], full_id[:12], e)
            return None


def default_sources() -> list[MetadataSource]:
    return [
        CliInspector("podman", ("podman", "--events-backend=file")),
        CliInspector("docker", ("docker",)),
    ]


@dataclass(slots=True)
class ResolverStats:
    lookups: int = 0
    cache_hits: int = 0
    runtime_queries: int = 0
    metadata_missing: int = 0  # a container whose runtime did not answer (ID-only attribution)
    vanished: int = 0  # processes gone before they could be resolved


@dataclass(slots=True)
class _Entry:
    container: Container
    cgroup: CgroupMatch | None


_LIVE: dict[str, int] = {}  # full container id -> the live process the last scan found


def live_pid(container: Container, pid: int, *, oldest: bool = False) -> int:
    """``pid`` while it lives, else a live process of the same container (``pid`` if none is found);
    with ``oldest``, the container's longest-running process (its init, most likely: what a
    container-wide action should act through, not a process that may exit the next moment).

    The fallback scans ``/proc/*/cgroup`` for the container's full id: a response is rare, and a
    scan of a node's processes takes milliseconds. The pipeline also asks at every exec of a
    process that is gone already (its binary is judged through a live process of the container),
    so the answer of the last scan is remembered per container and tried first.
    """
    full_id = container.full_id
    if container.is_host or len(full_id) < 12:
        return pid

    wanted = full_id.encode()

    def usable(candidate: int) -> bool:
        try:
            if wanted not in read_file(f"/proc/{candidate}/cgroup"):
                return False
            os.stat(f"/proc/{candidate}/ns/net")  # not a zombie on its way out
            return True
        except OSError:
            return False

    if not oldest:
        if usable(pid):
            return pid
        hint = _LIVE.get(full_id)
        if hint is not None and usable(hint):
            return hint
    best, best_start = pid, float("inf")
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and usable(int(entry.name)):
            if not oldest:
                if len(_LIVE) >= 1024:
                    _LIVE.clear()
                _LIVE[full_id] = int(entry.name)
                return int(entry.name)
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    start = int(fh.read().rsplit(")", 1)[1].split()[19])
            except (OSError, IndexError, ValueError):
                continue
            if start < best_start:
                best, best_start = int(entry.name), start
    return best


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 (unified) hierarchy is mounted: ``/sys/fs/cgroup`` on pure v2 systems,
    ``/sys/fs/cgroup/unified`` in hybrid mode."""
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "cgroup2":
                    return Path(parts[1])
    except OSError:
        pass
    return None


class ContainerResolver:
    """``resolve(pid) -> Container``, cached by cgroup; thread-safe."""

    def __init__(
        self,
        sources: Iterable[MetadataSource] | None = None,
        *,
        proc: Path = Path("/proc"),
        max_entries: int = 4096,
    ) -> None:
        self._sources = list(default_sources() if sources is None else sources)
        self._proc = proc
        self._proc_dir = str(proc)
        self._max = max_entries
        self._by_cgroup: dict[str, _Entry] = {}
        self._by_id: dict[str, Container] = {}
        self._lock = threading.Lock()
        self.stats = ResolverStats()
        self._cgroup_paths: dict[int, str] = {}
        self._scanned = 0.0
        self._missing: dict[int, float] = {}  # cgroup ids a scan did not find -> when (not rescanned for a second)
        #: whether a cgroup id's "host" answer can be trusted: on pure cgroup v2 every container has
        #: its own v2 cgroup; in hybrid mode only once a container was found by its v2 cgroup (a
        #: runtime that leaves containers in a service's v2 cgroup would make them look like host)
        mount = cgroup2_mount()
        self.v2_places_containers = mount is not None and mount == Path("/sys/fs/cgroup")

    def cgroup_text(self, pid: int) -> str:
        """Raw ``/proc/PID/cgroup``; raises ``OSError`` when the process is gone.

        Read with :func:`~garrison.runtime.process.read_file` (three system calls) rather than
        ``Path.read_text``: the pipeline reads it at every fork and exec.
        """
        return read_file(f"{self._proc_dir}/{pid}/cgroup").decode("utf-8", "surrogateescape")

    def resolve(self, pid: int, fallback_pids: Iterable[int] = ()) -> Container:
        """The container of ``pid`` (``id == "host"`` for host processes).

        When ``pid`` is gone, ``fallback_pids`` (its ancestors, parent first) are tried; when all
        are gone the result is :data:`UNKNOWN`.
        """
        self.stats.lookups += 1
        for candidate in (pid, *fallback_pids):
            try:
                text = self.cgroup_text(candidate)
            except OSError:
                continue
            return self._entry(text).container
        self.stats.vanished += 1
        return UNKNOWN

    def cgroup_match(self, pid: int) -> CgroupMatch | None:
        """The cgroup match of ``pid`` (``None`` for a host process); raises ``OSError`` if gone."""
        return self._entry(self.cgroup_text(pid)).cgroup

    def resolve_cgroup(self, text: str) -> Container:
        """The container a ``/proc/PID/cgroup`` text belongs to (for sensors that carry the cgroup)."""
        return self._entry(text).container

    def resolve_cgroup_id(self, cgroup_id: int) -> Container | None:
        """The container of a cgroup v2 id (what BPF's ``cgroup`` builtin reports: the inode of the
        cgroup's directory), or ``None`` when no such cgroup exists (any more). Sensors that carry
        the id attribute events of processes that are gone before anyone reads ``/proc``."""
        path = self._cgroup_paths.get(cgroup_id)
        if path is None:
            # a cgroup created since the last scan (a container started a moment ago, the usual
            # case for an unknown id) is looked for at once; an id a scan did not find (a cgroup
            # removed already) is not looked for again for a second
            now = time.monotonic()
            if now - self._missing.get(cgroup_id, -2.0) < 1.0:
                return None
            self._scan_cgroups()
            path = self._cgroup_paths.get(cgroup_id)
            if path is None:
                if len(self._missing) > 4096:
                    self._missing.clear()
                self._missing[cgroup_id] = now
                return None
        found = self._entry(f"0::{path}\n").container
        if not found.is_host:
            self.v2_places_containers = True
        return found

    def _scan_cgroups(self) -> None:
        """Map every cgroup v2 directory's inode to its path (at most 50 scans a second; ids no
        scan finds are not rescanned for, see :meth:`resolve_cgroup_id`)."""
        now = time.monotonic()
        if now - self._scanned < 0.02:
            return
        self._scanned = now
        root = cgroup2_mount()
        if root is None:
            return
        found: dict[int, str] = {}
        for dirpath, _dirs, _files in os.walk(root):
            try:
                rel = os.path.relpath(dirpath, root)
                found[os.stat(dirpath).st_ino] = "/" if rel == "." else "/" + rel
            except OSError:
                continue
        self._cgroup_paths = found

    def forget(self, full_id: str) -> None:
        """Drop a container from the cache (on a runtime's container-removed event)."""
        with self._lock:
            self._by_id.pop(full_id, None)
            for key in [k for k, e in self._by_cgroup.items() if e.container.full_id == full_id]:
                del self._by_cgroup[key]

    def _entry(self, text: str) -> _Entry:
        hit = self._by_cgroup.get(text)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit
        with self._lock:
            hit = self._by_cgroup.get(text)
            if hit is not None:
                return hit
            try:
                found = match_proc_cgroup(text)
            except InputError as e:
                logger.warning("unreadable cgroup file: %s", e)
                found = None
            container = Container() if found is None else self._metadata(found)
            entry = _Entry(container, found)
            if len(self._by_cgroup) >= self._max:
                self._by_cgroup.clear()
            self._by_cgroup[text] = entry
            return entry

    def _metadata(self, found: CgroupMatch) -> Container:
        known = self._by_id.get(found.full_id)
        if known is not None:
            return known
        container: Container | None = None
        for source in self._sources:
            self.stats.runtime_queries += 1
            container = source(found.runtime, found.full_id)
            if container is not None:
                break
        if container is None:
            self.stats.metadata_missing += 1
            container = Container(id=found.id, full_id=found.full_id, runtime=found.runtime)
        if not container.pod_uid and found.pod_uid:
            container.pod_uid = found.pod_uid
        self._by_id[found.full_id] = container
        return container


@dataclass(slots=True)
class CgroupDirs:
    """Where a container's cgroup lives in the mounted hierarchies (for the freezer and friends)."""

    unified: Path | None = None  # cgroup v2 directory (has cgroup.freeze)
    freezer: Path | None = None  # cgroup v1 freezer directory (has freezer.state)
    extra: dict[str, Path] = field(default_factory=dict)


def cgroup_dirs(pid: int, *, proc: Path = Path("/proc"), root: Path = Path("/sys/fs/cgroup")) -> CgroupDirs:
    """The cgroup directories of ``pid`` on this host, for v2, hybrid and v1 layouts."""
    entries = parse_proc_cgroup((proc / str(pid) / "cgroup").read_text())
    out = CgroupDirs()
    for hid, controllers, path in entries:
        rel = path.lstrip("/")
        if hid == "0" and not controllers:
            for base in (root, root / "unified"):
                candidate = base / rel
                if (base / "cgroup.controllers").exists() and candidate.is_dir():
                    out.unified = candidate
                    break
        elif "freezer" in controllers.split(","):
            candidate = root / "freezer" / rel
            if candidate.is_dir():
                out.freezer = candidate
    return out
