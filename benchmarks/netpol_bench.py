"""Policy evaluator benchmark: 1,000 policies (Calico tiers + Kubernetes NetworkPolicy), 5,000 endpoints.

Generates a deterministic world in memory (seeded PRNG): 50 namespaces, 5,000 pods with app /
role / version labels and named ports, three Calico tiers (security, platform with a Pass
default, the default tier), GlobalNetworkPolicies and NetworkPolicies with selectors, namespace
selectors, nets and port ranges, staged policies, and Kubernetes NetworkPolicies (default-deny,
pod-to-pod, namespace and ipBlock peers, named ports). It then measures, in this one process:

* load time (YAML-shaped objects -> IR, validation) and compile time (selector bitsets, programs);
* verdicts/s of ``Evaluator.evaluate`` (verdict + enforced and pending hits, the explained path)
  on 100,000 random flows and of ``Evaluator.allowed`` (verdict only, what matrices use) on
  200,000, per CPU second of this process and per wall-clock second;
* peak RSS (``resource.getrusage``).

    .venv/bin/python benchmarks/netpol_bench.py [--policies 1000] [--endpoints 5000] [--flows 200000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from garrison.network.evaluator import Evaluator
from garrison.network.inventory import inventory_from_objects
from garrison.network.loader import load_objects

APPS = [f"app{i}" for i in range(120)]
ROLES = ["frontend", "backend", "db", "cache", "batch"]
PORTS = [("http", 8080, "TCP"), ("grpc", 9090, "TCP"), ("metrics", 9100, "TCP"), ("dns", 53, "UDP"),
         ("pg", 5432, "TCP")]


def world(n_policies: int, n_endpoints: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    namespaces = [f"ns{i}" for i in range(50)]
    objs: list[dict[str, Any]] = []
    for i, ns in enumerate(namespaces):
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"team": f"team{i % 10}", "env": ["prod", "dev"][i % 2]}}})
    for i in range(n_endpoints):
        ns = namespaces[i % len(namespaces)]
        ports = rnd.sample(PORTS, 2)
        objs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod{i}", "namespace": ns,
                         "labels": {"app": rnd.choice(APPS), "role": rnd.choice(ROLES), "version": f"v{i % 3}"}},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [
                {"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports]}]},
            "status": {"podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"},
        })
    objs.append({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "security"},
                 "spec": {"order": 100}})
    objs.append({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "platform"},
                 "spec": {"order": 200, "defaultAction": "Pass"}})
    for i in range(n_policies):
        kind = i % 4
        ns = namespaces[rnd.randrange(len(namespaces))]
        app, other = rnd.choice(APPS), rnd.choice(APPS)
        if kind == 0:  # security tier: global deny of a role pair, then pass
            objs.append({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                         "metadata": {"name": f"security.g{i}"},
                         "spec": {"tier": "security", "order": i, "selector": f"app == '{app}'",
                                  "types": ["Ingress"],
                                  "ingress": [{"action": "Deny", "protocol": "TCP",
                                               "source": {"selector": f"role == '{rnd.choice(ROLES)}'",
                                                          "namespaceSelector": "env == 'dev'"},
                                               "destination": {"ports": ["5000:5500"]}},
                                              {"action": "Pass"}]}})
        elif kind == 1:  # platform tier: namespaced allow by team, default Pass
            objs.append({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                         "metadata": {"name": f"platform.n{i}", "namespace": ns},
                         "spec": {"tier": "platform", "order": i,
                                  "selector": f"app in {{'{app}', '{other}'}} && role != 'db'",
                                  "ingress": [{"action": "Allow", "protocol": "TCP",
                                               "source": {"namespaceSelector": f"team == 'team{i % 10}'"},
                                               "destination": {"ports": ["http", 9100]}},
                                              {"action": "Deny", "source": {"nets": ["10.0.128.0/17"]}}]}})
        elif kind == 2:  # Kubernetes NetworkPolicy
            objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": f"k{i}", "namespace": ns},
                         "spec": {"podSelector": {"matchLabels": {"app": app}},
                                  "policyTypes": ["Ingress", "Egress"],
                                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}},
                                                        {"namespaceSelector": {"matchLabels": {"team": "team1"}}}],
                                               "ports": [{"port": "grpc"}, {"port": 8080}]}],
                                  "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                                  "except": ["10.0.200.0/24"]}}]},
                                             {"ports": [{"protocol": "UDP", "port": 53}]}]}})
        else:  # default tier Calico policy, some staged
            kind_name = "StagedNetworkPolicy" if i % 8 == 3 else "NetworkPolicy"
            objs.append({"apiVersion": "projectcalico.org/v3", "kind": kind_name,
                         "metadata": {"name": f"d{i}", "namespace": ns},
                         "spec": {"order": 500 + i, "selector": f"role == '{rnd.choice(ROLES)}'",
                                  "types": ["Ingress", "Egress"],
                                  "ingress": [{"action": "Allow", "protocol": "TCP",
                                               "source": {"selector": f"app == '{other}'"}}],
                                  "egress": [{"action": "Allow"}]}})
    return objs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=5000)
    ap.add_argument("--flows", type=int, default=200_000)
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = ap.parse_args()

    objs = [("bench", i, o) for i, o in enumerate(world(args.policies, args.endpoints))]
    t0 = time.perf_counter()
    pset = load_objects(objs, strict=True)
    inv = inventory_from_objects(objs)
    t1 = time.perf_counter()
    ev = Evaluator(pset, inv)
    t2 = time.perf_counter()

    rnd = random.Random(11)
    n = len(ev.endpoints)
    flows = [(rnd.randrange(n), rnd.randrange(n), *rnd.choice([(6, 8080), (6, 9090), (17, 53), (6, 5432),
                                                                 (6, 5100)])) for _ in range(args.flows)]
    keys = [e.key for e in ev.endpoints]
    names = {6: "TCP", 17: "UDP"}
    explained = flows[: args.flows // 2]
    # rates use process CPU time (one core, one process): wall time on a shared machine also counts
    # other processes' time slices; the wall-clock rate is reported alongside
    c3, t3 = time.process_time(), time.perf_counter()
    allowed_explained = sum(ev.evaluate(keys[s], keys[d], names[p], port).allowed for s, d, p, port in explained)
    c4, t4 = time.process_time(), time.perf_counter()
    allowed_fast = sum(ev.allowed(s, d, p, port) for s, d, p, port in flows)
    c5, t5 = time.process_time(), time.perf_counter()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    results = {
        "policies": len(pset.policies), "endpoints": n, "tiers": len(pset.tiers),
        "load_s": round(t1 - t0, 3), "compile_s": round(t2 - t1, 3),
        "explained_verdicts_per_cpu_s": round(len(explained) / (c4 - c3)),
        "explained_verdicts_per_wall_s": round(len(explained) / (t4 - t3)),
        "fast_verdicts_per_cpu_s": round(len(flows) / (c5 - c4)),
        "fast_verdicts_per_wall_s": round(len(flows) / (t5 - t4)),
        "allowed_share_fast": round(allowed_fast / len(flows), 3),
        "allowed_share_explained": round(allowed_explained / len(explained), 3),
        "peak_rss_mib": round(rss_mib, 1),
    }
    width = max(len(k) for k in results)
    print("netpol evaluator benchmark")
    for k, v in results.items():
        print(f"  {k:<{width}}  {v}")
    print(json.dumps(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
