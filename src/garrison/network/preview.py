"""Staged-policy preview: replay recorded flows through the current and the staged policy set.

The Calico Cloud workflow: stage policies (``Staged*`` kinds), look at what they would do to real
traffic, then promote them. Here the evaluator already computes both traces for every flow (the
enforced one, and the pending one in which staged policies replace their enforced namesakes, add
to them, or delete them with ``stagedAction: Delete``); this module feeds it the recorded flows
and reports where the two verdicts differ:

* flows are keyed by ``(source, destination, protocol, destination port)`` after matching both
  ends to the inventory (:class:`~garrison.network.flows.Resolver`), so the two reports Calico
  writes for one connection (``reporter`` src and dst) and repeated connections count once per
  key; ``flows`` counts connections (the larger of the two reporters' ``num_flows`` sums);
* the "current" verdict is recomputed from ``--policies``, not taken from the record (records can
  be older than the policies); records whose recorded action disagrees are counted as ``drift``;
* every changed flow is attributed to the decisive hit of the pending trace (the last hit: the
  rule, or the end-of-tier default, that decided) and, for the report, grouped per policy and rule
  with counts and a few examples.

A ``--staged`` path may hold ordinary policies: they are rewritten into their staged kinds before
loading (NetworkPolicy -> StagedNetworkPolicy, GlobalNetworkPolicy -> StagedGlobalNetworkPolicy,
networking.k8s.io NetworkPolicy -> StagedKubernetesNetworkPolicy), so "what if I applied this
directory" is one command.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError
from garrison.model.network import PolicyHit, Verdict
from garrison.network.evaluator import Evaluator
from garrison.network.flows import FlowRecord, Peer, Resolver
from garrison.network.ir import PolicySet
from garrison.network.loader import CALICO, K8S_NP, iter_documents, load_objects

logger = logging.getLogger(__name__)

EXAMPLES = 5
_STAGE = {(CALICO, "NetworkPolicy"): "StagedNetworkPolicy",
          (CALICO, "GlobalNetworkPolicy"): "StagedGlobalNetworkPolicy",
          (K8S_NP, "NetworkPolicy"): "StagedKubernetesNetworkPolicy"}

Doc = tuple[str, int, Mapping[str, Any]]


def as_staged(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """An ordinary policy document rewritten to its staged kind (other documents unchanged)."""
    kind = _STAGE.get((str(obj.get("apiVersion", "")), str(obj.get("kind", ""))))
    if kind is None:
        return obj
    out = dict(obj)
    out["apiVersion"] = CALICO
    out["kind"] = kind
    return out


def load_preview_set(policies: Path | None, staged: Path | None, *, strict: bool = True) -> PolicySet:
    """The current policies plus the staged ones (ordinary policies under ``staged`` become staged)."""
    if policies is None and staged is None:
        raise InputError("nothing to preview: give --policies and/or --staged")
    docs: list[Doc] = list(iter_documents(policies)) if policies is not None else []
    tiers = {str((o.get("metadata") or {}).get("name")) for _, _, o in docs if o.get("kind") == "Tier"}
    if staged is not None:
        for source, index, obj in iter_documents(staged):
            if obj.get("kind") == "Tier" and str((obj.get("metadata") or {}).get("name")) in tiers:
                continue  # the same tier shipped with both sets
            docs.append((source, index, as_staged(obj)))
    pset = load_objects(docs, strict=strict)
    for w in pset.warnings:
        logger.warning("%s", w)
    return pset


@dataclass(slots=True)
class ChangedFlow:
    src: str
    dst: str
    proto: str
    port: int | None
    flows: int
    before: str
    after: str
    enforced_hit: str
    pending_hit: str

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "proto": self.proto, "port": self.port, "flows": self.flows,
                "before": self.before, "after": self.after, "enforced_hit": self.enforced_hit,
                "pending_hit": self.pending_hit}


@dataclass(slots=True)
class PolicyChange:
    """Changed flows attributed to one rule (or end-of-tier default) of the pending trace."""

    tier: str
    policy: str
    rule: int
    action: str
    reporter: str
    change: str  # "allow->deny" | "deny->allow"
    keys: int = 0
    flows: int = 0
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "policy": self.policy, "rule": self.rule, "action": self.action,
                "reporter": self.reporter, "change": self.change, "distinct_flows": self.keys, "flows": self.flows,
                "examples": list(self.examples)}


@dataclass(slots=True)
class PreviewResult:
    records: int = 0
    distinct: int = 0
    flows: int = 0
    unchanged: int = 0
    newly_denied: int = 0
    newly_allowed: int = 0
    drift: int = 0
    unresolved: int = 0
    changed: list[ChangedFlow] = field(default_factory=list)
    by_policy: list[PolicyChange] = field(default_factory=list)
    unknown: dict[str, int] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """True when a currently allowed flow would be denied (the CI gate)."""
        return self.newly_denied > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": {"records": self.records, "distinct_flows": self.distinct, "flows": self.flows,
                        "unchanged": self.unchanged, "allowed_to_denied": self.newly_denied,
                        "denied_to_allowed": self.newly_allowed, "drift": self.drift,
                        "unresolved_records": self.unresolved, "unknown_endpoints": len(self.unknown)},
            "by_policy": [c.to_dict() for c in self.by_policy],
            "changed": [c.to_dict() for c in self.changed],
            "unknown_endpoints": dict(sorted(self.unknown.items())),
        }


@dataclass(slots=True)
class _Key:
    src: Peer
    dst: Peer
    proto: str
    port: int | None
    by_reporter: dict[str, int] = field(default_factory=dict)
    recorded: set[str] = field(default_factory=set)


def collect(records: Iterable[FlowRecord], resolver: Resolver, result: PreviewResult
            ) -> dict[tuple[str, str, str, int | None], _Key]:
    """Group records into distinct flows; unknown endpoints are counted in ``result.unknown``."""
    keys: dict[tuple[str, str, str, int | None], _Key] = {}
    resolve = resolver.resolve
    for rec in records:
        result.records += 1
        src = resolve(rec, "source")
        dst = resolve(rec, "dest")
        if src is None or dst is None:
            result.unresolved += 1
            continue
        for peer in (src, dst):
            if not peer.known:
                result.unknown[peer.display] = result.unknown.get(peer.display, 0) + 1
        k = (src.display, dst.display, rec.proto, rec.dest_port)
        entry = keys.get(k)
        if entry is None:
            entry = keys[k] = _Key(src, dst, rec.proto, rec.dest_port)
        entry.by_reporter[rec.reporter] = entry.by_reporter.get(rec.reporter, 0) + rec.num_flows
        entry.recorded.add(rec.action)
    return keys


def _decisive(hits: list[PolicyHit]) -> PolicyHit | None:
    return hits[-1] if hits else None


def _hit_text(hit: PolicyHit | None) -> str:
    return "" if hit is None else f"{hit.reporter}:{hit}"


def preview(ev: Evaluator, records: Iterable[FlowRecord], *, examples: int = EXAMPLES) -> PreviewResult:
    """Evaluate every distinct recorded flow enforced and pending; report what would change."""
    result = PreviewResult()
    keys = collect(records, Resolver(ev.endpoints), result)
    result.distinct = len(keys)
    groups: dict[tuple[str, str, int, str, str, str], PolicyChange] = {}
    evaluate = ev.evaluate
    for entry in keys.values():
        count = max(entry.by_reporter.values())
        result.flows += count
        verdict: Verdict = evaluate(entry.src.evaluator_ref, entry.dst.evaluator_ref, entry.proto, entry.port)
        before = verdict.action.value
        after = (verdict.pending_action or verdict.action).value
        if before not in entry.recorded:
            result.drift += 1
        if before == after:
            result.unchanged += 1
            continue
        change = f"{before}->{after}"
        if after == "deny":
            result.newly_denied += 1
        else:
            result.newly_allowed += 1
        p_hit, e_hit = _decisive(verdict.pending), _decisive(verdict.hits)
        flow = ChangedFlow(entry.src.display, entry.dst.display, entry.proto, entry.port, count, before, after,
                           _hit_text(e_hit), _hit_text(p_hit))
        result.changed.append(flow)
        if p_hit is None:  # pragma: no cover - a pending trace always ends in a hit
            continue
        gk = (p_hit.tier, p_hit.name, p_hit.rule, p_hit.action.value, p_hit.reporter, change)
        group = groups.get(gk)
        if group is None:
            group = groups[gk] = PolicyChange(p_hit.tier, p_hit.name, p_hit.rule, p_hit.action.value,
                                              p_hit.reporter, change)
        group.keys += 1
        group.flows += count
        if len(group.examples) < examples:
            port = "" if entry.port is None else f"/{entry.port}"
            group.examples.append(f"{entry.src.display} -> {entry.dst.display} {entry.proto.upper()}{port}")
    result.changed.sort(key=lambda c: (c.after, c.src, c.dst, c.proto, c.port or 0))
    result.by_policy = sorted(groups.values(), key=lambda g: (g.change != "allow->deny", -g.flows, g.policy, g.rule))
    return result
