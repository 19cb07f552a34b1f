"""Expand the Kubernetes NetworkPolicy e2e truth tables into concrete probe matrices.

``k8s_e2e_netpol.yaml`` describes each upstream test case as steps (create / update / delete
policies, add namespace or pod labels) and checks (one probe matrix on a port and protocol);
``k8s_e2e_netpol.expanded.json`` holds the expected ``(from, to, allowed)`` pairs of each matrix.
:func:`matrices` replays the steps and returns, per matrix, everything a harness needs to build the
world and probe it: namespaces with labels, pods (namespace, name, labels, container ports, IP),
the NetworkPolicy objects in force (placeholders ``{{podIP:ns/pod}}`` and ``{{cidr4:ns/pod}}``
substituted with the IPs the caller assigns) and the expected pairs. The evaluator tests and the
netns dataplane tests both use it, so both are held to the same truth table.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import InputError

NAMESPACES = ("x", "y", "z")
_PLACEHOLDER = re.compile(r"\{\{(podIP|cidr4):([a-z0-9-]+/[a-z0-9-]+)\}\}")


@dataclass(slots=True)
class ConformancePod:
    namespace: str
    name: str
    labels: dict[str, str]
    ports: list[tuple[str, str, int]]  # (port name, PROTOCOL, port)
    ip: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class ConformanceMatrix:
    case: str
    name: str
    step: int
    check: int
    port: int
    protocol: str
    namespaces: dict[str, dict[str, str]]
    pods: list[ConformancePod]
    policies: list[dict[str, Any]]  # networking.k8s.io/v1 NetworkPolicy objects
    expected: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.case}-s{self.step}-c{self.check}-{self.protocol}-{self.port}"

    def objects(self) -> list[dict[str, Any]]:
        """Namespaces, Pods (with ``status.podIP``) and NetworkPolicies as Kubernetes manifests."""
        out: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(labels)}}
            for ns, labels in self.namespaces.items()]
        out.extend({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)},
            "spec": {"containers": [{
                "name": f"c{port}-{proto.lower()}", "image": "agnhost",
                "ports": [{"name": pname, "containerPort": port, "protocol": proto}],
            } for pname, proto, port in pod.ports]},
            "status": {"podIP": pod.ip, "podIPs": [{"ip": pod.ip}]},
        } for pod in self.pods)
        out.extend(copy.deepcopy(self.policies))
        return out


def default_ip(key: str, pods: list[str]) -> str:
    """Deterministic pod IPs: ``10.<ns index + 1>.0.<pod index + 2>`` (all inside one /4, as the suite assumes)."""
    ns, _, _name = key.partition("/")
    return f"10.{NAMESPACES.index(ns) + 1 if ns in NAMESPACES else 9}.0.{pods.index(key) + 2}"


def _substitute(obj: Any, ips: Mapping[str, str]) -> Any:
    if isinstance(obj, dict):
        return {k: _substitute(v, ips) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, ips) for v in obj]
    if isinstance(obj, str):
        def repl(m: re.Match[str]) -> str:
            ip = ips.get(m.group(2))
            if ip is None:
                raise InputError(f"placeholder {m.group(0)} names an unknown pod")
            if m.group(1) == "podIP":
                return ip
            # makeLargeCIDRForIP: a /4 around the pod's address (the suite only uses IPv4)
            return str(ipaddress.ip_network(f"{ip}/4", strict=False))
        return _PLACEHOLDER.sub(repl, obj)
    return obj


def _policy(entry: Mapping[str, Any], ips: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": str(entry["name"]), "namespace": str(entry["namespace"])},
            "spec": _substitute(copy.deepcopy(entry["spec"]), ips)}


def matrices(yaml_path: str | Path, expanded_path: str | Path,
             ip_for: Callable[[str, list[str]], str] = default_ip) -> list[ConformanceMatrix]:
    """Replay every case of the truth tables; one :class:`ConformanceMatrix` per probe check."""
    cases = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8"))["cases"]
    expanded = json.loads(Path(expanded_path).read_text(encoding="utf-8"))["matrices"]
    expected: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for m in expanded:
        expected.setdefault((m["case"], int(m["step"])), []).append(m)
    out: list[ConformanceMatrix] = []
    for case in cases:
        pods = [str(p) for p in case["pods"]]
        ips = {p: ip_for(p, pods) for p in pods}
        namespaces = {ns: {"ns": ns, "kubernetes.io/metadata.name": ns} for ns in NAMESPACES}
        pod_labels = {p: {"pod": p.split("/")[1]} for p in pods}
        ports = [(f"serve-{port}-{proto.lower()}", proto, int(port))
                 for port in case["ports"] for proto in case["protocols"]]
        policies: dict[tuple[str, str], dict[str, Any]] = {}
        for step_no, step in enumerate(case["steps"]):
            if step.get("delete_all_policies"):
                policies.clear()
            for entry in list(step.get("create") or []) + list(step.get("update") or []):
                policies[(str(entry["namespace"]), str(entry["name"]))] = _policy(entry, ips)
            for ns, labels in (step.get("add_namespace_labels") or {}).items():
                namespaces[ns].update({str(k): str(v) for k, v in labels.items()})
            for pod, labels in (step.get("add_pod_labels") or {}).items():
                pod_labels[pod].update({str(k): str(v) for k, v in labels.items()})
            wanted = expected.get((case["id"], step_no), [])
            for check_no, check in enumerate(step.get("check") or []):
                if check_no >= len(wanted):
                    raise InputError(f"{case['id']} step {step_no}: no expanded matrix for check {check_no}")
                exp = wanted[check_no]
                if int(exp["port"]) != int(check["port"]) or exp["protocol"] != check["protocol"]:
                    raise InputError(f"{case['id']} step {step_no}: expanded matrix does not match check {check_no}")
                out.append(ConformanceMatrix(
                    case=str(case["id"]), name=str(case["name"]), step=step_no, check=check_no,
                    port=int(check["port"]), protocol=str(check["protocol"]),
                    namespaces={k: dict(v) for k, v in namespaces.items()},
                    pods=[ConformancePod(p.split("/")[0], p.split("/")[1], dict(pod_labels[p]), list(ports), ips[p])
                          for p in pods],
                    policies=[copy.deepcopy(v) for v in policies.values()],
                    expected=[(str(a), str(b), bool(c)) for a, b, c in exp["pairs"]]))
    return out
