"""Workload host-access controls (``GK-W-041``…``GK-W-059``): host namespaces, host ports and
``hostPath`` volumes, with one control per sensitive host path family.

The sensitive paths are data (``workload_host.yaml`` under ``sensitive_paths``): each control has
``exact`` paths (the path or a directory that contains it, such as ``/var/run`` for the Docker
socket) and ``under`` paths (the path and everything below it). ``hostPath`` paths are normalised
(``//``, ``.``, ``..`` and trailing slashes) before matching.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Any

from garrison.posture.k8s.controls import Failure
from garrison.posture.k8s.controls._pods import (
    Container,
    Pod,
    as_dict,
    as_list,
    container_control,
    containers,
    family_data,
    pod_control,
    to_int,
)

FAMILY = "workload_host"


def _flag(key: str, what: str) -> Callable[[Pod], Iterable[Failure]]:
    def check(pod: Pod) -> Iterable[Failure]:
        if pod.spec.get(key) is True:
            yield Failure(f"pod shares the host {what}", (pod.at(key),))

    return check


pod_control("GK-W-041", family=FAMILY)(_flag("hostNetwork", "network namespace"))
pod_control("GK-W-042", family=FAMILY)(_flag("hostPID", "PID namespace"))
pod_control("GK-W-043", family=FAMILY)(_flag("hostIPC", "IPC namespace"))


@container_control("GK-W-044", family=FAMILY)
def host_port(c: Container) -> Iterable[Failure]:
    for i, port in enumerate(as_list(c.doc.get("ports"))):
        number = to_int(as_dict(port).get("hostPort"))
        if number:
            yield Failure(f"{c.label} binds host port {number}", (c.at("ports", i, "hostPort"),))


def host_paths(pod: Pod) -> list[tuple[str, str, str]]:
    """``(volume name, normalised host path, path of hostPath.path)`` for every hostPath volume."""
    out = []
    for path, vol in pod.volumes():
        host = vol.get("hostPath")
        if not isinstance(host, dict):
            continue
        raw = host.get("path")
        text = raw if isinstance(raw, str) else ""
        norm = posixpath.normpath("/" + text.strip()) if text.strip() else ""
        norm = "/" + norm.lstrip("/") if norm else ""
        out.append((str(vol.get("name", "")), norm, f"{path}.hostPath.path"))
    return out


@pod_control("GK-W-045", family=FAMILY)
def host_path_volume(pod: Pod) -> Iterable[Failure]:
    for name, host, path in host_paths(pod):
        yield Failure(f"volume {name} mounts host path {host or '<empty>'}", (path,))


@pod_control("GK-W-046", family=FAMILY)
def host_path_writable(pod: Pod) -> Iterable[Failure]:
    volumes = {name: host for name, host, _ in host_paths(pod)}
    for c in containers(pod):
        for i, mount in enumerate(as_list(c.doc.get("volumeMounts"))):
            mount = as_dict(mount)
            name = mount.get("name")
            if name in volumes and mount.get("readOnly") is not True:
                yield Failure(f"{c.label} mounts host path {volumes[name]} writable", (c.at("volumeMounts", i),))


def _matcher(spec: dict[str, Any]) -> Callable[[str], bool]:
    exact = frozenset(str(p) for p in as_list(spec.get("exact")))
    under = tuple(str(p).rstrip("/") for p in as_list(spec.get("under")))

    def matches(host: str) -> bool:
        if host in exact:
            return True
        return any(host == u or host.startswith(u + "/") for u in under)

    return matches


def _sensitive(matches: Callable[[str], bool], what: str) -> Callable[[Pod], Iterable[Failure]]:
    def check(pod: Pod) -> Iterable[Failure]:
        for name, host, path in host_paths(pod):
            if host and matches(host):
                yield Failure(f"volume {name} mounts {what} ({host})", (path,))

    return check


for _cid, _spec in sorted(family_data(FAMILY, "sensitive_paths").items()):
    _spec = as_dict(_spec)
    pod_control(str(_cid), family=FAMILY)(_sensitive(_matcher(_spec), str(_spec.get("what", "a sensitive host path"))))
