"""Workload resource and probe controls (``GK-W-060``…``GK-W-070``): CPU, memory and
ephemeral-storage requests and limits per container, requests above limits, and liveness,
readiness and startup probes.

Resource checks cover ``containers`` and ``initContainers`` (ephemeral containers cannot have
resources); probe checks cover ``containers`` only, as init containers cannot have probes.
Quantities are compared with a small parser of the Kubernetes quantity syntax (decimal and binary
suffixes and exponents) because the only library implementing it is the full Kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation

from garrison.posture.k8s.controls import Failure
from garrison.posture.k8s.controls._pods import Container, as_dict, container_control

FAMILY = "workload_resources"
RESOURCE_FIELDS = ("initContainers", "containers")
PROBE_FIELDS = ("containers",)
_SUFFIX = {
    "": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")


def parse_quantity(value: object) -> Decimal | None:
    """A Kubernetes quantity (``500m``, ``1Gi``, ``1e3``, ``2``) as a Decimal; ``None`` if invalid."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number, exponent, suffix = match.groups()
    try:
        base = Decimal(number)
        factor = _SUFFIX[suffix or ""]
        return base * Decimal(f"1{exponent}") if exponent else base * Decimal(str(factor))
    except (InvalidOperation, KeyError):
        return None


def _missing(kind: str, resource: str) -> Callable[[Container], Iterable[Failure]]:
    def check(c: Container) -> Iterable[Failure]:
        resources = as_dict(c.doc.get("resources"))
        values = as_dict(resources.get(kind))
        if values.get(resource) in (None, ""):
            if kind in resources:
                path = c.at("resources", kind)
            else:
                path = c.at("resources") if "resources" in c.doc else c.path
            yield Failure(f"{c.label} has no {resource} {kind[:-1]}", (path,))

    return check


for _cid, _kind, _res in (
    ("GK-W-060", "requests", "cpu"),
    ("GK-W-061", "limits", "cpu"),
    ("GK-W-062", "requests", "memory"),
    ("GK-W-063", "limits", "memory"),
    ("GK-W-064", "requests", "ephemeral-storage"),
    ("GK-W-065", "limits", "ephemeral-storage"),
):
    container_control(_cid, family=FAMILY, fields=RESOURCE_FIELDS)(_missing(_kind, _res))


@container_control("GK-W-066", family=FAMILY, fields=RESOURCE_FIELDS)
def request_above_limit(c: Container) -> Iterable[Failure]:
    resources = as_dict(c.doc.get("resources"))
    requests, limits = as_dict(resources.get("requests")), as_dict(resources.get("limits"))
    for name in sorted(set(requests) & set(limits)):
        request, limit = parse_quantity(requests[name]), parse_quantity(limits[name])
        if request is not None and limit is not None and request > limit:
            yield Failure(
                f"{c.label} requests more {name} ({requests[name]}) than its limit ({limits[name]})",
                (c.at("resources", "requests", name),),
            )


def _probe(name: str) -> Callable[[Container], Iterable[Failure]]:
    def check(c: Container) -> Iterable[Failure]:
        if not isinstance(c.doc.get(name), dict):
            yield Failure(f"{c.label} has no {name}", (c.path,))

    return check


container_control("GK-W-067", family=FAMILY, fields=PROBE_FIELDS)(_probe("livenessProbe"))
container_control("GK-W-068", family=FAMILY, fields=PROBE_FIELDS)(_probe("readinessProbe"))
container_control("GK-W-069", family=FAMILY, fields=PROBE_FIELDS)(_probe("startupProbe"))


@container_control("GK-W-070", family=FAMILY, fields=PROBE_FIELDS)
def liveness_same_as_readiness(c: Container) -> Iterable[Failure]:
    live, ready = c.doc.get("livenessProbe"), c.doc.get("readinessProbe")
    if isinstance(live, dict) and live and live == ready:
        yield Failure(f"{c.label} liveness probe is identical to its readiness probe", (c.at("livenessProbe"),))
