"""Shared walking of pod specs and containers for the workload control families.

Every workload control looks at the pod specs an object runs (a Pod, the template of a built-in
workload kind, and OpenShift's ``DeploymentConfig`` whose template sits at ``spec.template``) and
at *all* its containers: ``initContainers``, ``containers`` and ``ephemeralContainers``. Each
container comes with its exact object path (``spec.template.spec.initContainers[0]``) so failures
point at the right line, and with the pod it belongs to, so settings that a container inherits
from the pod's ``securityContext`` (``runAsUser``, ``runAsNonRoot``, ``seccompProfile`` ...) are
resolved the way the kubelet resolves them: the container's value wins when set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from garrison.posture.k8s.controls import Context, Failure, k8s_control
from garrison.posture.k8s.objects import TEMPLATE_PATHS, K8sObject, join_path, pod_templates

#: kinds whose pod templates the workload controls walk
WORKLOAD_KINDS: tuple[str, ...] = ("Pod", *TEMPLATE_PATHS, "DeploymentConfig")
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
#: settings a container inherits from the pod-level securityContext
INHERITED = frozenset(
    ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "seLinuxOptions", "appArmorProfile", "windowsOptions")
)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class Pod:
    """One pod spec an object runs: its path, metadata (and the metadata's path) and spec."""

    path: str
    meta_path: str
    meta: dict[str, Any]
    spec: dict[str, Any]
    cache: dict[tuple[str, ...], list[Container]] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def at(self, *keys: object) -> str:
        path = self.path
        for key in keys:
            path = f"{path}[{key}]" if isinstance(key, int) else join_path(path, key)
        return path

    @property
    def security_context(self) -> dict[str, Any]:
        return as_dict(self.spec.get("securityContext"))

    @property
    def annotations(self) -> dict[str, Any]:
        return as_dict(self.meta.get("annotations"))

    def volumes(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for i, vol in enumerate(as_list(self.spec.get("volumes"))):
            if isinstance(vol, dict):
                yield self.at("volumes", i), vol


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod, with its path and the list it is in."""

    pod: Pod
    field: str  # initContainers | containers | ephemeralContainers
    path: str
    doc: dict[str, Any]

    @property
    def name(self) -> str:
        value = self.doc.get("name")
        return value if isinstance(value, str) else ""

    @property
    def label(self) -> str:
        kind = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
        return f"{kind.get(self.field, 'container')} {self.name or '<unnamed>'}"

    def at(self, *keys: object) -> str:
        path = self.path
        for key in keys:
            path = f"{path}[{key}]" if isinstance(key, int) else join_path(path, key)
        return path

    @property
    def security_context(self) -> dict[str, Any]:
        return as_dict(self.doc.get("securityContext"))

    def effective(self, key: str) -> tuple[Any, str]:
        """``(value, path)`` of a security-context setting: the container's when set, else the
        pod's for inherited settings; ``(None, container securityContext path)`` when unset."""
        if key in self.security_context:
            return self.security_context[key], self.at("securityContext", key)
        if key in INHERITED and key in self.pod.security_context:
            return self.pod.security_context[key], self.pod.at("securityContext", key)
        return None, self.at("securityContext") if "securityContext" in self.doc else self.path

    def capabilities(self, which: str) -> list[tuple[str, str]]:
        """``(capability, path)`` for ``add`` or ``drop``, upper-cased without a ``CAP_`` prefix."""
        caps = as_dict(self.security_context.get("capabilities"))
        out = []
        for i, cap in enumerate(as_list(caps.get(which))):
            if isinstance(cap, str):
                name = cap.strip().upper().removeprefix("CAP_")
                out.append((name, self.at("securityContext", "capabilities", which, i)))
        return out


def pods(obj: K8sObject) -> list[Pod]:
    """The pod specs ``obj`` runs (see :func:`~garrison.posture.k8s.objects.pod_templates`).
    Memoised on the object: callers must not modify the list."""
    cached = obj.cache.get("pods")
    if cached is None:
        cached = obj.cache["pods"] = _pods(obj)
    return cached


def _pods(obj: K8sObject) -> list[Pod]:
    found: list[Pod] = []
    if obj.kind == "DeploymentConfig":
        template = as_dict(as_dict(obj.doc.get("spec")).get("template"))
        spec = template.get("spec")
        if isinstance(spec, dict):
            found.append(Pod("spec.template.spec", "spec.template.metadata", as_dict(template.get("metadata")), spec))
        return found
    for prefix, meta, spec in pod_templates(obj):
        meta_path = "metadata" if prefix == "spec" else prefix.removesuffix(".spec") + ".metadata"
        found.append(Pod(prefix, meta_path, meta, spec))
    return found


def containers(pod: Pod, fields: tuple[str, ...] = CONTAINER_FIELDS) -> list[Container]:
    """The containers of ``pod`` in ``fields`` (memoised per pod and fields: do not modify)."""
    cached = pod.cache.get(fields)
    if cached is None:
        cached = pod.cache[fields] = [
            Container(pod, name, pod.at(name, i), doc)
            for name in fields
            for i, doc in enumerate(as_list(pod.spec.get(name)))
            if isinstance(doc, dict)
        ]
    return cached


def all_containers(obj: K8sObject, fields: tuple[str, ...] = CONTAINER_FIELDS) -> Iterator[Container]:
    for pod in pods(obj):
        yield from containers(pod, fields)


def to_int(value: Any) -> int | None:
    """An integer field's value (``bool`` is not an integer here); ``None`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


ContainerCheck = Callable[[Container], Iterable[Failure]]
PodCheck = Callable[[Pod], Iterable[Failure]]


def container_control(
    cid: str, *, family: str, fields: tuple[str, ...] = CONTAINER_FIELDS
) -> Callable[[ContainerCheck], ContainerCheck]:
    """Register a per-container check as control ``cid`` over every workload kind; objects that
    run no pod spec are not applicable."""

    def register(fn: ContainerCheck) -> ContainerCheck:
        def check(obj: K8sObject, ctx: Context) -> list[Failure] | None:
            found = pods(obj)
            if not found:
                return None
            return [f for pod in found for c in containers(pod, fields) for f in fn(c)]

        check.__name__ = fn.__name__
        k8s_control(cid, family=family, kinds=WORKLOAD_KINDS)(check)
        return fn

    return register


def pod_control(cid: str, *, family: str) -> Callable[[PodCheck], PodCheck]:
    """Register a per-pod-spec check as control ``cid`` over every workload kind."""

    def register(fn: PodCheck) -> PodCheck:
        def check(obj: K8sObject, ctx: Context) -> list[Failure] | None:
            found = pods(obj)
            if not found:
                return None
            return [f for pod in found for f in fn(pod)]

        check.__name__ = fn.__name__
        k8s_control(cid, family=family, kinds=WORKLOAD_KINDS)(check)
        return fn

    return register


def family_data(family: str, key: str) -> dict[str, Any]:
    """A top-level mapping other than ``controls`` from ``<family>.yaml`` (check parameters)."""
    text = resources.files(__package__).joinpath(f"{family}.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, dict):
        raise ValueError(f"{family}.yaml: {key!r} must be a mapping")
    return value
