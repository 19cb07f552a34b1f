"""A small cluster for the dataplane tests, as Kubernetes YAML and as harness endpoints."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml

from garrison.network.dataplane.harness import HarnessEndpoint

# namespace -> pod -> (ip, labels)
PODS = {
    "web": {"front": ("10.60.0.2", {"app": "front", "tier": "web"}), "admin": ("10.60.0.3", {"app": "admin"})},
    "db": {"pg": ("10.60.1.2", {"app": "pg"}), "cache": ("10.60.1.3", {"app": "cache"})},
}
PORTS = [("http", "TCP", 80), ("alt", "TCP", 8080), ("dns", "UDP", 53), ("pg", "TCP", 5432), ("sig", "SCTP", 9000)]


def inventory_docs() -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for ns, pods in PODS.items():
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": ns}}})
        for name, (ip, labels) in pods.items():
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": "x",
                                "ports": [{"name": n, "protocol": p, "containerPort": port} for n, p, port in PORTS],
                            }
                        ]
                    },
                    "status": {"podIP": ip, "podIPs": [{"ip": ip}, {"ip": ip6(ip)}]},
                }
            )
    return docs


def ip6(ip: str) -> str:
    """The pod's IPv6 address (dual stack): 10.60.0.2 -> ``fd00:10:60::2``."""
    a, b, c, d = ip.split(".")
    return str(ipaddress.ip_address(f"fd00:{a}:{b}::{c}:{d}"))  # compressed, as the kernel reports it


def write_yaml(path: Path, docs: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def harness_endpoints() -> list[HarnessEndpoint]:
    return [
        HarnessEndpoint(f"{ns}/{name}", ip, [(p, port) for _, p, port in PORTS], ip6=ip6(ip))
        for ns, pods in PODS.items()
        for name, (ip, _) in pods.items()
    ]


def all_pairs() -> list[tuple[str, str]]:
    keys = [f"{ns}/{name}" for ns, pods in PODS.items() for name in pods]
    return [(a, b) for a in keys for b in keys if a != b]


def knp(name: str, ns: str, spec: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


# db pods accept only web/front on TCP; everything else is open
ONLY_FRONT = knp(
    "only-front",
    "db",
    {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "front"}}}]}],
    },
)
DENY_ALL_WEB = knp("deny-all", "web", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []})
