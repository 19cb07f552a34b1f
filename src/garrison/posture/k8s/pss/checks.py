"""The pod-security-admission checks, one function per upstream ``check_*.go`` revision.

Each function takes the pod (or pod template) metadata and spec as plain dicts and returns
``None`` when the pod is allowed, else a :class:`Forbidden` whose reason and detail are the
upstream ``ForbiddenReason`` / ``ForbiddenDetail`` strings, built the same way (``pluralize``,
``joinQuote``, sorted sets), plus the object paths (relative to the template: ``spec...`` or
``metadata...``) that caused it. The Go library cannot be used from Python, hence the port;
the table of which revision applies from which policy version lives in :mod:`.engine`.

A Go pointer that is ``nil`` is a key that is absent or ``null`` here; booleans count only
when they are real booleans, as the API server would reject anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Forbidden:
    reason: str
    detail: str
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Options:
    #: upstream ``RelaxPolicyForUserNamespacePods``: opt-in relaxation of runAsNonRoot and
    #: runAsUser for pods with ``hostUsers: false`` (off by default, as upstream)
    relax_user_namespace_pods: bool = False


CheckFn = Callable[[Obj, Obj, Options], Forbidden | None]


# -- helpers mirroring policy/helpers.go -----------------------------------------------------


def join_quote(items: list[str]) -> str:
    if not items:
        return ""
    return '"' + '", "'.join(items) + '"'


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def containers(spec: Obj) -> Iterator[tuple[str, Obj]]:
    """initContainers, containers, ephemeralContainers (upstream ``visitContainers`` order)."""
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(_l(spec.get(field))):
            if isinstance(c, dict):
                yield f"spec.{field}[{i}]", c


def _name(c: Obj) -> str:
    return _s(c.get("name"))


def _sc(c: Obj) -> Obj:
    return _d(c.get("securityContext"))


def _pod_sc(spec: Obj) -> Obj:
    return _d(spec.get("securityContext"))


def _is_windows(spec: Obj) -> bool:
    return _d(spec.get("os")).get("name") == "windows"


def _user_namespaced(spec: Obj) -> bool:
    return spec.get("hostUsers") is False


def _setters(bad_setters: list[str], bad_containers: list[str]) -> str:
    parts = list(bad_setters)
    if bad_containers:
        parts.append(f"{pluralize('container', 'containers', len(bad_containers))} {join_quote(bad_containers)}")
    return " and ".join(parts)


# -- baseline --------------------------------------------------------------------------------


def host_namespaces_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    found = [(f, f"{f}=true") for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    if not found:
        return None
    return Forbidden("host namespaces", ", ".join(t for _, t in found), tuple(f"spec.{f}" for f, _ in found))


def privileged_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad = [(p, _name(c)) for p, c in containers(spec) if _sc(c).get("privileged") is True]
    if not bad:
        return None
    names = [n for _, n in bad]
    return Forbidden(
        "privileged",
        f"{pluralize('container', 'containers', len(names))} {join_quote(names)} must not set securityContext.privileged=true",
        tuple(f"{p}.securityContext.privileged" for p, _ in bad),
    )


CAPABILITIES_ALLOWED_1_0 = frozenset(
    (
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    )
)


def capabilities_baseline_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad: list[str] = []
    paths: list[str] = []
    caps: set[str] = set()
    for p, c in containers(spec):
        add = _l(_d(_sc(c).get("capabilities")).get("add"))
        forbidden = [_s(a) for a in add if _s(a) not in CAPABILITIES_ALLOWED_1_0]
        if forbidden:
            bad.append(_name(c))
            caps.update(forbidden)
            paths.append(f"{p}.securityContext.capabilities.add")
    if not bad:
        return None
    return Forbidden(
        "non-default capabilities",
        f"{pluralize('container', 'containers', len(bad))} {join_quote(bad)} must not include "
        f"{join_quote(sorted(caps))} in securityContext.capabilities.add",
        tuple(paths),
    )


def host_path_volumes_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad = [
        (i, _s(v.get("name")))
        for i, v in enumerate(_l(spec.get("volumes")))
        if isinstance(v, dict) and v.get("hostPath") is not None
    ]
    if not bad:
        return None
    names = [n for _, n in bad]
    return Forbidden(
        "hostPath volumes",
        f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}",
        tuple(f"spec.volumes[{i}].hostPath" for i, _ in bad),
    )


def host_ports_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad: list[str] = []
    ports: set[str] = set()
    paths: list[str] = []
    for p, c in containers(spec):
        valid = True
        for j, port in enumerate(_l(c.get("ports"))):
            host_port = _d(port).get("hostPort")
            if host_port not in (None, 0):
                valid = False
                ports.add(_s(host_port))
                paths.append(f"{p}.ports[{j}].hostPort")
        if not valid:
            bad.append(_name(c))
    if not bad:
        return None
    return Forbidden(
        "hostPort",
        f"{pluralize('container', 'containers', len(bad))} {join_quote(bad)} {pluralize('uses', 'use', len(bad))} "
        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
        tuple(paths),
    )


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_annotation_ok(value: str) -> bool:
    return not value or value == "runtime/default" or value.startswith("localhost/")


def app_armor_profile_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    setters: list[str] = []
    values: set[str] = set()
    paths: list[str] = []
    pod_profile = _pod_sc(spec).get("appArmorProfile")
    if isinstance(pod_profile, dict) and pod_profile.get("type") not in ("RuntimeDefault", "Localhost"):
        setters.append("pod")
        values.add(_s(pod_profile.get("type")))
        paths.append("spec.securityContext.appArmorProfile.type")
    bad: list[str] = []
    for p, c in containers(spec):
        profile = _sc(c).get("appArmorProfile")
        if isinstance(profile, dict) and profile.get("type") not in ("RuntimeDefault", "Localhost"):
            bad.append(_name(c))
            values.add(_s(profile.get("type")))
            paths.append(f"{p}.securityContext.appArmorProfile.type")
    if bad:
        setters.append(f"{pluralize('container', 'containers', len(bad))} {join_quote(bad)}")
    annotations = []
    for key, value in _d(meta.get("annotations")).items():
        text = _s(value)
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX) and not _apparmor_annotation_ok(text):
            annotations.append(f'{key}="{text}"')
            paths.append(f'metadata.annotations["{key}"]')
    value_list = sorted(values)
    if annotations:
        annotations.sort()
        value_list.extend(annotations)
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    return Forbidden(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(value_list)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(value_list)}",
        tuple(paths),
    )


SELINUX_TYPES_1_0 = frozenset(("", "container_t", "container_init_t", "container_kvm_t"))
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
        setters: list[str] = []
        bad_types: set[str] = set()
        flags = {"user": False, "role": False}
        paths: list[str] = []

        def valid(o: Obj, path: str) -> bool:
            ok = True
            t = _s(o.get("type"))
            if t not in allowed:
                ok = False
                bad_types.add(t)
                paths.append(f"{path}.type")
            for f in ("user", "role"):
                if _s(o.get(f)):
                    ok = False
                    flags[f] = True
                    paths.append(f"{path}.{f}")
            return ok

        pod_opts = _pod_sc(spec).get("seLinuxOptions")
        if isinstance(pod_opts, dict) and not valid(pod_opts, "spec.securityContext.seLinuxOptions"):
            setters.append("pod")
        bad = [
            _name(c)
            for p, c in containers(spec)
            if isinstance(_sc(c).get("seLinuxOptions"), dict)
            and not valid(_sc(c)["seLinuxOptions"], f"{p}.securityContext.seLinuxOptions")
        ]
        if not setters and not bad:
            return None
        data: list[str] = []
        if bad_types:
            data.append(f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
            # upstream only reports user/role alongside a bad type
            if flags["user"]:
                data.append("user may not be set")
            if flags["role"]:
                data.append("role may not be set")
        return Forbidden(
            "seLinuxOptions",
            f"{_setters(setters, bad)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}",
            tuple(paths),
        )

    return check


se_linux_options_1_0 = _selinux(SELINUX_TYPES_1_0)
se_linux_options_1_31 = _selinux(SELINUX_TYPES_1_31)


def _proc_mount(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad: list[str] = []
    kinds: set[str] = set()
    paths: list[str] = []
    for p, c in containers(spec):
        value = _sc(c).get("procMount")
        if value is not None and value != "Default":
            bad.append(_name(c))
            kinds.add(_s(value))
            paths.append(f"{p}.securityContext.procMount")
    if not bad:
        return None
    return Forbidden(
        "procMount",
        f"{pluralize('container', 'containers', len(bad))} {join_quote(bad)} must not set securityContext.procMount to "
        f"{join_quote(sorted(kinds))}",
        tuple(paths),
    )


proc_mount_1_0 = _proc_mount
proc_mount_restricted_1_35 = _proc_mount


def proc_mount_baseline_1_35(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    if _user_namespaced(spec):
        return None
    return _proc_mount(meta, spec, opts)


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_annotation_ok(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_profile_baseline_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    annotations = _d(meta.get("annotations"))
    forbidden: set[str] = set()
    paths: list[str] = []
    keys = [SECCOMP_POD_ANNOTATION] + [SECCOMP_CONTAINER_PREFIX + _name(c) for _, c in containers(spec)]
    for key in keys:
        if key in annotations and not _seccomp_annotation_ok(_s(annotations[key])):
            forbidden.add(f'{key}="{_s(annotations[key])}"')
            paths.append(f'metadata.annotations["{key}"]')
    if not forbidden:
        return None
    return Forbidden(
        "seccompProfile",
        f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} {', '.join(sorted(forbidden))}",
        tuple(paths),
    )


def _seccomp_ok(profile: Obj) -> bool:
    return profile.get("type") in ("RuntimeDefault", "Localhost")


def seccomp_profile_baseline_1_19(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    setters: list[str] = []
    values: set[str] = set()
    paths: list[str] = []
    pod_profile = _pod_sc(spec).get("seccompProfile")
    if isinstance(pod_profile, dict) and not _seccomp_ok(pod_profile):
        setters.append("pod")
        values.add(_s(pod_profile.get("type")))
        paths.append("spec.securityContext.seccompProfile.type")
    bad: list[str] = []
    for p, c in containers(spec):
        profile = _sc(c).get("seccompProfile")
        if isinstance(profile, dict) and not _seccomp_ok(profile):
            bad.append(_name(c))
            values.add(_s(profile.get("type")))
            paths.append(f"{p}.securityContext.seccompProfile.type")
    if not setters and not bad:
        return None
    return Forbidden(
        "seccompProfile",
        f"{_setters(setters, bad)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}",
        tuple(paths),
    )


SYSCTLS_1_0 = frozenset(
    (
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    )
)
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
        bad = [
            (i, _s(_d(s).get("name")))
            for i, s in enumerate(_l(_pod_sc(spec).get("sysctls")))
            if _s(_d(s).get("name")) not in allowed
        ]
        if not bad:
            return None
        return Forbidden(
            "forbidden sysctls",
            ", ".join(n for _, n in bad),
            tuple(f"spec.securityContext.sysctls[{i}].name" for i, _ in bad),
        )

    return check


sysctls_1_0 = _sysctls(SYSCTLS_1_0)
sysctls_1_27 = _sysctls(SYSCTLS_1_27)
sysctls_1_29 = _sysctls(SYSCTLS_1_29)
sysctls_1_32 = _sysctls(SYSCTLS_1_32)


def windows_host_process_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    paths: list[str] = []
    bad: list[str] = []
    for p, c in containers(spec):
        if _d(_sc(c).get("windowsOptions")).get("hostProcess") is True:
            bad.append(_name(c))
            paths.append(f"{p}.securityContext.windowsOptions.hostProcess")
    setters: list[str] = []
    if _d(_pod_sc(spec).get("windowsOptions")).get("hostProcess") is True:
        setters.append("pod")
        paths.insert(0, "spec.securityContext.windowsOptions.hostProcess")
    if not setters and not bad:
        return None
    return Forbidden(
        "hostProcess",
        f"{_setters(setters, bad)} must not set securityContext.windowsOptions.hostProcess=true",
        tuple(paths),
    )


def _probe_hosts(handler: Any) -> list[str]:
    hosts = []
    for kind in ("httpGet", "tcpSocket"):
        host = _s(_d(_d(handler).get(kind)).get("host"))
        if host:
            hosts.append(host)
    return hosts


def host_probes_and_host_lifecycle_1_34(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad: set[str] = set()
    hosts: set[str] = set()
    paths: list[str] = []
    for p, c in containers(spec):
        handlers = [(f"{p}.{k}", c.get(k)) for k in ("livenessProbe", "readinessProbe", "startupProbe")]
        lifecycle = _d(c.get("lifecycle"))
        handlers += [(f"{p}.lifecycle.{k}", lifecycle.get(k)) for k in ("postStart", "preStop")]
        for path, handler in handlers:
            found = _probe_hosts(handler)
            if found:
                bad.add(_name(c))
                hosts.update(found)
                paths.append(path)
    if not bad:
        return None
    return Forbidden(
        "probe or lifecycle host",
        f"{pluralize('container', 'containers', len(bad))} {join_quote(sorted(bad))} {pluralize('uses', 'use', len(bad))} "
        f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {join_quote(sorted(hosts))}",
        tuple(paths),
    )


# -- restricted ------------------------------------------------------------------------------

VOLUMES_ALLOWED = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
VOLUMES_RESTRICTED = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


#: every ``VolumeSource`` member of core/v1 (``image`` since v1.31); a volume that sets none of
#: them is an ``emptyDir`` once the API server has defaulted it (``SetDefaults_Volume``), and
#: admission only ever sees the defaulted pod
VOLUME_SOURCES = (*VOLUMES_ALLOWED, *VOLUMES_RESTRICTED, "image")


def restricted_volumes_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad: list[str] = []
    types: set[str] = set()
    paths: list[str] = []
    for i, v in enumerate(_l(spec.get("volumes"))):
        vol = _d(v)
        if any(vol.get(k) is not None for k in VOLUMES_ALLOWED):
            continue
        if all(vol.get(k) is None for k in VOLUME_SOURCES):
            continue  # defaulted to emptyDir
        bad.append(_s(vol.get("name")))
        kind = next((k for k in VOLUMES_RESTRICTED if vol.get(k) is not None), "unknown")
        types.add(kind)
        paths.append(f"spec.volumes[{i}].{kind}" if kind != "unknown" else f"spec.volumes[{i}]")
    if not bad:
        return None
    return Forbidden(
        "restricted volume types",
        f"{pluralize('volume', 'volumes', len(bad))} {join_quote(bad)} {pluralize('uses', 'use', len(bad))} "
        f"{pluralize('restricted volume type', 'restricted volume types', len(types))} {join_quote(sorted(types))}",
        tuple(paths),
    )


def allow_privilege_escalation_1_8(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    bad = [(p, _name(c)) for p, c in containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    names = [n for _, n in bad]
    return Forbidden(
        "allowPrivilegeEscalation != false",
        f"{pluralize('container', 'containers', len(names))} {join_quote(names)} must set securityContext.allowPrivilegeEscalation=false",
        tuple(f"{p}.securityContext.allowPrivilegeEscalation" for p, _ in bad),
    )


def _not_windows(fn: CheckFn) -> CheckFn:
    """The 1.25 revisions: pods with ``spec.os.name: windows`` are exempt."""

    def check(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
        if _is_windows(spec):
            return None
        return fn(meta, spec, opts)

    return check


allow_privilege_escalation_1_25 = _not_windows(allow_privilege_escalation_1_8)


def run_as_non_root_1_0(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    if opts.relax_user_namespace_pods and _user_namespaced(spec):
        return None
    setters: list[str] = []
    paths: list[str] = []
    pod_value = _pod_sc(spec).get("runAsNonRoot")
    pod_non_root = False
    if pod_value is not None:
        if pod_value is False:
            setters.append("pod")
            paths.append("spec.securityContext.runAsNonRoot")
        else:
            pod_non_root = True
    explicit: list[str] = []
    implicit: list[str] = []
    implicit_paths: list[str] = []
    for p, c in containers(spec):
        own = _sc(c).get("runAsNonRoot")
        if own is not None:
            if own is False:
                explicit.append(_name(c))
                paths.append(f"{p}.securityContext.runAsNonRoot")
        elif not pod_non_root:
            implicit.append(_name(c))
            implicit_paths.append(f"{p}.securityContext.runAsNonRoot")
    if setters or explicit:
        return Forbidden(
            "runAsNonRoot != true",
            f"{_setters(setters, explicit)} must not set securityContext.runAsNonRoot=false",
            tuple(paths),
        )
    if implicit:
        return Forbidden(
            "runAsNonRoot != true",
            f"pod or {pluralize('container', 'containers', len(implicit))} {join_quote(implicit)} "
            "must set securityContext.runAsNonRoot=true",
            tuple(implicit_paths),
        )
    return None


def run_as_user_1_23(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    if opts.relax_user_namespace_pods and _user_namespaced(spec):
        return None
    setters: list[str] = []
    paths: list[str] = []
    value = _pod_sc(spec).get("runAsUser")
    if value == 0 and not isinstance(value, bool):
        setters.append("pod")
        paths.append("spec.securityContext.runAsUser")
    bad: list[str] = []
    for p, c in containers(spec):
        own = _sc(c).get("runAsUser")
        if own == 0 and not isinstance(own, bool):
            bad.append(_name(c))
            paths.append(f"{p}.securityContext.runAsUser")
    if not setters and not bad:
        return None
    return Forbidden("runAsUser=0", f"{_setters(setters, bad)} must not set runAsUser=0", tuple(paths))


def seccomp_profile_restricted_1_19(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    setters: list[str] = []
    values: set[str] = set()
    paths: list[str] = []
    pod_set = False
    pod_profile = _pod_sc(spec).get("seccompProfile")
    if isinstance(pod_profile, dict):
        if not _seccomp_ok(pod_profile):
            setters.append("pod")
            values.add(_s(pod_profile.get("type")))
            paths.append("spec.securityContext.seccompProfile.type")
        else:
            pod_set = True
    explicit: list[str] = []
    implicit: list[str] = []
    implicit_paths: list[str] = []
    for p, c in containers(spec):
        profile = _sc(c).get("seccompProfile")
        if isinstance(profile, dict):
            if not _seccomp_ok(profile):
                explicit.append(_name(c))
                values.add(_s(profile.get("type")))
                paths.append(f"{p}.securityContext.seccompProfile.type")
        elif not pod_set:
            implicit.append(_name(c))
            implicit_paths.append(f"{p}.securityContext.seccompProfile")
    if setters or explicit:
        return Forbidden(
            "seccompProfile",
            f"{_setters(setters, explicit)} must not set securityContext.seccompProfile.type to {join_quote(sorted(values))}",
            tuple(paths),
        )
    if implicit:
        return Forbidden(
            "seccompProfile",
            f"pod or {pluralize('container', 'containers', len(implicit))} {join_quote(implicit)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
            tuple(implicit_paths),
        )
    return None


seccomp_profile_restricted_1_25 = _not_windows(seccomp_profile_restricted_1_19)


def capabilities_restricted_1_22(meta: Obj, spec: Obj, opts: Options) -> Forbidden | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    paths: list[str] = []
    for p, c in containers(spec):
        capabilities = _sc(c).get("capabilities")
        if not isinstance(capabilities, dict):
            missing_drop.append(_name(c))
            paths.append(f"{p}.securityContext.capabilities.drop")
            continue
        if "ALL" not in [_s(d) for d in _l(capabilities.get("drop"))]:
            missing_drop.append(_name(c))
            paths.append(f"{p}.securityContext.capabilities.drop")
        forbidden = [_s(a) for a in _l(capabilities.get("add")) if _s(a) != "NET_BIND_SERVICE"]
        if forbidden:
            adding.append(_name(c))
            caps.update(forbidden)
            paths.append(f"{p}.securityContext.capabilities.add")
    details: list[str] = []
    if missing_drop:
        details.append(
            f"{pluralize('container', 'containers', len(missing_drop))} {join_quote(missing_drop)} "
            'must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{pluralize('container', 'containers', len(adding))} {join_quote(adding)} must not include "
            f"{join_quote(sorted(caps))} in securityContext.capabilities.add"
        )
    if not details:
        return None
    return Forbidden("unrestricted capabilities", "; ".join(details), tuple(paths))


capabilities_restricted_1_25 = _not_windows(capabilities_restricted_1_22)
