"""Field table: Falco field names mapped onto :mod:`garrison.model.runtime`.

Each supported field is a :class:`FieldSpec` whose ``expr`` is a Python expression over the event
``e`` (``{a}`` stands for the field argument, e.g. ``2`` in ``proc.aname[2]``). The compiler pastes
these expressions into the generated source of a rule, so a field read is an attribute access or
one helper call, never a table lookup per event.

Semantics follow libsinsp: a field the event cannot supply yields ``None`` and every comparison
against it is false (so ``not proc.pname in (...)`` is true when there is no parent);
``proc.aname`` without an index matches any ancestor; ``fd.ip``/``fd.port``/``fd.net`` match the
client or the server side; ``proc.cwd`` ends with ``/`` as sinsp keeps it.

Falco fields that exist upstream but that our event model cannot supply are listed in
:data:`UNSUPPORTED`: a rule whose condition uses one is disabled with a warning (Falco's
skip-if-unknown-filter behaviour), while such a field in an *output* only renders ``<NA>``.
"""

from __future__ import annotations

import datetime as _dt
import errno
import functools
import grp
import ipaddress
import os
import pwd
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from garrison.model.runtime import Event, FileDescriptor, Process

# kinds: str, int, bool, ip (textual address), net (address tested against CIDRs)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: str
    expr: str
    nullable: bool = True
    cost: int = 2
    arg: str = "none"  # none | required | optional | index (integer argument)
    multi: bool = False  # the expression yields several values; a check passes if any does


def _f(name: str, kind: str, expr: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, kind, expr, **kw)


def _fd(attr: str) -> str:
    return f"(e.fd.{attr} if e.fd is not None else None)"


def _fdv(attr: str) -> str:
    # empty string / zero port means "unknown" for socket tuple parts
    return f"(e.fd.{attr} or None if e.fd is not None else None)"


_FIELDS: list[FieldSpec] = [
    # evt.*
    _f("evt.type", "str", "e.type", nullable=False, cost=1),
    # sinsp numbers events from 1; a sensor that leaves ``num`` at 0 has not numbered the event, and
    # ``evt.num=0`` (upstream's ``never_true`` macro) must stay false
    _f("evt.num", "int", "(e.num or None)", cost=1),
    _f("evt.dir", "str", "e.dir", nullable=False, cost=1),
    _f("evt.time", "int", "int(e.time * 1e9)", nullable=False),
    _f("evt.rawtime", "int", "int(e.time * 1e9)", nullable=False),
    _f("evt.datetime", "str", "_datetime(e.time)", nullable=False, cost=5),
    _f("evt.res", "str", "_res(e.res)", nullable=False),
    _f("evt.rawres", "int", "e.res", nullable=False, cost=1),
    _f("evt.failed", "bool", "(e.res < 0)", nullable=False),
    _f("evt.source", "str", "'syscall'", nullable=False, cost=1),
    _f("evt.hostname", "str", "_HOSTNAME", nullable=False, cost=1),
    _f("evt.is_open_read", "bool", "_open_mode(e, 1)", cost=3),
    _f("evt.is_open_write", "bool", "_open_mode(e, 2)", cost=3),
    _f("evt.is_open_exec", "bool", "_open_exec(e)", cost=3),
    _f("evt.args", "str", "_args_str(e)", nullable=False, cost=6),
    _f("evt.arg", "str", "_arg(e, {a!r})", arg="required", cost=3),
    _f("evt.rawarg", "str", "_rawarg(e, {a!r})", arg="required", cost=3),
    # proc.*
    _f("proc.name", "str", "e.proc.name", nullable=False, cost=1),
    _f("proc.exe", "str", "e.proc.exe", nullable=False, cost=1),
    _f("proc.exepath", "str", "e.proc.exepath", nullable=False, cost=1),
    _f("proc.cmdline", "str", "e.proc.cmdline", nullable=False, cost=3),
    _f("proc.args", "str", "' '.join(e.proc.args)", nullable=False, cost=3),
    _f("proc.pid", "int", "e.proc.pid", nullable=False, cost=1),
    _f("proc.ppid", "int", "e.proc.ppid", nullable=False, cost=1),
    _f("proc.vpid", "int", "e.proc.vpid", cost=1),
    _f("proc.sid", "int", "e.proc.sid", cost=1),
    _f("proc.pgid", "int", "e.proc.pgid", cost=1),
    _f("proc.tty", "int", "e.proc.tty", nullable=False, cost=1),
    _f("proc.cwd", "str", "_cwd(e.proc.cwd)", cost=2),
    _f("proc.env", "str", "_env(e.proc, {a!r})", arg="optional", cost=4),
    _f("proc.duration", "int", "_duration(e.time, e.proc)", cost=2),
    _f("proc.is_exe_upper_layer", "bool", "e.proc.exe_upper_layer", cost=1),
    _f("proc.is_exe_from_memfd", "bool", "e.proc.exe_from_memfd", cost=1),
    _f("proc.is_exe_writable", "bool", "e.proc.exe_writable", cost=1),
    _f("proc.pname", "str", "(e.proc.ancestors[0].name if e.proc.ancestors else None)", cost=2),
    _f("proc.pexe", "str", "(e.proc.ancestors[0].exe if e.proc.ancestors else None)", cost=2),
    _f("proc.pexepath", "str", "(e.proc.ancestors[0].exepath if e.proc.ancestors else None)", cost=2),
    _f("proc.pcmdline", "str", "(e.proc.ancestors[0].cmdline if e.proc.ancestors else None)", cost=3),
    _f("proc.ppid.duration", "int", "_pduration(e.time, e.proc)", cost=2),
    _f("proc.sname", "str", "_sname(e.proc)", cost=4),
    _f("proc.loginshellid", "int", "_loginshellid(e.proc)", cost=4),
    _f("proc.aname", "str", "_anc(e.proc, {a}, 'name')", arg="index", cost=3),
    _f("proc.aexe", "str", "_anc(e.proc, {a}, 'exe')", arg="index", cost=3),
    _f("proc.aexepath", "str", "_anc(e.proc, {a}, 'exepath')", arg="index", cost=3),
    _f("proc.apid", "int", "_anc(e.proc, {a}, 'pid')", arg="index", cost=3),
    _f("proc.acmdline", "str", "_anc(e.proc, {a}, 'cmdline')", arg="index", cost=4),
    _f("thread.tid", "int", "(e.proc.tid or e.proc.pid)", nullable=False, cost=1),
    _f("thread.cap_effective", "str", "_caps(e.proc.cap_effective)", cost=3),
    _f("thread.cap_permitted", "str", "_caps(e.proc.cap_permitted)", cost=3),
    # user.* / group.*
    _f("user.uid", "int", "e.proc.uid", cost=1),
    _f("user.name", "str", "_user_name(e.proc)", cost=2),
    _f("user.loginuid", "int", "_loginuid(e.proc)", nullable=False, cost=1),
    _f("user.loginname", "str", "_login_name(e.proc)", cost=3),
    _f("group.gid", "int", "e.proc.gid", cost=1),
    _f("group.name", "str", "_group_name(e.proc)", cost=2),
    # fd.*
    _f("fd.num", "int", _fd("num"), cost=2),
    _f("fd.type", "str", _fd("type"), cost=2),
    _f("fd.typechar", "str", "_typechar(e.fd)", cost=2),
    _f("fd.name", "str", _fd("name"), cost=2),
    _f("fd.nameraw", "str", "(e.fd.nameraw or e.fd.name if e.fd is not None else None)", cost=2),
    _f("fd.directory", "str", "_fd_directory(e.fd)", cost=3),
    _f("fd.filename", "str", "_fd_filename(e.fd)", cost=3),
    _f("fd.l4proto", "str", _fdv("l4proto"), cost=2),
    _f("fd.sockfamily", "str", _fdv("sockfamily"), cost=2),
    _f("fd.sip", "ip", _fdv("server_ip"), cost=2),
    _f("fd.cip", "ip", _fdv("client_ip"), cost=2),
    _f("fd.rip", "ip", _fdv("remote_ip"), cost=2),
    _f("fd.lip", "ip", _fdv("local_ip"), cost=2),
    _f("fd.sport", "int", _fdv("server_port"), cost=2),
    _f("fd.cport", "int", _fdv("client_port"), cost=2),
    _f("fd.rport", "int", _fdv("remote_port"), cost=2),
    _f("fd.lport", "int", _fdv("local_port"), cost=2),
    _f("fd.connected", "bool", _fd("connected"), cost=2),
    _f("fd.name_changed", "bool", "_name_changed(e)", cost=2),
    _f("fd.ip", "ip", "_pair(e.fd, 'client_ip', 'server_ip')", multi=True, cost=3),
    _f("fd.port", "int", "_pair(e.fd, 'client_port', 'server_port')", multi=True, cost=3),
    _f("fd.net", "net", "_pair(e.fd, 'client_ip', 'server_ip')", multi=True, cost=4),
    _f("fd.snet", "net", _fdv("server_ip"), cost=4),
    _f("fd.cnet", "net", _fdv("client_ip"), cost=4),
    _f("fd.rnet", "net", _fdv("remote_ip"), cost=4),
    _f("fd.lnet", "net", _fdv("local_ip"), cost=4),
    # container.* / k8s.*
    _f("container.id", "str", "e.container.id", nullable=False, cost=1),
    _f("container.full_id", "str", "(e.container.full_id or e.container.id)", nullable=False, cost=1),
    _f("container.name", "str", "(e.container.name or None)", cost=1),
    _f("container.type", "str", "(e.container.runtime or None)", cost=1),
    _f("container.image", "str", "(e.container.image or None)", cost=1),
    _f("container.image.id", "str", "(e.container.image_id or None)", cost=1),
    _f("container.image.repository", "str", "(e.container.image_repository or None)", cost=1),
    _f("container.image.tag", "str", "(e.container.image_tag or None)", cost=1),
    _f("container.image.digest", "str", "(e.container.image_digest or None)", cost=1),
    _f("container.privileged", "bool", "e.container.privileged", cost=1),
    _f("container.label", "str", "e.container.labels.get({a!r})", arg="required", cost=2),
    _f("container.labels", "str", "_labels(e.container.labels)", cost=4),
    _f("k8s.ns.name", "str", "(e.container.pod_namespace or None)", cost=1),
    _f("k8s.pod.name", "str", "(e.container.pod_name or None)", cost=1),
    _f("k8s.pod.uid", "str", "(e.container.pod_uid or None)", cost=1),
    _f("k8s.pod.label", "str", "e.container.pod_labels.get({a!r})", arg="required", cost=2),
    _f("k8s.pod.labels", "str", "_labels(e.container.pod_labels)", cost=4),
]

FIELDS: dict[str, FieldSpec] = {f.name: f for f in _FIELDS}

#: Falco fields the event model cannot supply (exact names, or prefixes ending in ".").
UNSUPPORTED: tuple[str, ...] = (
    "evt.buffer",
    "evt.rawarg.",
    "fd.sip.name",
    "fd.cip.name",
    "fd.rip.name",
    "fd.lip.name",
    "fd.ino",
    "fd.dev",
    "fd.types",
    "fd.is_server",
    "proc.vpgid",
    "proc.vpgid.",
    "proc.is_vpgid_leader",
    "proc.is_sid_leader",
    "proc.exe_ino",
    "proc.exe_ino.",
    "proc.is_container_healthcheck",
    "proc.is_container_liveness_probe",
    "proc.is_container_readiness_probe",
    "proc.fdopencount",
    "proc.stdin.",
    "proc.stdout.",
    "proc.stderr.",
    "thread.cap_inheritable",
    "thread.vtid",
    "container.mount",
    "container.mounts",
    "container.mount.",
    "container.start_ts",
    "container.duration",
    "container.healthcheck",
    "container.ip",
    "container.cni.json",
    "k8s.rc.",
    "k8s.svc.",
    "k8s.deployment.",
    "k8s.rs.",
    "k8s.ns.label",
    "k8s.ns.labels",
    "k8s.ns.uid",
    "k8s.pod.ip",
    "k8s.pod.cni.json",
    "k8s.pod.sandbox_id",
    "k8s.pod.full_sandbox_id",
)

#: Upstream field-name prefixes: a name under one of these that is not in the table is known to
#: Falco but not to us (unsupported); anything else is an unknown field (an error, like Falco's).
FALCO_FIELD_CLASSES: tuple[str, ...] = (
    "evt.",
    "proc.",
    "thread.",
    "user.",
    "group.",
    "fd.",
    "fs.",
    "syscall.",
    "container.",
    "k8s.",
    "span.",
    "fdlist.",
)


def is_unsupported(name: str) -> bool:
    return any(name == u or (u.endswith(".") and name.startswith(u)) for u in UNSUPPORTED)


def lookup(name: str) -> FieldSpec | None:
    """The spec for ``name``; ``evt.arg.X`` resolves to ``evt.arg`` with argument ``X``."""
    return FIELDS.get(name)


# --- helpers the generated code calls ------------------------------------------------------------

_HOSTNAME = socket.gethostname()
_ERRNO_NAMES = errno.errorcode

_O_ACCMODE = 3
_O_FLAGS = (
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),
)
_OPEN_TYPES = frozenset({"open", "openat", "openat2", "open_by_handle_at", "creat"})
_MODE_BITS = (
    (0o4000, "S_ISUID"),
    (0o2000, "S_ISGID"),
    (0o1000, "S_ISVTX"),
    (0o400, "S_IRUSR"),
    (0o200, "S_IWUSR"),
    (0o100, "S_IXUSR"),
    (0o40, "S_IRGRP"),
    (0o20, "S_IWGRP"),
    (0o10, "S_IXGRP"),
    (0o4, "S_IROTH"),
    (0o2, "S_IWOTH"),
    (0o1, "S_IXOTH"),
)
_SOCK_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM", 5: "SOCK_SEQPACKET", 10: "SOCK_PACKET"}
_AF_NAMES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
_PTRACE_NAMES = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA",
    7: "PTRACE_CONT",
    8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS",
    13: "PTRACE_SETREGS",
    16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH",
    0x4206: "PTRACE_SEIZE",
}
_CAP_NAMES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
_TYPECHARS = {
    "file": "f",
    "directory": "d",
    "ipv4": "4",
    "ipv6": "6",
    "unix": "u",
    "pipe": "p",
    "event": "e",
    "signalfd": "s",
    "eventpoll": "l",
    "inotify": "i",
    "timerfd": "t",
    "netlink": "n",
    "memfd": "m",
    "bpf": "b",
    "userfaultfd": "u",
}


def _datetime(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _res(res: int) -> str:
    if res >= 0:
        return "SUCCESS"
    return _ERRNO_NAMES.get(-res, str(res))


def open_flags_str(flags: int) -> str:
    """Render open(2) flags the way sinsp prints ``evt.arg.flags`` (``O_WRONLY|O_CREAT|O_TRUNC``)."""
    acc = flags & _O_ACCMODE
    names = ["O_RDONLY" if acc == 0 else "O_WRONLY" if acc == 1 else "O_RDWR"]
    names.extend(n for bit, n in _O_FLAGS if flags & bit == bit)
    return "|".join(names)


def _mode_str(mode: int) -> str:
    names = [n for bit, n in _MODE_BITS if mode & bit]
    return f"{mode:#o}({'|'.join(names)})" if names else f"{mode:#o}"


_CLONE_FLAGS = (
    (0x00000100, "CLONE_VM"),
    (0x00000200, "CLONE_FS"),
    (0x00000400, "CLONE_FILES"),
    (0x00000800, "CLONE_SIGHAND"),
    (0x00010000, "CLONE_THREAD"),
    (0x00020000, "CLONE_NEWNS"),
    (0x02000000, "CLONE_NEWCGROUP"),
    (0x04000000, "CLONE_NEWUTS"),
    (0x08000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
)
_CLONE_TYPES = frozenset({"clone", "clone3", "unshare", "setns", "fork", "vfork"})


def _render_arg(name: str, value: Any, etype: str = "") -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if name in ("flags", "nstype") and etype in _CLONE_TYPES:
            return "|".join(n for bit, n in _CLONE_FLAGS if value & bit) or str(value)
        if name == "flags" and etype in _OPEN_TYPES:
            return open_flags_str(value)
        if name == "mode":
            return _mode_str(value)
        if name == "domain":
            return _AF_NAMES.get(value, str(value))
        if name == "type" and etype == "socket":
            return _SOCK_TYPES.get(value & 0xF, str(value))
        if name == "request":
            return _PTRACE_NAMES.get(value, str(value))
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _arg(e: Event, name: str) -> str | None:
    if name.isdigit():
        keys = list(e.args)
        i = int(name)
        return _render_arg(keys[i], e.args[keys[i]], e.type) if i < len(keys) else None
    return _render_arg(name, e.args.get(name), e.type)


def _rawarg(e: Event, name: str) -> str | None:
    v = e.args.get(name)
    return None if v is None else str(v)


def _args_str(e: Event) -> str:
    return " ".join(f"{k}={_render_arg(k, v, e.type)}" for k, v in e.args.items())


def _flags_value(e: Event) -> int | None:
    v = e.args.get("flags")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        acc = 2 if "O_RDWR" in v else 1 if "O_WRONLY" in v else 0
        return acc | (0o100 if "O_CREAT" in v else 0)
    return None


def _open_mode(e: Event, want: int) -> bool | None:
    """``want`` 1 = read, 2 = write: O_RDONLY reads, O_WRONLY writes, O_RDWR both."""
    if e.type not in _OPEN_TYPES:
        return None
    flags = _flags_value(e)
    if flags is None:
        return None
    acc = flags & _O_ACCMODE
    if want == 1:
        return acc in (0, 2)
    return acc in (1, 2)


def _open_exec(e: Event) -> bool | None:
    if e.type not in _OPEN_TYPES:
        return None
    flags = _flags_value(e)
    mode = e.args.get("mode")
    if flags is None:
        return None
    if isinstance(mode, str):
        has_x = "S_IX" in mode
    elif isinstance(mode, int):
        has_x = bool(mode & 0o111)
    else:
        has_x = False
    return bool(flags & 0o100) and has_x


def _cwd(cwd: str) -> str | None:
    if not cwd:
        return None
    return cwd if cwd.endswith("/") else cwd + "/"


def _env(p: Process, name: str | None) -> str | None:
    if p.env is None:
        return None
    if name is not None:
        return p.env.get(name)
    return " ".join(f"{k}={v}" for k, v in p.env.items())


def _duration(t: float, p: Process) -> int | None:
    return None if p.start_time is None else int((t - p.start_time) * 1e9)


def _pduration(t: float, p: Process) -> int | None:
    if not p.ancestors or p.ancestors[0].start_time is None:
        return None
    return int((t - p.ancestors[0].start_time) * 1e9)


def _sname(p: Process) -> str | None:
    if p.sid is None:
        return None
    if p.sid == p.pid:
        return p.name
    for a in p.ancestors:
        if a.pid == p.sid:
            return a.name
    return None


_SHELLS = frozenset({"ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"})


def _loginshellid(p: Process) -> int | None:
    found: int | None = p.pid if p.name in _SHELLS else None
    for a in p.ancestors:
        if a.name in _SHELLS:
            found = a.pid
    return found


def _anc(p: Process, idx: int | None, attr: str) -> Any:
    """``proc.aname[N]``: 0 is the process itself, 1 the parent... ``None`` index = every ancestor."""
    if idx is None:
        return tuple(getattr(a, attr) for a in p.ancestors)
    if idx == 0:
        return getattr(p, attr)
    anc = p.ancestors
    return getattr(anc[idx - 1], attr) if idx <= len(anc) else None


def _caps(mask: int | None) -> str | None:
    if mask is None:
        return None
    return " ".join(n for i, n in enumerate(_CAP_NAMES) if mask >> i & 1)


@functools.lru_cache(maxsize=4096)
def _pw_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError, ValueError):
        return None


@functools.lru_cache(maxsize=4096)
def _gr_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError, ValueError):
        return None


def _user_name(p: Process) -> str | None:
    if p.user_name:
        return p.user_name
    return None if p.uid is None else _pw_name(p.uid)


def _group_name(p: Process) -> str | None:
    if p.group_name:
        return p.group_name
    return None if p.gid is None else _gr_name(p.gid)


def _loginuid(p: Process) -> int:
    lu = p.loginuid
    return -1 if lu is None or lu == 0xFFFFFFFF else lu


def _login_name(p: Process) -> str | None:
    lu = _loginuid(p)
    return None if lu < 0 else _pw_name(lu)


def _typechar(fd: FileDescriptor | None) -> str | None:
    if fd is None or not fd.type:
        return None
    return _TYPECHARS.get(fd.type, "o")


def _fd_directory(fd: FileDescriptor | None) -> str | None:
    if fd is None or not fd.name:
        return None
    if fd.type == "directory":
        return fd.name
    if fd.type not in ("file", ""):
        return None
    d = os.path.dirname(fd.name)
    return d or None


def _fd_filename(fd: FileDescriptor | None) -> str | None:
    if fd is None or not fd.name or fd.type not in ("file", "directory", ""):
        return None
    return os.path.basename(fd.name) or None


def _pair(fd: FileDescriptor | None, a: str, b: str) -> tuple[Any, ...]:
    if fd is None:
        return ()
    return tuple(v for v in (getattr(fd, a), getattr(fd, b)) if v)


_SEND_TYPES = frozenset({"sendto", "sendmsg", "sendmmsg"})


def _name_changed(e: Event) -> bool:
    """A send on an unconnected socket that names its destination (sinsp renames the fd then)."""
    return (
        e.type in _SEND_TYPES and e.fd is not None and not e.fd.connected and bool(e.args.get("addr") or e.fd.server_ip)
    )


def _labels(labels: dict[str, str]) -> str | None:
    return ", ".join(f"{k}:{v}" for k, v in labels.items()) if labels else None


@functools.lru_cache(maxsize=8192)
def _ip(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(addr)
    except ValueError:
        return None


def _in_nets(addr: Any, nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if not addr:
        return False
    ip = _ip(str(addr))
    if ip is None:
        return False
    return any(ip.version == n.version and ip in n for n in nets)


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _upper(v: Any) -> Any:
    return v.upper() if isinstance(v, str) else v


def _basename(v: Any) -> Any:
    return os.path.basename(v) if isinstance(v, str) else v


def _b64(v: Any) -> Any:
    import base64
    import binascii

    if not isinstance(v, str):
        return v
    try:
        return base64.b64decode(v, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def _num(v: Any) -> int | None:
    if isinstance(v, int):
        return v
    try:
        return int(str(v), 0)
    except ValueError:
        return None


def _bytes(v: Any) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode()


#: Names the generated code may reference.
RUNTIME_NAMES: dict[str, Any] = {
    name: obj
    for name, obj in globals().items()
    if name.startswith("_") and not name.startswith("__") and (callable(obj) or name in ("_HOSTNAME",))
}
