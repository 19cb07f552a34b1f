#!/usr/bin/env python3
"""Rule-engine throughput: Falco stable + incubating + sandbox + Garrison's pack, one core.

Loads the four rule files (timed), builds a pool of distinct synthetic events in a realistic mix
(file opens 50%, execs 20%, connects/accepts 20%, dup/socket/unlink/ptrace and others 10%; host
and container; varied process ancestry, users and paths; about 3% of opens touch sensitive files
and 2% of execs are attack command lines), feeds --events
of them through ``RuleSet.evaluate`` pinned to one CPU and reports events/s (wall and CPU), alerts
raised, load time and peak RSS, next to Falco's published figure.

Usage: benchmarks/rules_bench.py [--events N] [--pool N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from garrison.model.runtime import Event  # noqa: E402
from garrison.runtime.rules import default_pack, load_rules  # noqa: E402
from garrison.runtime.rules.testing import make_event  # noqa: E402

SHARED = Path(os.environ.get("GARRISON_SHARED", REPO.parent / "shared"))
FALCO = [
    SHARED / "conformance" / "runtime" / f
    for f in ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")
]
FALCO_EPS, FALCO_CPU = 4400, 38  # Falco's published benchmark: 4.4k events/s at 38% of one CPU

PROCS = [
    "bash",
    "sh",
    "python3",
    "node",
    "java",
    "nginx",
    "postgres",
    "curl",
    "git",
    "make",
    "gcc",
    "ls",
    "cat",
    "grep",
    "sed",
    "awk",
    "systemd",
    "sshd",
    "cron",
    "apt-get",
    "dpkg",
    "pip",
    "redis-server",
    "find",
    "tar",
]
PARENTS = [
    ["bash", "sshd", "systemd"],
    ["systemd"],
    ["make", "bash", "sshd", "systemd"],
    ["nginx", "systemd"],
    ["containerd-shim", "systemd"],
    ["conmon", "systemd"],
    ["dpkg", "apt-get", "sudo", "bash", "sshd"],
    ["node", "npm", "bash"],
    ["java", "bash", "conmon"],
    ["cron", "systemd"],
]
FILES = [
    "/etc/ld.so.cache",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/python3.11/os.py",
    "/etc/passwd",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/var/www/html/index.html",
    "/tmp/build/obj.o",
    "/home/dev/src/main.c",
    "/proc/self/status",
    "/var/log/nginx/access.log",
    "/dev/null",
    "/usr/share/zoneinfo/UTC",
    "/etc/nsswitch.conf",
    "/var/lib/dpkg/status",
    "/srv/app/static/app.js",
    "/tmp/pytest-1/x.py",
]
SENSITIVE = [
    "/etc/shadow",
    "/root/.bash_history",
    "/etc/cron.d/job",
    "/etc/ld.so.preload",
    "/root/.ssh/authorized_keys",
    "/var/log/auth.log",
]
ATTACK_ARGS = [["-e", "/bin/sh", "1.2.3.4", "4444"], ["-o", "stratum+tcp://pool:3333"], ["-r", "BEGIN PRIVATE", "/"]]
IPS = ["10.0.0.5", "10.96.0.1", "93.184.216.34", "151.101.1.69", "127.0.0.1", "192.168.1.20", "198.51.100.77"]
PORTS = [80, 443, 5432, 6379, 8080, 53, 22, 3333, 6443]


def build_pool(n: int, seed: int = 7) -> list[Event]:
    rnd = random.Random(seed)
    pool: list[Event] = []
    for i in range(n):
        r = rnd.random()
        name = rnd.choice(PROCS)
        common: dict[str, Any] = {
            "name": name,
            "pid": 1000 + i,
            "ancestors": rnd.choice(PARENTS),
            "container": f"{i % 7:02d}c0ffee0123456789abcdef" if rnd.random() < 0.4 else None,
            "uid": rnd.choice([0, 0, 33, 1000]),
            "user": rnd.choice(["root", "www-data", "dev"]),
            "tty": rnd.choice([0, 0, 0, 34816]),
        }
        if r < 0.5:
            flags = rnd.choice(["O_RDONLY", "O_RDONLY|O_CLOEXEC", "O_RDONLY|O_CLOEXEC", "O_WRONLY|O_CREAT|O_TRUNC"])
            path = rnd.choice(SENSITIVE) if rnd.random() < 0.03 else rnd.choice(FILES)
            if not path.startswith(("/tmp/", "/var/log/", "/home/")) and rnd.random() < 0.97:
                flags = "O_RDONLY|O_CLOEXEC"  # system files are read, not written
            ev = make_event(rnd.choice(["openat", "openat", "open"]), file=path, flags=flags, **common)
        elif r < 0.7:
            args = rnd.choice(
                [
                    ["-c", "ls -la"],
                    ["install", "-y", "vim"],
                    ["-O2", "x.c"],
                    ["run", "build"],
                    ["--version"],
                    ["-r", "TODO", "."],
                    [],
                    ["-la", "/srv"],
                ]
            )
            if rnd.random() < 0.02:
                args = rnd.choice(ATTACK_ARGS)
            ev = make_event(
                rnd.choice(["execve", "execve", "execveat"]), args=args, exe_upper_layer=rnd.random() < 0.02, **common
            )
        elif r < 0.9:
            ip = "169.254.169.254" if rnd.random() < 0.01 else rnd.choice(IPS)
            ev = make_event(rnd.choice(["connect", "connect", "accept4"]), sip=ip, sport=rnd.choice(PORTS), **common)
        else:
            kind = rnd.choice(["dup2", "socket", "unlinkat", "ptrace", "setuid", "mmap", "clone"])
            extra: dict[str, Any] = {}
            if kind == "dup2":
                extra = {"sip": rnd.choice(IPS), "sport": 4444, "res": rnd.choice([0, 1, 5])}
            elif kind == "socket":
                extra = {"evt_args": {"domain": rnd.choice([2, 10, 17]), "type": 1}}
            elif kind == "unlinkat":
                extra = {"evt_args": {"name": rnd.choice(["/tmp/x", "/var/log/syslog"])}}
            elif kind == "ptrace":
                extra = {"evt_args": {"request": rnd.choice([2, 2, 2, 1, 0, 16])}}
            ev = make_event(kind, **extra, **common)
        ev.num = i + 1
        pool.append(ev)
    return pool


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--pool", type=int, default=5_000)
    ap.add_argument("--json", type=Path)
    opts = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    files = [*FALCO, *default_pack()]
    t0 = time.perf_counter()
    ruleset = load_rules(files)
    load_s = time.perf_counter() - t0

    pool = build_pool(opts.pool)
    stream = [pool[i % len(pool)] for i in range(opts.events)]
    evaluate = ruleset.evaluate
    for ev in pool[:2000]:  # warm the ancestry/user caches as a running sensor would be
        evaluate(ev)
    alerts = 0
    w0, c0 = time.perf_counter(), time.process_time()
    for ev in stream:
        alerts += len(evaluate(ev))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    eps, eps_cpu = opts.events / wall, opts.events / cpu
    result = {
        "rules_files": [str(f) for f in files],
        "rules_loaded": len(ruleset.rules),
        "rules_total": len(ruleset.all_rules),
        "load_seconds": round(load_s, 3),
        "events": opts.events,
        "distinct_events": len(pool),
        "alerts": alerts,
        "wall_seconds": round(wall, 3),
        "events_per_second": round(eps),
        "events_per_cpu_second": round(eps_cpu),
        "peak_rss_mb": round(rss_mb, 1),
        "falco_published": {
            "events_per_second": FALCO_EPS,
            "cpu_percent": FALCO_CPU,
            "events_per_cpu_second": round(FALCO_EPS * 100 / FALCO_CPU),
        },
    }
    print(
        f"rules: {len(ruleset.rules)} active of {len(ruleset.all_rules)} "
        f"(Falco stable+incubating+sandbox + Garrison pack), loaded in {load_s:.2f} s"
    )
    print(
        f"events: {opts.events:,} ({len(pool):,} distinct; 50% opens, 20% execs, 20% connects, 10% other), "
        f"{alerts:,} alerts"
    )
    print(f"throughput (one core): {eps:,.0f} events/s wall, {eps_cpu:,.0f} events per CPU-second (goal >= 50,000)")
    print(f"peak RSS: {rss_mb:.1f} MB")
    print(
        f"Falco published: {FALCO_EPS:,} events/s at {FALCO_CPU}% CPU = ~{FALCO_EPS * 100 // FALCO_CPU:,} "
        f"events per CPU-second (its own benchmark, driver + libsinsp parsing included; ours is the rule "
        f"engine alone on pre-parsed events)"
    )
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
