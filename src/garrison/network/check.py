"""``policy check``: load problems plus static analysis of the policy set.

Findings (each a :class:`~garrison.network.ir.Problem`):

* everything the loader reported (bad selectors with position, bad CIDRs, unknown fields,
  conflicting orders, overlapping tiers, unknown tiers);
* **shadowed rules** (error): a rule that can never be reached because an earlier terminal rule of
  the same policy and direction matches a superset of its traffic, or because an earlier policy of
  the same tier applies to the same endpoints and has a match-everything terminal rule. The
  superset test is structural and conservative: it reports only rules that are certainly
  unreachable (same or broader protocol / ICMP / ports / nets / selectors), never a rule that
  might still match;
* **named ports that no endpoint defines** (warning, when an inventory is given): the rule can
  never match on this inventory.
"""

from __future__ import annotations

from garrison.model.network import Action
from garrison.network.inventory import Inventory
from garrison.network.ir import EntityMatch, Policy, PolicySet, Problem, Rule
from garrison.network.selector import parse

_TERMINAL = (Action.ALLOW, Action.DENY, Action.PASS)


def _canon(sel: str | None) -> str | None:
    if sel is None:
        return None
    c = parse(sel).canonical
    return None if c in ("all()", "global()") else c


def _side_covers(a: EntityMatch, b: EntityMatch) -> bool:
    if a.has_endpoint_constraint() and not b.has_endpoint_constraint():
        return False  # ``b`` also matches addresses outside every endpoint (and other namespaces)
    if a.has_endpoint_constraint() and a.namespace_selector is None and b.namespace_selector is not None:
        return False  # ``a`` is confined to the policy's namespace, ``b`` reaches other namespaces
    if _canon(a.selector) is not None and _canon(a.selector) != _canon(b.selector):
        return False
    if a.namespace_selector is not None and (b.namespace_selector is None
                                             or _canon(a.namespace_selector) != _canon(b.namespace_selector)):
        return False
    if a.not_selector is not None and _canon(a.not_selector) != _canon(b.not_selector):
        return False
    if a.service_account_names and (not b.service_account_names
                                    or not set(b.service_account_names) <= set(a.service_account_names)):
        return False
    if a.service_account_selector is not None and _canon(a.service_account_selector) != _canon(
            b.service_account_selector):
        return False
    if a.nets and (not b.nets or not all(any(n.version == m.version and n.subnet_of(m)  # type: ignore[arg-type]
                                             for m in a.nets) for n in b.nets)):
        return False
    if a.not_nets and not set(a.not_nets) <= set(b.not_nets):
        return False
    if a.ports and (not b.ports or not all(any(p.covers(q) for p in a.ports) for q in b.ports)):
        return False
    if a.not_ports and not set(a.not_ports) <= set(b.not_ports):
        return False
    return not (a.domains and (not b.domains or not set(b.domains) <= set(a.domains)))


def covers(a: Rule, b: Rule) -> bool:
    """True when every packet rule ``b`` matches is matched by rule ``a`` (structurally)."""
    if a.protocol is not None and a.protocol != b.protocol:
        return False
    if a.not_protocol is not None and not (
            (b.protocol is not None and b.protocol != a.not_protocol) or b.not_protocol == a.not_protocol):
        return False
    if a.ip_version is not None and a.ip_version != b.ip_version:
        return False
    if a.icmp is not None and (b.icmp is None or a.icmp.type not in (None, b.icmp.type)
                               or a.icmp.code not in (None, b.icmp.code)):
        return False
    if a.not_icmp is not None and a.not_icmp != b.not_icmp:
        return False
    return _side_covers(a.source, b.source) and _side_covers(a.destination, b.destination)


def _match_all(rule: Rule) -> bool:
    return (rule.action in _TERMINAL and rule.protocol is None and rule.not_protocol is None and rule.icmp is None
            and rule.not_icmp is None and rule.ip_version is None and rule.source.is_empty()
            and rule.destination.is_empty())


def shadowed_rules(pset: PolicySet) -> list[Problem]:
    out: list[Problem] = []
    for pol in pset.policies:
        for direction in ("ingress", "egress"):
            rules = pol.rules(direction)
            for j, later in enumerate(rules):
                for i in range(j):
                    earlier = rules[i]
                    if earlier.action in _TERMINAL and covers(earlier, later):
                        out.append(Problem("error", f"{pol.source}: spec.{direction}[{j}]",
                                           f"rule is unreachable: shadowed by {direction} rule {i} "
                                           f"({earlier.action.value}) of the same policy"))
                        break
    for tier in pset.ordered_tiers():
        pols = [p for p in pset.ordered_policies(tier.name) if not p.staged]
        for direction, word in (("ingress", "Ingress"), ("egress", "Egress")):
            blocker: Policy | None = None
            for pol in pols:
                if word not in pol.types:
                    continue
                if blocker is not None and _applies_within(blocker, pol) and pol.rules(direction):
                    out.append(Problem("error", f"{pol.source}: spec.{direction}",
                                       f"rules are unreachable: policy {blocker.key!r} earlier in tier {tier.name!r} "
                                       f"matches all {direction} traffic of the same endpoints"))
                    continue
                if blocker is None and any(_match_all(r) for r in pol.rules(direction)):
                    blocker = pol
    return out


def _applies_within(a: Policy, b: Policy) -> bool:
    """Does policy ``a`` apply to every endpoint policy ``b`` applies to?"""
    if parse(a.applies_selector()).canonical == parse(b.applies_selector()).canonical:
        return True
    broad = parse(a.selector).canonical in ("all()", "global()") and not a.namespace_selector \
        and not a.service_account_selector
    return broad and (not a.namespace or a.namespace == b.namespace)


def missing_named_ports(pset: PolicySet, inventory: Inventory) -> list[Problem]:
    names = {p.name for e in inventory.endpoints for p in e.ports if p.name}
    out: list[Problem] = []
    for pol in pset.policies:
        for direction in ("ingress", "egress"):
            for i, rule in enumerate(pol.rules(direction)):
                for side_name, side in (("source", rule.source), ("destination", rule.destination)):
                    out.extend(Problem("warning", f"{pol.source}: spec.{direction}[{i}].{side_name}.ports",
                                       f"named port {port.name!r} is not defined by any endpoint")
                               for port in side.ports if port.name and port.name not in names)
    return out


def check(pset: PolicySet, inventory: Inventory | None = None) -> list[Problem]:
    """All problems: loader findings, shadowed rules and (with an inventory) undefined named ports."""
    problems = list(pset.problems) + shadowed_rules(pset)
    if inventory is not None:
        problems += missing_named_ports(pset, inventory)
    return problems
