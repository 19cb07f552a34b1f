"""Kernel sensors, one module each, all behind :class:`~garrison.runtime.sensors.interface.Sensor`.

A few fixed implementations, so an explicit table (no plugin registry): ``proc`` (netlink proc
connector), ``audit`` (raw audit netlink), ``fanotify``, ``tracefs``, ``ebpf`` (our own BPF
programs through libbpf) and ``bpftrace`` (the same probes through bpftrace, where ``ebpf``
cannot load). :func:`build_sensors` turns a selection (``auto`` or names) into sensor objects and
says, for every sensor it leaves out, why and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from garrison.runtime.sensors.audit import AuditSensor
from garrison.runtime.sensors.fanotify import FanotifySensor
from garrison.runtime.sensors.interface import EventSink, Sensor, SensorError, SensorStats
from garrison.runtime.sensors.proc_connector import ProcConnectorSensor
from garrison.runtime.sensors.tracefs import TracefsSensor

SENSOR_NAMES = ("proc", "audit", "fanotify", "tracefs", "ebpf", "bpftrace")
DESCRIPTIONS = {
    "proc": "netlink proc connector: fork/exec/exit/uid/gid/sid/comm/ptrace (process tree)",
    "audit": "raw audit netlink: complete exec records (argv, cwd, uid/gid, loginuid, tty)",
    "fanotify": "fanotify marks: exec/open/close-write, exec permission answers (blocking)",
    "tracefs": "syscall tracepoints with in-kernel filters: ptrace, setuid, socket, unshare, mount, bpf, TCP state",
    "ebpf": "own BPF programs (libbpf): exec argv and origin, write opens and credential reads, unlink/link/symlink",
    "bpftrace": "the ebpf sensor's probes through bpftrace (auto: only where ebpf cannot load)",
}


def make_sensor(name: str, **options: Any) -> Sensor:
    """One sensor by name; ``options`` are passed to its constructor where it takes them."""
    if name == "proc":
        return ProcConnectorSensor()
    if name == "audit":
        return AuditSensor(**{k: v for k, v in options.items() if k in ("lock_timeout",)})
    if name == "fanotify":
        keep = ("paths", "events", "decide", "timeout_ms", "filesystem")
        return FanotifySensor(**{k: v for k, v in options.items() if k in keep})
    if name == "tracefs":
        return TracefsSensor(event_types=options.get("event_types"))
    if name == "ebpf":
        from garrison.runtime.sensors.ebpf import EbpfSensor

        return EbpfSensor(event_types=options.get("event_types"))
    if name == "bpftrace":
        from garrison.runtime.sensors.bpftrace import BpftraceSensor

        return BpftraceSensor(event_types=options.get("event_types"))
    raise SensorError(f"unknown sensor {name!r}; choose from {', '.join(SENSOR_NAMES)} or auto")


def parse_selection(text: str | Iterable[str] | None) -> list[str] | None:
    """``None`` for auto; else the validated names (``"audit,proc"`` or a list)."""
    if text is None:
        return None
    items = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(t).strip() for t in text]
    items = [i for i in items if i]
    if not items or items == ["auto"]:
        return None
    unknown = [i for i in items if i not in SENSOR_NAMES]
    if unknown:
        raise SensorError(f"unknown sensor(s) {', '.join(unknown)}; choose from {', '.join(SENSOR_NAMES)} or auto")
    return list(dict.fromkeys(items))


FANOTIFY_TYPES = frozenset({"open_exec", "close", "write"})


def build_sensors(selection: list[str] | None, **options: Any) -> tuple[list[Sensor], dict[str, str]]:
    """Sensors to start and, for those left out, the reason. Explicitly chosen sensors that cannot run raise.

    In ``auto`` mode fanotify is left out when nothing needs it: the rules' event types
    (``event_types``) include none of its events and no ``decide`` hook (blocking) is given. Audit
    is opt-in (name it, or ``with_audit=True``): its syscall rules slow every syscall on the node
    (benchmarks/sensor_bench.py: nginx under wrk lost ~40 % throughput with it, ~16 % without on
    this 2-core machine), while the proc connector with ``/proc`` reads at exec loses no exec at
    2k exec/s; audit adds argv for processes that exit before ``/proc`` is read.
    """
    names = list(SENSOR_NAMES) if selection is None else selection
    chosen: list[Sensor] = []
    skipped: dict[str, str] = {}
    types = options.get("event_types")
    for name in names:
        if name == "audit" and selection is None and not options.get("with_audit"):
            skipped[name] = "audit: opt-in (--sensors ...,audit): its syscall rules slow every syscall on the node"
            continue
        if (
            name == "fanotify"
            and selection is None
            and options.get("decide") is None
            and types is not None
            and not types & FANOTIFY_TYPES
        ):
            skipped[name] = "fanotify: not needed (no rule uses open_exec/close/write and no --protect policy)"
            continue
        if name == "bpftrace" and selection is None and any(s.name == "ebpf" for s in chosen):
            skipped[name] = "bpftrace: not needed (the ebpf sensor runs the same probes)"
            continue
        try:
            sensor = make_sensor(name, **options)
            why = sensor.available()
        except SensorError as err:
            why = str(err)
        except ImportError as err:
            why = f"{name}: not installed ({err})"
        if why is None:
            chosen.append(sensor)
        elif selection is not None:
            raise SensorError(why)
        else:
            skipped[name] = why
    return chosen, skipped


__all__ = [
    "DESCRIPTIONS",
    "SENSOR_NAMES",
    "AuditSensor",
    "EventSink",
    "FanotifySensor",
    "ProcConnectorSensor",
    "Sensor",
    "SensorError",
    "SensorStats",
    "TracefsSensor",
    "build_sensors",
    "make_sensor",
    "parse_selection",
]
