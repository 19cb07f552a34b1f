"""The Kubernetes control library: one module per family in this package, each registering its
checks with :func:`k8s_control`, metadata in ``<family>.yaml`` beside the module.

A check is a pure function ``(obj, ctx) -> Iterable[Failure] | None`` over one :class:`K8sObject`
(``None``: the control does not apply to this object, e.g. a pod control on a ConfigMap); the
:class:`Context` gives every object of the run, so cross-object controls (a namespace without a
NetworkPolicy, a RoleBinding to a missing ServiceAccount) can look around. The runner turns a
check's failures into :class:`ControlResult` with locations from the object's line map, and a
PASS result for every applicable object that did not fail.

    results = run_controls(objects)                   # every registered control
    results = run_controls(objects, only={"GK-001"})  # a selection
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from garrison.model import Severity
from garrison.posture.k8s.objects import K8sObject
from garrison.posture.model import Control, ControlResult, Verdict


@dataclass(frozen=True, slots=True)
class Failure:
    """One way an object fails a control: a message and the object paths it points at."""

    message: str
    paths: tuple[str, ...] = ()


@dataclass(slots=True)
class Context:
    """Every object of the run, indexed for cross-object checks."""

    objects: list[K8sObject]
    by_kind: dict[str, list[K8sObject]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for obj in self.objects:
            self.by_kind.setdefault(obj.kind, []).append(obj)

    def of_kind(self, *kinds: str) -> Iterator[K8sObject]:
        for kind in kinds:
            yield from self.by_kind.get(kind, ())


Check = Callable[[K8sObject, Context], Iterable[Failure] | None]


@dataclass(frozen=True, slots=True)
class Registered:
    control: Control
    check: Check
    kinds: frozenset[str]  # object kinds the control applies to; empty = decided by the check


_REGISTRY: dict[str, Registered] = {}


@cache
def _metadata(family: str) -> dict[str, dict[str, Any]]:
    text = resources.files(__package__).joinpath(f"{family}.yaml").read_text(encoding="utf-8")
    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    controls = doc.get("controls", {}) if isinstance(doc, dict) else {}
    if not isinstance(controls, dict):
        raise ValueError(f"{family}.yaml: 'controls' must map control ids to metadata")
    return controls


def control_from_metadata(cid: str, family: str, meta: dict[str, Any]) -> Control:
    def tuples(d: Any) -> dict[str, tuple[str, ...]]:
        return {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in (d or {}).items()}

    return Control(
        id=cid,
        title=str(meta["title"]),
        severity=Severity.parse(str(meta["severity"])),
        family=family,
        description=str(meta.get("description", "")),
        rationale=str(meta.get("rationale", "")),
        remediation=str(meta.get("remediation", "")),
        frameworks=tuples(meta.get("frameworks")),
        references=tuples(meta.get("references")),
    )


def k8s_control(cid: str, *, family: str, kinds: Iterable[str] = ()) -> Callable[[Check], Check]:
    """Register ``check`` as control ``cid``; its metadata is ``controls[cid]`` in ``<family>.yaml``."""

    def register(check: Check) -> Check:
        if cid in _REGISTRY:
            raise ValueError(f"control {cid} registered twice")
        meta = _metadata(family).get(cid)
        if meta is None:
            raise ValueError(f"control {cid}: no metadata in {family}.yaml")
        _REGISTRY[cid] = Registered(control_from_metadata(cid, family, meta), check, frozenset(kinds))
        return check

    return register


_LOADED = False


def registry() -> dict[str, Registered]:
    """Every registered control by id (imports the family modules once)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for mod in pkgutil.iter_modules(__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
    return _REGISTRY


def run_controls(
    objects: list[K8sObject], only: set[str] | None = None, skip: set[str] | None = None
) -> list[ControlResult]:
    """Run the selected controls over ``objects``; FAIL results for each failure and one PASS per
    applicable object that had none."""
    ctx = Context(objects)
    results: list[ControlResult] = []
    for cid, reg in sorted(registry().items()):
        if (only and cid not in only) or (skip and cid in skip):
            continue
        candidates = ctx.of_kind(*sorted(reg.kinds)) if reg.kinds else iter(objects)
        for obj in candidates:
            if not obj.is_mapping:
                continue
            subject = obj.subject()
            outcome = reg.check(obj, ctx)
            if outcome is None:
                continue
            failures = list(outcome)
            if not failures:
                results.append(ControlResult(reg.control, subject, Verdict.PASS, location=subject.location))
                continue
            for failure in failures:
                where = obj.location_of(failure.paths[0]) if failure.paths else subject.location
                results.append(
                    ControlResult(reg.control, subject, Verdict.FAIL, failure.message, failure.paths, where)
                )
    return results
