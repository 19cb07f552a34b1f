#!/usr/bin/env python3
"""Pack directories into a docker-archive image (the format `docker save` writes).

Used to build the bundled demo image reproducibly without a container engine: every layer is a
deterministic tar (sorted names, mtime from SOURCE_DATE_EPOCH, root ownership), so the same
inputs always give the same bytes and digests.

    pack.py OUT.tar --tag demo/app:1.0 --layer DIR[=CREATED_BY] [--layer ...] [--env K=V] [--user U]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))


def layer_tar(root: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.mtime = EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--layer", action="append", default=[], help="DIR[=created_by]")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--user", default="")
    ap.add_argument("--cmd", default="")
    args = ap.parse_args()
    created = __import__("datetime").datetime.fromtimestamp(EPOCH, __import__("datetime").UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    blobs: list[tuple[str, bytes]] = []
    history = []
    for spec in args.layer:
        directory, _, created_by = spec.partition("=")
        data = layer_tar(Path(directory))
        digest = hashlib.sha256(data).hexdigest()
        blobs.append((digest, data))
        history.append({"created": created, "created_by": created_by or f"COPY {directory} /"})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *args.env],
                   "User": args.user, "Cmd": args.cmd.split() if args.cmd else None},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d, _ in blobs]},
        "history": history,
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{config_digest}.json", "RepoTags": [args.tag], "Layers": [f"{d}/layer.tar" for d, _ in blobs]}]
    with tarfile.open(args.out, "w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, payload: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mtime = EPOCH
            tar.addfile(info, io.BytesIO(payload))

        for digest, data in blobs:
            add(f"{digest}/layer.tar", data)
        add(f"{config_digest}.json", config_bytes)
        add("manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
        repo, _, tag = args.tag.rpartition(":")
        add("repositories", json.dumps({repo: {tag: blobs[-1][0]}}).encode())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(blobs)} layers)")


if __name__ == "__main__":
    main()
