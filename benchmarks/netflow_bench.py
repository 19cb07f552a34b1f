"""Flow-log benchmark: ingest, recommendation and staged preview on 1M flow records over 5,000 endpoints.

Generates a deterministic world (seeded PRNG): 50 namespaces, 500 workloads of 10 replicas each
(5,000 pods with ``app``/``pod-template-hash`` labels and a named port), each workload talking to
three others (any namespace) on their port plus a few external addresses, and writes N Calico
flow-log JSON lines (both reporters, random source ports, labels) to a temporary file. Then, in one
process:

* **ingest**: ``read_flows`` (parse + validate) records/s;
* **recommend**: ``recommend`` over all records (namespace scope, Calico form) records/s, and the
  number of policies it wrote;
* **preview**: the recommendation loaded as staged policies over an empty enforced set, every
  record replayed through ``preview`` (parse, match to the inventory, evaluate the distinct flows
  enforced and pending) records/s and distinct flows/s; the round trip must show zero changes;
* peak RSS (``resource.getrusage``).

    .venv/bin/python benchmarks/netflow_bench.py [--records 1000000] [--endpoints 5000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import orjson
import yaml

from garrison.network.evaluator import Evaluator
from garrison.network.flows import read_flows
from garrison.network.inventory import inventory_from_objects
from garrison.network.loader import load_objects
from garrison.network.preview import preview
from garrison.network.recommend import recommend

PORTS = [("http", "TCP", 8080), ("grpc", "TCP", 9090), ("dns", "UDP", 53), ("pg", "TCP", 5432)]


def world(n_endpoints: int, seed: int = 11) -> tuple[list[dict[str, Any]], list[tuple[int, int, int]]]:
    rnd = random.Random(seed)
    replicas = 10
    n_apps = max(1, n_endpoints // replicas)
    namespaces = [f"ns{i}" for i in range(50)]
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                                  for ns in namespaces]
    app_port = [PORTS[a % len(PORTS)] for a in range(n_apps)]
    for i in range(n_endpoints):
        app = i % n_apps
        name, proto, port = app_port[app]
        objs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"app{app}-5f449bdbb9-{i:05d}", "namespace": namespaces[app % len(namespaces)],
                         "labels": {"app": f"app{app}", "pod-template-hash": "5f449bdbb9"}},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [
                {"name": name, "containerPort": port, "protocol": proto}]}]},
            "status": {"podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"},
        })
    talks = [(a, b, 0) for a in range(n_apps) for b in rnd.sample(range(n_apps), 3) if a != b]
    talks += [(a, -1 - (a % 4), 0) for a in range(0, n_apps, 5)]  # some workloads call external addresses
    return objs, talks


def write_records(path: Path, objs: list[dict[str, Any]], talks: list[tuple[int, int, int]], n: int,
                  seed: int = 12) -> None:
    rnd = random.Random(seed)
    pods = [o for o in objs if o["kind"] == "Pod"]
    by_app: dict[int, list[dict[str, Any]]] = {}
    for p in pods:
        by_app.setdefault(int(p["metadata"]["labels"]["app"][3:]), []).append(p)
    externals = ["203.0.113.10", "198.51.100.20", "192.0.2.30", "8.8.8.8"]

    def side(pod: dict[str, Any]) -> dict[str, Any]:
        meta = pod["metadata"]
        return {"ip": pod["status"]["podIP"], "name": meta["name"], "name_aggr": meta["name"][:-5] + "*",
                "namespace": meta["namespace"], "type": "wep",
                "labels": {"labels": [f"{k}={v}" for k, v in meta["labels"].items()]}}

    with path.open("wb") as fh:
        written = 0
        while written < n:
            a, b, _ = talks[rnd.randrange(len(talks))]
            src = rnd.choice(by_app[a])
            if b < 0:
                dst = {"ip": externals[-1 - b], "name": "-", "name_aggr": "pub", "namespace": "-", "type": "net",
                       "labels": None}
                proto, port = "tcp", 443
            else:
                dpod = rnd.choice(by_app[b])
                dst = side(dpod)
                c = dpod["spec"]["containers"][0]["ports"][0]
                proto, port = c["protocol"].lower(), c["containerPort"]
            s = side(src)
            for reporter in ("src", "dst") if b >= 0 else ("src",):
                rec = {"start_time": 1_700_000_000, "end_time": 1_700_000_300, "proto": proto, "action": "allow",
                       "reporter": reporter, "dest_port": port, "source_port": rnd.randrange(32768, 60999),
                       "num_flows": 1, "bytes_in": 1200, "bytes_out": 800, "packets_in": 6, "packets_out": 5,
                       "policies": {"enforced_policies": ["0|__PROFILE__|__PROFILE__.kns.ns0|allow|0"],
                                    "pending_policies": []}}
                for k, v in s.items():
                    rec[f"source_{k}"] = v
                for k, v in dst.items():
                    rec[f"dest_{k}"] = v
                fh.write(orjson.dumps(rec) + b"\n")
                written += 1
                if written >= n:
                    break


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--endpoints", type=int, default=5000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict[str, Any] = {"records": args.records, "endpoints": args.endpoints}
    objs, talks = world(args.endpoints)
    inv = inventory_from_objects([("inv", i, o) for i, o in enumerate(objs)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.jsonl"
        t = time.perf_counter()
        write_records(path, objs, talks, args.records)
        out["generate_s"] = round(time.perf_counter() - t, 2)
        out["file_mb"] = round(path.stat().st_size / 1e6, 1)

        t = time.perf_counter()
        n = sum(1 for _ in read_flows([path]))
        dt = time.perf_counter() - t
        out["ingest_records_per_s"] = round(n / dt)

        t = time.perf_counter()
        rec = recommend(inv, read_flows([path]), scope="namespace")
        dt = time.perf_counter() - t
        out["recommend_s"] = round(dt, 2)
        out["recommend_records_per_s"] = round(args.records / dt)
        out["recommended_policies"] = sum(1 for d in rec.documents if d["kind"] == "StagedNetworkPolicy")
        out["recommended_rules"] = sum(len(d["spec"].get("ingress", [])) + len(d["spec"].get("egress", []))
                                       for d in rec.documents)
        out["rss_after_recommend_mb"] = round(rss_mb())

        t = time.perf_counter()
        docs = [d for d in yaml.safe_load_all(rec.yaml()) if d]
        ev = Evaluator(load_objects([("rec", i, d) for i, d in enumerate(docs)], strict=True), inv)
        out["load_compile_s"] = round(time.perf_counter() - t, 2)

        t = time.perf_counter()
        result = preview(ev, read_flows([path]))
        dt = time.perf_counter() - t
        out["preview_s"] = round(dt, 2)
        out["preview_records_per_s"] = round(result.records / dt)
        out["preview_distinct_flows"] = result.distinct
        out["preview_distinct_per_s"] = round(result.distinct / dt)
        out["preview_changes"] = len(result.changed)
        out["peak_rss_mb"] = round(rss_mb())
    assert result.records == args.records and not result.changed, "round trip must show no change"
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
