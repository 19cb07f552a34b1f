"""Netlink proc connector sensor: fork, exec, exit, uid/gid, sid, comm and ptrace notifications.

We speak ``NETLINK_CONNECTOR`` directly (``socket.AF_NETLINK`` is in the standard library; the
messages are three fixed C structs: ``nlmsghdr``, ``cn_msg``, ``proc_event``), so no library
is needed. The socket joins multicast group ``CN_IDX_PROC`` and sends ``PROC_CN_MCAST_LISTEN``.

Loss accounting is exact: the kernel numbers proc events per CPU (``cn_msg.seq`` is a per-CPU
counter, ``proc_event.cpu`` names the CPU), so a gap in one CPU's sequence is the number of
events dropped before we read them; a receive failing with ``ENOBUFS`` is counted too. The
socket buffer is forced large (``SO_RCVBUFFORCE``) so bursts of thousands of forks a second fit.

The proc connector carries no arguments or paths: the process table reads ``/proc/<pid>`` on
exec, and the audit sensor supplies complete argv. This sensor's value is the process tree.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import threading
import time

from garrison.model.runtime import Event, EventKind, Process
from garrison.runtime.sensors.interface import (
    EventSink,
    SensorError,
    SensorStats,
    is_root,
    monotonic_to_epoch,
    sensor_thread,
)

logger = logging.getLogger(__name__)

#: seconds the caught-up mark trails the newest message's time (see ``_run``)
ORDER_SLACK = 0.01

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3
SO_RCVBUFFORCE = 33

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_UID = 0x00000004
PROC_EVENT_GID = 0x00000040
PROC_EVENT_SID = 0x00000080
PROC_EVENT_PTRACE = 0x00000100
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_COREDUMP = 0x40000000
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")
_CNMSG = struct.Struct("=IIIIHH")
_PROC_EVENT_HDR = struct.Struct("=IIQ")
_FOUR = struct.Struct("=iiii")
_SIX = struct.Struct("=iiIIii")
_TWO = struct.Struct("=ii")
_COMM = struct.Struct("=ii16s")
_HDR_LEN = _NLMSGHDR.size + _CNMSG.size  # 36
_EVT_OFF = _HDR_LEN + _PROC_EVENT_HDR.size  # 52
# nlmsghdr + cn_msg + proc_event header, skipping what we do not read: idx, seq, len, what, cpu, timestamp
_HEAD = struct.Struct("=16xI4xI4xH2xIIQ")
assert _HEAD.size == _EVT_OFF
_WAKE_SECONDS = 0.05  # an idle reader looks at its stop flag this often (SO_RCVTIMEO), and
# moves ``caught_up`` to now: an empty socket means every event so far has been handed on


def _truncated(what: int, avail: int, need: int) -> ValueError:
    return ValueError(f"proc event {what:#x} truncated ({avail} < {need} bytes)")


def subscribe_message(op: int = PROC_CN_MCAST_LISTEN) -> bytes:
    """The netlink message that starts (or stops) proc event delivery to this socket."""
    payload = struct.pack("=I", op)
    cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn


def parse_message(data: bytes | memoryview, offset: float = 0.0) -> tuple[int, int, Event | None]:
    """Decode one proc connector datagram into ``(cpu, seq, event)``.

    ``event`` is ``None`` for thread creation/exit and acknowledgements (counted, not emitted).
    Raises ``ValueError`` on a truncated or malformed message.
    """
    size = len(data)
    if size < _EVT_OFF:
        raise ValueError(f"proc connector message too short ({size} bytes)")
    idx, seq, length, what, cpu, ts_ns = _HEAD.unpack_from(data)  # the three headers in one call
    if idx != CN_IDX_PROC:
        raise ValueError(f"not a proc connector message (idx {idx})")
    if length < _PROC_EVENT_HDR.size or _HDR_LEN + length > size:
        raise ValueError(f"proc connector payload length {length} does not fit the message")
    when = ts_ns / 1e9 + offset
    o = _EVT_OFF
    avail = size - o

    if what == PROC_EVENT_FORK:
        if avail < 16:
            raise _truncated(what, avail, 16)
        _ppid, ptgid, cpid, ctgid = _FOUR.unpack_from(data, o)
        if cpid != ctgid:  # a new thread, not a process
            return cpu, seq, None
        return cpu, seq, Event(when, "clone", EventKind.PROCESS, "proc_connector", Process(ctgid, ptgid, cpid))
    if what == PROC_EVENT_EXEC:
        if avail < 8:
            raise _truncated(what, avail, 8)
        tid, tgid = _TWO.unpack_from(data, o)
        return cpu, seq, Event(when, "execve", EventKind.PROCESS, "proc_connector", Process(tgid, 0, tid))
    if what in (PROC_EVENT_UID, PROC_EVENT_GID):
        if avail < 16:
            raise _truncated(what, avail, 16)
        tid, tgid, real, eff = struct.unpack_from("=iiII", data, o)
        if what == PROC_EVENT_UID:
            proc = Process(pid=tgid, tid=tid, uid=real, euid=eff)
            args = {"uid": eff, "ruid": real, "euid": eff}
            etype = "setuid"
        else:
            proc = Process(pid=tgid, tid=tid, gid=real, egid=eff)
            args = {"gid": eff, "rgid": real, "egid": eff}
            etype = "setgid"
        return cpu, seq, Event(when, etype, EventKind.PRIVILEGE, "proc_connector", proc, args=args)
    if what == PROC_EVENT_SID:
        if avail < 8:
            raise _truncated(what, avail, 8)
        tid, tgid = _TWO.unpack_from(data, o)
        return (
            cpu,
            seq,
            Event(when, "setsid", EventKind.PROCESS, "proc_connector", Process(pid=tgid, tid=tid, sid=tgid)),
        )
    if what == PROC_EVENT_PTRACE:
        if avail < 16:
            raise _truncated(what, avail, 16)
        tid, tgid, tracer_tid, tracer_tgid = _FOUR.unpack_from(data, o)
        # the tracee's event: tracer_tgid 0 means detach; the actor is the tracer
        actor = tracer_tgid or tgid
        request = "PTRACE_ATTACH" if tracer_tgid else "PTRACE_DETACH"
        args = {"request": request, "pid": tgid, "tracer": tracer_tgid}
        proc = Process(pid=actor, tid=tracer_tid or tid)
        return cpu, seq, Event(when, "ptrace", EventKind.PRIVILEGE, "proc_connector", proc, args=args)
    if what == PROC_EVENT_COMM:
        if avail < 24:
            raise _truncated(what, avail, 24)
        tid, tgid, raw = _COMM.unpack_from(data, o)
        if tid != tgid:
            return cpu, seq, None
        name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        proc = Process(pid=tgid, tid=tid, name=name)
        return cpu, seq, Event(when, "prctl", EventKind.PROCESS, "proc_connector", proc, args={"comm": name})
    if what == PROC_EVENT_EXIT:
        if avail < 16:
            raise _truncated(what, avail, 16)
        tid, tgid, code, sig, _ppid, ptgid = (
            _SIX.unpack_from(data, o) if avail >= 24 else (*_FOUR.unpack_from(data, o), 0, 0)
        )
        if tid != tgid:
            return cpu, seq, None
        args = {"status": code, "signal": sig}
        return (
            cpu,
            seq,
            Event(
                when, "procexit", EventKind.PROCESS, "proc_connector", Process(pid=tgid, tid=tid, ppid=ptgid), args=args
            ),
        )
    if what == PROC_EVENT_COREDUMP:
        if avail < 8:
            raise _truncated(what, avail, 8)
        tid, tgid = _TWO.unpack_from(data, o)
        return cpu, seq, Event(when, "coredump", EventKind.PROCESS, "proc_connector", Process(pid=tgid, tid=tid))
    return cpu, seq, None  # PROC_EVENT_NONE (the listen acknowledgement) and future kinds


class ProcConnectorSensor:
    """Process lifecycle notifications from the kernel's proc connector."""

    name = "proc"

    def __init__(self, *, rcvbuf: int = 32 << 20) -> None:
        self._rcvbuf = rcvbuf
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stats = SensorStats(self.name)
        self._last_seq: dict[int, int] = {}
        #: every process event up to this (epoch, the events' clock) has been handed to the sink:
        #: other sensors' records up to here can rely on the process table (see the pipeline)
        self.caught_up = 0.0

    def available(self) -> str | None:
        if (why := is_root()) is not None:
            return f"proc: {why}"
        try:
            with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR) as s:
                s.bind((0, CN_IDX_PROC))
        except OSError as err:
            return f"proc: netlink proc connector unavailable ({err.strerror}); kernel needs CONFIG_PROC_EVENTS"
        return None

    def start(self, sink: EventSink) -> None:
        if self._sock is not None:
            return
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self._rcvbuf)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", 0, int(_WAKE_SECONDS * 1_000_000))
            )
            sock.bind((0, CN_IDX_PROC))
            sock.send(subscribe_message(PROC_CN_MCAST_LISTEN))
        except OSError as err:
            raise SensorError(f"proc: cannot subscribe to the proc connector: {err.strerror}; run as root") from err
        self._sock = sock
        self._stop.clear()
        self._stats.running = True
        self._thread = sensor_thread(self._run, sink, name="garrison-proc")
        self._thread.start()

    def _run(self, sink: EventSink) -> None:
        """Read datagrams with blocking ``recv``: one system call per message, nothing per burst.

        An exec is three messages (fork, exec, exit) arriving within microseconds. A blocking
        receive returns each at once and sleeps in the kernel when the socket is empty, so it
        costs less than waking on ``poll`` and draining with ``MSG_DONTWAIT`` until ``EAGAIN``
        (two extra system calls and an exception per burst). The socket's ``SO_RCVTIMEO``
        (:data:`_WAKE_SECONDS`) makes an idle receive return now and then to see ``stop()``.
        """
        sock = self._sock
        assert sock is not None
        buf = bytearray(8192)
        view = memoryview(buf)
        stats = self._stats
        last = self._last_seq
        offset = monotonic_to_epoch()
        recv_into = sock.recv_into
        stopping = self._stop.is_set
        clock = time.monotonic
        while not stopping():
            began = clock()
            try:
                n = recv_into(buf)
            except BlockingIOError:  # SO_RCVTIMEO: nothing for a while, so nothing is pending
                # as of when the receive began: a message queued after the kernel gave up waiting
                # (this thread may wait for the GIL a long time after that) is not handed on yet
                self.caught_up = began + offset
                continue
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    # the sequence gap of the CPU's next message counts exactly what was dropped
                    stats.extra["enobufs"] = stats.extra.get("enobufs", 0) + 1
                    continue
                if stopping():
                    break
                stats.errors += 1
                logger.warning("proc connector receive failed: %s", err)
                self._stop.wait(0.1)  # a persistent error must not spin
                continue
            try:
                cpu, seq, event = parse_message(view[:n], offset)
            except (ValueError, struct.error):
                stats.errors += 1
                continue
            prev = last.get(cpu)
            if prev is not None:
                gap = seq - prev - 1
                if gap > 0:
                    stats.lost += gap
                elif gap < -1 and stats.lost:
                    stats.lost -= 1  # a late arrival we had counted as lost
            if prev is None or seq > prev:
                last[cpu] = seq
            stats.received += 1
            if event is not None:
                event.num = stats.received
                try:
                    sink(event)
                except Exception:
                    stats.errors += 1
                    logger.exception("proc connector sink failed")
                # a message is stamped before it is queued, so one from another CPU stamped a
                # moment earlier can still be on its way (a preempted vCPU): the mark trails
                # the newest stamp by ORDER_SLACK
                if event.time - ORDER_SLACK > self.caught_up:
                    self.caught_up = event.time - ORDER_SLACK

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._sock is not None:
            try:
                self._sock.send(subscribe_message(PROC_CN_MCAST_IGNORE))
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        self._stats.running = False

    def stats(self) -> SensorStats:
        return self._stats
