"""Runtime vocabulary: what sensors observe (:class:`Event`) and what rules raise (:class:`Alert`).

Every sensor (audit netlink, proc connector, fanotify, tracefs, bpftrace) normalises what it sees
to one :class:`Event`; attribution fills :class:`Process` ancestry and :class:`Container`; the
rule engine reads events through a field table named after Falco's fields (``proc.name``,
``fd.name``, ``container.id``, ``k8s.pod.name``...) and raises :class:`Alert`; responders act on
alerts and record every action as an :class:`Event` of kind ``response``.

Plain ``dataclasses`` with ``slots``: the rule engine evaluates tens of thousands of events a
second and attribute access on slotted objects is the cheapest lookup Python has.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Priority(enum.IntEnum):
    """Falco's rule priorities (syslog severities), ordered so ``>= Priority.WARNING`` works."""

    DEBUG = 7
    INFORMATIONAL = 6
    NOTICE = 5
    WARNING = 4
    ERROR = 3
    CRITICAL = 2
    ALERT = 1
    EMERGENCY = 0

    @classmethod
    def parse(cls, value: str) -> Priority:
        """Parse a priority word as Falco does (case-insensitive; ``info`` is ``INFORMATIONAL``)."""
        word = value.strip().upper()
        word = {
            "INFO": "INFORMATIONAL",
            "EMERG": "EMERGENCY",
            "CRIT": "CRITICAL",
            "ERR": "ERROR",
            "WARN": "WARNING",
        }.get(word, word)
        return cls[word]

    def at_least(self, other: Priority) -> bool:
        """``True`` when this priority is as severe as ``other`` or more (smaller number = more severe)."""
        return self.value <= other.value

    def label(self) -> str:
        """The word Falco prints (``Warning``, ``Critical``...)."""
        return self.name.capitalize()


class EventKind(enum.StrEnum):
    """Coarse family of an event; ``Event.type`` carries the syscall-level name."""

    PROCESS = "process"  # fork, execve, exit, setuid...
    FILE = "file"  # open, write, rename, unlink...
    NETWORK = "network"  # connect, accept, listen, DNS...
    PRIVILEGE = "privilege"  # ptrace, capset, setns, unshare, mount, module load, bpf...
    RESPONSE = "response"  # an action a responder took
    SENSOR = "sensor"  # sensor health: started, lost events, stopped


@dataclass(slots=True)
class Process:
    """A process as known when the event happened. ``ancestors[0]`` is the parent."""

    pid: int
    ppid: int = 0
    tid: int = 0
    name: str = ""  # comm, at most 15 characters as the kernel keeps it
    exe: str = ""  # argv[0] as given (Falco proc.exe)
    exepath: str = ""  # resolved executable path (Falco proc.exepath)
    args: list[str] = field(default_factory=list)  # argv[1:]
    cwd: str = ""
    uid: int | None = None
    gid: int | None = None
    euid: int | None = None
    egid: int | None = None
    loginuid: int | None = None
    sid: int | None = None
    pgid: int | None = None
    tty: int = 0
    vpid: int | None = None  # pid inside the container's pid namespace
    start_time: float | None = None  # seconds since the epoch
    exe_upper_layer: bool | None = None  # the executable lives in the container's writable layer
    exe_from_memfd: bool | None = None  # the executable is an anonymous memfd
    exe_writable: bool | None = None  # the executable is writable by the process's user
    env: dict[str, str] | None = None
    user_name: str = ""
    group_name: str = ""
    ancestors: list[Process] = field(default_factory=list)
    cap_effective: int | None = None  # CapEff bitmask from /proc/PID/status (Falco thread.cap_effective)
    cap_permitted: int | None = None  # CapPrm bitmask (Falco thread.cap_permitted)

    @property
    def cmdline(self) -> str:
        """Falco's ``proc.cmdline``: the comm followed by the arguments."""
        return " ".join([self.name, *self.args]) if self.args else self.name

    def to_dict(self, *, with_ancestors: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pid": self.pid,
            "ppid": self.ppid,
            "name": self.name,
            "exe": self.exe,
            "exepath": self.exepath,
            "args": list(self.args),
            "cwd": self.cwd,
            "uid": self.uid,
            "gid": self.gid,
            "loginuid": self.loginuid,
        }
        if self.exe_upper_layer is not None:
            out["exe_upper_layer"] = self.exe_upper_layer
        if self.exe_from_memfd is not None:
            out["exe_from_memfd"] = self.exe_from_memfd
        if with_ancestors and self.ancestors:
            out["ancestors"] = [a.to_dict(with_ancestors=False) for a in self.ancestors]
        return out


@dataclass(slots=True)
class Container:
    """The container an event came from; ``id == "host"`` for host processes (Falco's convention)."""

    id: str = "host"  # 12-character short ID as Falco prints it; full_id keeps the rest
    full_id: str = ""
    runtime: str = ""  # docker, podman, containerd, cri-o
    name: str = ""
    image: str = ""  # repository:tag as the runtime reports it
    image_id: str = ""
    image_repository: str = ""
    image_tag: str = ""
    image_digest: str = ""
    privileged: bool | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # Kubernetes identity, from the labels CRI sets (io.kubernetes.pod.name...)
    pod_name: str = ""
    pod_namespace: str = ""
    pod_uid: str = ""
    pod_labels: dict[str, str] = field(default_factory=dict)

    @property
    def is_host(self) -> bool:
        return self.id == "host"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "runtime": self.runtime,
            "name": self.name,
            "image": self.image,
            "image_id": self.image_id,
            "privileged": self.privileged,
            "pod_name": self.pod_name,
            "pod_namespace": self.pod_namespace,
        }


@dataclass(slots=True)
class FileDescriptor:
    """What ``fd.*`` fields read: a file path or a socket tuple."""

    num: int = -1
    type: str = ""  # file, directory, ipv4, ipv6, unix, signalfd, memfd, ...
    name: str = ""  # path, or "cip:cport->sip:sport" for sockets as Falco prints it
    l4proto: str = ""  # tcp, udp, icmp, raw
    client_ip: str = ""
    client_port: int = 0
    server_ip: str = ""
    server_port: int = 0
    local_ip: str = ""
    local_port: int = 0
    remote_ip: str = ""
    remote_port: int = 0
    sockfamily: str = ""  # ip, unix, packet, netlink
    nameraw: str = ""  # the path as the process passed it, before normalisation (Falco fd.nameraw)
    connected: bool | None = None  # socket is connected (Falco fd.connected)


@dataclass(slots=True)
class Event:
    """One normalised observation from a sensor.

    ``type`` is the syscall-level name Falco uses (``execve``, ``openat``, ``connect``,
    ``setuid``, ``ptrace``, ``init_module``...). ``args`` carries the syscall arguments by the
    names Falco gives them (``evt.arg.flags``, ``evt.arg.request``...); ``res`` is the return
    value (negative errno on failure).
    """

    time: float  # seconds since the epoch, sub-microsecond precision where the sensor has it
    type: str
    kind: EventKind
    sensor: str  # audit, proc_connector, fanotify, tracefs, bpftrace, responder...
    proc: Process
    container: Container = field(default_factory=Container)
    fd: FileDescriptor | None = None
    args: dict[str, Any] = field(default_factory=dict)
    res: int = 0
    dir: str = "<"  # Falco's event direction: ">" enter, "<" exit; sensors report completed calls
    num: int = 0  # sensor-local sequence number
    partial: bool = False  # the process vanished before enrichment: proc.* fields are incomplete

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.time,
            "type": self.type,
            "kind": self.kind.value,
            "sensor": self.sensor,
            "proc": self.proc.to_dict(),
            "container": self.container.to_dict(),
            "res": self.res,
        }
        if self.fd is not None:
            out["fd"] = {"type": self.fd.type, "name": self.fd.name, "l4proto": self.fd.l4proto}
        if self.args:
            out["args"] = {
                k: v if isinstance(v, str | int | float | bool) or v is None else str(v) for k, v in self.args.items()
            }
        return out


@dataclass(slots=True)
class Alert:
    """A rule that fired on an event. ``fields`` holds the values of every field the output names."""

    time: float
    rule: str
    priority: Priority
    output: str
    tags: list[str] = field(default_factory=list)
    source: str = "syscall"
    fields: dict[str, Any] = field(default_factory=dict)
    event: Event | None = None
    actions: list[str] = field(default_factory=list)  # responses taken (kill, deny, pause, quarantine)

    @property
    def mitre(self) -> list[str]:
        """MITRE ATT&CK technique IDs among the tags (``T1059``, ``T1611``...)."""
        return [t for t in self.tags if t[:1] == "T" and t[1:2].isdigit()]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self.time,
            "rule": self.rule,
            "priority": self.priority.label(),
            "tags": list(self.tags),
            "source": self.source,
            "output": self.output,
            "output_fields": dict(self.fields),
        }
        if self.actions:
            out["actions"] = list(self.actions)
        return out
