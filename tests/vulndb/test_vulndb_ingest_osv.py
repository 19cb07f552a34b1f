"""OSV ingest against the real osv.dev-layout snapshots (PyPI, Go, crates.io, AlmaLinux)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vulndb_fuzz import mutated_bytes, mutated_json

from garrison.core.errors import InputError
from garrison.vulndb.ecosystems import normalise_name
from garrison.vulndb.ingest import osv
from garrison.vulndb.records import Advisory

ECOSYSTEMS = ["PyPI", "Go", "crates.io", "AlmaLinux"]


def _docs(zip_path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(zip_path) as zf:
        return {n: json.loads(zf.read(n)) for n in zf.namelist() if n.endswith(".json")}


@pytest.fixture(scope="module")
def raw(advisories_dir: Path) -> dict[str, dict[str, Any]]:
    return {eco: _docs(advisories_dir / "osv" / eco / "all.zip") for eco in ECOSYSTEMS}


@pytest.mark.parametrize("eco", [pytest.param(e, id=e) for e in ECOSYSTEMS])
def test_every_record_is_read(advisories_dir: Path, raw: dict[str, dict[str, Any]], eco: str) -> None:
    advisories = list(osv.read_osv(advisories_dir / "osv" / eco / "all.zip"))
    docs = raw[eco]
    assert len(advisories) == len(docs)
    by_id = {a.id: a for a in advisories}
    assert set(by_id) == {d["id"] for d in docs.values()}
    assert {a.id for a in advisories if a.withdrawn} == {d["id"] for d in docs.values() if "withdrawn" in d}
    for doc in docs.values():
        adv = by_id[doc["id"]]
        assert adv.feed == f"osv:{eco}"
        named = [(a["package"]["ecosystem"], a["package"]["name"]) for a in doc.get("affected", [])]
        assert [(a.ecosystem, a.package) for a in adv.affected] == [(e, normalise_name(e, n)) for e, n in named]
        for aff, raw_aff in zip(adv.affected, doc.get("affected", []), strict=True):
            assert aff.versions == raw_aff.get("versions", [])
            assert [r.type for r in aff.ranges] == [r["type"] for r in raw_aff.get("ranges", [])]
            raw_events = [[(k, v) for e in r["events"] for k, v in e.items()] for r in raw_aff.get("ranges", [])]
            assert [r.events for r in aff.ranges] == raw_events
        for alias in doc.get("aliases", []):
            assert alias in adv.aliases


def test_cvss_and_severity_fields_are_kept(raw: dict[str, dict[str, Any]]) -> None:
    docs = [d for d in raw["crates.io"].values() if d.get("severity")]
    assert docs, "the crates.io snapshot has CVSS vectors"
    for doc in docs[:50]:
        adv = osv.parse_record(doc, doc["id"])
        assert [(s.kind, s.value) for s in adv.severities] == [(s["type"], s["score"]) for s in doc["severity"]]
        assert all(s.source == "osv:crates.io" for s in adv.severities)


def test_go_ecosystem_specific_and_zero_times(raw: dict[str, dict[str, Any]]) -> None:
    doc = next(
        d for d in raw["Go"].values() if any(a.get("ecosystem_specific", {}).get("imports") for a in d["affected"])
    )
    adv = osv.parse_record(doc, doc["id"])
    assert adv.affected[0].ecosystem_specific == doc["affected"][0]["ecosystem_specific"]
    assert adv.url == doc["database_specific"]["url"]


def test_almalinux_related_cves_are_linked(raw: dict[str, dict[str, Any]]) -> None:
    doc = next(d for d in raw["AlmaLinux"].values() if d.get("related"))
    adv = osv.parse_record(doc, doc["id"])
    assert adv.related == doc["related"] and adv.aliases == []
    assert adv.url.startswith("https://errata.almalinux.org/")


def _readme_schema_failures(advisories_dir: Path) -> set[str]:
    text = (advisories_dir / "README.md").read_text()
    section = text[text.index("Schema check") :]
    section = section[: section.index("## ")]
    return set(re.findall(r"`(PYSEC-\d+-\d+)`", section))


def test_schema_sample_and_known_failures(advisories_dir: Path, raw: dict[str, dict[str, Any]]) -> None:
    schema = json.loads((advisories_dir / "osv" / "schema" / "schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    failing = _readme_schema_failures(advisories_dir)
    assert len(failing) == 7
    pypi = {d["id"]: d for d in raw["PyPI"].values()}
    for vid in sorted(failing):
        assert not validator.is_valid(pypi[vid]), vid
        adv = osv.parse_record(pypi[vid], vid)  # still imported: only GIT fixed values are odd
        assert adv.affected
    for eco in ECOSYSTEMS:
        sample = [d for i, d in enumerate(sorted(raw[eco].values(), key=lambda d: d["id"])) if i % 97 == 0]
        for doc in sample:
            if doc["id"] in failing:
                continue
            validator.validate(doc)
            assert isinstance(osv.parse_record(doc, doc["id"]), Advisory)


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        pytest.param([], "record must be an object", id="not-object"),
        pytest.param({"modified": "x"}, "id must be a non-empty string", id="no-id"),
        pytest.param({"id": "X-1", "affected": {}}, "affected must be a list", id="affected-dict"),
        pytest.param({"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": 0}]}]}]},
                     "introduced must be a non-empty string", id="event-int"),
        pytest.param({"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"bogus": "1"}]}]}]},
                     "has no introduced", id="event-unknown"),
        pytest.param({"id": "X-1", "aliases": "CVE-1"}, "aliases must be a list", id="aliases-str"),
    ],
)  # fmt: skip
def test_malformed_records_raise_input_error(doc: Any, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment) as err:
        osv.parse_record(doc, "rec.json")
    assert str(err.value).startswith("rec.json: ")
    assert "\n" not in str(err.value)


def test_directory_of_records(tmp_path: Path, raw: dict[str, dict[str, Any]]) -> None:
    docs = sorted(raw["PyPI"].values(), key=lambda d: d["id"])[:20]
    for doc in docs:
        (tmp_path / f"{doc['id']}.json").write_text(json.dumps(doc))
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "x.json").write_text(json.dumps(docs[0] | {"id": "PYSEC-NESTED-1"}))
    got = [a.id for a in osv.read_osv(tmp_path)]
    assert sorted(got) == sorted([d["id"] for d in docs] + ["PYSEC-NESTED-1"])


@pytest.fixture(scope="module")
def fuzz_docs(raw: dict[str, dict[str, Any]]) -> list[Any]:
    out = []
    for eco in ECOSYSTEMS:
        docs = sorted(raw[eco].values(), key=lambda d: d["id"])
        out.extend(docs[:: max(1, len(docs) // 10)])
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_records(fuzz_docs: list[Any], data: Any) -> None:
    doc = data.draw(mutated_json(fuzz_docs))
    try:
        adv = osv.parse_record(doc, "fuzz.json")
    except InputError as exc:
        assert str(exc).startswith("fuzz.json")
    else:
        assert isinstance(adv, Advisory) and adv.id


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_bytes(fuzz_docs: list[Any], data: Any) -> None:
    blobs = [json.dumps(d).encode() for d in fuzz_docs[:12]]
    blob = data.draw(mutated_bytes(blobs))
    try:
        adv = osv.parse_bytes(blob, "fuzz.json")
    except InputError:
        return
    assert isinstance(adv, Advisory)
