"""The ``ebpf`` sensor: Garrison's own BPF programs (``bpf/garrison.bpf.c``) loaded through libbpf.

It reports what the bpftrace backend reports (every exec's kernel argv and executable origin;
write opens and credential reads with their result; unlink, link and symlink with their paths)
as the same events, for less: one ring buffer read in-process instead of a bpftrace child that
formats JSON lines for a pipe, and no wake-up per exec. Exec records are submitted with
``BPF_RB_NO_WAKEUP`` and drained every :data:`DRAIN_MS` ms (:data:`IDLE_DRAIN_MS` when the node
is quiet): they only correct or complete what
the proc connector already delivered (``runtime/execargs.py`` pairs them, late or not), so they
do not need to wake anyone. File records, rare after in-kernel filtering and acted on, wake the
reader at once.

Why by hand: no maintained Python binding of libbpf exists (bcc compiles C at run time with its
own LLVM and needs kernel headers; its Python layer is not on PyPI). libbpf itself does the hard
part (ELF parsing, CO-RE relocation against the kernel's BTF, ring buffer); we call its C API
through ``ctypes``, a dozen functions. The object is compiled from the C source with clang on
first use and cached by the source's hash (``clang``/``libbpf-dev`` at build time only;
``libbpf1``, which bpftrace already depends on, at run time).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import logging
import os
import platform
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from garrison.model.runtime import Event, Process
from garrison.runtime.sensors import bpftrace as bt
from garrison.runtime.sensors.interface import (
    EventSink,
    SensorError,
    SensorStats,
    is_root,
    monotonic_to_epoch,
    sensor_thread,
)

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("bpf") / "garrison.bpf.c"
#: how often the reader drains records submitted without a wake-up (exec records) while they
#: come; after drains that found nothing the interval doubles up to IDLE_DRAIN_MS (an idle node
#: costs ten wake-ups a second, not a hundred; the first exec after a quiet spell waits longer)
DRAIN_MS = 10
IDLE_DRAIN_MS = 100
STR_MAX = 256
# struct rec: type, pid, tid, ret, ktime, cgroup, comm[16], a0, a1, len0, len1, s0[256], s1[256]
_REC = struct.Struct("<IIIiQQ16sQQII256s256s")
REC_READY, REC_EXEC, REC_OPEN, REC_OPENAT, REC_UNLINK, REC_UNLINKAT, REC_LINKAT, REC_SYMLINKAT = range(8)
_TYPE_NAMES = {
    REC_OPEN: "open",
    REC_OPENAT: "openat",
    REC_UNLINK: "unlink",
    REC_UNLINKAT: "unlinkat",
    REC_LINKAT: "linkat",
    REC_SYMLINKAT: "symlinkat",
}
#: program name -> the event types it serves
PROGRAMS = {
    "on_exec": bt.EXEC_TYPES,
    "on_openat": bt.OPEN_TYPES,
    "on_open_legacy": bt.OPEN_TYPES,
    "on_unlinkat": bt.UNLINK_TYPES,
    "on_unlink_legacy": bt.UNLINK_TYPES,
    "on_linkat": bt.LINK_TYPES,
    "on_symlinkat": bt.SYMLINK_TYPES,
    "on_ready": None,
}

_VP = ctypes.c_void_p
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, _VP, _VP, ctypes.c_size_t)
_PRINT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, _VP)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (_VP, [_VP]),
    "libbpf_num_possible_cpus": (ctypes.c_int, []),
    "libbpf_get_error": (ctypes.c_long, [_VP]),
    "bpf_object__open_file": (_VP, [ctypes.c_char_p, _VP]),
    "bpf_object__load": (ctypes.c_int, [_VP]),
    "bpf_object__close": (None, [_VP]),
    "bpf_object__find_program_by_name": (_VP, [_VP, ctypes.c_char_p]),
    "bpf_object__find_map_fd_by_name": (ctypes.c_int, [_VP, ctypes.c_char_p]),
    "bpf_program__set_autoload": (ctypes.c_int, [_VP, ctypes.c_bool]),
    "bpf_program__attach": (_VP, [_VP]),
    "bpf_link__destroy": (ctypes.c_int, [_VP]),
    "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, _VP, _VP, ctypes.c_uint64]),
    "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, _VP, _VP]),
    "ring_buffer__new": (_VP, [ctypes.c_int, _VP, _VP, _VP]),
    "ring_buffer__poll": (ctypes.c_int, [_VP, ctypes.c_int]),
    "ring_buffer__consume": (ctypes.c_int, [_VP]),
    "ring_buffer__free": (None, [_VP]),
}
_lib: ctypes.CDLL | None = None
_lib_error: str | None = None
_quiet = _PRINT(lambda level, fmt, args: 0)  # libbpf's own messages: silent unless GARRISON_DEBUG


def libbpf() -> ctypes.CDLL:
    """libbpf, its functions typed; SensorError saying how to install it when it is missing."""
    global _lib, _lib_error
    if _lib is not None:
        return _lib
    if _lib_error is None:
        name = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            for func, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, func)
                fn.restype, fn.argtypes = restype, argtypes
        except (OSError, AttributeError) as err:
            _lib_error = f"ebpf: libbpf 1.x not found ({err}); apt-get install libbpf1"
        else:
            if not os.environ.get("GARRISON_DEBUG"):
                lib.libbpf_set_print(ctypes.cast(_quiet, _VP))
            _lib = lib
            return lib
    raise SensorError(_lib_error)


def compiler() -> str | None:
    return shutil.which("clang") or next((c for n in (16, 15, 14, 13) if (c := shutil.which(f"clang-{n}"))), None)


def cache_dir() -> Path:
    base = os.environ.get("GARRISON_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "garrison" / "bpf"


def object_path() -> Path:
    """Where the object built from the current source is cached (named by the source's hash)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return cache_dir() / f"garrison-{digest}.bpf.o"


def build_object() -> Path:
    """The compiled object, built now if this source has not been built before (about a second)."""
    target = object_path()
    if target.is_file():
        return target
    cc = compiler()
    if cc is None:
        raise SensorError("ebpf: clang is needed once to build the BPF object; apt-get install clang libbpf-dev")
    if not Path("/usr/include/bpf/bpf_helpers.h").is_file():
        raise SensorError("ebpf: libbpf headers are needed once to build the BPF object; apt-get install libbpf-dev")
    machine = platform.machine()
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(machine)
    if arch != "x86":
        raise SensorError(f"ebpf: the programs read x86-64 syscall registers; this is {machine} (use --sensors bpftrace)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    cmd = [cc, "-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", f"-I/usr/include/{machine}-linux-gnu"]
    out = subprocess.run([*cmd, "-c", str(SOURCE), "-o", str(tmp)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = next((line for line in out.stderr.splitlines() if "error" in line), out.stderr.strip()[:200])
        raise SensorError(f"ebpf: cannot compile {SOURCE.name}: {first}")
    tmp.replace(target)
    return target


def parse_rec(data: bytes, offset: float) -> Event | None:
    """One ring-buffer record as an event (``None`` for the readiness record); ValueError when
    it is not a record of ours."""
    if len(data) < _REC.size:
        raise ValueError(f"ebpf record of {len(data)} bytes")
    rtype, pid, tid, ret, ktime, cgroup, comm, a0, a1, _len0, len1, s0, s1 = _REC.unpack_from(data)
    when = ktime / 1e9 + offset
    if rtype == REC_READY:
        return None
    if rtype == REC_EXEC:
        argv = s1[: min(len1, STR_MAX)]
        event = bt.exec_event(pid, ktime, len1, _text(s0), argv, a0, a1 != 0, when)
        event.sensor = "ebpf"
        return event
    etype = _TYPE_NAMES.get(rtype)
    if etype is None:
        raise ValueError(f"ebpf record of unknown type {rtype}")
    proc = Process(pid=pid, tid=tid, name=_text(comm))
    if etype in ("linkat", "symlinkat"):
        event = bt.file_event(etype, proc, when, _text(s0), linkpath=_text(s1), sensor="ebpf")
    else:  # a1 is the open's mode (0 for an unlink)
        event = bt.file_event(etype, proc, when, _text(s0), a0, a1, sensor="ebpf")
    event.args["cgroup_id"] = cgroup
    if etype in bt.PAIRED:
        event = bt.complete(event, ret, when)
    return event


#: (object, programs) -> why the kernel refused them (None: it did not), per process
_TRIALS: dict[tuple[str, tuple[str, ...]], str | None] = {}


def _refused(code: int) -> str:
    return f"ebpf: the kernel refused the programs ({os.strerror(-code)}); run with GARRISON_DEBUG=1 to see libbpf's log"


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class EbpfSensor:
    """Exec argv and string-argument file syscalls from Garrison's own BPF programs."""

    name = "ebpf"

    def __init__(self, *, event_types: set[str] | None = None) -> None:
        self.event_types = event_types
        self._stats = SensorStats(self.name)
        self._obj: int | None = None
        self._links: list[int] = []
        self._rb: int | None = None
        self._lost_fd = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._callback: Any = None
        self._sink: EventSink | None = None
        self._offset = 0.0

    def wanted(self) -> list[str]:
        want = self.event_types
        return [p for p, types in PROGRAMS.items() if types is None or want is None or want & types]

    def available(self) -> str | None:
        if (why := is_root()) is not None:
            return f"ebpf: {why}"
        if len(self.wanted()) == 1:
            return "ebpf: the loaded rules use none of execve/openat/unlinkat/linkat/symlinkat"
        try:
            libbpf()
        except SensorError as err:
            return str(err)
        if not Path("/sys/kernel/btf/vmlinux").is_file():
            return "ebpf: the kernel has no BTF (/sys/kernel/btf/vmlinux); use --sensors ...,bpftrace"
        if not object_path().is_file() and compiler() is None:
            return "ebpf: clang is needed once to build the BPF object; apt-get install clang libbpf-dev"
        return self._trial_load()

    def _trial_load(self) -> str | None:
        """Whether the kernel accepts the programs (verifier, BTF, ring buffer support), found by
        loading them once per process and set of programs; so that ``auto`` can fall back to
        bpftrace before anything starts, not fail at start."""
        key = (str(object_path()), tuple(self.wanted()))
        if key not in _TRIALS:
            lib = libbpf()
            try:
                path = build_object()
            except SensorError as err:
                _TRIALS[key] = str(err)
                return _TRIALS[key]
            obj = lib.bpf_object__open_file(str(path).encode(), None)
            if not obj or lib.libbpf_get_error(obj):
                _TRIALS[key] = f"ebpf: cannot open {path}"
                return _TRIALS[key]
            try:
                self._select(lib, obj)
                code = lib.bpf_object__load(obj)
                _TRIALS[key] = None if code == 0 else _refused(code)
            except SensorError as err:
                _TRIALS[key] = str(err)
            finally:
                lib.bpf_object__close(obj)
        return _TRIALS[key]

    def _select(self, lib: ctypes.CDLL, obj: int) -> set[str]:
        """Load only the programs the rules need; the set loaded."""
        wanted = set(self.wanted())
        for prog in PROGRAMS:
            handle = lib.bpf_object__find_program_by_name(obj, prog.encode())
            if not handle:
                raise SensorError(f"ebpf: program {prog} missing from the object")
            lib.bpf_program__set_autoload(handle, prog in wanted)
        return wanted

    def start(self, sink: EventSink) -> None:
        if self._obj is not None:
            return
        if (why := self.available()) is not None:
            raise SensorError(why)
        lib = libbpf()
        path = build_object()
        obj = lib.bpf_object__open_file(str(path).encode(), None)
        if not obj or lib.libbpf_get_error(obj):
            raise SensorError(f"ebpf: cannot open {path}")
        self._obj = obj
        try:
            self._load(lib, obj, sink)
        except SensorError:
            self.stop()
            raise

    def _load(self, lib: ctypes.CDLL, obj: int, sink: EventSink) -> None:
        wanted = self._select(lib, obj)
        if (code := lib.bpf_object__load(obj)) != 0:
            raise SensorError(_refused(code))
        config = lib.bpf_object__find_map_fd_by_name(obj, b"config")
        key, value = ctypes.c_uint32(0), ctypes.c_uint64(os.getpid())
        if config < 0 or lib.bpf_map_update_elem(config, ctypes.byref(key), ctypes.byref(value), 0) != 0:
            raise SensorError("ebpf: cannot configure the programs")
        self._lost_fd = lib.bpf_object__find_map_fd_by_name(obj, b"lost")
        for prog in wanted:
            link = lib.bpf_program__attach(lib.bpf_object__find_program_by_name(obj, prog.encode()))
            if not link or lib.libbpf_get_error(link):
                raise SensorError(f"ebpf: cannot attach {prog}; run with GARRISON_DEBUG=1 to see libbpf's log")
            self._links.append(link)
        self._sink = sink
        self._offset = monotonic_to_epoch()  # bpf_ktime_get_ns is CLOCK_MONOTONIC
        self._callback = _CALLBACK(self._on_record)
        rb = lib.ring_buffer__new(
            lib.bpf_object__find_map_fd_by_name(obj, b"events"), ctypes.cast(self._callback, _VP), None, None
        )
        if not rb or lib.libbpf_get_error(rb):
            raise SensorError("ebpf: cannot map the ring buffer")
        self._rb = rb
        self._stop.clear()
        self._ready.clear()
        self._stats.running = True
        self._thread = sensor_thread(self._run, name="garrison-ebpf")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._ready.wait(0.02) and time.monotonic() < deadline:
            os.sched_getscheduler(os.getpid())  # the readiness probe: its record says every probe fires now
        if not self._ready.is_set():
            raise SensorError("ebpf: the programs attached but report nothing")

    def _on_record(self, _ctx: int, data: int, size: int) -> int:
        try:
            event = parse_rec(ctypes.string_at(data, size), self._offset)
        except (ValueError, struct.error):
            self._stats.errors += 1
            return 0
        if event is None:
            self._ready.set()
            return 0
        stats = self._stats
        stats.received += 1
        event.num = stats.received
        sink = self._sink
        try:
            if sink is not None:
                sink(event)
        except Exception:
            stats.errors += 1
            logger.exception("ebpf sink failed")
        return 0

    def _run(self) -> None:
        lib = libbpf()
        rb = self._rb
        polls = 0
        wait = DRAIN_MS
        while not self._stop.is_set() and rb is not None:
            woken = lib.ring_buffer__poll(rb, wait)  # returns at once for records that wake
            drained = lib.ring_buffer__consume(rb) if woken >= 0 else woken  # and the exec records that did not
            if min(woken, drained) < 0 and -min(woken, drained) != 4:  # not EINTR
                self._stats.errors += 1
                time.sleep(DRAIN_MS / 1000)
            wait = DRAIN_MS if woken > 0 or drained > 0 else min(wait * 2, IDLE_DRAIN_MS)
            polls += 1
            if polls % 50 == 0:
                self._stats.lost = self._read_lost(lib)
        self._stats.lost = self._read_lost(lib)

    def _read_lost(self, lib: ctypes.CDLL) -> int:
        if self._lost_fd < 0:
            return self._stats.lost
        cpus = max(1, lib.libbpf_num_possible_cpus())
        values = (ctypes.c_uint64 * cpus)()
        key = ctypes.c_uint32(0)
        if lib.bpf_map_lookup_elem(self._lost_fd, ctypes.byref(key), values) != 0:
            return self._stats.lost
        return int(sum(values))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if _lib is not None:
            if self._rb is not None:
                _lib.ring_buffer__free(self._rb)
            for link in self._links:
                with contextlib.suppress(Exception):
                    _lib.bpf_link__destroy(link)
            if self._obj is not None:
                _lib.bpf_object__close(self._obj)
        self._rb, self._links, self._obj = None, [], None
        self._stats.running = False

    def stats(self) -> SensorStats:
        return self._stats


__all__ = ["EbpfSensor", "build_object", "parse_rec"]
