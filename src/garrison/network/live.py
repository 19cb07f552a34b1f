"""Policies and endpoints read from a live cluster.

The Kubernetes API client of the posture engine (:mod:`garrison.posture.k8s.cluster`: kubeconfig
resolution, discovery, paging, retries, 403 handling) lists what the network engine needs —
Namespaces, Pods (every pod, owned or not: each is an endpoint), ServiceAccounts, Kubernetes
NetworkPolicies, the network-policy-api kinds and Calico's ``projectcalico.org/v3`` resources
when the server serves them (through the Calico API server) — and the documents go through the
same loaders as YAML files, so a snapshot written to disk evaluates exactly as the live read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.posture.k8s.cluster import ResourceKind, scan_cluster

CALICO = "projectcalico.org/v3"

NETWORK_KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("Namespace", "namespaces", False, ("v1",)),
    ResourceKind("Pod", "pods", True, ("v1",)),
    ResourceKind("ServiceAccount", "serviceaccounts", True, ("v1",)),
    ResourceKind("NetworkPolicy", "networkpolicies", True, ("networking.k8s.io/v1",)),
    ResourceKind("AdminNetworkPolicy", "adminnetworkpolicies", False, ("policy.networking.k8s.io/v1alpha1",)),
    ResourceKind(
        "BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies", False, ("policy.networking.k8s.io/v1alpha1",)
    ),
    ResourceKind("ClusterNetworkPolicy", "clusternetworkpolicies", False, ("policy.networking.k8s.io/v1alpha2",)),
    ResourceKind("Tier", "tiers", False, (CALICO,)),
    ResourceKind("NetworkPolicy", "networkpolicies", True, (CALICO,)),
    ResourceKind("GlobalNetworkPolicy", "globalnetworkpolicies", False, (CALICO,)),
    ResourceKind("StagedNetworkPolicy", "stagednetworkpolicies", True, (CALICO,)),
    ResourceKind("StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies", False, (CALICO,)),
    ResourceKind("StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies", True, (CALICO,)),
    ResourceKind("NetworkSet", "networksets", True, (CALICO,)),
    ResourceKind("GlobalNetworkSet", "globalnetworksets", False, (CALICO,)),
    ResourceKind("HostEndpoint", "hostendpoints", False, (CALICO,)),
)

INVENTORY = frozenset({"Namespace", "Pod", "ServiceAccount"})


@dataclass(slots=True)
class LiveSnapshot:
    context: str
    policies: list[dict[str, Any]] = field(default_factory=list)
    inventory: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def documents(self) -> list[tuple[str, int, Mapping[str, Any]]]:
        """Every document as the loaders take them: ``(source, index, document)``."""
        docs = [*self.policies, *self.inventory]
        return [(f"cluster:{self.context}", i, doc) for i, doc in enumerate(docs)]


def read_cluster(
    kubeconfig: str | Path | None = None,
    context: str | None = None,
    *,
    namespaces: Iterable[str] = (),
    timeout: float = 30.0,
    environ: dict[str, str] | None = None,
) -> LiveSnapshot:
    """List the network engine's kinds from the cluster ``kubeconfig``/``context`` points at."""
    snap = scan_cluster(
        kubeconfig, context, namespaces=namespaces, timeout=timeout, environ=environ, kinds=NETWORK_KINDS,
        skip_owned=False,
    )  # fmt: skip
    live = LiveSnapshot(context=snap.context, notes=list(snap.notes), warnings=list(snap.warnings))
    for obj in snap.objects:
        if obj.kind == "Node":
            continue
        doc = _clean(obj.doc)
        (live.inventory if obj.kind in INVENTORY else live.policies).append(doc)
        live.counts[obj.kind] = live.counts.get(obj.kind, 0) + 1
    return live


def _clean(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document without server bookkeeping that only adds noise to a snapshot file."""
    out = dict(doc)
    meta = dict(out.get("metadata") or {})
    for key in ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"):
        meta.pop(key, None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out
