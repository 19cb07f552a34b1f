"""NVD ingest: real CVE API 2.0 pages (tests/assets/nvd), CVSS scores checked against NVD's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vulndb_fuzz import mutated_json

from garrison.core.errors import InputError
from garrison.model import Severity
from garrison.vulndb.ingest import nvd
from garrison.vulndb.records import Advisory
from garrison.vulndb.scoring import score_vector, severity_of

PAGES = ["full-page.json", "single-entry.json"]


@pytest.fixture(scope="module")
def pages(assets_dir: Path) -> dict[str, Any]:
    return {name: json.loads((assets_dir / "nvd" / name).read_text()) for name in PAGES}


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in PAGES])
def test_page_records(assets_dir: Path, pages: dict[str, Any], name: str) -> None:
    doc = pages[name]
    advisories = list(nvd.read_nvd(assets_dir / "nvd" / name))
    assert [a.id for a in advisories] == [v["cve"]["id"] for v in doc["vulnerabilities"]]
    for adv, item in zip(advisories, doc["vulnerabilities"], strict=True):
        cve = item["cve"]
        assert adv.details == "\n".join(d["value"] for d in cve["descriptions"] if d["lang"] == "en")
        assert adv.published == cve["published"] and adv.modified == cve["lastModified"]
        vectors = [(m["cvssData"]["vectorString"], m["source"]) for key in ("cvssMetricV40", "cvssMetricV31",
                   "cvssMetricV30", "cvssMetricV2") for m in cve.get("metrics", {}).get(key, [])]  # fmt: skip
        assert [(s.value, s.source) for s in adv.severities] == [
            (v, "nvd" if src == "nvd@nist.gov" else src) for v, src in vectors
        ]
        cwes = {
            d["value"] for w in cve.get("weaknesses", []) for d in w["description"] if d["value"].startswith("CWE-")
        }
        assert set(adv.cwes) == cwes


def test_scores_agree_with_nvd(pages: dict[str, Any]) -> None:
    checked = 0
    for doc in pages.values():
        for item in doc["vulnerabilities"]:
            for key in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"):
                for metric in item["cve"].get("metrics", {}).get(key, []):
                    data = metric["cvssData"]
                    scored = score_vector("", data["vectorString"])
                    assert scored is not None
                    assert scored == (data["version"], data["baseScore"])
                    word = data.get("baseSeverity") or metric.get("baseSeverity")
                    assert severity_of(scored[0], scored[1]) is Severity.parse(word)
                    checked += 1
    assert checked >= 40


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        pytest.param({"vulnerabilities": {}}, "vulnerabilities must be a list", id="vulns-dict"),
        pytest.param({"vulnerabilities": [{"cve": {}}]}, "cve.id", id="no-id"),
        pytest.param(
            {"vulnerabilities": [{"cve": {"id": "CVE-1", "metrics": "x"}}]}, "metrics must be an object", id="metrics"
        ),
        pytest.param({"x": 1}, "neither", id="unknown"),
    ],
)
def test_malformed_nvd(doc: Any, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        list(nvd.parse_nvd(doc, "nvd.json"))


def test_rejected_cve_is_withdrawn(pages: dict[str, Any]) -> None:
    item = json.loads(json.dumps(pages["single-entry.json"]["vulnerabilities"][0]))
    item["cve"]["vulnStatus"] = "Rejected"
    adv = nvd.parse_cve_v2(item, "x")
    assert adv.withdrawn == item["cve"]["lastModified"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_nvd(pages: dict[str, Any], data: Any) -> None:
    small = dict(pages["full-page.json"])
    small["vulnerabilities"] = small["vulnerabilities"][:4]
    doc = data.draw(mutated_json([small, pages["single-entry.json"]]))
    try:
        out = list(nvd.parse_nvd(doc, "nvd.json"))
    except InputError:
        return
    assert all(isinstance(a, Advisory) for a in out)


def test_legacy_feed_layout_reads_like_the_api(pages: dict[str, Any]) -> None:
    """The 1.1 feed carries the same record in another layout: the API record rearranged into
    it must read back the same (no 1.1 file from NVD is in the test assets)."""
    cve = pages["single-entry.json"]["vulnerabilities"][0]["cve"]
    v31 = next(m for m in cve["metrics"]["cvssMetricV31"] if m["source"] == "nvd@nist.gov")
    v2 = next(m for m in cve["metrics"]["cvssMetricV2"] if m["source"] == "nvd@nist.gov")
    legacy = {
        "CVE_data_type": "CVE",
        "CVE_Items": [
            {
                "cve": {
                    "CVE_data_meta": {"ID": cve["id"]},
                    "problemtype": {"problemtype_data": [{"description": w["description"]} for w in cve["weaknesses"]]},
                    "references": {"reference_data": [{"url": r["url"]} for r in cve["references"]]},
                    "description": {"description_data": cve["descriptions"]},
                },
                "impact": {"baseMetricV3": {"cvssV3": v31["cvssData"]}, "baseMetricV2": {"cvssV2": v2["cvssData"]}},
                "publishedDate": cve["published"],
                "lastModifiedDate": cve["lastModified"],
            }
        ],
    }
    assert nvd.looks_like_nvd(legacy)
    (old,) = nvd.parse_nvd(legacy, "nvdcve-1.1-2022.json")
    (new,) = nvd.parse_nvd(pages["single-entry.json"], "page.json")
    assert (old.id, old.details, old.cwes, old.references) == (new.id, new.details, new.cwes, new.references)
    assert [(s.kind, s.value) for s in old.severities] == [
        (s.kind, s.value) for s in new.severities if s.source == "nvd"
    ]
