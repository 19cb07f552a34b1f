#!/usr/bin/env python3
"""Runtime sensor cost: lost events, CPU and RSS under exec storms, and the overhead on an exec-heavy load.

Runs ``garrison sensor run`` (the built-in rule pack, ``--sensors`` as given, alerts to /dev/null)
as its own process and drives exec storms with a small C generator (``posix_spawn`` paced to a
rate; the exec'd program is a static binary that only exits, so the load is the kernel's exec
path and what the sensors add to it). Per rate (500/1000/2000 exec/s by default) it reports:

  lost         per sensor, the increase of the sensor's ``lost`` counter (status file)
  received     per sensor, the increase of ``received``
  sensor_cpu   CPU seconds the sensor process and its children (bpftrace) used (utime+stime
               from /proc/PID/stat) per second of storm, as a percentage of one core
  rss_mb       the sensor's peak RSS (VmHWM) at the end of the phase (goal < 150 MB)

Every sensor set given with ``--sets`` is measured in turn (default: the default set with our own
BPF programs, the same with bpftrace instead, and without either; add ``proc,audit,tracefs`` for
audit). Then the overhead on an exec-heavy workload: N back-to-back execs (no pacing) of ``/bin/true``
without the sensor and with it, interleaved, best of ``--repeat``: wall time, and the workload's
own CPU time (wait4 rusage of the generator and its children), which is what the sensor's kernel
hooks add to every exec; goal < 5 %. Both the best round of each side and the medians of the
interleaved rounds are reported (on a shared VM the medians are the steadier figure). And the
throughput loss of nginx (one worker, a static page) under ``wrk -t1 -c16``, without and with the
sensor, best of ``--repeat``; goal < 3 %.

    .venv/bin/python benchmarks/sensor_bench.py [--sets 'proc,tracefs;proc,audit,tracefs'] [--rates 500,1000,2000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.runtime._sensorkit import storm_tools  # noqa: E402  (the same generator the tests use)

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds of the sensor process and its live children (the bpftrace child reads the
    kernel's buffers for the bpftrace sensor: its CPU is the sensor's too)."""
    total = 0.0
    for task in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_status(path: Path) -> dict[str, dict[str, int]]:
    data = json.loads(path.read_text())
    return {s["sensor"]: s for s in data["sensors"]}


def wait_status(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        if proc.poll() is not None:
            raise SystemExit(f"sensor exited with {proc.returncode}")
        time.sleep(0.1)
    raise SystemExit("sensor did not start")


def storm(rate: float, count: int, program: str) -> float:
    gen, _ = storm_tools()
    out = subprocess.run([gen, str(rate), str(count), "bench", program], check=True, capture_output=True, text=True)
    return count / float(out.stdout.split()[-1])


def timed_execs(n: int, program: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the generator and all its children, from wait4) of ``n`` execs."""
    gen, _ = storm_tools()
    start = time.perf_counter()
    proc = subprocess.Popen([gen, "1000000", str(n), "bench", program], stdout=subprocess.DEVNULL)
    _, code, usage = os.wait4(proc.pid, 0)
    proc.returncode = code
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def start_sensor(cmd: list[str], status: Path) -> subprocess.Popen[bytes]:
    status.unlink(missing_ok=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_status(status, proc)
    time.sleep(1.0)
    return proc


def stop_sensor(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


NGINX_CONF = """
user root;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
daemon off;
events {{ worker_connections 256; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}
}}
"""


def wrk_rps(url: str, seconds: float) -> float:
    return wrk_run(url, seconds)[0]


def wrk_run(url: str, seconds: float, worker: int | None = None) -> tuple[float, float]:
    """``(requests/s, nginx worker CPU microseconds per request)`` of one wrk run (CPU is 0 when
    no worker pid is given). CPU per request is what the sensor's kernel hooks add to each
    request, and unlike throughput it does not move when other load on the machine takes turns
    on the two cores."""
    cpu0 = cpu_seconds(worker) if worker else 0.0
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds:g}s", url], check=True, capture_output=True, text=True
    ).stdout
    cpu = cpu_seconds(worker) - cpu0 if worker else 0.0
    rps = float(next(x for x in out.splitlines() if x.startswith("Requests/sec:")).split()[1])
    total = int(next(x for x in out.splitlines() if "requests in" in x).split()[0])
    return rps, (cpu / total * 1e6 if worker and total else 0.0)


def nginx_worker(master: int) -> int | None:
    """The pid of the master's (single) worker process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                return int(entry.name)
    return None


def start_nginx(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    root = tmp / "www"
    root.mkdir(exist_ok=True)
    (root / "index.html").write_text("<p>ok</p>\n" * 20)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port))
    proc = subprocess.Popen(
        ["nginx", "-e", str(tmp / "error.log"), "-c", str(conf), "-p", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", url], check=False).returncode == 0:
            return proc, url
        time.sleep(0.1)
    proc.terminate()  # a graceful stop takes the worker down with the master
    proc.wait()
    raise SystemExit("nginx did not start")


def bench_set(
    sensors: str, args: argparse.Namespace, tmp: Path, tiny: str, url: str | None, worker: int | None
) -> dict[str, Any]:
    status = tmp / "status.json"
    results: dict[str, Any] = {"sensors": sensors, "rates": []}
    cmd = [sys.executable, "-m", "garrison.cli.main", "sensor", "run", "--output", "/dev/null",
           "--sensors", sensors, "--status-file", str(status), "--audit-lock-wait", "300"]  # fmt: skip
    sensor = start_sensor(cmd, status)
    try:
        idle_cpu0 = cpu_seconds(sensor.pid)
        time.sleep(2.0)
        results["idle_cpu_pct"] = round((cpu_seconds(sensor.pid) - idle_cpu0) / 2.0 * 100, 2)
        for rate in (float(r) for r in args.rates.split(",")):
            count = int(rate * args.seconds)
            before, cpu0 = read_status(status), cpu_seconds(sensor.pid)
            achieved = storm(rate, count, tiny)
            time.sleep(2.5)  # let the sensor drain and publish its counters
            after, cpu1 = read_status(status), cpu_seconds(sensor.pid)
            row = {
                "rate": rate,
                "achieved": round(achieved),
                "execs": count,
                "sensor_cpu_pct": round((cpu1 - cpu0) / (count / achieved) * 100, 1),
                "sensor_cpu_ms_per_exec": round((cpu1 - cpu0) / count * 1000, 3),
                "rss_mb": round(peak_rss_mb(sensor.pid), 1),
                "lost": {n: after[n]["lost"] - before[n]["lost"] for n in after},
                "received": {n: after[n]["received"] - before[n]["received"] for n in after},
            }
            results["rates"].append(row)
            print(json.dumps({"sensors": sensors, **row}), flush=True)
        results["rss_mb"] = round(peak_rss_mb(sensor.pid), 1)
    finally:
        stop_sensor(sensor)

    # overhead: runs without and with the sensor, interleaved so that other load on the machine
    # hits both alike; best of --repeat of each
    without: list[tuple[float, float]] = []
    with_: list[tuple[float, float]] = []
    rps_without: list[float] = []
    rps_with: list[float] = []
    cpu_without: list[float] = []
    cpu_with: list[float] = []
    for _ in range(args.repeat):
        without.append(timed_execs(args.execs, "/bin/true"))
        if url is not None:
            rps, cpu = wrk_run(url, args.wrk_seconds, worker)
            rps_without.append(rps)
            cpu_without.append(cpu)
        sensor = start_sensor(cmd, status)
        try:
            with_.append(timed_execs(args.execs, "/bin/true"))
            if url is not None:
                rps, cpu = wrk_run(url, args.wrk_seconds, worker)
                rps_with.append(rps)
                cpu_with.append(cpu)
        finally:
            stop_sensor(sensor)
    base_wall, base_cpu = min(w for w, _ in without), min(c for _, c in without)
    sens_wall, sens_cpu = min(w for w, _ in with_), min(c for _, c in with_)
    med_base_cpu, med_sens_cpu = statistics.median(c for _, c in without), statistics.median(c for _, c in with_)
    results["exec_overhead"] = {
        "execs": args.execs,
        "program": "/bin/true",
        "rounds": args.repeat,
        "without_wall_s": round(base_wall, 3),
        "with_wall_s": round(sens_wall, 3),
        "wall_overhead_pct": round((sens_wall / base_wall - 1) * 100, 1),
        "without_cpu_s": round(base_cpu, 3),
        "with_cpu_s": round(sens_cpu, 3),
        "workload_cpu_overhead_pct": round((sens_cpu / base_cpu - 1) * 100, 1),
        # the best round of each side is at the mercy of one lucky round on a shared VM; the
        # medians of the interleaved rounds are the steadier figure
        "workload_cpu_overhead_median_pct": round((med_sens_cpu / med_base_cpu - 1) * 100, 1),
    }
    if url is not None:
        best_without, best_with = max(rps_without), max(rps_with)
        results["nginx_overhead"] = {
            "tool": "wrk -t1 -c16",
            "seconds": args.wrk_seconds,
            "rps_without": round(best_without),
            "rps_with": round(best_with),
            "throughput_loss_pct": round((1 - best_with / best_without) * 100, 1),
        }
        if worker is not None:
            base_us, sens_us = min(cpu_without), min(cpu_with)
            med_base_us, med_sens_us = statistics.median(cpu_without), statistics.median(cpu_with)
            results["nginx_overhead"].update(
                cpu_us_per_request_without=round(base_us, 2),
                cpu_us_per_request_with=round(sens_us, 2),
                cpu_per_request_overhead_pct=round((sens_us / base_us - 1) * 100, 1),
                cpu_per_request_overhead_median_pct=round((med_sens_us / med_base_us - 1) * 100, 1),
            )
    print(json.dumps({"sensors": sensors, **{k: v for k, v in results.items() if "overhead" in k}}), flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="500,1000,2000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument(
        "--sets",
        default="proc,tracefs,ebpf;proc,tracefs,bpftrace;proc,tracefs",
        help="sensor sets to compare, ';'-separated (each a --sensors value)",
    )
    ap.add_argument("--execs", type=int, default=3000, help="execs in the overhead workload")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--wrk-seconds", type=float, default=5.0)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "sensor.json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the sensor benchmark needs root")
    _, tiny = storm_tools()
    tmp = Path(tempfile.mkdtemp(prefix="garrison-sensor-bench-"))
    nginx, url, worker = (None, None, None)
    if shutil.which("nginx") and shutil.which("wrk"):
        nginx, url = start_nginx(tmp)
        worker = nginx_worker(nginx.pid)
    else:
        print("nginx or wrk missing (make deps): no HTTP overhead figures", file=sys.stderr)
    try:
        sets = [bench_set(s.strip(), args, tmp, tiny, url, worker) for s in args.sets.split(";") if s.strip()]
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait()
    results = {"cores": os.cpu_count(), "sets": sets}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
