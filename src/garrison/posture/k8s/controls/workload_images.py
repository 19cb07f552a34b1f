"""Workload image controls (``GK-W-071``…``GK-W-078``): mutable and ``latest`` tags, digests,
pull policy, registries outside an allow-list, and images of components known to be dangerous to
deploy (Helm 2's Tiller, the Kubernetes dashboard).

Image references are split the way the container runtimes do (``registry/path:tag@digest``; the
registry is the first component when it contains ``.`` or ``:`` or is ``localhost``, else
``docker.io``); the reference grammar is small enough that a dependency would add nothing.

The registry allow-list (``GK-W-074``) comes from :func:`configure_allowed_registries` or the
``GARRISON_K8S_ALLOWED_REGISTRIES`` environment variable (comma separated registry hosts or
``host/path`` prefixes). With no allow-list the control does not apply to any object.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from garrison.posture.k8s.controls import Context, Failure, k8s_control
from garrison.posture.k8s.controls._pods import (
    WORKLOAD_KINDS,
    Container,
    Pod,
    all_containers,
    as_dict,
    container_control,
    containers,
    pod_control,
    pods,
)
from garrison.posture.k8s.objects import K8sObject

FAMILY = "workload_images"
ALLOWED_ENV = "GARRISON_K8S_ALLOWED_REGISTRIES"
_allowed: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str
    repository: str  # path without registry, e.g. library/nginx
    tag: str
    digest: str

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        rest, _, digest = text.strip().partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        tag = ""
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
        first, sep, remainder = rest.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, remainder
        else:
            registry, repository = "docker.io", rest
        if registry == "docker.io" and "/" not in repository:
            repository = f"library/{repository}"
        return cls(registry, repository, tag, digest)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


def configure_allowed_registries(registries: Iterable[str] | None) -> None:
    """Set the registry allow-list for ``GK-W-074`` (``None``: use the environment variable)."""
    global _allowed
    _allowed = None if registries is None else tuple(r.strip().rstrip("/") for r in registries if r.strip())


def allowed_registries() -> tuple[str, ...]:
    if _allowed is not None:
        return _allowed
    raw = os.environ.get(ALLOWED_ENV, "")
    return tuple(r.strip().rstrip("/") for r in raw.split(",") if r.strip())


def _image(c: Container) -> ImageRef | None:
    value = c.doc.get("image")
    return ImageRef.parse(value) if isinstance(value, str) and value.strip() else None


@container_control("GK-W-071", family=FAMILY)
def latest_tag(c: Container) -> Iterable[Failure]:
    ref = _image(c)
    if ref is not None and not ref.digest and ref.tag in ("", "latest"):
        yield Failure(f"{c.label} image {c.doc['image']} uses {ref.tag or 'no'} tag", (c.at("image"),))


@container_control("GK-W-072", family=FAMILY)
def not_pinned(c: Container) -> Iterable[Failure]:
    ref = _image(c)
    if ref is not None and not ref.digest:
        yield Failure(f"{c.label} image {c.doc['image']} is not pinned by digest", (c.at("image"),))


@container_control("GK-W-073", family=FAMILY)
def pull_policy(c: Container) -> Iterable[Failure]:
    ref = _image(c)
    if ref is None or ref.digest:
        return
    policy = c.doc.get("imagePullPolicy")
    if policy is None:
        if ref.tag not in ("", "latest"):
            yield Failure(
                f"{c.label} pulls mutable tag {ref.tag} only if not present (default policy)", (c.at("image"),)
            )
    elif policy != "Always":
        yield Failure(f"{c.label} imagePullPolicy is {policy} for a mutable tag", (c.at("imagePullPolicy"),))


@k8s_control("GK-W-074", family=FAMILY, kinds=WORKLOAD_KINDS)
def registry_not_allowed(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    allowed = allowed_registries()
    if not allowed or not pods(obj):
        return None
    failures = []
    for c in all_containers(obj):
        ref = _image(c)
        if ref is None:
            continue
        if not any(ref.name == a or ref.name.startswith(a + "/") or ref.registry == a for a in allowed):
            failures.append(
                Failure(
                    f"{c.label} image {c.doc['image']} is from {ref.registry}, not an allowed registry",
                    (c.at("image"),),
                )
            )
    return failures


def _labels(pod: Pod) -> dict[str, object]:
    return as_dict(pod.meta.get("labels"))


@pod_control("GK-W-075", family=FAMILY)
def tiller(pod: Pod) -> Iterable[Failure]:
    labels = _labels(pod)
    for c in containers(pod):
        ref = _image(c)
        if ref is not None and "tiller" in ref.repository:
            yield Failure(f"{c.label} runs Tiller ({c.doc['image']})", (c.at("image"),))
            return
    if labels.get("app") == "helm" and labels.get("name") == "tiller":
        yield Failure("pod is labelled as Tiller", (f"{pod.meta_path}.labels",))


@pod_control("GK-W-076", family=FAMILY)
def dashboard(pod: Pod) -> Iterable[Failure]:
    for c in containers(pod):
        ref = _image(c)
        if ref is not None and ("kubernetes-dashboard" in ref.repository or ref.repository.startswith("kubernetesui/")):
            yield Failure(f"{c.label} runs the Kubernetes dashboard ({c.doc['image']})", (c.at("image"),))
            return
    labels = _labels(pod)
    for key in ("app", "k8s-app"):
        if labels.get(key) == "kubernetes-dashboard":
            yield Failure("pod is labelled as the Kubernetes dashboard", (f"{pod.meta_path}.labels.{key}",))
            return


@container_control("GK-W-077", family=FAMILY)
def no_image(c: Container) -> Iterable[Failure]:
    if _image(c) is None:
        yield Failure(f"{c.label} has no image", (c.at("image") if "image" in c.doc else c.path,))


@container_control("GK-W-078", family=FAMILY)
def implicit_registry(c: Container) -> Iterable[Failure]:
    value = c.doc.get("image")
    ref = _image(c)
    if (
        ref is not None
        and isinstance(value, str)
        and ref.registry == "docker.io"
        and not value.strip().startswith("docker.io/")
    ):
        yield Failure(f"{c.label} image {value} names no registry (Docker Hub is implied)", (c.at("image"),))
