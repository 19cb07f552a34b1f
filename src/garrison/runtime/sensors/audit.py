"""Raw audit netlink sensor (no auditd): complete exec records with argv, cwd, ids, loginuid, tty.

We register our own process as the audit daemon over ``NETLINK_AUDIT``, add ``exit,always``
rules for ``execve``/``execveat`` (native and, on x86_64, the i386 compat numbers an attacker
can use to dodge a 64-bit-only rule), tagged with the key ``garrison-<pid>``, and read the
records the kernel sends us. The messages are C structs (``audit_status``,
``audit_rule_data``) and ``key=value`` text; speaking them directly keeps us free of auditd
and of libaudit bindings Debian does not ship for Python 3 in a venv.

Assembly: one syscall produces several records sharing the serial in ``audit(SEC.MS:SERIAL)``
(``SYSCALL``, ``EXECVE`` possibly split over several records, ``CWD``, ``PATH``...,
``PROCTITLE``) and ends with ``EOE``. Records are buffered raw per serial and parsed once when
``EOE`` arrives; serials whose syscall is not an exec are dropped as soon as their ``SYSCALL``
record is seen, and a serial that never completes is flushed after ``stale_seconds``.

``EXECVE`` argument encoding, as the kernel writes it (``kernel/auditsc.c``
``audit_log_execve_info``): ``aN="text"`` when printable, ``aN=HEX`` otherwise; an argument
longer than the record budget becomes ``aN_len=L aN[0]=... aN[1]=...`` chunks, possibly spread
over several ``EXECVE`` records.

State we change is restored on :meth:`AuditSensor.stop`: our rules are deleted, the daemon pid
is released, and ``enabled``/``backlog_limit``/``rate_limit`` get their previous values. The
previous values are also written to ``/run/garrison/audit-<pid>.json`` while we run: if the
sensor is killed, the next one deletes the dead sensor's rules and restores those values. The
kernel accepts one daemon pid; a file lock (``/tmp/garrison-audit.lock``) makes concurrent
sensors on one machine (tests running in parallel) take turns instead of fighting.

Loss: the kernel's ``lost`` counter (read with ``AUDIT_GET`` once a second on a second socket)
minus its value at start, plus ``ENOBUFS`` receive failures. Throughput: a 64 MiB forced socket
buffer and a 64k backlog limit absorb bursts; under sustained overload the kernel makes the
exec-ing tasks wait (``backlog_wait_time``) rather than drop, so 2k exec/s arrive complete.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

from garrison.model.runtime import Event, EventKind, FileDescriptor, Process
from garrison.runtime.sensors.interface import EventSink, SensorError, SensorStats, is_root, sensor_thread

logger = logging.getLogger(__name__)

NETLINK_AUDIT = 9
SO_RCVBUFFORCE = 33
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

AUDIT_GET = 1000
AUDIT_SET = 1001
AUDIT_LIST_RULES = 1013
AUDIT_ADD_RULE = 1011
AUDIT_DEL_RULE = 1012
AUDIT_SYSCALL = 1300
AUDIT_PATH = 1302
AUDIT_CWD = 1307
AUDIT_EXECVE = 1309
AUDIT_EOE = 1320
AUDIT_PROCTITLE = 1327

AUDIT_STATUS_ENABLED = 0x1
AUDIT_STATUS_PID = 0x4
AUDIT_STATUS_RATE_LIMIT = 0x8
AUDIT_STATUS_BACKLOG_LIMIT = 0x10

AUDIT_FILTER_EXIT = 0x04
AUDIT_ALWAYS = 2
AUDIT_ARCH = 11
AUDIT_FILTERKEY = 210
AUDIT_EQUAL = 0x40000000
AUDIT_BITMASK_SIZE = 64
AUDIT_MAX_FIELDS = 64

LOCK_PATH = "/tmp/garrison-audit.lock"  # noqa: S108 - a well-known path every sensor on the machine agrees on
_NLMSGHDR = struct.Struct("=IHHII")
_STATUS = struct.Struct("=11I")
_RULE_HEAD = struct.Struct(f"=3I{AUDIT_BITMASK_SIZE}I{AUDIT_MAX_FIELDS}I{AUDIT_MAX_FIELDS}I{AUDIT_MAX_FIELDS}II")

# (audit arch, {syscall number: name}) per machine
_ARCHES: dict[str, list[tuple[int, dict[int, str]]]] = {
    "x86_64": [(0xC000003E, {59: "execve", 322: "execveat"}), (0x40000003, {11: "execve", 358: "execveat"})],
    "aarch64": [(0xC00000B7, {221: "execve", 281: "execveat"})],
}
# rule fields whose value is a length into ``buf`` (selinux contexts, watch, dir, exe, filterkey)
_STRING_FIELDS = frozenset({13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 105, 107, 112, AUDIT_FILTERKEY})
_FIELD_RE = re.compile(r'([\w\[\]]+)=("[^"]*"|\S*)')


@dataclass(slots=True)
class AuditStatus:
    mask: int = 0
    enabled: int = 0
    failure: int = 0
    pid: int = 0
    rate_limit: int = 0
    backlog_limit: int = 0
    lost: int = 0
    backlog: int = 0
    feature_bitmap: int = 0
    backlog_wait_time: int = 0
    backlog_wait_time_actual: int = 0

    @classmethod
    def unpack(cls, data: bytes) -> AuditStatus:
        padded = bytes(data[: _STATUS.size]).ljust(_STATUS.size, b"\0")
        return cls(*_STATUS.unpack(padded))

    def pack(self) -> bytes:
        return _STATUS.pack(
            self.mask, self.enabled, self.failure, self.pid, self.rate_limit, self.backlog_limit, self.lost,
            self.backlog, self.feature_bitmap, self.backlog_wait_time, self.backlog_wait_time_actual,
        )  # fmt: skip


def exec_rule(arch: int, syscalls: list[int], key: str) -> bytes:
    """``audit_rule_data`` for ``-a exit,always -F arch=ARCH -S ... -k KEY``."""
    mask = [0] * AUDIT_BITMASK_SIZE
    for nr in syscalls:
        mask[nr // 32] |= 1 << (nr % 32)
    fields = [0] * AUDIT_MAX_FIELDS
    values = [0] * AUDIT_MAX_FIELDS
    fflags = [0] * AUDIT_MAX_FIELDS
    keyb = key.encode()
    fields[0], values[0], fflags[0] = AUDIT_ARCH, arch, AUDIT_EQUAL
    fields[1], values[1], fflags[1] = AUDIT_FILTERKEY, len(keyb), AUDIT_EQUAL
    head = _RULE_HEAD.pack(AUDIT_FILTER_EXIT, AUDIT_ALWAYS, 2, *mask, *fields, *values, *fflags, len(keyb))
    return head + keyb


def rule_key(data: bytes) -> str | None:
    """The filter key of an ``audit_rule_data`` blob, if it has one."""
    if len(data) < _RULE_HEAD.size:
        return None
    vals = _RULE_HEAD.unpack_from(data)
    count = vals[2]
    fields = vals[3 + AUDIT_BITMASK_SIZE : 3 + AUDIT_BITMASK_SIZE + AUDIT_MAX_FIELDS]
    values = vals[3 + AUDIT_BITMASK_SIZE + AUDIT_MAX_FIELDS : 3 + AUDIT_BITMASK_SIZE + 2 * AUDIT_MAX_FIELDS]
    buf = data[_RULE_HEAD.size :]
    pos = 0
    for i in range(min(count, AUDIT_MAX_FIELDS)):
        if fields[i] in _STRING_FIELDS:
            text = buf[pos : pos + values[i]]
            if fields[i] == AUDIT_FILTERKEY:
                return text.decode("utf-8", "replace")
            pos += values[i]
    return None


def decode_value(raw: str, hexed: bool = True) -> str:
    """An audit field value: ``"quoted"`` text, ``(null)``, or hex-encoded bytes."""
    if raw[:1] == '"':
        return raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:]
    if raw in ("(null)", "(none)", "?"):
        return ""
    if hexed:
        try:
            return bytes.fromhex(raw).decode("utf-8", "surrogateescape")
        except ValueError:
            return raw
    return raw


def parse_fields(text: str) -> dict[str, str]:
    """``key=value`` pairs of one record body (after the ``audit(...):`` header)."""
    return dict(_FIELD_RE.findall(text))


def record_header(text: str) -> tuple[float, int, str]:
    """``(time, serial, body)`` of an ``audit(SEC.MS:SERIAL): body`` record; ValueError when malformed."""
    if not text.startswith("audit("):
        raise ValueError("audit record without an audit(...) header")
    end = text.index("):", 6)
    stamp, _, serial = text[6:end].partition(":")
    return float(stamp), int(serial), text[end + 2 :].lstrip()


def parse_argv(bodies: list[str]) -> list[str]:
    """Reassemble argv from one or more ``EXECVE`` record bodies."""
    args: dict[int, str] = {}
    chunks: dict[int, dict[int, str]] = {}
    argc = -1
    for body in bodies:
        for key, raw in _FIELD_RE.findall(body):
            if key == "argc":
                argc = int(raw)
            elif key[:1] == "a":
                name = key[1:]
                if name.isdigit():
                    args[int(name)] = decode_value(raw)
                elif "[" in name:
                    idx, _, part = name.partition("[")
                    if idx.isdigit() and part[:-1].isdigit():
                        chunks.setdefault(int(idx), {})[int(part[:-1])] = raw
    for idx, parts in chunks.items():
        joined = [parts[i] for i in sorted(parts)]
        if joined and joined[0][:1] == '"':
            args[idx] = "".join(decode_value(p) for p in joined)
        else:
            args[idx] = decode_value("".join(joined))
    if argc < 0:
        argc = max(args) + 1 if args else 0
    return [args.get(i, "") for i in range(argc)]


def tty_number(name: str) -> int:
    """Falco's ``proc.tty`` (the kernel's ``tty_nr`` encoding) from audit's ``tty=pts0``."""
    for prefix, major in (("pts", 136), ("ttyS", 4), ("tty", 4)):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            minor = int(name[len(prefix) :]) + (64 if prefix == "ttyS" else 0)
            return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)
    return 0


def _int(raw: str | None, default: int | None = None) -> int | None:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def build_exec_event(records: list[tuple[int, str]], when: float, syscalls: dict[str, str]) -> Event | None:
    """One exec :class:`Event` from the records of one serial (``(type, body)`` pairs)."""
    sc: dict[str, str] | None = None
    execve: list[str] = []
    cwd = ""
    paths: list[dict[str, str]] = []
    for rtype, body in records:
        if rtype == AUDIT_SYSCALL:
            sc = parse_fields(body)
        elif rtype == AUDIT_EXECVE:
            execve.append(body)
        elif rtype == AUDIT_CWD:
            cwd = decode_value(parse_fields(body).get("cwd", ""))
        elif rtype == AUDIT_PATH:
            paths.append(parse_fields(body))
    if sc is None:
        return None
    etype = syscalls.get(f"{sc.get('arch', '')}:{sc.get('syscall', '')}")
    if etype is None:
        return None
    argv = parse_argv(execve) if execve else []
    auid = _int(sc.get("auid"), -1)
    proc = Process(
        pid=_int(sc.get("pid"), 0) or 0,
        ppid=_int(sc.get("ppid"), 0) or 0,
        name=decode_value(sc.get("comm", "")),
        exe=argv[0] if argv else "",
        exepath=decode_value(sc.get("exe", "")),
        args=argv[1:],
        cwd=cwd,
        uid=_int(sc.get("uid")),
        gid=_int(sc.get("gid")),
        euid=_int(sc.get("euid")),
        egid=_int(sc.get("egid")),
        loginuid=-1 if auid == 4294967295 else auid,
        tty=tty_number(sc.get("tty", "")),
    )
    proc.tid = proc.pid
    if proc.exepath:
        proc.exe_from_memfd = proc.exepath.startswith("/memfd:")
    res = _int(sc.get("exit"), 0) or 0
    ses = _int(sc.get("ses"), -1)
    args: dict[str, object] = {"res": res, "ses": -1 if ses == 4294967295 else ses}
    fd = None
    if paths:
        filename = decode_value(paths[0].get("name", ""))
        args["filename"] = filename
        fd = FileDescriptor(type="file", name=filename)
    if "key" in sc:
        args["key"] = decode_value(sc["key"])
    return Event(time=when, type=etype, kind=EventKind.PROCESS, sensor="audit", proc=proc, args=args, res=res, fd=fd)


class _Netlink:
    """A small synchronous request/ack client over one audit netlink socket."""

    def __init__(self, rcvbuf: int = 0) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        if rcvbuf:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((0, 0))
        self.seq = int(time.time()) & 0xFFFF

    def send(self, mtype: int, payload: bytes, flags: int = NLM_F_REQUEST | NLM_F_ACK) -> int:
        self.seq += 1
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(payload), mtype, flags, self.seq, 0) + payload)
        return self.seq

    def request(self, mtype: int, payload: bytes = b"", *, want: int | None = None, dump: bool = False) -> list[bytes]:
        """Send and collect replies of type ``want`` until the ack / ``NLMSG_DONE``; raise OSError on a nack."""
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        seq = self.send(mtype, payload, flags)
        out: list[bytes] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], 1.0)
            if not ready:
                continue
            data = self.sock.recv(1 << 16)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, rtype, _fl, rseq, _pid = _NLMSGHDR.unpack_from(data, off)
                body = data[off + _NLMSGHDR.size : off + length]
                off += (length + 3) & ~3 if length else len(data)
                if rseq != seq:
                    continue
                if rtype == NLMSG_ERROR:
                    code = struct.unpack_from("=i", body)[0]
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    if want is None or out or dump:
                        return out
                    continue  # the ack may precede the reply
                if rtype == NLMSG_DONE:
                    return out
                if want is None or rtype == want:
                    out.append(bytes(body))
                    if not dump and want is not None:
                        return out
        raise OSError(errno.ETIMEDOUT, "no answer from the kernel's audit subsystem")

    def status(self) -> AuditStatus:
        replies = self.request(AUDIT_GET, want=AUDIT_GET)
        return AuditStatus.unpack(replies[0])

    def close(self) -> None:
        self.sock.close()


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


class AuditSensor:
    """Exec records from the kernel audit subsystem, with us as the audit daemon."""

    name = "audit"

    def __init__(
        self,
        *,
        rcvbuf: int = 64 << 20,
        backlog_limit: int = 65536,
        lock_timeout: float = 0.0,
        lock_path: str = LOCK_PATH,
        stale_seconds: float = 2.0,
        state_dir: str = "/run/garrison",
    ) -> None:
        self._state_dir = state_dir
        self._rcvbuf = rcvbuf
        self._backlog_limit = backlog_limit
        self._lock_timeout = lock_timeout
        self._lock_path = lock_path
        self._stale = stale_seconds
        self._key = f"garrison-{os.getpid()}"
        self._data: _Netlink | None = None
        self._ctl: _Netlink | None = None
        self._lock_fd: int | None = None
        self.displaced = False  # another process became the kernel's audit daemon (checked once a second)
        self._saved: AuditStatus | None = None
        self._rules: list[bytes] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stats = SensorStats(self.name)
        self._lost_base = 0
        machine = os.uname().machine
        self._arches = _ARCHES.get(machine, [])
        self._syscalls = {f"{arch:x}:{nr}": name for arch, table in self._arches for nr, name in table.items()}

    # -- availability -------------------------------------------------------------------------
    def available(self) -> str | None:
        if (why := is_root()) is not None:
            return f"audit: {why}"
        if not self._arches:
            return f"audit: no exec syscall table for machine {os.uname().machine!r}; use --sensors proc"
        try:
            ctl = _Netlink()
        except OSError as err:
            return f"audit: netlink audit socket unavailable ({err.strerror}); kernel needs CONFIG_AUDIT"
        try:
            st = ctl.status()
        except OSError as err:
            return f"audit: cannot read audit status ({err.strerror}); boot without audit=0 and run as root"
        finally:
            ctl.close()
        if st.enabled == 2:
            return "audit: audit configuration is locked (enabled=2, auditctl -e 2); reboot to unlock"
        if st.pid and st.pid != os.getpid() and os.path.exists(f"/proc/{st.pid}"):
            holder = _comm(st.pid) or "another process"
            fix = "systemctl stop auditd" if holder == "auditd" else f"stop pid {st.pid}"
            return f"audit: in use by {holder} (pid {st.pid}); {fix}, or run without the audit sensor"
        return None

    # -- lifecycle ----------------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + self._lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise SensorError(
                        f"audit: another garrison sensor is the audit daemon (lock {self._lock_path}); "
                        "stop it or run without the audit sensor"
                    ) from None
                time.sleep(0.05)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def start(self, sink: EventSink) -> None:
        if self._data is not None:
            return
        if (why := self.available()) is not None and "in use by" not in why:
            raise SensorError(why)
        self._acquire_lock()
        try:
            self._open()
        except BaseException:
            self._restore()
            self._release_lock()
            raise
        self._stop.clear()
        self._stats.running = True
        self._thread = sensor_thread(self._run, sink, name="garrison-audit")
        self._thread.start()

    def _open(self) -> None:
        self._ctl = _Netlink()
        saved = self._ctl.status()
        if saved.pid and saved.pid != os.getpid() and os.path.exists(f"/proc/{saved.pid}"):
            holder = _comm(saved.pid) or "another process"
            raise SensorError(f"audit: in use by {holder} (pid {saved.pid}); stop it or run without the audit sensor")
        self._lost_base = saved.lost
        saved = self._recover(saved)
        self._saved = saved
        self._remember(saved)
        self._remove_stale_rules()
        self._data = _Netlink(self._rcvbuf)
        new = AuditStatus(
            mask=AUDIT_STATUS_ENABLED | AUDIT_STATUS_PID | AUDIT_STATUS_BACKLOG_LIMIT | AUDIT_STATUS_RATE_LIMIT,
            enabled=1,
            pid=os.getpid(),
            backlog_limit=max(self._backlog_limit, saved.backlog_limit),
            rate_limit=0,
        )
        try:
            self._data.request(AUDIT_SET, new.pack())
        except OSError as err:
            raise SensorError(f"audit: cannot become the audit daemon: {err.strerror}") from err
        for arch, table in self._arches:
            rule = exec_rule(arch, sorted(table), self._key)
            try:
                self._ctl.request(AUDIT_ADD_RULE, rule)
            except OSError as err:
                if err.errno != errno.EEXIST:
                    raise SensorError(f"audit: cannot add the exec rule: {err.strerror}") from err
            self._rules.append(rule)

    def _state_file(self, pid: int) -> str:
        return os.path.join(self._state_dir, f"audit-{pid}.json")

    def _remember(self, saved: AuditStatus) -> None:
        """Write the state we must restore, so a sensor killed before :meth:`stop` can be undone later."""
        try:
            os.makedirs(self._state_dir, exist_ok=True)
            with open(self._state_file(os.getpid()), "w", encoding="utf-8") as fh:
                json.dump({"enabled": saved.enabled, "backlog_limit": saved.backlog_limit,
                           "rate_limit": saved.rate_limit}, fh)  # fmt: skip
        except OSError as err:
            logger.warning("audit: cannot record the state to restore in %s: %s", self._state_dir, err.strerror)

    def _recover(self, current: AuditStatus) -> AuditStatus:
        """When a previous sensor died without restoring, its recorded original state is the one to restore."""
        try:
            names = os.listdir(self._state_dir)
        except OSError:
            return current
        for name in names:
            pid = name[6:-5]
            if not (name.startswith("audit-") and name.endswith(".json") and pid.isdigit()):
                continue
            if int(pid) == os.getpid() or os.path.exists(f"/proc/{pid}"):
                continue
            path = os.path.join(self._state_dir, name)
            try:
                with open(path, encoding="utf-8") as fh:
                    old = json.load(fh)
                os.unlink(path)
                current = AuditStatus(
                    enabled=int(old["enabled"]),
                    backlog_limit=int(old["backlog_limit"]),
                    rate_limit=int(old["rate_limit"]),
                    lost=current.lost,
                )
                logger.info("audit: restoring the state left by dead sensor pid %s on stop", pid)
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return current

    def _remove_stale_rules(self) -> None:
        """Delete ``garrison-<pid>`` rules left by sensors that died without cleaning up."""
        assert self._ctl is not None
        try:
            rules = self._ctl.request(AUDIT_LIST_RULES, want=AUDIT_LIST_RULES, dump=True)
        except OSError:
            return
        for rule in rules:
            key = rule_key(rule)
            if key and key.startswith("garrison-") and key[9:].isdigit():
                pid = int(key[9:])
                if pid == os.getpid() or not os.path.exists(f"/proc/{pid}"):
                    try:
                        self._ctl.request(AUDIT_DEL_RULE, rule)
                    except OSError:
                        pass

    def _restore(self) -> None:
        ctl = self._ctl
        if ctl is not None:
            for rule in self._rules:
                try:
                    ctl.request(AUDIT_DEL_RULE, rule)
                except OSError as err:
                    logger.warning("audit: could not delete our rule: %s", err.strerror)
            self._rules.clear()
        if self._saved is not None and self._data is not None:
            old = self._saved
            back = AuditStatus(
                mask=AUDIT_STATUS_ENABLED | AUDIT_STATUS_PID | AUDIT_STATUS_BACKLOG_LIMIT | AUDIT_STATUS_RATE_LIMIT,
                enabled=old.enabled,
                pid=0,
                backlog_limit=old.backlog_limit,
                rate_limit=old.rate_limit,
            )
            try:
                self._data.request(AUDIT_SET, back.pack())
            except OSError as err:
                logger.warning("audit: could not restore the audit status: %s", err.strerror)
        self._saved = None
        try:
            os.unlink(self._state_file(os.getpid()))
        except OSError:
            pass
        for nl in (self._data, self._ctl):
            if nl is not None:
                nl.close()
        self._data = self._ctl = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        if self._data is not None or self._ctl is not None:
            self._refresh_lost()
            self._restore()
        self._release_lock()
        self._stats.running = False

    def _refresh_lost(self) -> None:
        if self._ctl is None:
            return
        try:
            st = self._ctl.status()
        except OSError:
            return
        self._stats.lost = max(self._stats.lost, st.lost - self._lost_base + self._stats.extra.get("enobufs", 0))
        self._stats.extra["backlog"] = st.backlog
        # the kernel has one audit daemon: a process that registers itself (auditd, another
        # sensor ignoring our lock) silently takes every record from then on; say so, and let the
        # pipeline fall back to the proc connector's exec events
        displaced = st.pid != os.getpid()
        if displaced and not self.displaced:
            logger.warning(
                "audit: pid %d took over the audit daemon role; exec records now come from elsewhere", st.pid
            )
            self._stats.extra["displaced_by"] = st.pid
        self.displaced = displaced

    # -- reading ------------------------------------------------------------------------------
    def _run(self, sink: EventSink) -> None:
        data = self._data
        assert data is not None
        sock = data.sock
        stats = self._stats
        buf = bytearray(1 << 17)
        pending: dict[int, list[tuple[int, str]]] = {}
        born: dict[int, float] = {}
        ignored: dict[int, float] = {}
        syscalls = self._syscalls
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        hdr = _NLMSGHDR
        next_status = time.monotonic() + 1.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_status:
                self._refresh_lost()
                next_status = now + 1.0
                for serial in [s for s, t in born.items() if t < now - self._stale]:
                    born.pop(serial)
                    self._emit(pending.pop(serial, []), 0.0, sink)
                for serial in [s for s, t in ignored.items() if t < now - self._stale]:
                    ignored.pop(serial)
            if not poller.poll(200):
                continue
            try:
                n = sock.recv_into(buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    stats.extra["enobufs"] = stats.extra.get("enobufs", 0) + 1
                    stats.lost += 1
                    continue
                if self._stop.is_set():
                    break
                stats.errors += 1
                continue
            # kauditd sends one record per datagram and its nlmsg_len counts the payload only
            # (a long-standing audit quirk), so the record is the rest of the datagram
            if n >= 16:
                _length, rtype, _fl, _seq, _pid = hdr.unpack_from(buf, 0)
                if rtype < AUDIT_SYSCALL or rtype >= 1400:
                    continue
                text = bytes(buf[16:n]).rstrip(b"\0\n").decode("utf-8", "surrogateescape")
                try:
                    when, serial, body = record_header(text)
                except ValueError:
                    stats.errors += 1
                    continue
                if serial in ignored:
                    if rtype == AUDIT_EOE:
                        ignored.pop(serial, None)
                    continue
                if rtype == AUDIT_SYSCALL:
                    i = body.find("syscall=")
                    j = body.find(" ", i)
                    k = body.find("arch=")
                    key = f"{body[k + 5 : body.find(' ', k)]}:{body[i + 8 : j]}"
                    if key not in syscalls:
                        ignored[serial] = now
                        pending.pop(serial, None)
                        born.pop(serial, None)
                        continue
                if rtype == AUDIT_EOE:
                    born.pop(serial, None)
                    self._emit(pending.pop(serial, []), when, sink)
                    continue
                if rtype == AUDIT_PROCTITLE:
                    continue
                records = pending.get(serial)
                if records is None:
                    pending[serial] = records = []
                    born[serial] = now
                records.append((rtype, body))

    def _emit(self, records: list[tuple[int, str]], when: float, sink: EventSink) -> None:
        if not records:
            return
        stats = self._stats
        try:
            event = build_exec_event(records, when or time.time(), self._syscalls)
        except (ValueError, IndexError):
            stats.errors += 1
            return
        if event is None:
            return
        stats.received += 1
        event.num = stats.received
        try:
            sink(event)
        except Exception:
            stats.errors += 1
            logger.exception("audit sink failed")

    def stats(self) -> SensorStats:
        return self._stats
