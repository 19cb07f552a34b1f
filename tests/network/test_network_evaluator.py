"""Evaluator semantics: Calico's evaluation order, actions, matches and flow-log hit strings."""

from __future__ import annotations

import pytest
from tests.network._netfixtures import evaluator, inventory, pset_of

from garrison.core.errors import InputError
from garrison.model.network import Action, Verdict
from garrison.network.evaluator import Evaluator, resolve_selectors

TIER = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
"""


def strs(v: Verdict) -> list[str]:
    return [str(h) for h in v.hits]


def test_no_policy_means_namespace_profile_allows() -> None:
    v = evaluator("").evaluate("shop/web", "shop/api", "TCP", 9090)
    assert v.action is Action.ALLOW
    assert strs(v) == ["0|__PROFILE__|__PROFILE__.kns.shop|allow|0", "1|__PROFILE__|__PROFILE__.kns.shop|allow|0"]


def test_k8s_default_deny_end_of_tier_hit() -> None:
    ev = evaluator("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}}
""")
    v = ev.evaluate("ops/monitor", "shop/db", "TCP", 5432)
    assert v.action is Action.DENY
    assert strs(v)[-1] == "1|default|shop/knp.default.deny|deny|-1"
    # egress is not restricted: shop pods still reach ops
    assert ev.evaluate("shop/db", "ops/monitor", "TCP", 80).allowed


def test_tier_order_first_match_and_pass() -> None:
    ev = evaluator(TIER + """
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.b-pass-web}
spec:
  tier: security
  order: 10
  selector: app == "db"
  ingress: [{action: Pass, source: {selector: app == "web"}}, {action: Deny}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.a-deny-all}
spec:
  tier: security
  order: 20
  selector: app == "db"
  ingress: [{action: Deny}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  selector: app == "db"
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [pg]}}]
""")
    v = ev.evaluate("shop/web", "shop/db", "TCP", 5432)
    assert v.allowed
    assert strs(v)[1:] == ["1|security|security.b-pass-web|pass|0", "2|default|shop/default.allow-web|allow|0"]
    v2 = ev.evaluate("shop/api", "shop/db", "TCP", 5432)
    assert not v2.allowed and strs(v2)[-1] == "1|security|security.b-pass-web|deny|1"
    # a named port only matches the port number it names on the destination
    assert not ev.evaluate("shop/web", "shop/db", "TCP", 5433).allowed


def test_policies_with_equal_order_sort_by_name_and_warn() -> None:
    text = TIER + "".join(f"""
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: security.{name}}}
spec: {{tier: security, order: 5, selector: app == "db", ingress: [{{action: {action}}}]}}
""" for name, action in (("zz-allow", "Allow"), ("aa-deny", "Deny")))
    pset = pset_of(text)
    assert any("share order 5" in str(p) for p in pset.warnings)
    v = Evaluator(pset, inventory()).evaluate("shop/web", "shop/db", "TCP", 1)
    assert strs(v)[-1] == "1|security|security.aa-deny|deny|0"


def test_tier_default_action_pass() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 50, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: platform.only-ops}
spec: {tier: platform, selector: all(), ingress: [{action: Deny, source: {namespaceSelector: team == "ops"}}]}
""")
    v = ev.evaluate("shop/web", "shop/db", "TCP", 5432)
    assert v.allowed
    assert "1|platform|platform.only-ops|pass|-1" in strs(v)
    assert not ev.evaluate("ops/monitor", "shop/db", "TCP", 5432).allowed


def test_staged_policy_is_pending_only_and_staged_only_tier_is_skipped() -> None:
    ev = evaluator(TIER + """
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: security.lockdown}
spec: {tier: security, selector: app == "db", ingress: [{action: Deny, source: {selector: app == "web"}}]}
""")
    v = ev.evaluate("shop/web", "shop/db", "TCP", 5432)
    assert v.allowed and all(h.tier != "security" for h in v.hits)
    assert v.pending_action is Action.DENY
    assert [str(h) for h in v.pending][-1] == "1|security|security.staged:lockdown|deny|0"
    other = ev.evaluate("shop/api", "shop/db", "TCP", 5432)
    assert other.pending_action is Action.DENY
    assert str(other.pending[-1]) == "1|security|security.staged:lockdown|deny|-1"


def test_staged_kubernetes_policy_name() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
""")
    v = ev.evaluate("shop/web", "shop/db", "TCP", 5432)
    assert v.allowed
    assert str(v.pending[-1]) == "1|default|shop/staged:knp.default.deny|deny|-1"


def test_log_action_is_not_terminal() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: logged, namespace: shop}
spec: {selector: all(), ingress: [{action: Log}, {action: Allow, protocol: UDP}]}
""")
    assert ev.evaluate("shop/web", "shop/api", "UDP", 53).allowed
    assert not ev.evaluate("shop/web", "shop/api", "TCP", 53).allowed


def test_icmp_nets_not_nets_and_protocol_numbers() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: mixed, namespace: shop}
spec:
  selector: app == "web"
  types: [Ingress]
  ingress:
  - {action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}
  - {action: Allow, protocol: 6, source: {nets: [10.2.0.0/16], notNets: [10.2.0.5/32]}}
  - {action: Allow, protocol: TCP, notProtocol: UDP, source: {nets: [10.1.0.0/24]}, destination: {ports: ["8000:8100"]}}
""")
    assert ev.evaluate("ops/monitor", "shop/web", "ICMP", icmp_type=8, icmp_code=0).allowed
    assert not ev.evaluate("ops/monitor", "shop/web", "ICMP", icmp_type=0, icmp_code=0).allowed
    assert not ev.evaluate("ops/monitor", "shop/web", "TCP", 80).allowed  # notNets excludes it
    assert ev.evaluate("10.2.9.9", "shop/web", "TCP", 80).allowed  # an address outside the inventory
    assert ev.evaluate("shop/api", "shop/web", "TCP", 8080).allowed
    assert not ev.evaluate("shop/api", "shop/web", "TCP", 8101).allowed


def test_not_selector_service_accounts_and_namespace_selector() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db-access}
spec:
  selector: app == "db"
  ingress:
  - action: Allow
    source: {serviceAccounts: {names: [api]}, namespaceSelector: team == "web"}
  - action: Allow
    source: {namespaceSelector: all(), notSelector: 'app in {"web", "api"}', serviceAccounts: {selector: has(tier)}}
  - action: Allow
    source: {namespaceSelector: env == "prod", notSelector: app == "web"}
    protocol: UDP
""")
    assert ev.evaluate("shop/api", "shop/db", "TCP", 5432).allowed
    assert not ev.evaluate("shop/web", "shop/db", "TCP", 5432).allowed
    assert ev.evaluate("ops/monitor", "shop/db", "UDP", 5432).allowed
    assert not ev.evaluate("shop/web", "shop/db", "UDP", 5432).allowed


def test_egress_domains_exact_and_wildcard() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: egress-dns, namespace: shop}
spec:
  selector: app == "api"
  types: [Egress]
  egress:
  - {action: Allow, protocol: TCP, destination: {domains: [api.example.com, "*.svc.example.org"], ports: [443]}}
""")
    assert ev.evaluate("shop/api", "api.example.com", "TCP", 443).allowed
    assert ev.evaluate("shop/api", "db.svc.example.org", "TCP", 443).allowed
    assert not ev.evaluate("shop/api", "a.b.svc.example.org", "TCP", 443).allowed
    assert not ev.evaluate("shop/api", "evil.example.com", "TCP", 443).allowed
    assert not ev.evaluate("shop/api", "8.8.8.8", "TCP", 443).allowed


def test_network_sets_are_matched_by_selector() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {role: partner}}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: partners-in, namespace: shop}
spec:
  selector: app == "web"
  ingress: [{action: Allow, source: {selector: role == "partner", namespaceSelector: global()}}]
""")
    assert ev.evaluate("198.51.100.7", "shop/web", "TCP", 8080).allowed
    assert not ev.evaluate("203.0.113.1", "shop/web", "TCP", 8080).allowed


def test_admin_and_baseline_admin_network_policies() -> None:
    ev = evaluator("""
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: ops-rules}
spec:
  priority: 10
  subject: {namespaces: {matchLabels: {team: web}}}
  ingress:
  - {name: ops-ok, action: Allow, from: [{namespaces: {matchLabels: {team: ops}}}]}
  - {name: web-to-db-pass, action: Pass, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]}
  - {name: rest, action: Deny, from: [{namespaces: {}}], ports: [{portNumber: {protocol: TCP, port: 5432}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}]}]
""")
    v = ev.evaluate("ops/monitor", "shop/db", "TCP", 5432)
    assert v.allowed and str(v.hits[-1]) == "1|adminnetworkpolicy|kanp.adminnetworkpolicy.ops-rules|allow|0"
    assert not ev.evaluate("shop/api", "shop/db", "TCP", 5432).allowed
    v3 = ev.evaluate("shop/web", "shop/db", "TCP", 5432)
    assert not v3.allowed
    assert [h.tier for h in v3.hits[1:]] == ["adminnetworkpolicy", "baselineadminnetworkpolicy"]
    assert str(v3.hits[-1]) == "2|baselineadminnetworkpolicy|kbanp.baselineadminnetworkpolicy.default|deny|0"


def test_cluster_network_policy_v1alpha2() -> None:
    ev = evaluator("""
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard}
spec:
  tier: Admin
  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {team: web}}, podSelector: {matchLabels: {app: db}}}}
  ingress:
  - {action: Accept, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}],
     protocols: [{tcp: {destinationPort: {number: 5432}}}]}
  - {action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 1, end: 6000}}}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: floor}
spec:
  tier: Baseline
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{networks: [192.0.2.0/24]}]}]
""")
    v = ev.evaluate("shop/api", "shop/db", "TCP", 5432)
    assert v.allowed and str(v.hits[-1]).endswith("|kube-admin|kcnp.kube-admin.guard|allow|0")
    assert str(v.hits[0]) == "0|kube-baseline|kcnp.kube-baseline.floor|pass|-1"
    assert not ev.evaluate("shop/web", "shop/db", "TCP", 5432).allowed
    assert ev.evaluate("shop/web", "shop/db", "TCP", 7000).allowed
    denied = ev.evaluate("shop/web", "192.0.2.1", "TCP", 443)
    assert not denied.allowed and str(denied.hits[-1]) == "0|kube-baseline|kcnp.kube-baseline.floor|deny|0"


def test_host_endpoint_without_policy_is_denied_and_gnp_applies() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node1-eth0, labels: {role: node}}
spec: {node: node1, interfaceName: eth0, expectedIPs: [192.168.1.10]}
"""
    ev = evaluator(text)
    v = ev.evaluate("shop/web", "node1-eth0", "TCP", 22)
    assert not v.allowed and str(v.hits[-1]) == "1|__PROFILE__|__PROFILE__.__NO_MATCH__|deny|-1"
    ev2 = evaluator(text + """
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: ssh}
spec: {selector: role == "node", ingress: [{action: Allow, protocol: TCP, destination: {ports: [22]}}]}
""")
    assert ev2.evaluate("shop/web", "192.168.1.10", "TCP", 22).allowed
    assert not ev2.evaluate("shop/web", "192.168.1.10", "TCP", 23).allowed


def test_user_profile_rules_apply_after_tiers() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.shop}
spec: {ingress: [{action: Allow, protocol: TCP}], egress: [{action: Allow}]}
""")
    assert ev.evaluate("ops/monitor", "shop/web", "TCP", 1).allowed
    v = ev.evaluate("ops/monitor", "shop/web", "UDP", 1)
    assert not v.allowed and str(v.hits[-1]) == "1|__PROFILE__|__PROFILE__.__NO_MATCH__|deny|-1"


def test_unknown_endpoint_and_protocol_are_input_errors() -> None:
    ev = evaluator("")
    with pytest.raises(InputError, match="no endpoint 'shop/nope'"):
        ev.evaluate("shop/nope", "shop/web", "TCP", 80)
    with pytest.raises(InputError, match="unknown protocol"):
        ev.evaluate("shop/web", "shop/api", "QUIC", 80)


def test_resolve_selectors_for_the_dataplane() -> None:
    pset = pset_of("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}, {namespaceSelector: {matchLabels: {team: ops}}}]}]
""")
    sets = resolve_selectors(pset, inventory())
    members = sorted(tuple(v) for v in sets.values())
    assert ("shop/api",) in members and ("shop/web",) in members and ("ops/monitor",) in members
    assert all(k == k.strip() for k in sets)


def test_matrix_fast_path_agrees_with_explained_path() -> None:
    ev = evaluator("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: grpc}, {port: 53, protocol: UDP}]}]
  egress: [{to: [{ipBlock: {cidr: 10.1.0.0/16, except: [10.1.0.12/32]}}]}]
""")
    for s in ev.endpoints:
        for d in ev.endpoints:
            for proto, port in (("TCP", 9090), ("UDP", 53), ("TCP", 5432)):
                assert ev.evaluate(s.key, d.key, proto, port).allowed == ev.allowed(
                    ev.index[s.key], ev.index[d.key], {"TCP": 6, "UDP": 17}[proto], port)


def test_not_selector_alone_confines_a_namespaced_rule_to_its_namespace() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  selector: app == "db"
  ingress: [{action: Allow, source: {notSelector: app == "web"}}]
""")
    assert ev.evaluate("shop/api", "shop/db", "TCP", 5432).allowed
    assert not ev.evaluate("shop/web", "shop/db", "TCP", 5432).allowed
    assert not ev.evaluate("ops/monitor", "shop/db", "TCP", 5432).allowed  # other namespace
    assert not ev.evaluate("192.0.2.7", "shop/db", "TCP", 5432).allowed  # not an endpoint at all


def test_namespace_selector_all_means_namespaced_endpoints_only() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {role: partner}}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  selector: app == "db"
  ingress: [{action: Allow, source: {namespaceSelector: all()}}]
""")
    assert ev.evaluate("ops/monitor", "shop/db", "TCP", 5432).allowed
    assert not ev.evaluate("198.51.100.9", "shop/db", "TCP", 5432).allowed
    rule = ev.pset.policies[0].ingress[0]
    assert rule.source.effective_selector("shop") == "has(projectcalico.org/namespace)"


def test_selector_resolution_includes_network_set_nets() -> None:
    ev = evaluator("""
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: partners, namespace: shop, labels: {role: partner}}
spec: {nets: [198.51.100.0/24, 10.1.0.12/32]}
""")
    assert [str(n) for n in ev.resolve_selector_nets("role == 'partner'")] == ["198.51.100.0/24", "10.1.0.12/32"]
    # a pod whose IP is inside a matching network set is a member too (Calico's IP-set semantics)
    assert [e.key for e in ev.resolve_selector("role == 'partner'")] == ["shop/db"]
    assert ev.network_set_labels[0]["pcns.team"] == "web"


def test_named_port_must_match_the_protocol_it_is_declared_with() -> None:
    ev = evaluator("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{ports: [{port: dns}]}]
""")
    # "dns" is declared UDP/53 on shop/api, and a port without protocol is TCP: nothing matches
    assert not ev.evaluate("shop/web", "shop/api", "TCP", 53).allowed
    assert not ev.evaluate("shop/web", "shop/api", "UDP", 53).allowed
    ev2 = evaluator("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{ports: [{port: dns, protocol: UDP}]}]
""")
    assert ev2.evaluate("shop/web", "shop/api", "UDP", 53).allowed
    assert not ev2.evaluate("shop/web", "shop/api", "UDP", 54).allowed


def test_k8s_egress_peer_with_several_ports_keeps_each_port() -> None:
    # one peer, two ports of different protocols: each converted rule keeps its own port
    ev = evaluator("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {}}]
      ports: [{protocol: TCP, port: 443}, {protocol: UDP, port: 53}]
""")
    assert ev.evaluate("shop/web", "ops/monitor", "TCP", 443).action is Action.ALLOW
    assert ev.evaluate("shop/web", "ops/monitor", "UDP", 53).action is Action.ALLOW
    assert ev.evaluate("shop/web", "ops/monitor", "TCP", 53).action is Action.DENY
    assert ev.evaluate("shop/web", "ops/monitor", "UDP", 443).action is Action.DENY
