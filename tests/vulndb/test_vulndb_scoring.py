"""Severity choice (documented preference order) on real CVSS vectors from the NVD pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from garrison.model import Severity
from garrison.vulndb.scoring import SeverityRow, choose, cvss_records, score_vector, severity_word


@pytest.fixture(scope="module")
def metrics(assets_dir: Path) -> list[dict[str, Any]]:
    """Every CVSS metric in the real NVD pages, with NVD's own base severity."""
    out = []
    for name in ("full-page.json", "single-entry.json"):
        doc = json.loads((assets_dir / "nvd" / name).read_text())
        for item in doc["vulnerabilities"]:
            for key, metric_list in item["cve"].get("metrics", {}).items():
                for m in metric_list:
                    out.append({"key": key, **m})
    return out


def _row(metric: dict[str, Any], origin: str, source: str | None = None, primary: bool = False) -> SeverityRow:
    vector = metric["cvssData"]["vectorString"]
    scored = score_vector("", vector)
    assert scored is not None
    return SeverityRow("CVSS_V3", scored[0], vector, scored[1], source or origin, origin, primary)


def _word(metric: dict[str, Any]) -> Severity:
    return Severity.parse(metric["cvssData"].get("baseSeverity") or metric.get("baseSeverity"))


def _distinct(metrics: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """n metrics (v3.1) with pairwise different NVD severities, so the winner is visible."""
    picked: dict[Severity, dict[str, Any]] = {}
    for m in metrics:
        if m["key"] == "cvssMetricV31":
            picked.setdefault(_word(m), m)
    assert len(picked) >= n
    return list(picked.values())[:n]


def test_vendor_cvss_beats_nvd(metrics: list[dict[str, Any]]) -> None:
    vendor, nvd = _distinct(metrics, 2)
    rows = [_row(nvd, "nvd", "nvd", primary=True), _row(vendor, "osv:crates.io")]
    assert choose(rows, "osv:crates.io") == (_word(vendor), "osv:crates.io")


def test_vendor_word_beats_nvd_but_not_vendor_cvss(metrics: list[dict[str, Any]]) -> None:
    vendor, nvd = _distinct(metrics, 2)
    word = next(s for s in (Severity.LOW, Severity.MEDIUM, Severity.HIGH) if s not in (_word(vendor), _word(nvd)))
    nvd_row = _row(nvd, "nvd", "nvd", primary=True)
    assert choose([nvd_row], "debian-tracker", word.name.lower() + "**") == (word, "debian-tracker")
    assert choose([nvd_row, _row(vendor, "debian-tracker")], "debian-tracker", word.name) == (
        _word(vendor),
        "debian-tracker",
    )


def test_nvd_primary_beats_secondary_and_ghsa(metrics: list[dict[str, Any]]) -> None:
    primary, secondary = _distinct(metrics, 2)
    ghsa = SeverityRow("text", "", "CRITICAL", None, "ghsa", "osv:npm")
    rows = [ghsa, _row(secondary, "nvd", "cna@example"), _row(primary, "nvd", "nvd", primary=True)]
    assert choose(rows, "osv:AlmaLinux") == (_word(primary), "nvd")
    assert choose(rows[:2], "osv:AlmaLinux") == (_word(secondary), "cna@example")
    assert choose(rows[:1], "osv:npm") == (Severity.CRITICAL, "ghsa")  # GHSA's word ranks last
    assert choose([], "osv:PyPI") == (Severity.UNKNOWN, "")


def test_newest_cvss_version_wins_within_a_rank(metrics: list[dict[str, Any]]) -> None:
    v2 = next(m for m in metrics if m["key"] == "cvssMetricV2")
    v31 = next(m for m in metrics if m["key"] == "cvssMetricV31" and _word(m) != Severity.parse(v2["baseSeverity"]))
    s2 = score_vector("CVSS_V2", v2["cvssData"]["vectorString"])
    assert s2 == ("2.0", v2["cvssData"]["baseScore"])
    rows = [SeverityRow("CVSS_V2", s2[0], v2["cvssData"]["vectorString"], s2[1], "nvd", "nvd", True),
            _row(v31, "nvd", "nvd", primary=True)]  # fmt: skip
    assert choose(rows, "x")[0] == _word(v31)
    assert len(cvss_records(rows)) == 2


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        pytest.param("low**", Severity.LOW, id="debian-derived"),
        pytest.param("unimportant", Severity.LOW, id="unimportant"),
        pytest.param("not yet assigned", Severity.UNKNOWN, id="nya"),
        pytest.param("MODERATE", Severity.MEDIUM, id="ghsa-moderate"),
        pytest.param("end-of-life", Severity.UNKNOWN, id="eol"),
    ],
)
def test_severity_words(word: str, expected: Severity) -> None:
    assert severity_word(word) is expected


@pytest.mark.parametrize(
    "vector",
    [pytest.param("CVSS:3.1/AV:X", id="bad-v3"), pytest.param("nonsense", id="junk"), pytest.param("", id="empty")],
)
def test_invalid_vectors_are_ignored(vector: str) -> None:
    assert score_vector("CVSS_V3", vector) is None
