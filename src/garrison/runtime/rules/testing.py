"""Event builders for rule tests: a compact way to describe the event a rule must (not) match.

Used by the unit tests and by the declarative ``garrison rules test`` runner, so a case reads like
the rule it exercises: ``make_event("execve", name="nc", args=["-e", "/bin/sh"], container="abc")``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from garrison.model.runtime import Container, Event, EventKind, FileDescriptor, Process

_KIND = {
    "execve": EventKind.PROCESS,
    "execveat": EventKind.PROCESS,
    "clone": EventKind.PROCESS,
    "fork": EventKind.PROCESS,
    "connect": EventKind.NETWORK,
    "accept": EventKind.NETWORK,
    "accept4": EventKind.NETWORK,
    "listen": EventKind.NETWORK,
    "sendto": EventKind.NETWORK,
    "sendmsg": EventKind.NETWORK,
    "socket": EventKind.NETWORK,
}
_PRIV = {"ptrace", "setns", "unshare", "mount", "init_module", "finit_module", "bpf", "setuid", "setgid", "capset"}


def ancestor(name: str, *, exe: str = "", args: Sequence[str] = (), pid: int = 0) -> Process:
    return Process(pid=pid, name=name[:15], exe=exe or name, exepath=exe or f"/usr/bin/{name}", args=list(args))


def make_event(
    evt_type: str = "execve",
    *,
    name: str = "bash",
    exe: str | None = None,
    exepath: str | None = None,
    args: Sequence[str] = (),
    cwd: str = "/",
    uid: int = 0,
    gid: int = 0,
    user: str = "root",
    loginuid: int | None = None,
    tty: int = 0,
    pid: int = 4242,
    ancestors: Sequence[str | Process] = ("bash", "sshd", "systemd"),
    container: str | Container | None = None,
    image: str = "",
    privileged: bool | None = None,
    k8s_ns: str = "",
    k8s_pod: str = "",
    fd: FileDescriptor | None = None,
    file: str | None = None,
    flags: Any = None,
    sip: str = "",
    sport: int = 0,
    cip: str = "",
    cport: int = 0,
    l4proto: str = "tcp",
    fd_type: str | None = None,
    fd_num: int = 3,
    res: int = 0,
    evt_args: dict[str, Any] | None = None,
    start_age: float = 3600.0,
    **proc: Any,
) -> Event:
    """Build one event. ``file=`` makes a file fd; ``sip=`` makes a socket fd (client side ``cip``)."""
    now = time.time()
    anc = [a if isinstance(a, Process) else ancestor(a, pid=100 + i) for i, a in enumerate(ancestors)]
    exepath = exepath if exepath is not None else (exe if exe and exe.startswith("/") else f"/usr/bin/{name}")
    p = Process(
        pid=pid,
        ppid=anc[0].pid if anc else 1,
        name=name[:15],
        exe=exe if exe is not None else exepath,
        exepath=exepath,
        args=list(args),
        cwd=cwd,
        uid=uid,
        gid=gid,
        euid=uid,
        egid=gid,
        loginuid=loginuid,
        tty=tty,
        user_name=user,
        group_name=user if gid == 0 or user != "root" else "",
        ancestors=anc,
        start_time=now - start_age,
        **proc,
    )
    if isinstance(container, Container):
        c = container
    elif container:
        repo, _, tag = (image or "docker.io/library/debian:12").rpartition(":")
        c = Container(
            id=container[:12],
            full_id=container,
            runtime="podman",
            name=f"ctr-{container[:6]}",
            image=image or "docker.io/library/debian:12",
            image_repository=repo,
            image_tag=tag,
            privileged=privileged,
            pod_name=k8s_pod,
            pod_namespace=k8s_ns,
        )
    else:
        c = Container()
    if fd is None and file is not None:
        fd = FileDescriptor(num=fd_num, type=fd_type or "file", name=os.path.normpath(file), nameraw=file)
    if fd is None and sip:
        family = "ipv6" if ":" in sip else "ipv4"
        fd = FileDescriptor(
            num=fd_num,
            type=fd_type or family,
            name=f"{cip or '10.0.0.2'}:{cport or 40000}->{sip}:{sport}",
            l4proto=l4proto,
            client_ip=cip or "10.0.0.2",
            client_port=cport or 40000,
            server_ip=sip,
            server_port=sport,
            local_ip=cip or "10.0.0.2",
            local_port=cport or 40000,
            remote_ip=sip,
            remote_port=sport,
            sockfamily="ip",
            connected=True,
        )
    a: dict[str, Any] = dict(evt_args or {})
    if flags is not None:
        a["flags"] = flags
    kind = _KIND.get(evt_type, EventKind.PRIVILEGE if evt_type in _PRIV else EventKind.FILE)
    return Event(time=now, type=evt_type, kind=kind, sensor="test", proc=p, container=c, fd=fd, args=a, res=res)


__all__ = ["ancestor", "make_event"]
