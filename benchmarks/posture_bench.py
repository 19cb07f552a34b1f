#!/usr/bin/env python3
"""Kubernetes posture speed against Checkov on the same manifests in the same run.

Generates ``--pods`` workloads deterministically (Pods, Deployments, StatefulSets, DaemonSets,
Jobs and CronJobs with a realistic spread of good and bad settings, plus a Service, a
ServiceAccount and a Role per ten workloads), written ``--per-file`` documents per YAML file,
then runs, each as its own process measured with ``wait4`` (wall time, peak RSS):

  garrison-startup  ``garrison posture k8s`` on one small Pod (the cost of starting)
  garrison          ``garrison posture k8s DIR -f json`` (PSS + workload + cluster controls)
  checkov           ``checkov -d DIR --framework kubernetes -o json --quiet`` (the peer)

Checkov is not a dependency of Garrison: the script uses ``--checkov PATH`` or installs it into
its own venv under ``/var/tmp/garrison-bench/checkov-venv`` on first use (PyPI).

    .venv/bin/python benchmarks/posture_bench.py --pods 4500 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHECKOV_VENV = Path("/var/tmp/garrison-bench/checkov-venv")
KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def container(rng: random.Random, i: int) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": f"app{i}",
        "image": rng.choice(
            ["nginx", "nginx:1.27", "registry.example.com/shop/api:2.1@sha256:" + "a" * 64, "busybox:latest"]
        ),
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    if rng.random() < 0.6:
        c["resources"] = {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
    sc: dict[str, Any] = {}
    if rng.random() < 0.5:
        sc.update(
            {
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }
        )
    if rng.random() < 0.1:
        sc["privileged"] = True
    if sc:
        c["securityContext"] = sc
    if rng.random() < 0.5:
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}}
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": "http"}}
    if rng.random() < 0.2:
        c["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
    return c


def pod_spec(rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container(rng, i) for i in range(rng.choice((1, 1, 2, 3)))]}
    if rng.random() < 0.05:
        spec["hostNetwork"] = True
    if rng.random() < 0.05:
        spec["volumes"] = [{"name": "host", "hostPath": {"path": "/var/run/docker.sock"}}]
    if rng.random() < 0.3:
        spec["automountServiceAccountToken"] = False
    return spec


def workload(rng: random.Random, n: int) -> dict[str, Any]:
    kind = KINDS[n % len(KINDS)]
    ns = f"team-{n % 30}"
    meta = {"name": f"w{n}", "namespace": ns, "labels": {"app": f"w{n}"}}
    template = {"metadata": {"labels": {"app": f"w{n}"}}, "spec": pod_spec(rng)}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
    if kind == "CronJob":
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": template}}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": f"w{n}"}}, "template": template}
    if kind != "DaemonSet":
        spec["replicas"] = 2
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def extras(n: int) -> list[dict[str, Any]]:
    ns = f"team-{n % 30}"
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"svc{n}", "namespace": ns},
            "spec": {"selector": {"app": f"w{n}"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa{n}", "namespace": ns}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": f"role{n}", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["secrets" if n % 20 == 0 else "configmaps"], "verbs": ["get"]}],
        },
    ]


def generate(root: Path, pods: int, per_file: int) -> int:
    rng = random.Random(1234)
    docs: list[dict[str, Any]] = []
    for n in range(pods):
        docs.append(workload(rng, n))
        if n % 10 == 0:
            docs += extras(n)
    for files, start in enumerate(range(0, len(docs), per_file)):
        text = yaml.safe_dump_all(docs[start : start + per_file], sort_keys=False)
        (root / f"manifests-{files:04d}.yaml").write_text(text)
    return len(docs)


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``argv`` and return wall time and peak RSS from the child's own rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # read pipes to EOF first so the child never blocks on a full pipe, then reap with wait4
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit": proc.returncode,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "stderr_tail": err.decode(errors="replace")[-300:],
        "stdout": out,
    }


def checkov_binary(given: str | None) -> Path:
    if given:
        return Path(given)
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        print(f"installing checkov into {CHECKOV_VENV} (PyPI) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "checkov"], check=True)
    return binary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=4500)
    ap.add_argument("--per-file", type=int, default=10)
    ap.add_argument("--checkov", help="checkov executable (default: its own venv)")
    ap.add_argument("--no-checkov", action="store_true", help="measure Garrison only")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    garrison = [str(REPO / ".venv" / "bin" / "garrison")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    results: dict[str, Any] = {"pods": args.pods}
    with tempfile.TemporaryDirectory(prefix="garrison-posture-bench-") as tmp:
        root = Path(tmp) / "manifests"
        root.mkdir()
        results["documents"] = generate(root, args.pods, args.per_file)
        results["files"] = len(list(root.iterdir()))
        one = Path(tmp) / "one.yaml"
        one.write_text(yaml.safe_dump(workload(random.Random(1), 0)))
        runs: dict[str, dict[str, Any]] = {}
        runs["garrison-startup"] = run_measured([*garrison, "posture", "k8s", str(one), "-f", "json"], env)
        runs["garrison"] = run_measured([*garrison, "posture", "k8s", str(root), "-f", "json"], env)
        doc = json.loads(runs["garrison"]["stdout"])
        runs["garrison"]["failed_checks"] = doc["summary"]["results"]
        if not args.no_checkov:
            binary = checkov_binary(args.checkov)
            runs["checkov"] = run_measured(
                [str(binary), "-d", str(root), "--framework", "kubernetes", "-o", "json", "--quiet", "--compact"], env
            )
            try:
                ck = json.loads(runs["checkov"]["stdout"])
                ck = ck if isinstance(ck, dict) else ck[0]
                runs["checkov"]["failed_checks"] = ck["summary"]["failed"]
            except (ValueError, KeyError, IndexError):
                runs["checkov"]["failed_checks"] = None
        for r in runs.values():
            r.pop("stdout", None)
        results["runs"] = runs
    print(f"{'tool':<18} {'wall s':>8} {'pods/s':>9} {'peak MiB':>9} {'failed':>8}")
    for name, r in runs.items():
        rate = "" if name.endswith("startup") else f"{args.pods / r['wall_s']:.0f}"
        print(f"{name:<18} {r['wall_s']:>8.2f} {rate:>9} {r['peak_rss_mib']:>9.1f} {r.get('failed_checks') or '':>8}")
    if "checkov" in runs:
        print(f"speed-up vs checkov: {runs['checkov']['wall_s'] / runs['garrison']['wall_s']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
