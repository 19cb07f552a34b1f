"""Ignore files (justification, owner, expiry) and VEX documents."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from garrison.core.errors import InputError
from garrison.model import Finding, FindingKind, Package, Severity, Vulnerability, VulnMatch
from garrison.scan.suppress import apply_suppressions, load_ignore_file, load_vex

PURL = "pkg:pypi/requests@2.19.1"


def finding(vid: str = "PYSEC-2018-28", aliases: tuple[str, ...] = ("CVE-2018-18074",)) -> Finding:
    pkg = Package("requests", "2.19.1", "pypi", path="app/requirements.txt", purl=PURL)
    v = Vulnerability(vid, aliases=aliases, severity=Severity.HIGH)
    return Finding(vid, FindingKind.VULNERABILITY, Severity.HIGH, "t", "app", vuln=VulnMatch(v, pkg, "2.19.1"))


def test_yaml_ignore_file_with_alias_purl_and_owner(tmp_path: Path) -> None:
    f = tmp_path / "ignore.yaml"
    f.write_text(
        "vulnerabilities:\n"
        "  - id: CVE-2018-18074\n"
        "    purls: [pkg:pypi/requests]\n"
        "    justification: proxy auth is not used\n"
        "    owner: platform\n"
        "    expires: 2999-01-01\n"
    )
    items = [finding()]
    assert apply_suppressions(items, load_ignore_file(f)) == []
    assert items[0].suppression is not None
    assert items[0].suppression.justification == "proxy auth is not used (owner: platform)"
    assert items[0].suppression.expires == "2999-01-01"


def test_purl_prefix_respects_boundaries(tmp_path: Path) -> None:
    f = tmp_path / "ignore.yaml"
    f.write_text("vulnerabilities:\n  - id: PYSEC-2018-28\n    purls: [pkg:pypi/request]\n")
    items = [finding()]
    apply_suppressions(items, load_ignore_file(f))
    assert items[0].suppression is None


def test_expired_entry_stops_applying_and_says_so(tmp_path: Path) -> None:
    f = tmp_path / "ignore.yaml"
    f.write_text("vulnerabilities:\n  - id: PYSEC-2018-28\n    expires: 2024-01-31\n")
    items = [finding()]
    warnings = apply_suppressions(items, load_ignore_file(f), today=dt.date(2024, 2, 1))
    assert items[0].suppression is None
    assert len(warnings) == 1 and "expired on 2024-01-31" in warnings[0]


def test_plain_trivyignore(tmp_path: Path) -> None:
    f = tmp_path / ".trivyignore"
    f.write_text("# accepted\nCVE-2018-18074 exp:2999-12-31\n")
    items = [finding()]
    apply_suppressions(items, load_ignore_file(f))
    assert items[0].suppression is not None and items[0].suppression.kind == "ignorefile"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("vulnerabilities: [\n", id="malformed"),
        pytest.param("- a\n- b\n", id="not-a-mapping"),
        pytest.param("vulnerabilities:\n  - justification: x\n", id="no-id"),
        pytest.param("vulnerabilities:\n  - id: X\n    expires: someday\n", id="bad-date"),
    ],
)
def test_bad_ignore_files_give_one_clear_error(tmp_path: Path, content: str) -> None:
    f = tmp_path / "ignore.yaml"
    f.write_text(content)
    with pytest.raises(InputError) as err:
        load_ignore_file(f)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_openvex_not_affected(tmp_path: Path) -> None:
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "security@example.com",
        "timestamp": "2025-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2018-18074"},
                "products": [{"@id": "pkg:oci/web", "subcomponents": [{"@id": PURL}]}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            },
            {"vulnerability": {"name": "CVE-0000-1"}, "products": [{"@id": PURL}], "status": "affected"},
        ],
    }
    f = tmp_path / "doc.openvex.json"
    f.write_text(json.dumps(doc))
    rules = load_vex(f)
    assert len(rules) == 1
    items = [finding()]
    apply_suppressions(items, rules)
    assert items[0].suppression is not None
    assert items[0].suppression.kind == "vex"
    assert items[0].suppression.justification == "vulnerable_code_not_in_execute_path"


def test_cyclonedx_vex(tmp_path: Path) -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [{"bom-ref": "req", "type": "library", "name": "requests", "purl": PURL}],
        "vulnerabilities": [
            {"id": "PYSEC-2018-28", "affects": [{"ref": "req"}], "analysis": {"state": "false_positive", "detail": "no"}}
        ],
    }
    f = tmp_path / "vex.cdx.json"
    f.write_text(json.dumps(doc))
    items = [finding(), finding("PYSEC-OTHER", ())]
    apply_suppressions(items, load_vex(f))
    assert items[0].suppression is not None and items[0].suppression.state == "false_positive"
    assert items[1].suppression is None


def test_vex_rejects_other_documents(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{"hello": 1}')
    with pytest.raises(InputError):
        load_vex(f)
    f.write_text("{")
    with pytest.raises(InputError):
        load_vex(f)
