"""Alpine secdb ingest: the real alpine-secdb YAML files and their JSON form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vulndb_fuzz import mutated_bytes

from garrison.core.errors import InputError
from garrison.vulndb.ingest import alpine
from garrison.vulndb.records import NOT_AFFECTED, Advisory


def _files(advisories_dir: Path) -> list[Path]:
    return sorted((advisories_dir / "alpine").rglob("*.yaml"))


def test_every_secfix_becomes_an_entry(advisories_dir: Path) -> None:
    files = _files(advisories_dir)
    assert len(files) == 20
    for path in files:
        doc = yaml.load(path.read_bytes(), Loader=yaml.BaseLoader)
        expected = set()
        for item in doc.get("packages") or []:
            for version, ids in (item["pkg"].get("secfixes") or {}).items():
                for entry in ids or []:
                    first = entry.split()[0] if entry.split() else None
                    if first:
                        primary = next((t for t in entry.split() if t.startswith("CVE-")), first)
                        expected.add((item["pkg"]["name"], version, primary))
        got = set()
        for adv in alpine.read_secdb(path):
            assert adv.feed == f"alpine-secdb:{doc['distroversion']}/{doc['reponame']}"
            for aff in adv.affected:
                assert aff.ecosystem == f"Alpine:{doc['distroversion']}"
                if aff.status == NOT_AFFECTED:
                    assert aff.ranges == []
                    got.add((aff.package, "0", adv.id))
                else:
                    assert aff.ranges[0].events == [("introduced", "0"), ("fixed", aff.fixed[0])]
                    got.add((aff.package, aff.fixed[0], adv.id))
        assert got == expected, path


def test_xsa_ids_are_aliases(advisories_dir: Path) -> None:
    path = advisories_dir / "alpine" / "v3.11" / "main.yaml"
    text = path.read_text()
    assert "XSA-" in text
    advs = list(alpine.read_secdb(path))
    with_xsa = [a for a in advs if any(x.startswith("XSA-") for x in a.aliases)]
    assert with_xsa and all(a.id.startswith("CVE-") for a in with_xsa)
    assert any(a.id.startswith("XSA-") for a in advs)  # an XSA without a CVE is its own id


def test_never_affected_key(advisories_dir: Path) -> None:
    path = advisories_dir / "alpine" / "v3.8" / "main.yaml"
    doc = yaml.load(path.read_bytes(), Loader=yaml.BaseLoader)
    zero = {(i["pkg"]["name"], cve) for i in doc["packages"] for v, ids in (i["pkg"].get("secfixes") or {}).items()
            if v == "0" for cve in ids}  # fmt: skip
    assert zero
    got = {(a.package, adv.id) for adv in alpine.read_secdb(path) for a in adv.affected if a.status == NOT_AFFECTED}
    assert got == zero


@pytest.mark.parametrize(
    "rel",
    [pytest.param("v3.11/main.yaml", id="v3.11-main"), pytest.param("vunnel-sample/v3.15/community.yaml", id="v3.15")],
)
def test_json_form_reads_the_same(advisories_dir: Path, tmp_path: Path, rel: str) -> None:
    src = advisories_dir / "alpine" / rel
    doc = yaml.load(src.read_bytes(), Loader=yaml.BaseLoader)
    target = tmp_path / src.parent.name / "main.json"
    target.parent.mkdir()
    target.write_text(json.dumps(doc))

    def flat(advs: list[Advisory]) -> list[tuple[Any, ...]]:
        return [(a.id, tuple(a.aliases), a.feed, tuple((x.ecosystem, x.package, tuple(x.fixed), x.status) for x in a.affected))
                for a in advs]  # fmt: skip

    assert flat(list(alpine.read_secdb(target))) == flat(list(alpine.read_secdb(src)))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("packages: []\n", "no distroversion", id="no-release"),
        pytest.param("distroversion: v3.1\npackages: {}\n", "packages must be a list", id="packages-dict"),
        pytest.param("distroversion: v3.1\npackages:\n  - pkg: {secfixes: {}}\n", "name must be", id="no-name"),
        pytest.param(
            "distroversion: v3.1\npackages:\n  - pkg: {name: a, secfixes: {1.0-r0: {x: y}}}\n",
            "must be a list",
            id="ids-dict",
        ),
        pytest.param("distroversion: [v3\n", "invalid YAML", id="broken-yaml"),
    ],
)
def test_malformed_secdb(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        list(alpine.parse_secdb(alpine.load_document(text.encode(), "main.yaml"), "main.yaml"))


@pytest.fixture(scope="module")
def yaml_blobs(advisories_dir: Path) -> list[bytes]:
    return [p.read_bytes()[:5000] for p in _files(advisories_dir)[:6]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_secdb_yaml(yaml_blobs: list[bytes], data: Any) -> None:
    blob = data.draw(mutated_bytes(yaml_blobs))
    try:
        out = list(alpine.parse_secdb(alpine.load_document(blob, "main.yaml"), "main.yaml", "v3.9"))
    except InputError as exc:
        assert str(exc).startswith("main.yaml")
        return
    assert all(isinstance(a, Advisory) for a in out)
