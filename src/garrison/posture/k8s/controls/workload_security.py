"""Workload security-context controls (``GK-W-001``…``GK-W-040``): privilege, users, root
filesystem, seccomp, AppArmor, SELinux, ``/proc`` mounts, Linux capabilities, sysctls, user
namespaces, Windows host processes and process-namespace sharing.

Every check walks all containers of every pod spec an object runs (init and ephemeral containers
included) and resolves settings a container inherits from the pod's ``securityContext`` the way
the kubelet does. Capability checks compare upper-cased names without a ``CAP_`` prefix, as the
container runtimes accept either. The dangerous capabilities with a control each are listed in
``workload_security.yaml`` under ``capability_controls``.
"""

from __future__ import annotations

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
from garrison.posture.k8s.pss.checks import CAPABILITIES_ALLOWED_1_0, SYSCTLS_1_32

FAMILY = "workload_security"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SELINUX_TYPES = frozenset(("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"))
HIGH_UID = 10000


def _sc_path(c: Container, key: str) -> str:
    return c.at("securityContext", key) if key in c.security_context else c.effective(key)[1]


@container_control("GK-W-001", family=FAMILY)
def privileged(c: Container) -> Iterable[Failure]:
    if c.security_context.get("privileged") is True:
        yield Failure(f"{c.label} is privileged", (c.at("securityContext", "privileged"),))


@container_control("GK-W-002", family=FAMILY)
def privilege_escalation_not_disabled(c: Container) -> Iterable[Failure]:
    if c.security_context.get("allowPrivilegeEscalation") is not False:
        yield Failure(
            f"{c.label} does not set allowPrivilegeEscalation: false", (_sc_path(c, "allowPrivilegeEscalation"),)
        )


@container_control("GK-W-003", family=FAMILY)
def may_run_as_root(c: Container) -> Iterable[Failure]:
    non_root, non_root_path = c.effective("runAsNonRoot")
    uid, uid_path = c.effective("runAsUser")
    uid = to_int(uid)
    if uid is not None and uid > 0:
        return
    if non_root is True and uid is None:
        return
    path = uid_path if uid == 0 else non_root_path
    yield Failure(f"{c.label} may run as root (neither runAsNonRoot: true nor runAsUser > 0)", (path,))


@container_control("GK-W-004", family=FAMILY)
def run_as_uid_zero(c: Container) -> Iterable[Failure]:
    uid, path = c.effective("runAsUser")
    if to_int(uid) == 0:
        yield Failure(f"{c.label} runs as UID 0", (path,))


@container_control("GK-W-005", family=FAMILY)
def run_as_gid_zero(c: Container) -> Iterable[Failure]:
    gid, path = c.effective("runAsGroup")
    if to_int(gid) == 0:
        yield Failure(f"{c.label} runs with GID 0", (path,))


@container_control("GK-W-006", family=FAMILY)
def low_uid(c: Container) -> Iterable[Failure]:
    if c.pod.spec.get("hostUsers") is False:
        return  # a user namespace maps the UID away from the node's users
    uid, path = c.effective("runAsUser")
    value = to_int(uid)
    if value is None or value < HIGH_UID:
        shown = "unset" if value is None else str(value)
        yield Failure(f"{c.label} runAsUser is {shown}, not >= {HIGH_UID}", (path,))


@container_control("GK-W-007", family=FAMILY)
def writable_root_filesystem(c: Container) -> Iterable[Failure]:
    if c.security_context.get("readOnlyRootFilesystem") is not True:
        yield Failure(f"{c.label} root filesystem is writable", (_sc_path(c, "readOnlyRootFilesystem"),))


def _seccomp(c: Container) -> tuple[str | None, str]:
    """The container's effective seccomp profile type (field, then legacy annotations)."""
    profile, path = c.effective("seccompProfile")
    kind = as_dict(profile).get("type")
    if isinstance(kind, str):
        return kind, f"{path}.type"
    annotations = c.pod.annotations
    for key in (SECCOMP_CONTAINER_PREFIX + c.name, SECCOMP_POD_ANNOTATION):
        value = annotations.get(key)
        if isinstance(value, str):
            apath = f'{c.pod.meta_path}.annotations["{key}"]'
            if value in ("runtime/default", "docker/default"):
                return "RuntimeDefault", apath
            if value.startswith("localhost/"):
                return "Localhost", apath
            return "Unconfined", apath
    return None, path


@container_control("GK-W-008", family=FAMILY)
def seccomp_not_set(c: Container) -> Iterable[Failure]:
    kind, path = _seccomp(c)
    if kind not in ("RuntimeDefault", "Localhost"):
        yield Failure(f"{c.label} seccomp profile is {kind or 'not set'}", (path,))


@container_control("GK-W-009", family=FAMILY)
def seccomp_unconfined(c: Container) -> Iterable[Failure]:
    kind, path = _seccomp(c)
    if kind is not None and kind not in ("RuntimeDefault", "Localhost"):
        yield Failure(f"{c.label} seccomp profile is {kind}", (path,))


def _apparmor(c: Container) -> tuple[str | None, str]:
    profile, path = c.effective("appArmorProfile")
    kind = as_dict(profile).get("type")
    if isinstance(kind, str):
        return kind, f"{path}.type"
    key = APPARMOR_PREFIX + c.name
    value = c.pod.annotations.get(key)
    if isinstance(value, str):
        apath = f'{c.pod.meta_path}.annotations["{key}"]'
        if value == "runtime/default":
            return "RuntimeDefault", apath
        if value.startswith("localhost/"):
            return "Localhost", apath
        return "Unconfined", apath
    return None, path


@container_control("GK-W-010", family=FAMILY)
def apparmor_unconfined(c: Container) -> Iterable[Failure]:
    kind, path = _apparmor(c)
    if kind is not None and kind not in ("RuntimeDefault", "Localhost"):
        yield Failure(f"{c.label} AppArmor profile is {kind}", (path,))


@container_control("GK-W-011", family=FAMILY)
def apparmor_not_set(c: Container) -> Iterable[Failure]:
    kind, path = _apparmor(c)
    if kind is None:
        yield Failure(f"{c.label} has no AppArmor profile", (path,))


def _selinux_all(pod: Pod) -> list[tuple[dict[str, Any], str]]:
    """Every ``seLinuxOptions`` of the pod and its containers, with its path."""
    sources = [(pod.security_context, pod.at("securityContext"))]
    sources += [(c.security_context, c.at("securityContext")) for c in containers(pod)]
    return [
        (sc["seLinuxOptions"], f"{base}.seLinuxOptions")
        for sc, base in sources
        if isinstance(sc.get("seLinuxOptions"), dict)
    ]


@pod_control("GK-W-012", family=FAMILY)
def selinux_type(pod: Pod) -> Iterable[Failure]:
    for opts, path in _selinux_all(pod):
        kind = opts.get("type", "")
        if kind not in SELINUX_TYPES:
            yield Failure(f"SELinux type {kind!r} is not a container type", (f"{path}.type",))


@pod_control("GK-W-013", family=FAMILY)
def selinux_user_role(pod: Pod) -> Iterable[Failure]:
    for opts, path in _selinux_all(pod):
        for key in ("user", "role"):
            if opts.get(key):
                yield Failure(f"SELinux {key} is set to {opts[key]!r}", (f"{path}.{key}",))


@container_control("GK-W-014", family=FAMILY)
def proc_mount(c: Container) -> Iterable[Failure]:
    value = c.security_context.get("procMount")
    if value not in (None, "Default"):
        yield Failure(f"{c.label} procMount is {value}", (c.at("securityContext", "procMount"),))


@container_control("GK-W-015", family=FAMILY)
def capabilities_added(c: Container) -> Iterable[Failure]:
    for cap, path in c.capabilities("add"):
        yield Failure(f"{c.label} adds capability {cap}", (path,))


@container_control("GK-W-016", family=FAMILY)
def capabilities_beyond_baseline(c: Container) -> Iterable[Failure]:
    for cap, path in c.capabilities("add"):
        if cap not in CAPABILITIES_ALLOWED_1_0:
            yield Failure(f"{c.label} adds capability {cap}, beyond the runtime's default set", (path,))


@container_control("GK-W-017", family=FAMILY)
def capabilities_beyond_restricted(c: Container) -> Iterable[Failure]:
    for cap, path in c.capabilities("add"):
        if cap != "NET_BIND_SERVICE":
            yield Failure(f"{c.label} adds capability {cap} (only NET_BIND_SERVICE is restricted-safe)", (path,))


def _caps_path(c: Container, which: str) -> str:
    caps = as_dict(c.security_context.get("capabilities"))
    if which in caps:
        return c.at("securityContext", "capabilities", which)
    if "capabilities" in c.security_context:
        return c.at("securityContext", "capabilities")
    return _sc_path(c, "capabilities")


@container_control("GK-W-018", family=FAMILY)
def not_dropping_all(c: Container) -> Iterable[Failure]:
    if not any(cap == "ALL" for cap, _ in c.capabilities("drop")):
        yield Failure(f"{c.label} does not drop ALL capabilities", (_caps_path(c, "drop"),))


@container_control("GK-W-019", family=FAMILY)
def not_dropping_net_raw(c: Container) -> Iterable[Failure]:
    if not any(cap in ("ALL", "NET_RAW") for cap, _ in c.capabilities("drop")):
        yield Failure(f"{c.label} does not drop NET_RAW", (_caps_path(c, "drop"),))


def _dangerous(capability: str) -> Callable[[Container], Iterable[Failure]]:
    def check(c: Container) -> Iterable[Failure]:
        for cap, path in c.capabilities("add"):
            if cap == capability:
                yield Failure(f"{c.label} adds capability {cap}", (path,))

    return check


for _cid, _cap in sorted(family_data(FAMILY, "capability_controls").items()):
    container_control(str(_cid), family=FAMILY)(_dangerous(str(_cap).upper()))


@container_control("GK-W-033", family=FAMILY)
def no_container_security_context(c: Container) -> Iterable[Failure]:
    if not c.security_context:
        yield Failure(f"{c.label} has no securityContext", (_sc_path(c, "securityContext"),))


@pod_control("GK-W-034", family=FAMILY)
def no_pod_security_context(pod: Pod) -> Iterable[Failure]:
    if not pod.security_context:
        path = pod.at("securityContext") if "securityContext" in pod.spec else pod.path
        yield Failure("pod has no securityContext", (path,))


@pod_control("GK-W-035", family=FAMILY)
def unsafe_sysctls(pod: Pod) -> Iterable[Failure]:
    for i, item in enumerate(as_list(pod.security_context.get("sysctls"))):
        name = as_dict(item).get("name")
        if name not in SYSCTLS_1_32:
            yield Failure(f"pod sets unsafe sysctl {name}", (pod.at("securityContext", "sysctls", i, "name"),))


@pod_control("GK-W-036", family=FAMILY)
def host_user_namespace(pod: Pod) -> Iterable[Failure]:
    if pod.spec.get("hostUsers") is not False:
        path = pod.at("hostUsers") if "hostUsers" in pod.spec else pod.path
        yield Failure("pod shares the host user namespace (hostUsers is not false)", (path,))


@pod_control("GK-W-037", family=FAMILY)
def windows_host_process(pod: Pod) -> Iterable[Failure]:
    sources = [(pod.security_context, pod.at("securityContext"))]
    sources += [(c.security_context, c.at("securityContext")) for c in containers(pod)]
    for sc, base in sources:
        if as_dict(sc.get("windowsOptions")).get("hostProcess") is True:
            yield Failure("Windows HostProcess container", (f"{base}.windowsOptions.hostProcess",))


@pod_control("GK-W-038", family=FAMILY)
def share_process_namespace(pod: Pod) -> Iterable[Failure]:
    if pod.spec.get("shareProcessNamespace") is True:
        yield Failure("containers share one process namespace", (pod.at("shareProcessNamespace"),))


@container_control("GK-W-039", family=FAMILY)
def privileged_container_port(c: Container) -> Iterable[Failure]:
    for i, port in enumerate(as_list(c.doc.get("ports"))):
        number = to_int(as_dict(port).get("containerPort"))
        if number is not None and 0 < number < 1024:
            yield Failure(f"{c.label} listens on privileged port {number}", (c.at("ports", i, "containerPort"),))


@container_control("GK-W-040", family=FAMILY)
def privilege_escalation_allowed(c: Container) -> Iterable[Failure]:
    if c.security_context.get("allowPrivilegeEscalation") is True:
        yield Failure(
            f"{c.label} sets allowPrivilegeEscalation: true", (c.at("securityContext", "allowPrivilegeEscalation"),)
        )
