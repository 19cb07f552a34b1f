"""Drive the admission webhook over HTTPS at a fixed rate and report latency percentiles.

Starts ``garrison admission serve`` in its own process on a free loopback port with a freshly
generated certificate, then sends a mix of AdmissionReview requests (compliant pods, privileged
pods, unpinned images, deployments) at ``--rate`` requests/s for ``--seconds`` from this process
with httpx over keep-alive connections. Prints p50/p95/p99, the achieved rate and the server's RSS.

    .venv/bin/python benchmarks/admission_bench.py --rate 200 --seconds 10
    .venv/bin/python benchmarks/admission_bench.py --tool wrk --rate 200 --seconds 30

``--tool wrk`` drives the same mix with wrk (C, Debian package ``wrk``) instead: a Lua script
paces each of ``--connections`` keep-alive connections with wrk's ``delay()`` hook so the total
is about ``--rate`` requests/s, and wrk's own latency distribution is reported.
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


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/validate", {["Content-Type"] = "application/json"}, bodies[(i %% #bodies) + 1])
end
delay = function()
  return %d
end
"""


def run_wrk(base: str, rate: float, seconds: float, connections: int, tmp: Path) -> None:
    """Pace ``connections`` connections to ``rate`` req/s in total and print wrk's percentiles."""
    import re
    import shutil

    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    per_connection_ms = max(0, int(connections * 1000 / rate) - 2)  # minus a typical service time
    bodies = ", ".join(f"[==[{b.decode()}]==]" for b in bodies_list())
    script = tmp / "admission.lua"
    script.write_text(WRK_SCRIPT % (bodies, per_connection_ms))
    threads = min(2, connections)
    out = subprocess.run(
        [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s", "--latency", "-s", str(script),
         base + "/validate"],
        capture_output=True, text=True, check=True,
    ).stdout
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)$", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(f"wrk: {connections} connections, {rps.group(1) if rps else '?'} req/s achieved over {int(seconds)}s, "
          f"non-2xx {errors.group(1) if errors else 0}")
    print("latency  " + "  ".join(f"p{k} {v}" for k, v in sorted(lat.items(), key=lambda kv: int(kv[0]))))


def bodies_list() -> list[bytes]:
    return bodies()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--tool", choices=("httpx", "wrk"), default="httpx", help="load generator")
    ap.add_argument("--connections", type=int, default=4, help="wrk connections")
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
            if args.tool == "wrk":
                run_wrk(base, args.rate, args.seconds, args.connections, Path(tmp))
                print(f"server RSS {rss_kib(proc.pid) / 1024:.1f} MiB")
                return
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
