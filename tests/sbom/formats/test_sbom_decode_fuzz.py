"""Fuzzing the decoders with truncated, byte-mutated and structurally mutated real SBOMs.

Whatever the input, decoding returns a result or raises InputError: never another exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.model import Artifact, ArtifactKind, OperatingSystem, Package, ScanResult
from garrison.model.purl import assign_purls
from garrison.report import render_sbom
from garrison.sbom.formats import decode_sbom_bytes

DATA = Path(__file__).resolve().parent / "data"


def _ours() -> list[bytes]:
    os_ = OperatingSystem("debian", "12", codename="bookworm")
    pkgs = [
        Package("openssl", "3.0.11-1~deb12u2", "deb", path="var/lib/dpkg/status", layer="sha256:" + "1" * 64,
                source_name="openssl", arch="amd64", licenses=("Apache-2.0",)),
        Package("@babel/core", "7.23.2", "npm", path="app/package-lock.json", dev=True, licenses=("MIT",)),
        Package("Jinja2", "3.1.2", "pypi", path="app/requirements.txt", licenses=("BSD-3-Clause", "Custom licence")),
    ]
    assign_purls(pkgs, os_)
    result = ScanResult(Artifact("img:1", ArtifactKind.DOCKER_ARCHIVE, digest="sha256:" + "2" * 64, repo_tags=("img:1",)),
                        packages=pkgs, os=os_, created="2024-01-01T00:00:00Z", tool_version="0.1.0")
    return [render_sbom(result, "cyclonedx").encode(), render_sbom(result, "spdx-json").encode()]


SEEDS = [p.read_bytes() for p in sorted(DATA.glob("*.json"))] + _ours()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _decode(data: bytes) -> None:
    try:
        artifact, packages, _ = decode_sbom_bytes(data, "fuzz.json")
    except InputError as exc:
        assert str(exc).startswith("fuzz.json: ")
        return
    assert artifact.name == "fuzz.json"
    assert all(isinstance(p, Package) and isinstance(p.name, str) and isinstance(p.version, str) for p in packages)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(seed=st.sampled_from(SEEDS), cut=st.floats(0, 1))
def test_truncated(seed: bytes, cut: float) -> None:
    _decode(seed[: int(len(seed) * cut)])


@FUZZ
@given(seed=st.sampled_from(SEEDS), edits=st.lists(st.tuples(st.floats(0, 1), st.binary(max_size=4)), min_size=1, max_size=6))
def test_byte_mutations(seed: bytes, edits: list[tuple[float, bytes]]) -> None:
    data = bytearray(seed)
    for where, new in edits:
        i = int(where * (len(data) - 1))
        data[i : i + len(new)] = new
    _decode(bytes(data))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_structural_mutations(seed: bytes, data: st.DataObject) -> None:
    doc = json.loads(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        value = data.draw(json_values)
        if not path:
            doc = value
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    _decode(json.dumps(doc).encode())
