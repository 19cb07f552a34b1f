"""Drive the admission webhook over HTTPS at a fixed rate and report latency percentiles.

Starts ``garrison admission serve`` in its own process on a free loopback port with a freshly
generated certificate, then sends a mix of AdmissionReview requests (compliant pods, privileged
pods, unpinned images, deployments) at ``--rate`` requests/s for ``--seconds`` from this process
with httpx over keep-alive connections. Prints p50/p95/p99, the achieved rate and the server's RSS.

    .venv/bin/python benchmarks/admission_bench.py --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.admission._payloads import RESTRICTED_CONTAINER, pod, review

from garrison.admission.certs import generate

CONFIG = """
podSecurity:
  defaults: {enforce: baseline, warn: restricted, audit: restricted}
images:
  allowedRegistries: [registry.example.com, ghcr.io/acme/*]
  requireDigest: true
requiredLabels: {labels: [app], kinds: [Pod, Deployment]}
celRules:
  - name: no-host-network
    expression: "!has(object.spec.hostNetwork) || !object.spec.hostNetwork"
    message: hostNetwork is not allowed
    kinds: [Pod]
"""


def bodies() -> list[bytes]:
    deploy = pod("web")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": deploy["spec"]}}}
    mix: list[dict[str, Any]] = [
        review(pod("ok", container=RESTRICTED_CONTAINER)),
        review(pod("plain")),
        review(pod("priv", container={"securityContext": {"privileged": True}})),
        review(pod("tagged", image="nginx:1.25")),
        review(deployment, group="apps"),
    ]
    return [json.dumps(b).encode() for b in mix]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def drive(base: str, ca: str, rate: float, seconds: float) -> tuple[list[float], int, float]:
    payloads = bodies()
    ctx = ssl.create_default_context(cafile=ca)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(verify=ctx, timeout=5, limits=httpx.Limits(max_keepalive_connections=32)) as client:
        for _ in range(20):  # warm up connections
            await client.post(base + "/validate", content=payloads[0], headers={"content-type": "application/json"})

        async def one(i: int) -> None:
            nonlocal errors
            t = time.perf_counter()
            try:
                r = await client.post(base + "/validate", content=payloads[i % len(payloads)],
                                      headers={"content-type": "application/json"})
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append(time.perf_counter() - t)

        total = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(["localhost", "127.0.0.1"]).write(Path(tmp))
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(CONFIG)
        port = free_port()
        env = dict(os.environ, GARRISON_ADMISSION_CONFIG=str(cfg))
        garrison = str(Path(sys.executable).with_name("garrison"))
        log = open(Path(tmp) / "decisions.log", "w")  # noqa: SIM115
        proc = subprocess.Popen([garrison, "admission", "serve", "--cert", str(paths["cert"]), "--key", str(paths["key"]),
                                 "--host", "127.0.0.1", "--port", str(port)], env=env, stderr=log)
        base = f"https://localhost:{port}"
        try:
            ctx = ssl.create_default_context(cafile=str(paths["ca"]))
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/healthz", verify=ctx, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit("server did not start")
                time.sleep(0.1)
            lat, errors, elapsed = asyncio.run(drive(base, str(paths["ca"]), args.rate, args.seconds))
            q = statistics.quantiles(lat, n=100)
            print(f"requests {len(lat)} errors {errors} achieved {len(lat) / elapsed:.1f} req/s over {elapsed:.1f}s")
            print(f"latency ms  p50 {q[49] * 1000:.2f}  p95 {q[94] * 1000:.2f}  p99 {q[98] * 1000:.2f}  max {max(lat) * 1000:.2f}")
            print(f"server RSS {rss_kib(proc.pid) / 1024:.1f} MiB")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


if __name__ == "__main__":
    main()
