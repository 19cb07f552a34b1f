"""The sensor interface every kernel sensor implements, and the pieces they share.

A sensor turns one kernel facility (audit netlink, the proc connector, fanotify, tracefs,
bpftrace) into :class:`~garrison.model.runtime.Event` objects handed to a sink callable. The
contract (kept stable for the pipeline, the responders and the tests):

* ``available()`` returns ``None`` when the sensor can run here, else one line saying why not
  and how to fix it (``"audit: in use by auditd (pid 812); stop it: systemctl stop auditd"``);
* ``start(sink)`` opens the kernel side and starts a reader thread; it raises
  :class:`SensorError` (one line, naming the sensor) when it cannot;
* ``stop()`` is idempotent and restores whatever the sensor changed in the kernel (audit
  rules and daemon pid, trace instances, fanotify marks);
* ``stats()`` returns :class:`SensorStats`; ``lost`` counts events the kernel dropped before we
  read them (netlink ``ENOBUFS``, proc connector sequence gaps, the audit ``lost`` counter,
  ring-buffer overruns, ``FAN_Q_OVERFLOW``). Loss is never silent: it is counted, logged and
  exported by ``garrison sensor status`` and the pipeline's status file.

Argument conventions in :attr:`Event.args` (what the rule engine's ``evt.arg.*`` reads): each
syscall argument under the name Falco gives it. Integers stay integers where the rule engine
renders Falco's names from the raw value (``ptrace`` ``request``, ``socket`` ``domain``, ``bpf``
``cmd``, open ``flags``, so ``evt.rawarg.*`` stays numeric); flag sets whose argument name would
be ambiguous are given already rendered as Falco prints them (``unshare`` ``flags`` and
``setns`` ``nstype`` as ``CLONE_NEWUSER|CLONE_NEWNS``, ``memfd_create`` ``flags`` as
``MFD_CLOEXEC``). ``res`` repeats :attr:`Event.res` for completed calls.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from garrison.core.errors import GarrisonError
from garrison.model.runtime import Event

EventSink = Callable[[Event], None]

#: environment variable with the nice value of the sensor's threads and helper processes
NICE_ENV = "GARRISON_SENSOR_NICE"
#: their default: a sensor starved by the workloads it watches reads ``/proc`` after short-lived
#: processes are gone (and an attacker can burn CPU to get there); -10 weighs about 9 times a
#: default thread in the scheduler, and the sensor's CPU use is bounded by the event rate
DEFAULT_NICE = -10


def sensor_nice() -> int:
    """The nice value for sensor threads: ``GARRISON_SENSOR_NICE`` (-20..19) or :data:`DEFAULT_NICE`."""
    raw = os.environ.get(NICE_ENV, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_NICE
    except ValueError:
        value = DEFAULT_NICE
    return max(-20, min(19, value))


def prioritise(task: int = 0) -> None:
    """Give the calling thread (or the process or thread ``task``) the sensor's nice value. Linux
    keeps a nice value per thread, so the rest of the process (and what its other threads start,
    the attack scripts of ``garrison rules test``) keeps its own. Without the privilege to raise
    priority the current value stays."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, task or threading.get_native_id(), sensor_nice())


def sensor_thread(target: Callable[..., object], *args: object, name: str) -> threading.Thread:
    """A daemon thread that runs ``target(*args)`` at the sensor's priority (:func:`prioritise`)."""

    def run() -> None:
        prioritise()
        target(*args)

    return threading.Thread(target=run, name=name, daemon=True)


class SensorError(GarrisonError):
    """A sensor could not start or lost its kernel connection; the message names the sensor and the fix."""


@dataclass(slots=True)
class SensorStats:
    """Per-sensor counters; ``lost`` is what the kernel dropped, ``errors`` what we failed to parse or deliver."""

    name: str
    received: int = 0
    lost: int = 0
    errors: int = 0
    running: bool = False
    extra: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensor": self.name,
            "running": self.running,
            "received": self.received,
            "lost": self.lost,
            "errors": self.errors,
            **self.extra,
        }


@runtime_checkable
class Sensor(Protocol):
    name: str

    def available(self) -> str | None: ...

    def start(self, sink: EventSink) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> SensorStats: ...


def monotonic_to_epoch() -> float:
    """Offset to add to a ``CLOCK_MONOTONIC`` time (seconds) to get seconds since the epoch."""
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def flag_names(value: int, table: dict[int, str]) -> str:
    """Render a flag set as Falco does: ``A|B``; unknown bits as hex; ``0`` when empty."""
    names = [name for bit, name in table.items() if value & bit == bit and bit]
    rest = value
    for bit in table:
        if value & bit == bit:
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names) if names else "0"


def is_root() -> str | None:
    """``None`` when we run as root, else the reason a kernel sensor cannot start."""
    import os

    return None if os.geteuid() == 0 else "needs root (CAP_SYS_ADMIN/CAP_AUDIT_CONTROL): run garrison as root"
