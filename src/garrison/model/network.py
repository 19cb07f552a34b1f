"""Network vocabulary: endpoints, policy hits, verdicts and flow-log records.

* :class:`Endpoint` is anything traffic starts or ends at: a pod (Calico "workload endpoint"), a
  host endpoint, or an address outside the inventory. ``labels`` are the labels selectors see,
  including the special labels Calico adds (``projectcalico.org/namespace``, ``.../orchestrator``,
  ``.../serviceaccount``, ``pcns.*`` copied from the namespace, ``pcsa.*`` from the service account).
* :class:`PolicyHit` is one entry of a Calico flow log's ``policies`` list; ``str(hit)`` is the
  flow-log string ``<index>|<tier>|<name>|<action>|<rule>`` (``rule`` is ``-1`` for the tier's
  end-of-tier default action).
* :class:`Verdict` is what the evaluator answers for one flow: the enforced action plus enforced
  and pending (staged) hits, each tagged with the reporter (``src`` = egress, ``dst`` = ingress).
* :class:`FlowLog` has the fields of a Calico flow log record (JSON lines on disk).

Plain slotted dataclasses, like the rest of the model: the evaluator creates one Verdict per flow
and attribute access on slotted objects is the cheapest Python has.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Action(enum.StrEnum):
    """Rule actions. ``LOG`` is not terminal; ``PASS`` skips to the next tier."""

    ALLOW = "allow"
    DENY = "deny"
    LOG = "log"
    PASS = "pass"  # noqa: S105 - an action name, not a secret

    @classmethod
    def parse(cls, value: str) -> Action:
        word = value.strip().lower()
        word = {"accept": "allow", "drop": "deny"}.get(word, word)
        return cls(word)


class EndpointKind(enum.StrEnum):
    POD = "pod"
    HOST = "hep"
    NETWORK_SET = "ns"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class NamedPort:
    """A named container (or host endpoint) port: ``protocol`` is upper-case (TCP/UDP/SCTP)."""

    name: str
    protocol: str
    port: int


@dataclass(slots=True)
class Endpoint:
    """A workload, host endpoint or external address that a flow starts or ends at."""

    name: str
    namespace: str = ""
    kind: EndpointKind = EndpointKind.POD
    labels: dict[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    ports: tuple[NamedPort, ...] = ()
    service_account: str = ""
    node: str = ""
    domains: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    interface: str = ""  # host endpoints: Calico HostEndpoint spec.interfaceName ("*": all interfaces)

    @property
    def key(self) -> str:
        """``ns/name`` for namespaced endpoints, ``name`` otherwise (the matrix key)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def ip(self) -> str:
        return self.ips[0] if self.ips else ""


@dataclass(slots=True)
class PolicyHit:
    """One policy decision on a flow's path, in Calico flow-log terms."""

    index: int
    tier: str
    name: str  # flow-log name: ns/tier.policy, tier.policy, ns/knp.default.x, __PROFILE__.kns.ns ...
    action: Action
    rule: int  # rule index in the policy's ingress/egress list; -1 = end-of-tier default
    reporter: str = "dst"  # "src" (egress at source) or "dst" (ingress at destination)
    staged: bool = False

    def __str__(self) -> str:
        return f"{self.index}|{self.tier}|{self.name}|{self.action.value}|{self.rule}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["action"] = self.action.value
        out["policy"] = str(self)
        return out


@dataclass(slots=True)
class Verdict:
    """The evaluator's answer for one flow."""

    action: Action
    hits: list[PolicyHit] = field(default_factory=list)
    pending: list[PolicyHit] = field(default_factory=list)
    pending_action: Action | None = None

    @property
    def allowed(self) -> bool:
        return self.action is Action.ALLOW

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.action.value,
            "hits": [h.to_dict() for h in self.hits],
            "pending": [h.to_dict() for h in self.pending],
            "pending_verdict": (self.pending_action or self.action).value,
            "policies": {
                "enforced_policies": [str(h) for h in self.hits],
                "pending_policies": [str(h) for h in self.pending],
            },
        }


@dataclass(slots=True)
class FlowLog:
    """A flow-log record with the fields of Calico's flow logs (one JSON object per line)."""

    start_time: int
    end_time: int
    source_name: str
    source_namespace: str
    source_ip: str
    dest_name: str
    dest_namespace: str
    dest_ip: str
    dest_port: int | None
    proto: str
    action: str  # allow | deny
    reporter: str  # src | dst
    source_port: int | None = None
    source_type: str = "wep"
    dest_type: str = "wep"
    source_labels: dict[str, str] = field(default_factory=dict)
    dest_labels: dict[str, str] = field(default_factory=dict)
    dest_domains: list[str] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    packets_out: int = 0
    num_flows: int = 1
    enforced_policies: list[str] = field(default_factory=list)
    pending_policies: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["policies"] = {"enforced_policies": out.pop("enforced_policies"),
                           "pending_policies": out.pop("pending_policies")}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowLog:
        data = dict(data)
        policies = data.pop("policies", None) or {}
        known = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("enforced_policies", list(policies.get("enforced_policies", [])))
        kwargs.setdefault("pending_policies", list(policies.get("pending_policies", [])))
        return cls(**kwargs)
