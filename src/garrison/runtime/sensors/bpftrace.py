"""Optional bpftrace backend: syscalls whose interesting arguments are strings (``openat``,
``unlinkat``, ``linkat``, ``symlinkat``), which plain tracefs tracepoints print only as pointers.

We generate a bpftrace script over the ``syscalls:sys_enter_*`` tracepoints (no kprobes, so it
runs on kernels where kprobes are absent), filter in the kernel (write opens, or reads of the
credential and key files of :data:`READ_PREFIXES`, judged on the path's first bytes; never our
own pid), start ``bpftrace -f json`` and read its JSON lines: ``printf`` records become events,
``lost_events`` records add to ``lost``. ``openat`` and ``unlinkat`` are reported at exit with the
result (the entry's arguments wait in a per-thread map), so ``fd.num``/``evt.res`` are known as
Falco's rules expect.

It also reads every exec's argv in the kernel (``sched:sched_process_exec``, see
:func:`_exec_probe`): the proc connector says only *that* a pid exec'd, and its ``/proc`` read
can come after the process exec'd again (``bash -c 'bash -i >& /dev/tcp/...'`` execs twice in a
millisecond) or exited. The pipeline corrects such execs with these records. What makes this optional: it needs the ``bpftrace`` package
(``apt-get install bpftrace``).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import platform
import shutil
import subprocess
import threading
import time
from pathlib import Path

from garrison.model.runtime import Event, EventKind, FileDescriptor, Process
from garrison.runtime.sensors.interface import (
    EventSink,
    SensorError,
    SensorStats,
    is_root,
    monotonic_to_epoch,
    prioritise,
    sensor_thread,
)

logger = logging.getLogger(__name__)

SEP = "\x1f"
# bytes of each string argument; two of them must fit the 512-byte BPF stack with the printf record
STRLEN = 112
OPEN_TYPES = frozenset({"open", "openat", "openat2", "creat"})
LINK_TYPES = frozenset({"link", "linkat"})
SYMLINK_TYPES = frozenset({"symlink", "symlinkat"})
UNLINK_TYPES = frozenset({"unlink", "unlinkat"})
AT_REMOVEDIR = 0x200
PAIRED = frozenset({"open", "openat", "unlink", "unlinkat"})
EXIT_RECORDS = frozenset(f"{t}_exit" for t in PAIRED)
#: a paired call printed once, at its exit, with the result last (read from the saved registers)
DONE_RECORDS = frozenset(f"{t}_x" for t in PAIRED)
EXEC_TYPES = frozenset({"execve", "execveat"})
_HEX = frozenset("0123456789abcdef")


def _paired(syscall: str, pred: str, fmt: str, values: str) -> str:
    """Print the entry's arguments at entry and the result at exit; the reader joins them by thread.

    Falco's open/unlink events carry the result (``fd.num``, ``evt.res``); rules such as
    ``open_write`` require ``fd.num>=0``, so an entry-only record could never match them. Keeping
    the path in a map until exit would not fit the 512-byte BPF stack next to the printf record,
    hence two records: ``<syscall>`` at entry and ``<syscall>_exit`` (pid, tid, result) at exit, for
    threads whose entry passed the filter (a per-thread flag).
    """
    return (
        f"tracepoint:syscalls:sys_enter_{syscall}\n/ {pred} /\n"
        f'{{ @{syscall}_on[tid] = 1; printf("{syscall}{SEP}%d{SEP}%d{SEP}%s{SEP}{fmt}{SEP}%lu\\n", pid, tid, comm, {values}, cgroup); }}\n'
        f"tracepoint:syscalls:sys_exit_{syscall}\n/ @{syscall}_on[tid] /\n"
        f'{{ delete(@{syscall}_on[tid]); printf("{syscall}_exit{SEP}%d{SEP}%d{SEP}%d\\n", pid, tid, args->ret); }}'
    )


#: read-only opens reported (write opens always are): the files the rules about reading watch
#: (credentials, sudo/PAM configuration, SSH host keys, root's home, service-account tokens).
#: Everything else read, above all ``/etc/ld.so.cache`` read by every dynamically linked exec and
#: the ``passwd``/``nsswitch.conf``/``localtime`` lookups of every daemon, is dropped in the kernel.
READ_PREFIXES = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/pam",
    "/etc/security/",
    "/etc/master.passwd",
    "/etc/ssh/",
    "/root/",
    "/var/run/secrets/",
    "/run/secrets/",
)
_PREFIX_BYTES = max(len(p) for p in READ_PREFIXES) + 1


def kernel_stack_top(release: str | None = None) -> int:
    """Bytes from ``task->stack`` to the end of the saved user registers (``task_pt_regs``) on
    x86-64: ``THREAD_SIZE`` (16 KiB, 32 KiB with KASAN) less the FRED padding (16 bytes). Read from
    the kernel's config when it is there; the readiness probe checks the answer at every start
    (:meth:`BpftraceSensor.start` falls back to entry probes when it is wrong)."""
    release = release or os.uname().release
    text = ""
    for path in ("/proc/config.gz", f"/boot/config-{release}"):
        try:
            raw = Path(path).read_bytes()
            text = (gzip.decompress(raw) if path.endswith(".gz") else raw).decode("utf-8", "replace")
            break
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
    size = 32768 if "\nCONFIG_KASAN=y" in text else 16384
    return size - (16 if "\nCONFIG_X86_FRED=y" in text else 0)


def _regs(stack_top: int) -> str:
    """``$r``: the registers the thread entered the syscall with (x86-64 ``task_pt_regs``)."""
    return f"$r = (struct pt_regs *)((uint64)curtask->stack + {stack_top} - sizeof(struct pt_regs));"


#: x86-64 argument registers of the string-argument calls: (path, flags, mode) of the opens and
#: (path, flags) of the unlinks; ``None``: the call has no such argument
_OPEN_REGS = {"openat": ("si", "dx", "r10"), "open": ("di", "si", "dx")}
_UNLINK_REGS = {"unlinkat": ("si", "dx"), "unlink": ("di", None)}


def _open_probes(syscall: str, self_pid: int, stack_top: int | None) -> str:
    """The probes of ``open``/``openat``. Write opens and reads of :data:`READ_PREFIXES` leave the
    kernel; any other read costs one short user-memory read of the path's first bytes and a few
    prefix compares in the kernel.

    With ``stack_top`` known, one probe at the syscall's exit reads the arguments from the saved
    user registers (one BPF dispatch a call, not two: on a VM with retpolines each dispatch from
    a syscall tracepoint costs hundreds of nanoseconds, see ``docs/runtime.md``), and the record
    carries the result. Without it, the entry probe prints the arguments and the exit probe the
    result, joined by the reader (:func:`_paired`)."""
    wanted = " || ".join(f'strncmp($p, "{prefix}", {len(prefix)}) == 0' for prefix in READ_PREFIXES)
    if stack_top is not None:
        path, flags, mode = _OPEN_REGS[syscall]
        record = (
            f'printf("{syscall}_x{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%d{SEP}%d{SEP}%lu{SEP}%d\\n", '
            f"pid, tid, comm, str(uptr($r->{path})), $f, $r->{mode}, cgroup, args->ret);"
        )
        return (
            f"tracepoint:syscalls:sys_exit_{syscall}\n/ pid != {self_pid} /\n"
            f"{{ {_regs(stack_top)} $f = $r->{flags}; $w = ($f & 3) != 0;\n"
            f"  if (!$w) {{ $p = str(uptr($r->{path}), {_PREFIX_BYTES}); $w = {wanted}; }}\n"
            f"  if ($w) {{ {record} }}\n}}"
        )
    return (
        f"tracepoint:syscalls:sys_enter_{syscall}\n/ pid != {self_pid} /\n"
        f"{{ $p = str(args->filename, {_PREFIX_BYTES});\n"
        f"  if ((args->flags & 3) != 0 || {wanted}) {{\n"
        f'    @{syscall}_on[tid] = 1; printf("{syscall}{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%d{SEP}%d{SEP}%lu\\n", '
        "pid, tid, comm, str(args->filename), args->flags, args->mode, cgroup);\n  }\n}\n"
        f"tracepoint:syscalls:sys_exit_{syscall}\n/ @{syscall}_on[tid] /\n"
        f'{{ delete(@{syscall}_on[tid]); printf("{syscall}_exit{SEP}%d{SEP}%d{SEP}%d\\n", pid, tid, args->ret); }}'
    )


def _unlink_probes(syscall: str, self_pid: int, stack_top: int | None) -> str:
    """``unlink``/``unlinkat``, every call (they are rare); at exit from the saved registers when
    ``stack_top`` is known, else paired as :func:`_paired`."""
    path, flags = _UNLINK_REGS[syscall]
    if stack_top is None:
        values = f"str(args->pathname), {'args->flag' if flags else '0'}"
        return _paired(syscall, f"pid != {self_pid}", f"%s{SEP}%d", values)
    flag = f"$r->{flags}" if flags else "0"
    return (
        f"tracepoint:syscalls:sys_exit_{syscall}\n/ pid != {self_pid} /\n"
        f'{{ {_regs(stack_top)} printf("{syscall}_x{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%d{SEP}%lu{SEP}%d\\n", '
        f"pid, tid, comm, str(uptr($r->{path})), {flag}, cgroup, args->ret); }}"
    )


#: ``s_magic`` of an overlay filesystem (a container's root)
OVERLAYFS_MAGIC = 0x794C7630


def _exec_probe(self_pid: int) -> str:
    """Every exec's path and the first :data:`STRLEN` bytes of its argv, read from the new
    image's memory at ``sched:sched_process_exec`` (a scheduler tracepoint, not a syscall one:
    it adds no probe to the syscall entry path). The kernel fires it just before the proc
    connector's exec notification, in the same task, so the pipeline pairs the two by pid and
    kernel time (see :class:`garrison.runtime.execargs.ExecRecords`).

    It also says where the executable lives: the superblock magic of ``mm->exe_file`` and, on an
    overlay (a container's root), whether the inode has an upper dentry, the ``__upperdentry``
    pointer that follows the ``struct inode`` embedded in ``struct ovl_inode`` (kernel BTF gives
    ``sizeof(struct inode)``). A file written in the container (a dropped binary, a modified
    image binary) has one; a file of the image has none. Known in the kernel at the exec, it
    holds for a binary that ran for a millisecond and was deleted right after, which no ``/proc``
    read can judge."""
    return (
        f"tracepoint:sched:sched_process_exec\n/ pid != {self_pid} /\n"
        "{ $mm = curtask->mm; $len = $mm->arg_end - $mm->arg_start;\n"
        "  $ino = $mm->exe_file->f_inode; $magic = $ino->i_sb->s_magic;\n"
        f"  $up = $magic == {OVERLAYFS_MAGIC:#x} ? *(uint64 *)((uint8 *)$ino + sizeof(struct inode)) : 0;\n"
        f'  printf("exec{SEP}%d{SEP}%llu{SEP}%d{SEP}%s{SEP}%r{SEP}%lu{SEP}%d\\n", pid, nsecs, $len, str(args->filename), '
        "buf(uptr($mm->arg_start), $len), $magic, $up != 0);\n}"
    )


def build_script(self_pid: int, event_types: set[str] | None, stack_top: int | None = None) -> str:
    """The bpftrace program for the wanted event types (every family when ``None``); ``stack_top``
    (see :func:`kernel_stack_top`) lets the file probes read their arguments at the syscall's exit."""
    # bpftrace reports its probes attached before they all fire: start() calls
    # sched_getscheduler(own pid) until this probe's record arrives, and only then says the sensor
    # runs (a call next to nothing on a node makes; the program runs only for it). The record
    # carries the pid argument as read from the saved registers: start() checks the layout with it.
    if stack_top is None:
        ready = f'tracepoint:syscalls:sys_enter_sched_getscheduler / pid == {self_pid} / {{ printf("ready{SEP}%d\\n", args->pid); }}'
    else:
        ready = (
            f"tracepoint:syscalls:sys_exit_sched_getscheduler / pid == {self_pid} /\n"
            f'{{ {_regs(stack_top)} printf("ready{SEP}%d\\n", $r->di); }}'
        )
    parts: list[str] = [ready]
    want = event_types
    if want is None or want & EXEC_TYPES:
        parts.append(_exec_probe(self_pid))
    if want is None or want & OPEN_TYPES:
        parts.extend(_open_probes(call, self_pid, stack_top) for call in ("openat", "open"))  # open(2): static binaries
    if want is None or want & UNLINK_TYPES:
        parts.extend(_unlink_probes(call, self_pid, stack_top) for call in ("unlinkat", "unlink"))  # unlink: busybox rm
    if want is None or want & LINK_TYPES:
        parts.append(
            f"tracepoint:syscalls:sys_enter_linkat / pid != {self_pid} /\n"
            f'{{ printf("linkat{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%s{SEP}%lu\\n", pid, tid, comm, '
            "str(args->oldname), str(args->newname), cgroup); }"
        )
    if want is None or want & SYMLINK_TYPES:
        parts.append(
            f"tracepoint:syscalls:sys_enter_symlinkat / pid != {self_pid} /\n"
            f'{{ printf("symlinkat{SEP}%d{SEP}%d{SEP}%s{SEP}%s{SEP}%s{SEP}%lu\\n", pid, tid, comm, '
            "str(args->oldname), str(args->newname), cgroup); }"
        )
    return "\n".join(parts) + "\n"


def _absolute(pid: int, path: str) -> str:
    """A relative path made absolute with the process's cwd (host processes only: a container's
    cwd read from here is a host path of its root filesystem, not the path the rule should see)."""
    if not path or path.startswith("/"):
        return path
    try:
        if os.readlink(f"/proc/{pid}/root") != "/":
            return path
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return path
    return os.path.normpath(os.path.join(cwd, path))


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
    if fields[0] in EXIT_RECORDS and len(fields) == 4:  # (pid, tid, result) of a paired call, joined by the reader
        pid, tid, res = int(fields[1]), int(fields[2]), int(fields[3])
        return Event(when, fields[0], EventKind.FILE, "bpftrace", Process(pid=pid, tid=tid), res=res), 0
    if fields[0] == "exec" and len(fields) in (6, 8):
        return exec_record(fields, when), 0
    result: int | None = None
    if fields[0] in DONE_RECORDS and len(fields) >= 6:  # the result comes last
        result = int(fields[-1])
        fields = [fields[0][:-2], *fields[1:-1]]
    if len(fields) < 5:
        raise ValueError(f"bpftrace record with {len(fields)} fields")
    etype, pid, tid, comm = fields[0], int(fields[1]), int(fields[2]), fields[3]
    proc = Process(pid=pid, tid=tid, name=comm)
    event = record_event(etype, fields, pid, proc, when)
    last = len(fields) - 1  # the cgroup v2 id, appended to every entry record: attribution after the process is gone
    if fields[last].isdigit() and last >= {"openat": 7, "open": 7, "unlinkat": 6, "unlink": 6}.get(etype, 6):
        event.args["cgroup_id"] = int(fields[last])
    return (event if result is None else complete(event, result, when)), 0


def unescape(text: str) -> bytes:
    """The bytes behind bpftrace's ``%r`` rendering of a buffer: printable ASCII as itself, every
    other byte as ``\\xNN``. A backslash is not escaped by bpftrace, so a literal ``\\x41`` in an
    argument reads back as ``A``; :func:`escape` compares in the rendered form instead."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 3 < n and text[i + 1] == "x" and text[i + 2] in _HEX and text[i + 3] in _HEX:
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
            continue
        out.extend(ch.encode("utf-8", "surrogateescape"))
        i += 1
    return bytes(out)


def escape(data: bytes) -> str:
    """``data`` rendered as bpftrace's ``%r`` renders a buffer (the inverse of :func:`unescape`)."""
    return "".join(chr(b) if 32 <= b <= 126 else f"\\x{b:02x}" for b in data)


def exec_record(fields: list[str], when: float) -> Event:
    """The ``exec`` record: an ``execve`` event of sensor ``bpftrace`` whose process carries the
    argv read in the kernel (the ``%r``-rendered buffer decoded). ``when`` is the kernel time, as epoch."""
    magic, upper = (int(fields[6]), fields[7] == "1") if len(fields) >= 8 else (None, False)
    event = exec_event(int(fields[1]), int(fields[2]), int(fields[3]), fields[4], unescape(fields[5]), magic, upper, when)
    event.args["argv_raw"] = fields[5]  # the rendering, compared as rendered (see execargs.consistent)
    return event


def exec_event(
    pid: int, ktime: int, length: int, path: str, data: bytes, magic: int | None, upper: bool, when: float
) -> Event:
    """An exec as the kernel saw it: ``data`` the first bytes of the argv area (``length`` its
    whole size), ``magic`` the executable's superblock magic, ``upper`` whether it is an overlay
    inode with an upper dentry (see :func:`_exec_probe`). ``args["argv_bytes"]`` keeps ``data``,
    ``args["truncated"]`` says the argv was longer than what was read."""
    truncated = length > len(data)
    parts = data.split(b"\0")
    if parts and parts[-1] == b"" and not truncated:
        parts.pop()
    argv = [a.decode("utf-8", "surrogateescape") for a in parts]
    name = path.rsplit("/", 1)[-1][:15]
    proc = Process(pid=pid, tid=pid, name=name, exe=argv[0] if argv else "", exepath=path, args=argv[1:])
    args: dict[str, object] = {"argv_bytes": data, "truncated": truncated, "ktime": ktime}
    if magic == OVERLAYFS_MAGIC:  # where the binary lives, as the kernel knows
        args["origin"] = "upper" if upper else "image"
    return Event(when, "execve", EventKind.PROCESS, "bpftrace", proc, args=args, res=0)


def record_event(etype: str, fields: list[str], pid: int, proc: Process, when: float) -> Event:
    """A file syscall's event from its record's fields (type, pid, tid, comm, then the arguments)."""
    if etype in ("openat", "open") and len(fields) >= 7:
        return file_event(etype, proc, when, fields[4], int(fields[5]), int(fields[6]))
    if etype in ("unlinkat", "unlink") and len(fields) >= 6:
        return file_event(etype, proc, when, fields[4], int(fields[5]))
    if etype in ("linkat", "symlinkat") and len(fields) >= 6:
        return file_event(etype, proc, when, fields[4], linkpath=fields[5])
    raise ValueError(f"unknown bpftrace record {etype!r}")


def file_event(
    etype: str,
    proc: Process,
    when: float,
    path: str,
    flags: int = 0,
    mode: int = 0,
    *,
    linkpath: str = "",
    sensor: str = "bpftrace",
) -> Event:
    """The event of a string-argument file syscall: ``path`` opened or removed (relative paths made
    absolute for host processes), or, for link/symlink, ``path`` the target and ``linkpath`` the
    new name."""
    if etype in ("openat", "open"):
        name = _absolute(proc.pid, path)
        fd = FileDescriptor(type="file", name=name, nameraw=path)
        return Event(when, etype, EventKind.FILE, sensor, proc, fd=fd, args={"name": name, "flags": flags, "mode": mode})
    if etype in ("unlinkat", "unlink"):
        name = _absolute(proc.pid, path)
        fd = FileDescriptor(type="directory" if flags & AT_REMOVEDIR else "file", name=name, nameraw=path)
        return Event(when, etype, EventKind.FILE, sensor, proc, fd=fd, args={"name": name, "path": name, "flags": flags})
    if etype in ("linkat", "symlinkat"):
        fd = FileDescriptor(type="file", name=linkpath)
        return Event(when, etype, EventKind.FILE, sensor, proc, fd=fd, args={"target": path, "linkpath": linkpath})
    raise ValueError(f"unknown file record {etype!r}")


def complete(entry: Event, res: int, when: float) -> Event:
    """The entry record of a paired call with its result: ``evt.res``, and ``fd.num`` for an open."""
    entry.res = res
    entry.args["res"] = res
    entry.time = when
    if entry.type in ("openat", "open") and entry.fd is not None:
        entry.fd.num = res if res >= 0 else -1
        entry.args["fd"] = res
    return entry


class BpftraceSensor:
    """String-argument file syscalls through a bpftrace child process."""

    name = "bpftrace"

    def __init__(
        self, *, event_types: set[str] | None = None, binary: str | None = None, exit_probes: bool | None = None
    ) -> None:
        self.event_types = event_types
        self.binary = binary or shutil.which("bpftrace") or ""
        if exit_probes is None:  # default: on x86-64, unless GARRISON_BPFTRACE_EXIT_PROBES=0
            exit_probes = platform.machine() == "x86_64" and os.environ.get("GARRISON_BPFTRACE_EXIT_PROBES", "1") != "0"
        #: where the saved user registers are (see :func:`kernel_stack_top`); None: entry probes
        self.stack_top: int | None = kernel_stack_top() if exit_probes else None
        self._ready_arg: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._stats = SensorStats(self.name)
        self._attached = threading.Event()
        self._ready = threading.Event()

    def available(self) -> str | None:
        if (why := is_root()) is not None:
            return f"bpftrace: {why}"
        if not self.binary:
            return "bpftrace: not installed; apt-get install bpftrace (optional backend)"
        want = self.event_types
        if want is not None and not want & (OPEN_TYPES | LINK_TYPES | SYMLINK_TYPES | UNLINK_TYPES | EXEC_TYPES):
            return "bpftrace: the loaded rules use none of execve/openat/unlinkat/linkat/symlinkat"
        return None

    def start(self, sink: EventSink) -> None:
        if self._proc is not None:
            return
        if (why := self.available()) is not None:
            raise SensorError(why)
        try:
            self._spawn(sink)
            exits_ok = self.stack_top is None or self._ready_arg == os.getpid()
        except SensorError:
            if self.stack_top is None:
                raise
            exits_ok = False
        if not exits_ok:
            # the exit probes did not load, or the registers are not where the kernel config says
            # (they would read garbage): the entry probes read the tracepoint's own arguments
            logger.warning(
                "bpftrace: saved registers not at stack offset %s (read %s); using entry probes",
                self.stack_top,
                self._ready_arg,
            )
            self.stop()
            self.stack_top = None
            self._spawn(sink)

    def _spawn(self, sink: EventSink) -> None:
        script = build_script(os.getpid(), self.event_types, self.stack_top)
        self._attached.clear()
        self._ready_arg = None
        self._ready.clear()
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
        prioritise(self._proc.pid)  # it reads the kernel's buffers for us: the sensor's priority too
        self._stats.running = True
        self._thread = sensor_thread(self._run, sink, name="garrison-bpftrace")
        self._thread.start()
        attached = self._attached.wait(15)
        deadline = time.monotonic() + 15
        while attached and not self._ready.wait(0.02) and time.monotonic() < deadline and self._proc.poll() is None:
            os.sched_getscheduler(os.getpid())  # the readiness probe: its record says every probe fires now
        code = self._proc.poll()
        if not self._ready.is_set() or code is not None:
            self.stop()
            raise SensorError(
                f"bpftrace: probes did not attach (exit {code}); run with GARRISON_DEBUG=1 to see bpftrace's error"
            )

    def _run(self, sink: EventSink) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stats = self._stats
        pending: dict[int, Event] = {}
        offset = monotonic_to_epoch()  # bpftrace's nsecs is CLOCK_MONOTONIC, as the proc connector's time
        for line in proc.stdout:
            if not line.strip():
                continue
            if '"attached_probes"' in line:
                self._attached.set()
                continue
            if '"data": "ready' in line:
                with contextlib.suppress(ValueError, TypeError, AttributeError, IndexError):
                    self._ready_arg = int(json.loads(line)["data"].split(SEP)[1])
                self._ready.set()
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
            if event.kind is EventKind.PROCESS:  # an exec record: stamped with the kernel's time
                event.time = int(event.args["ktime"]) / 1e9 + offset
            elif event.type in PAIRED and "res" not in event.args:  # an entry record: wait for the result
                if len(pending) > 4096:  # threads killed inside the call never report an exit
                    pending.clear()
                pending[event.proc.tid] = event
                continue
            if event.type in EXIT_RECORDS:
                entry = pending.pop(event.proc.tid, None)
                if entry is None:
                    continue
                event = complete(entry, event.res, event.time)
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
