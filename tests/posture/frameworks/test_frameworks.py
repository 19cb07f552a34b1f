"""Framework files: schema, resolution of check references, cross-check with Trivy's mappings, scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import GarrisonError
from garrison.model import Severity
from garrison.posture import frameworks as fw
from garrison.posture.model import Control, ControlResult, Subject, Verdict

EXPECTED = {
    "cis-k8s-1.12",
    "nsa-cisa",
    "mitre-attack-containers",
    "pss",
    "nist-800-190",
    "nist-800-53",
    "pci-dss-4.0",
    "hipaa",
    "soc2",
    "gdpr",
}


def test_every_framework_loads() -> None:
    every = fw.available()
    assert set(every) == EXPECTED
    for f in every.values():
        assert f.controls, f.id
        assert len({c.id for c in f.controls}) == len(f.controls)


def test_cis_covers_kube_bench_ids(conformance_dir: Path) -> None:
    """Every check of kube-bench's cis-1.12 definitions is a control of the CIS framework."""
    cis = fw.available()["cis-k8s-1.12"]
    ids = {c.id for c in cis.controls}
    upstream: set[str] = set()
    for path in sorted((conformance_dir / "posture" / "kube-bench" / "cfg" / "cis-1.12").glob("*.yaml")):
        if path.name == "config.yaml":
            continue
        doc = yaml.safe_load(path.read_text())
        upstream |= {str(c["id"]) for g in doc["groups"] for c in g["checks"]}
    assert upstream == ids
    node = [c for c in cis.controls if not c.id.startswith("5.")]
    assert all(c.checks == (f"CIS-1.12-{c.id}",) for c in node)


def test_resolution_rate_and_missing_references() -> None:
    """Most check references resolve to controls; the unresolved ones are listed, not dropped."""
    total = resolved = 0
    missing: dict[str, list[str]] = {}
    for f in fw.available().values():
        for res in fw.resolve(f):
            total += len(res.control.checks)
            resolved += len(res.control.checks) - len(res.unresolved)
            if res.unresolved:
                missing.setdefault(f.id, []).extend(res.unresolved)
    rate = resolved / total
    print(f"resolved {resolved}/{total} references; unresolved: {missing}")
    assert rate >= 0.95, missing


def test_control_declared_mappings_name_existing_framework_controls() -> None:
    for f in fw.available().values():
        assert fw.undeclared_mappings(f) == [], f.id


def _trivy_ids(conformance_dir: Path, name: str) -> dict[str, set[str]]:
    doc = yaml.safe_load((conformance_dir / "posture" / "trivy-compliance" / name).read_text())
    return {
        str(c["id"]): {fw.normalize_peer("trivy", x["id"]) for x in c.get("checks") or []}
        for c in doc["spec"]["controls"]
    }


def test_nsa_cross_check_with_trivy(conformance_dir: Path) -> None:
    """Our NSA-CISA controls carry Trivy's KSV check for the same control id."""
    ours = {c.id: c for c in fw.available()["nsa-cisa"].controls}
    for cid, ksv in _trivy_ids(conformance_dir, "k8s-nsa-1.0.yaml").items():
        wanted = {k for k in ksv if k.startswith("KSV")}
        have = {fw.normalize_peer("trivy", c.split(":", 1)[1]) for c in ours[cid].checks if c.startswith("trivy:")}
        assert wanted <= have, cid


def test_pss_cross_check_with_trivy(conformance_dir: Path) -> None:
    pss = fw.available()["pss"]
    have = {
        fw.normalize_peer("trivy", chk.split(":", 1)[1])
        for c in pss.controls
        for chk in c.checks
        if chk.startswith("trivy:")
    }
    for name in ("k8s-pss-baseline-0.1.yaml", "k8s-pss-restricted-0.1.yaml"):
        for cid, ksv in _trivy_ids(conformance_dir, name).items():
            assert ksv <= have, (name, cid)


def test_pss_framework_resolves_to_engine_controls() -> None:
    from garrison.posture.k8s.pss.engine import CHECKS

    resolved = {cid for r in fw.resolve(fw.available()["pss"]) for cid in r.checks}
    for chk in CHECKS:
        assert f"PSS-{chk.level}-{chk.id}" in resolved


def test_normalize_peer() -> None:
    assert fw.normalize_peer("trivy", "AVD-KSV-0017") == fw.normalize_peer("trivy", "KSV017") == "KSV17"
    assert fw.normalize_peer("trivy", "KSV01010") == "KSV1010"
    assert fw.normalize_peer("checkov", "ckv_k8s_16") == "CKV_K8S_16"


def test_unknown_framework_is_an_error() -> None:
    with pytest.raises(fw.FrameworkError, match="unknown framework"):
        fw.load(["nope"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("framework: [", "invalid YAML"),
        ("x: 1", "missing 'framework'"),
        ("framework: {id: a, title: t, version: '1', controls: []}", "non-empty"),
        ("framework: {id: a, title: t, version: '1', controls: [{id: x, title: t, checks: ['foo:BAR']}]}", "peer"),
        ("framework: {id: a, title: t, version: '1', controls: [{id: x, title: t}, {id: x, title: u}]}", "duplicate"),
        ("framework: {id: a, title: t, version: '1', controls: [{id: x, title: t, manual: 3}]}", "manual"),
        ("framework: {id: a, title: t, version: '1', controls: [{id: x, title: t, severity: huge}]}", "severity"),
    ],
)
def test_schema_errors_name_the_input(text: str, message: str) -> None:
    with pytest.raises(fw.FrameworkError, match=message) as err:
        fw.parse_framework(text, "bad.yaml")
    assert "bad.yaml" in str(err.value)
    assert "\n" not in str(err.value)


_REAL = (Path(fw.__file__).parent / "nsa-cisa.yaml").read_text()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_REAL)), st.binary(max_size=8), st.integers(0, len(_REAL)))
def test_fuzz_parse_framework(cut: int, junk: bytes, at: int) -> None:
    text = _REAL[:cut]
    text = text[:at] + junk.decode("latin-1") + text[at:]
    try:
        f = fw.parse_framework(text, "fuzz.yaml")
    except GarrisonError:
        return
    assert f.id


def _ctl(cid: str, **kw: object) -> Control:
    return Control(id=cid, title=cid, severity=Severity.HIGH, **kw)  # type: ignore[arg-type]


def _res(ctl: Control, verdict: Verdict, ns: str = "a", name: str = "x") -> ControlResult:
    return ControlResult(ctl, Subject("Pod", name, ns), verdict)


def test_scores_per_framework_and_namespace() -> None:
    a = _ctl("A-1", references={"checkov": ("CKV_K8S_1",)})
    b = _ctl("B-1", frameworks={"t": ("c2",)})
    c = _ctl("C-1")
    text = """framework:
  id: t
  title: Test
  version: "1"
  controls:
  - {id: c1, title: one, checks: ["checkov:CKV_K8S_1"]}
  - {id: c2, title: two}
  - {id: c3, title: three, checks: [C-1]}
  - {id: c4, title: four, checks: [MISSING-1]}
  - {id: c5, title: five, checks: [C-1], manual: true}
"""
    f = fw.parse_framework(text, "t.yaml")
    controls = {x.id: x for x in (a, b, c)}
    results = [
        _res(a, Verdict.PASS, "a"),
        _res(a, Verdict.FAIL, "b"),
        _res(b, Verdict.PASS, "a"),
        _res(b, Verdict.PASS, "b"),
        _res(c, Verdict.SKIP, "a"),
    ]
    s = fw.score(f, results, controls)
    status = {c.control.id: c.status for c in s.controls}
    assert status == {"c1": "fail", "c2": "pass", "c3": "not-assessed", "c4": "manual", "c5": "manual"}
    assert (s.total.passed, s.total.failed, s.total.manual, s.total.not_assessed) == (1, 1, 2, 1)
    assert s.total.score == 50.0
    assert s.namespaces["a"].score == 100.0
    assert s.namespaces["b"].score == 50.0
    unresolved = {r.control.id: r.unresolved for r in fw.resolve(f, controls)}
    assert unresolved["c4"] == ("MISSING-1",)
