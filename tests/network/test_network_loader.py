"""Policy loaders and ``check``: every supported kind, defaults, and clear problems for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.network._netfixtures import inventory, objects, pset_of

from garrison.core.errors import InputError
from garrison.model.network import Action
from garrison.network.check import check, shadowed_rules
from garrison.network.inventory import load_inventory
from garrison.network.loader import load_objects, load_policies

ASSETS = Path(__file__).parent / "assets"


def problems(text: str) -> list[str]:
    return [str(p) for p in pset_of(text, strict=False).problems]


def test_k8s_policy_conversion_matches_calico() -> None:
    pset = pset_of("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.9.0.0/16]}}]
    ports: [{port: 80}, {protocol: UDP, port: 1000, endPort: 2000}, {protocol: SCTP, port: named}]
  egress: [{}]
""")
    (pol,) = pset.policies
    assert (pol.name, pol.namespace, pol.tier, pol.order) == ("knp.default.np", "shop", "default", 1000.0)
    assert pol.types == ("Ingress", "Egress")  # egress present => Egress defaulted in
    assert len(pol.ingress) == 6  # 3 ports x 2 peers, one Allow rule each (as Calico converts)
    assert {r.protocol for r in pol.ingress} == {6, 17, 132}
    assert all(r.action is Action.ALLOW for r in pol.ingress)
    assert str(pol.ingress[1].source.not_nets[0]) == "10.9.0.0/16"
    assert [str(p) for p in pol.ingress[4].destination.ports] == ["named"]
    assert pol.egress[0].destination.is_empty()


def test_policy_types_default_to_ingress_only_without_egress() -> None:
    pset = pset_of("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: shop}
spec: {podSelector: {}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: eg, namespace: shop}
spec: {selector: all(), egress: [{action: Allow}]}
""")
    assert [p.types for p in pset.policies] == [("Ingress",), ("Egress",)]


def test_calico_kinds_and_tier_objects() -> None:
    pset = pset_of("""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 200, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: dbs, namespace: shop, labels: {kind: db}}
spec: {nets: [10.5.0.0/16], allowedEgressDomains: ["*.example.com"]}
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: platform.p}
spec: {tier: platform, order: 1, selector: all(), stagedAction: Delete}
""")
    assert pset.tiers["platform"].default_action is Action.PASS
    assert pset.network_sets[0].domains == ("*.example.com",)
    assert pset.policies[0].staged and pset.policies[0].staged_action == "Delete"
    assert not pset.problems


@pytest.mark.parametrize(("text", "needle"), [
    pytest.param("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {selector: 'app == "web" &&'}
""", "spec.selector: invalid selector 'app == \"web\" &&' at character 15", id="bad-selector"),
    pytest.param("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {selector: all(), ingress: [{action: Allow, source: {nets: [10.0.0.300/8]}}]}
""", "spec.ingress[0].source.nets: bad CIDR '10.0.0.300/8'", id="bad-cidr"),
    pytest.param("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {selector: all(), ingress: [{action: Allow, destination: {ports: [80]}}]}
""", "ports require protocol", id="ports-without-protocol"),
    pytest.param("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {selector: all(), ingress: [{action: Accept}]}
""", "must be Allow, Deny, Log or Pass", id="bad-action"),
    pytest.param("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {tier: missing, selector: all()}
""", "tier 'missing' does not exist", id="unknown-tier"),
    pytest.param("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 10}]}]}
""", "endPort 10 is below port 80", id="bad-endport"),
    pytest.param("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [11.0.0.0/24]}}]}]}
""", "11.0.0.0/24 is not inside 10.0.0.0/16", id="except-outside"),
    pytest.param("""
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: c}
spec: {tier: Middle, priority: 1, subject: {namespaces: {}}}
""", "spec.tier: must be Admin or Baseline", id="cnp-tier"),
    pytest.param("""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: default}
spec: {order: 5}
""", "default tier's order cannot be changed", id="default-tier-order"),
])
def test_bad_input_is_reported_with_path(text: str, needle: str) -> None:
    found = problems(text)
    assert any(needle in p and p.startswith("error: test.yaml#0") for p in found), found
    with pytest.raises(InputError):
        pset_of(text, strict=True)


def test_unknown_fields_are_warnings_with_path() -> None:
    found = problems("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {selector: all(), ingress: [{action: Allow, source: {selectr: all()}}], colour: blue}
""")
    assert "warning: test.yaml#0 NetworkPolicy shop/p: spec.colour: unknown field (ignored)" in found
    assert any("spec.ingress[0].source.selectr: unknown field" in p for p in found)


def test_overlapping_tiers_and_duplicate_policies() -> None:
    found = problems("""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: a}
spec: {order: 10}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: b}
spec: {order: 10}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: x}
spec: {selector: all()}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default.x}
spec: {selector: all()}
""")
    assert any("tiers a, b overlap at order 10" in p for p in found)
    assert any("policy 'default.x' also defined" in p for p in found)


def test_shadowed_rules_are_reported() -> None:
    pset = pset_of("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  selector: all()
  ingress:
  - {action: Allow, protocol: TCP, destination: {ports: ["1:1024"]}}
  - {action: Deny, protocol: TCP, destination: {ports: [80, 443]}}
  - {action: Deny, protocol: UDP, destination: {ports: [53]}}
  - {action: Allow, source: {nets: [10.0.0.0/8]}}
  - {action: Deny, source: {nets: [10.1.0.0/16]}, protocol: UDP}
""")
    found = [str(p) for p in shadowed_rules(pset)]
    assert len(found) == 2
    assert "spec.ingress[1]" in found[0] and "shadowed by ingress rule 0 (allow)" in found[0]
    assert "spec.ingress[4]" in found[1] and "shadowed by ingress rule 3" in found[1]


def test_rules_reaching_further_are_not_shadowed() -> None:
    pset = pset_of("""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  selector: all()
  ingress:
  - {action: Deny, source: {selector: app == "web"}}
  - {action: Deny, source: {selector: app == "web", namespaceSelector: all()}}
  - {action: Allow, source: {selector: all()}}
  - {action: Allow}
  - {action: Allow, protocol: TCP}
""")
    found = [str(p) for p in shadowed_rules(pset)]
    assert len(found) == 1 and "spec.ingress[4]" in found[0] and "ingress rule 3" in found[0]


def test_shadowing_across_policies_of_a_tier() -> None:
    found = [str(p) for p in shadowed_rules(pset_of("""
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: first}
spec: {order: 1, selector: all(), ingress: [{action: Deny}]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: second}
spec: {order: 2, selector: app == "db", ingress: [{action: Allow}]}
"""))]
    assert len(found) == 1 and "policy 'default.first' earlier in tier 'default'" in found[0]


def test_missing_named_ports_need_an_inventory() -> None:
    pset = pset_of("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec: {podSelector: {}, ingress: [{ports: [{port: nosuch}, {port: grpc}]}]}
""")
    found = [str(p) for p in check(pset, inventory())]
    assert len(found) == 1 and "named port 'nosuch' is not defined by any endpoint" in found[0]


def test_inventory_labels_are_calicos() -> None:
    inv = load_inventory(ASSETS / "inventory.yaml")
    by = inv.by_key()
    api = by["shop/api"].labels
    assert api["projectcalico.org/namespace"] == "shop"
    assert api["projectcalico.org/orchestrator"] == "k8s"
    assert api["projectcalico.org/serviceaccount"] == "api"
    assert api["pcns.team"] == "web" and api["pcns.kubernetes.io/metadata.name"] == "shop"
    assert api["pcns.projectcalico.org/name"] == "shop"
    assert api["pcsa.tier"] == "backend" and api["pcsa.projectcalico.org/name"] == "api"
    assert by["shop/db"].ips == ("10.128.0.1",)  # Deployment: one endpoint, synthetic IP
    assert [(p.name, p.protocol, p.port) for p in by["shop/api"].ports] == [("grpc", "TCP", 9090),
                                                                            ("dns", "UDP", 53)]
    assert inv.ports() == [("TCP", 5432), ("TCP", 8080), ("TCP", 9090), ("UDP", 53)]


def test_inventory_bad_ip_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nstatus: {podIP: 10.0.0.999}\n")
    with pytest.raises(InputError, match=r"bad IP address '10\.0\.0\.999'"):
        load_inventory(f)


def test_directory_loading_and_yaml_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text((ASSETS / "policies.yaml").read_text())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text("kind: List\napiVersion: v1\nitems: []\n")
    assert len(load_policies(tmp_path).policies) == 6
    (tmp_path / "c.yaml").write_text("a: [\n")
    with pytest.raises(InputError, match=r"c.yaml: not valid YAML at line 2"):
        load_policies(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        load_policies(tmp_path / "missing")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                     max_leaves=12)
_keys = st.sampled_from(["selector", "ingress", "egress", "types", "order", "tier", "podSelector", "policyTypes",
                         "action", "source", "destination", "ports", "nets", "from", "to", "ipBlock", "protocol"])
_specs = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(_keys, inner, max_size=4)), max_leaves=15)


@given(st.sampled_from([("projectcalico.org/v3", "NetworkPolicy"), ("projectcalico.org/v3", "GlobalNetworkPolicy"),
                        ("networking.k8s.io/v1", "NetworkPolicy"), ("projectcalico.org/v3", "Tier"),
                        ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
                        ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy")]),
       _specs, _json)
def test_loader_never_crashes(kind: tuple[str, str], spec: object, meta: object) -> None:
    obj = {"apiVersion": kind[0], "kind": kind[1], "metadata": {"name": "p", "namespace": "n"}, "spec": spec}
    pset = load_objects([("fuzz.yaml", 0, obj), ("fuzz.yaml", 1, {"kind": "Pod", "metadata": meta})])
    for p in pset.problems:
        assert "\n" not in str(p) and str(p).startswith(("error: fuzz.yaml#", "warning: fuzz.yaml#", "warning: tier"))
    assert objects("") == []
