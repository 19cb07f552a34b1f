#!/usr/bin/env python3
"""Benign soak: an hour (``--seconds``) of package installs, builds, git and web traffic on the host
and in a Debian container under ``garrison sensor run --with-falco`` (Falco's stable rules and our
pack), then alert counts by priority and the rules behind WARNING+ alerts. Only the soak's own
alerts count: the host workload runs under a marker audit loginuid, the container workload in the
soak's container; alerts of other activity on the machine are reported as a number apart. Not run
by the test suite (the suite runs one minute of the same workload:
tests/runtime/test_runtime_benign_quiet.py).

    .venv/bin/python benchmarks/benign_soak.py [--seconds 3600] [--json benchmarks/results/benign_soak.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests._containers import Containers, runtime_images  # noqa: E402
from tests.runtime._benign import container_round  # noqa: E402

MARKER = 40000 + os.getpid() % 20000  # audit loginuid of the host workload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3600.0)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "benign_soak.json")
    args = ap.parse_args()
    runtime_images()
    work = Path(tempfile.mkdtemp(prefix="garrison-soak-"))
    out, status, log = work / "alerts.jsonl", work / "status.json", work / "sensor.log"
    containers = Containers()
    c = containers.run("debian", "sleep", "infinity")
    argv = [sys.executable, "-m", "garrison.cli.main", "sensor", "run", "--with-falco", "--output", str(out)]
    argv += ["--status-file", str(status), "--audit-lock-wait", "300"]
    rounds: collections.Counter[str] = collections.Counter()
    with log.open("w") as err:
        sensor = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        try:
            while "running with sensors" not in log.read_text():
                if sensor.poll() is not None:
                    raise SystemExit(log.read_text()[-2000:])
                time.sleep(0.2)
            # the host workload runs in its own process under a marker loginuid (inherited by every
            # descendant) and the container one in this script's container: alerts of anything else
            # on the machine are counted apart, never as the soak's
            host = subprocess.Popen(
                [sys.executable, "-m", "tests.runtime._benign", str(args.seconds), str(MARKER)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            stop = time.monotonic() + args.seconds
            while time.monotonic() < stop:
                container_round(c)
                rounds["container"] += 1
            host_out, _ = host.communicate(timeout=args.seconds + 600)
            if host.returncode != 0:
                raise SystemExit(f"host workload failed with {host.returncode}")
            rounds["host"] = int(host_out.split()[-1])
            time.sleep(2)
        finally:
            sensor.send_signal(signal.SIGTERM)
            sensor.wait(timeout=60)
            containers.cleanup()
    every = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    alerts = [a for a in every if a.get("container.id") == c.id[:12] or a.get("user.loginuid") == MARKER]
    by_priority = collections.Counter(a["priority"] for a in alerts)
    loud = collections.Counter(
        a["rule"] for a in alerts if a["priority"] in ("Emergency", "Alert", "Critical", "Error", "Warning")
    )
    result = {
        "seconds": args.seconds,
        "rounds": dict(rounds),
        "alerts_by_priority": dict(by_priority),
        "warning_and_above_by_rule": dict(loud),
        "all_by_rule": dict(collections.Counter(a["rule"] for a in alerts)),
        "other_activity_alerts": len(every) - len(alerts),
        "pipeline": json.loads(status.read_text()).get("pipeline", {}),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
