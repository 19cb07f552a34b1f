#!/usr/bin/env python3
"""Version-scheme throughput: keys/s (each version parsed once, no cache) and comparisons/s of
the keys (what the matcher does per range), for every registered scheme.

Usage: benchmarks/versions_bench.py [--n N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from garrison.vulndb.versions import get_scheme, schemes  # noqa: E402

SAMPLES = {
    "deb": [
        "1:2.36-9+deb12u4",
        "1.2.3-1",
        "3.0.11-1~deb12u2",
        "2.4.57-2",
        "1.0~rc1-1ubuntu0.22.04.1",
        "252.22-1~deb12u1",
    ],
    "rpm": ["1:3.0.7-27.el9", "2.34-100.el9_4.2", "5.14.0-427.13.1.el9_4", "1.0^git1-2.fc38", "4.18.0~rc1-1"],
    "apk": ["1.36.1-r5", "3.1.4-r0", "2.9.14_p20230212-r2", "1.2.13_rc1-r0", "0.20230125-r0"],
    "pep440": ["1.26.4", "2.0.0rc1", "1.0.post1", "3.12.0a1.dev0", "1!2.0", "0.9"],
    "semver": ["1.2.3", "1.0.0-alpha.1", "2.10.0+build.5", "0.0.1-rc.2"],
    "npm": ["v1.2.3", "4.17.21", "1.0.0-beta.3", "=2.0.0"],
    "cargo": ["1.0.197", "0.2.150", "1.0.0-rc.1"],
    "go": ["v1.2.3", "v0.0.0-20191109021931-daa7c04131f5", "1.21.0", "go1.21rc2", "v2.0.0+incompatible"],
    "maven": ["2.17.1", "1.0-SNAPSHOT", "5.3.30.RELEASE", "2.0.0-M1", "1.2.3.Final", "9.4.53.v20231009"],
    "gem": ["7.1.3", "1.0.0.rc1", "2.6.0-beta", "0.9.1"],
    "composer": ["v5.4.8", "1.0.0-beta2", "2.0.x-dev", "7.4.0-RC1"],
    "nuget": ["13.0.3", "6.0.0-preview.7.21377.19", "4.7.2.1", "1.0.0-RC"],
    "generic": ["1.2.3", "2023-01-02", "r1234", "7.0p1"],
}


def _variants(samples: list[str], n: int, rng: random.Random) -> list[str]:
    """Distinct versions built from the samples (different numbers, same shapes)."""
    out = []
    for i in range(n):
        base = rng.choice(samples)
        digits = [j for j, c in enumerate(base) if c.isdigit()]
        j = rng.choice(digits)
        out.append(base[:j] + str(i) + base[j + 1 :])
    return out


def bench(name: str, n: int) -> tuple[float, float]:
    scheme = get_scheme(name)
    versions = [v for v in _variants(SAMPLES[name], n, random.Random(1)) if scheme.valid(v)]
    if name == "pep440":  # its keys are cached; measure parsing, not the cache
        from garrison.vulndb.versions.pep440 import _parse

        _parse.cache_clear()
    start = time.perf_counter()
    keys = [scheme.key(v) for v in versions]
    key_rate = len(versions) / (time.perf_counter() - start)
    pairs = list(zip(keys, keys[1:] + keys[:1], strict=True))
    start = time.perf_counter()
    for a, b in pairs:
        _ = a < b
        _ = a >= b
    cmp_rate = 2 * len(pairs) / (time.perf_counter() - start)
    return key_rate, cmp_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{'scheme':10} {'keys/s':>12} {'compares/s':>14}")
    for name in schemes():
        keys, cmps = bench(name, args.n)
        print(f"{name:10} {keys:12,.0f} {cmps:14,.0f}")


if __name__ == "__main__":
    main()
