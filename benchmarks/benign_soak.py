#!/usr/bin/env python3
"""Benign soak: an hour (``--seconds``) of package installs, builds, git and web traffic on the host
and in a Debian container under ``garrison sensor run --with-falco`` (Falco's stable rules and our
pack), then alert counts by priority and the rules behind WARNING+ alerts. Not run by the test
suite (the suite runs one minute of the same workload: tests/runtime/test_runtime_benign_quiet.py).

    .venv/bin/python benchmarks/benign_soak.py [--seconds 3600] [--json benchmarks/results/benign_soak.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests._containers import Containers, runtime_images  # noqa: E402
from tests.runtime._benign import container_round, host_round, scratch  # noqa: E402


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
            stop = time.monotonic() + args.seconds

            def loop(name: str) -> None:
                while time.monotonic() < stop:
                    host_round(scratch()) if name == "host" else container_round(c)
                    rounds[name] += 1

            threads = [threading.Thread(target=loop, args=(n,)) for n in ("host", "container")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            time.sleep(2)
        finally:
            sensor.send_signal(signal.SIGTERM)
            sensor.wait(timeout=60)
            containers.cleanup()
    alerts = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
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
        "pipeline": json.loads(status.read_text()).get("pipeline", {}),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
