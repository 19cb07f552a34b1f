"""Endpoints from plain Kubernetes YAML, with the labels Calico gives workload endpoints.

Read: Namespaces (labels), ServiceAccounts (labels), Pods (labels, ``status.podIP``/``podIPs``,
named container ports, ``spec.serviceAccountName``), and Deployments / StatefulSets / DaemonSets /
ReplicaSets / Jobs / CronJobs, each expanded to ONE endpoint named after the workload from its pod
template. A pod or workload without an IP gets a synthetic one from ``10.128.0.0/9``, allocated in
key order and skipping every IP the inventory already uses, so the same files always give the same
addresses. The IP can also be given with the annotation ``garrison.dev/ip``. HostEndpoints and
NetworkSets come from the policy documents (:mod:`garrison.network.loader`) or from the same files.

Labels are computed as Calico's Kubernetes datastore driver does for a workload endpoint:

* the pod's labels;
* ``projectcalico.org/namespace=<ns>``, ``projectcalico.org/orchestrator=k8s`` and
  ``projectcalico.org/serviceaccount=<sa>``;
* inherited from the namespace profile ``kns.<ns>``: ``pcns.<key>=<value>`` for every namespace
  label plus ``pcns.projectcalico.org/name=<ns>`` (Kubernetes itself always sets
  ``kubernetes.io/metadata.name=<ns>`` on a namespace);
* inherited from the service-account profile ``ksa.<ns>.<sa>``: ``pcsa.<key>=<value>`` and
  ``pcsa.projectcalico.org/name=<sa>``.

Endpoint labels win over inherited profile labels, as in Felix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError
from garrison.model.network import Endpoint, EndpointKind, NamedPort
from garrison.network import ir
from garrison.network.loader import iter_documents, load_objects

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
IP_ANNOTATION = "garrison.dev/ip"
SYNTHETIC_NET = ipaddress.ip_network("10.128.0.0/9")


@dataclass(slots=True)
class Inventory:
    """Endpoints (pods and host endpoints), namespaces, service accounts and network sets."""

    endpoints: list[Endpoint] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    service_accounts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    network_sets: list[ir.NetworkSet] = field(default_factory=list)

    def by_key(self) -> dict[str, Endpoint]:
        return {e.key: e for e in self.endpoints}

    def get(self, key: str) -> Endpoint:
        found = self.by_key().get(key)
        if found is None:
            raise InputError(f"no endpoint {key!r} in the inventory (expected NAMESPACE/POD)")
        return found

    def ports(self) -> list[tuple[str, int]]:
        """Every (PROTO, port) the inventory's endpoints name, sorted (the matrix columns)."""
        seen = {(p.protocol, p.port) for e in self.endpoints for p in e.ports}
        return sorted(seen, key=lambda x: (x[0], x[1]))


def namespace_labels(name: str, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    out = dict(labels or {})
    out["kubernetes.io/metadata.name"] = name
    return out


def calico_labels(labels: Mapping[str, str], namespace: str, ns_labels: Mapping[str, str], service_account: str,
                  sa_labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The label set Calico matches selectors against for a pod (see module docstring)."""
    out: dict[str, str] = {f"{ir.NS_PREFIX}{k}": v for k, v in ns_labels.items()}
    out[f"{ir.NS_PREFIX}{ir.NAME_LABEL}"] = namespace
    if service_account:
        out.update({f"{ir.SA_PREFIX}{k}": v for k, v in (sa_labels or {}).items()})
        out[f"{ir.SA_PREFIX}{ir.NAME_LABEL}"] = service_account
    out.update(labels)
    out[ir.NS_LABEL] = namespace
    out[ir.ORCH_LABEL] = "k8s"
    if service_account:
        out[ir.SA_LABEL] = service_account
    return out


@dataclass(slots=True)
class _Raw:
    name: str
    namespace: str
    labels: dict[str, str]
    ips: list[str]
    ports: list[NamedPort]
    service_account: str
    node: str


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _name(value: Any, where: str, default: str = "") -> str:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value, where).items()}


def _pod_spec_raw(name: str, namespace: str, meta: Mapping[str, Any], spec: Mapping[str, Any],
                  status: Mapping[str, Any], where: str) -> _Raw:
    ports: list[NamedPort] = []
    containers = spec.get("containers") or []
    if not isinstance(containers, list):
        raise InputError(f"{where}: spec.containers must be a list")
    for c in containers + _list(spec.get("initContainers"), f"{where}: spec.initContainers"):
        c = _mapping(c, f"{where}: container")
        for p in _list(c.get("ports"), f"{where}: container ports"):
            p = _mapping(p, f"{where}: container port")
            number = p.get("containerPort")
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
                raise InputError(f"{where}: containerPort must be 1-65535, got {number!r}")
            proto = str(p.get("protocol") or "TCP").upper()
            if proto not in ("TCP", "UDP", "SCTP"):
                raise InputError(f"{where}: container port protocol must be TCP, UDP or SCTP, got {proto!r}")
            ports.append(NamedPort(str(p.get("name") or ""), proto, number))
    ips: list[str] = []
    annotations = _str_map(meta.get("annotations"), f"{where}: metadata.annotations")
    candidates: list[Any] = []
    if status.get("podIP"):
        candidates.append(status["podIP"])
    candidates.extend(e["ip"] for e in _list(status.get("podIPs"), f"{where}: status.podIPs")
                      if isinstance(e, Mapping) and e.get("ip"))
    if IP_ANNOTATION in annotations:
        candidates.extend(a.strip() for a in annotations[IP_ANNOTATION].split(","))
    for ip in candidates:
        try:
            text = str(ipaddress.ip_address(str(ip)))
        except ValueError as err:
            raise InputError(f"{where}: bad IP address {ip!r}") from err
        if text not in ips:
            ips.append(text)
    sa_value = spec.get("serviceAccountName")
    sa = _name(sa_value if sa_value not in (None, "") else spec.get("serviceAccount"),
               f"{where}: spec.serviceAccountName", "default")
    return _Raw(name, namespace, _str_map(meta.get("labels"), f"{where}: metadata.labels"), ips, ports, sa,
                _name(spec.get("nodeName"), f"{where}: spec.nodeName"))


def inventory_from_objects(objects: Iterable[tuple[str, int, Mapping[str, Any]]]) -> Inventory:
    """Build an :class:`Inventory` from parsed Kubernetes / Calico objects."""
    inv = Inventory()
    raws: list[_Raw] = []
    calico_docs: list[tuple[str, int, Mapping[str, Any]]] = []
    for source, index, obj in objects:
        kind = str(obj.get("kind", ""))
        meta = _mapping(obj.get("metadata"), f"{source}#{index}: metadata")
        where = f"{source}#{index} {kind}"
        name = _name(meta.get("name"), f"{where}: metadata.name")
        namespace = _name(meta.get("namespace"), f"{where}: metadata.namespace", "default")
        where = f"{where} {name}"
        if kind in ("HostEndpoint", "NetworkSet", "GlobalNetworkSet"):
            calico_docs.append((source, index, obj))
            continue
        if kind not in ("Namespace", "ServiceAccount", "Pod", *WORKLOAD_KINDS):
            continue
        if not name:
            raise InputError(f"{where}: metadata.name is missing")
        if kind == "Namespace":
            inv.namespaces[name] = namespace_labels(name, _str_map(meta.get("labels"), f"{where}: metadata.labels"))
        elif kind == "ServiceAccount":
            inv.service_accounts[(namespace, name)] = _str_map(meta.get("labels"), f"{where}: metadata.labels")
        elif kind == "Pod":
            raws.append(_pod_spec_raw(name, namespace, meta, _mapping(obj.get("spec"), where),
                                      _mapping(obj.get("status"), where), where))
        else:
            spec = _mapping(obj.get("spec"), where)
            if kind == "CronJob":
                spec = _mapping(_mapping(spec.get("jobTemplate"), where).get("spec"), where)
            template = _mapping(spec.get("template"), f"{where}: spec.template")
            tmeta = dict(_mapping(template.get("metadata"), where))
            annotations = dict(_str_map(meta.get("annotations"), where))
            annotations.update(_str_map(tmeta.get("annotations"), where))
            tmeta["annotations"] = annotations
            raws.append(_pod_spec_raw(name, namespace, tmeta, _mapping(template.get("spec"), where),
                                      {}, where))
    if calico_docs:
        extra = load_objects(calico_docs)
        if extra.errors:
            raise InputError(str(extra.errors[0]))
        inv.endpoints.extend(extra.host_endpoints)
        inv.network_sets.extend(extra.network_sets)
    used = {ip for r in raws for ip in r.ips} | {ip for e in inv.endpoints for ip in e.ips}
    synthetic = (str(SYNTHETIC_NET.network_address + i) for i in range(1, SYNTHETIC_NET.num_addresses - 1))
    seen: set[tuple[str, str]] = set()
    for raw in sorted(raws, key=lambda r: (r.namespace, r.name)):
        if (raw.namespace, raw.name) in seen:
            raise InputError(f"endpoint {raw.namespace}/{raw.name} is defined twice")
        seen.add((raw.namespace, raw.name))
        if not raw.ips:
            ip = next(synthetic)
            while ip in used:
                ip = next(synthetic)
            used.add(ip)
            raw.ips.append(ip)
        ns_labels = inv.namespaces.setdefault(raw.namespace, namespace_labels(raw.namespace))
        sa_labels = inv.service_accounts.get((raw.namespace, raw.service_account), {})
        inv.endpoints.append(Endpoint(
            name=raw.name, namespace=raw.namespace, kind=EndpointKind.POD,
            labels=calico_labels(raw.labels, raw.namespace, ns_labels, raw.service_account, sa_labels),
            ips=tuple(raw.ips), ports=tuple(raw.ports), service_account=raw.service_account, node=raw.node,
            profiles=(f"kns.{raw.namespace}", f"ksa.{raw.namespace}.{raw.service_account}")))
    return inv


def load_inventory(path: str | Path) -> Inventory:
    """Read every YAML document under ``path`` (file or directory) into an :class:`Inventory`."""
    return inventory_from_objects(iter_documents(Path(path)))


def merge_policy_entities(inv: Inventory, host_endpoints: Iterable[Endpoint],
                          network_sets: Iterable[ir.NetworkSet]) -> None:
    """Add the HostEndpoints and NetworkSets found among the policy documents (no duplicates)."""
    keys = {e.key for e in inv.endpoints}
    for hep in host_endpoints:
        if hep.key not in keys:
            inv.endpoints.append(hep)
            keys.add(hep.key)
    names = {(n.namespace, n.name) for n in inv.network_sets}
    for ns in network_sets:
        if (ns.namespace, ns.name) not in names:
            inv.network_sets.append(ns)
            names.add((ns.namespace, ns.name))
