#!/usr/bin/env python3
"""Secret-scanner throughput (MB/s) on a real tree of text files, /usr/share by default (read-only).

The text files of the tree (regular files up to 10 MiB without a NUL byte in the first 8 KiB)
are read into memory once, then timed, best of --repeat runs, for each keyword-prefilter backend
available (``aho-corasick`` needs the ahocorasick-rs wheel, ``stdlib`` always works):

  prefilter      lower-casing plus the keyword search alone
  scan/all       SecretScanner.scan over every text file (under a neutral path, so the allow
                 rules for usr/share do not skip them)
  scan/no-kw     the same over the files that contain none of the rules' keywords
  wants+scan     what a layer scan does: wants() on the real path, scan() only if wanted

Usage: benchmarks/secrets_bench.py [--root DIR] [--limit-mb N] [--repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from garrison.secrets import SecretScanner  # noqa: E402
from garrison.secrets.keywords import available_backends  # noqa: E402

MAX_FILE = 10 * 1024 * 1024


def load_corpus(root: Path, limit: int) -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if not data or b"\0" in data[:8192]:
                continue
            rel = str(path.relative_to(root.anchor)) if root.is_absolute() else str(path)
            files.append((rel, data))
            total += len(data)
            if total >= limit:
                return files
    return files


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_backend(backend: str, corpus: list[tuple[str, bytes]], repeat: int) -> dict[str, object]:
    scanner = SecretScanner(prefilter=backend)
    index = scanner._index  # the prefilter alone
    size = sum(len(d) for _, d in corpus)
    no_kw = [(p, d) for p, d in corpus if not index.find(d.lower())]
    no_kw_size = sum(len(d) for _, d in no_kw)

    def prefilter() -> None:
        for _, data in corpus:
            index.find(data.lower())

    def scan_all() -> int:
        return sum(len(scanner.scan(f"bench/f{i}.txt", d)) for i, (_, d) in enumerate(corpus))

    def scan_no_kw() -> None:
        for i, (_, data) in enumerate(no_kw):
            scanner.scan(f"bench/f{i}.txt", data)

    def wants_scan() -> int:
        found = 0
        for path, data in corpus:
            if scanner.wants(path, len(data)):
                found += len(scanner.scan(path, data))
        return found

    wanted = sum(len(d) for p, d in corpus if scanner.wants(p, len(d)))
    mb = 1e6
    return {
        "backend": backend,
        "prefilter_mb_s": round(size / mb / best_of(repeat, prefilter), 1),
        "scan_all_mb_s": round(size / mb / best_of(repeat, scan_all), 1),
        "scan_no_keyword_mb_s": round(no_kw_size / mb / best_of(repeat, scan_no_kw), 1) if no_kw else None,
        "no_keyword_files": len(no_kw),
        "no_keyword_mb": round(no_kw_size / mb, 1),
        "wants_scan_mb_s": round(size / mb / best_of(repeat, wants_scan), 1),
        "wanted_mb": round(wanted / mb, 1),
        "findings_all": scan_all(),
        "findings_wanted": wants_scan(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/usr/share"))
    parser.add_argument("--limit-mb", type=int, default=300, help="read at most this much text")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=available_backends(), action="append")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    corpus = load_corpus(args.root, args.limit_mb * 1_000_000)
    size = sum(len(d) for _, d in corpus)
    print(f"corpus: {len(corpus)} text files, {size / 1e6:.1f} MB from {args.root}")
    results = [bench_backend(b, corpus, args.repeat) for b in (args.backend or available_backends())]
    header = f"{'backend':<13}{'prefilter':>11}{'scan/all':>10}{'scan/no-kw':>12}{'wants+scan':>12}  findings"
    print(header)
    for r in results:
        no_kw = "-" if r["scan_no_keyword_mb_s"] is None else f"{r['scan_no_keyword_mb_s']}"
        print(
            f"{r['backend']:<13}{r['prefilter_mb_s']:>11}{r['scan_all_mb_s']:>10}{no_kw:>12}{r['wants_scan_mb_s']:>12}"
            f"  {r['findings_all']} (wanted paths: {r['findings_wanted']})"
        )
    print(
        f"MB/s; no-keyword subset: {results[0]['no_keyword_files']} files, {results[0]['no_keyword_mb']} MB; "
        f"wanted by path: {results[0]['wanted_mb']} MB"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"root": str(args.root), "files": len(corpus), "mb": round(size / 1e6, 1), "results": results}, indent=2
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
