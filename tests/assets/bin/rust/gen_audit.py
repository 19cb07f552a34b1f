"""Encode `cargo metadata` output as cargo-auditable's audit data (JSON, then zlib).

A port of cargo-auditable's `encode_audit_data` (cargo-auditable/src/auditable_from_metadata.rs):
walk the resolve graph from the root crate, give each package the strongest dependency kind on
any path to it (a runtime dependency of a build dependency is a build dependency), drop
development-only packages, sort by name then package id, and record dependencies by index.
Output fields follow auditable-serde: `kind` omitted for runtime, `dependencies` omitted when
empty, `root` omitted when false; `format` 1 (metadata-based, proc-macros as build deps).

usage: gen_audit.py METADATA_JSON OUT_JSON OUT_ZLIB
"""

import json
import sys
import zlib

DEV, BUILD, RUNTIME = 0, 1, 2
KINDS = {None: RUNTIME, "normal": RUNTIME, "build": BUILD, "dev": DEV}
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


def strongest(dep_kinds):
    return max((KINDS[k["kind"]] for k in dep_kinds), default=RUNTIME)


def source(src):
    if src is None:
        return "local"
    if src == CRATES_IO:
        return "crates.io"
    return src.split("+", 1)[0]


def main(meta_path, out_json, out_zlib):
    meta = json.load(open(meta_path))
    root = meta["resolve"]["root"]
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    kind = {root: RUNTIME}
    queue = [nodes[root]]
    while queue:
        nxt = []
        for parent in queue:
            for child in parent["deps"]:
                k = min(strongest(child["dep_kinds"]), kind[parent["id"]])
                if child["pkg"] not in kind or k > kind[child["pkg"]]:
                    kind[child["pkg"]] = k
                    nxt.append(nodes[child["pkg"]])
        queue = nxt
    pkgs = [p for p in meta["packages"] if kind.get(p["id"], DEV) != DEV]
    pkgs.sort(key=lambda p: (p["name"], p["id"]))
    index = {p["id"]: i for i, p in enumerate(pkgs)}
    out = []
    for p in pkgs:
        entry = {"name": p["name"], "version": p["version"], "source": source(p["source"])}
        if kind[p["id"]] == BUILD:
            entry["kind"] = "build"
        deps = sorted(index[d["pkg"]] for d in nodes[p["id"]]["deps"] if strongest(d["dep_kinds"]) != DEV)
        if deps:
            entry["dependencies"] = deps
        if p["id"] == root:
            entry["root"] = True
        out.append(entry)
    data = json.dumps({"format": 1, "packages": out}, separators=(",", ":")).encode()
    open(out_json, "wb").write(data)
    open(out_zlib, "wb").write(zlib.compress(data, 9))


if __name__ == "__main__":
    main(*sys.argv[1:4])
