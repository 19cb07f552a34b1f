#!/usr/bin/env python3
"""Matcher throughput (packages/s) and DB import time on the real advisory snapshots.

Imports all of ``../shared/data/advisories`` into a temporary database (or uses ``--db``), then
builds a realistic mix of packages from the database itself: every PyPI, Go and crates.io package
name at assorted versions taken from its advisories (bounds, listed versions, versions outside
every range), Debian 11 source packages from the DSA list, Alpine 3.11 origins and AlmaLinux 9
RPMs at versions around their fixes, plus as many packages that no advisory names (most packages
in a real image). Each group is matched with its OS, cold (fresh matcher) and warm (reused).

``--baseline-src DIR`` also times the matcher of another source tree (the previous commit's
``src``) on the same mix, alternating rounds with this tree's, so before/after figures come from
the same run. Each tree matches against a database it imported itself (``--baseline-db`` to
reuse one), since the schema may differ between them.

"Cold" means a fresh process: every round of either tree runs in its own subprocess, so no
in-process cache (version-parse caches, imported modules) survives from an earlier round. The
mix is always built from the current tree's database (the ``versions`` column both schemas
share), so both trees match the same packages.

Usage: benchmarks/match_bench.py [--db PATH] [--scale N] [--repeat N] [--json OUT]
                                 [--baseline-src DIR] [--baseline-db PATH]
"""

from __future__ import annotations

import argparse
import json
import os as os_mod
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SRC = Path(os_mod.environ.get("GARRISON_BENCH_SRC", str(REPO / "src")))
sys.path.insert(0, str(SRC))

from garrison.model import OperatingSystem, Package  # noqa: E402
from garrison.vulndb.db import VulnDB  # noqa: E402
from garrison.vulndb.importer import import_paths  # noqa: E402
from garrison.vulndb.matcher import Matcher  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "advisories"
LANG = {"PyPI": "pypi", "Go": "golang", "crates.io": "cargo"}
OS_GROUPS = {
    "Debian:11": ("deb", OperatingSystem("debian", "11", codename="bullseye")),
    "Alpine:v3.11": ("apk", OperatingSystem("alpine", "3.11.6")),
    "AlmaLinux:9": ("rpm", OperatingSystem("almalinux", "9.3")),
}


def _versions(db: VulnDB, eco: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, ranges, versions in db.conn.execute(
        "SELECT package, ranges, versions FROM affected WHERE ecosystem = ?", (eco,)
    ):
        vs = out.setdefault(name, [])
        for rng in json.loads(ranges):
            vs.extend(v for _k, v in rng[1] if v != "0" and "*" not in v and rng[0] != "GIT")
        vs.extend(json.loads(versions)[:3])
    return out


def _lang_package(eco: str, name: str, version: str) -> Package:
    if eco == "Go":
        head, _, tail = name.rpartition("/")
        return Package(tail, "v" + version, "golang", namespace=head or None)
    return Package(name, version, LANG[eco])


def build_mix(db: VulnDB, scale: int, rng: random.Random) -> dict[str, tuple[OperatingSystem | None, list[Package]]]:
    groups: dict[str, tuple[OperatingSystem | None, list[Package]]] = {}
    lang: list[Package] = []
    for eco in LANG:
        for name, versions in _versions(db, eco).items():
            for version in rng.sample(versions, min(len(versions), 3 * scale)) if versions else []:
                lang.append(_lang_package(eco, name, version))
            lang.append(_lang_package(eco, name, "999.0.0"))  # newer than every advisory
    for eco, (ptype, os) in OS_GROUPS.items():
        pkgs: list[Package] = []
        for name, versions in _versions(db, eco).items():
            for version in rng.sample(versions, min(len(versions), 2 * scale)):
                below = version + "~" if ptype == "deb" else version
                pkgs.append(Package(name, below, ptype, source_name=name))
        unknown = [Package(f"unlisted-{ptype}-{i}", "1.0-1", ptype) for i in range(len(pkgs))]
        groups[eco] = (os, pkgs + unknown)
    unknown_lang = [Package(f"unlisted-{i}", "1.0.0", rng.choice(list(LANG.values()))) for i in range(len(lang))]
    groups["language"] = (None, lang + unknown_lang)
    for _os, pkgs in groups.values():
        rng.shuffle(pkgs)
    return groups


class _MixSource:
    """Just the connection ``build_mix`` reads (any schema version has the columns it needs)."""

    def __init__(self, path: Path) -> None:
        import sqlite3

        self.conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def run(db_path: Path, scale: int, repeat: int, mix_db: Path | None = None) -> dict[str, Any]:
    rng = random.Random(1234)
    groups = build_mix(_MixSource(mix_db or db_path), scale, rng)  # type: ignore[arg-type]
    with VulnDB.open(db_path) as db:
        total = sum(len(p) for _o, p in groups.values())
        results: dict[str, Any] = {"packages": total, "groups": {k: len(v[1]) for k, v in groups.items()}}
        cold: list[float] = []
        warm: list[float] = []
        matches = 0
        for _ in range(repeat):
            matcher = Matcher(db)
            start = time.perf_counter()
            matches = sum(len(matcher.match(pkgs, os)) for os, pkgs in groups.values())
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            for os, pkgs in groups.values():
                matcher.match(pkgs, os)
            warm.append(time.perf_counter() - start)
        results.update(
            matches=matches,
            cold_seconds=min(cold),
            warm_seconds=min(warm),
            cold_packages_per_s=round(total / min(cold)),
            warm_packages_per_s=round(total / min(warm)),
        )
    return results


def _one(src: Path, db_path: Path, mix_db: Path, scale: int) -> dict[str, Any]:
    """One cold run (a fresh process) of the matcher of the tree at ``src``."""
    env = dict(os_mod.environ, GARRISON_BENCH_SRC=str(src))
    cmd = [sys.executable, __file__, "--db", str(db_path), "--mix-db", str(mix_db), "--scale", str(scale), "--repeat", "1"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=600).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _import_with(src: Path, db_path: Path) -> None:
    code = "import sys; from garrison.vulndb.importer import import_paths; import_paths(sys.argv[1], [sys.argv[2]])"
    env = dict(os_mod.environ, PYTHONPATH=str(src))
    subprocess.run([sys.executable, "-c", code, str(db_path), str(SHARED)], env=env, check=True, timeout=1200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="use this database instead of importing the snapshots")
    parser.add_argument("--scale", type=int, default=1, help="versions per package name (x3 language, x2 OS)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--baseline-src", type=Path, help="also time the matcher of this src directory")
    parser.add_argument("--baseline-db", type=Path, help="the baseline's database (default: imported by it)")
    parser.add_argument("--mix-db", type=Path, help=argparse.SUPPRESS)  # rounds: build the mix from this DB
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db
        if db_path is None:
            db_path = Path(tmp) / "garrison.db"
            start = time.perf_counter()
            summary = import_paths(db_path, [SHARED])
            results["import_seconds"] = round(time.perf_counter() - start, 2)
            results["import_records"] = summary.to_dict()["records"]
        if args.baseline_src is None:
            results.update(run(db_path, args.scale, args.repeat, args.mix_db))
        else:
            base_db = args.baseline_db
            if base_db is None:
                base_db = Path(tmp) / "baseline.db"
                _import_with(args.baseline_src, base_db)
            rounds = [
                {
                    "current": _one(SRC, db_path, db_path, args.scale),
                    "baseline": _one(args.baseline_src, base_db, db_path, args.scale),
                }
                for _ in range(args.repeat)
            ]
            for label in ("current", "baseline"):
                best = min((r[label] for r in rounds), key=lambda x: x["cold_seconds"])
                warm = min(r[label]["warm_seconds"] for r in rounds)
                results[label] = dict(
                    best,
                    warm_seconds=warm,
                    warm_packages_per_s=round(best["packages"] / warm),
                    cold_runs=[round(r[label]["cold_seconds"], 3) for r in rounds],
                )
    text = json.dumps(results, indent=2)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
