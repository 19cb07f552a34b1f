"""Posture report renderers: JSON, SARIF (schema-validated), JUnit, PolicyReport and HTML."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from garrison.posture import frameworks as fw
from garrison.posture.model import ControlResult, Verdict
from garrison.posture.report import FORMATS, render
from garrison.posture.report.summary import scores
from garrison.report.validate import validate

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        securityContext:
          privileged: true  # <b>&"quoted"
---
apiVersion: v1
kind: Pod
metadata:
  name: good
  namespace: pay
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: busybox:1.36
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      runAsUser: 10001
      capabilities: {drop: [ALL]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: admins
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "app.yaml").write_text(MANIFEST)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu\nRUN apt-get update\n")
    return tmp_path


@pytest.fixture
def results(tree: Path) -> list[ControlResult]:
    from garrison.cli.posture_report import collect

    return collect([str(tree)])[0]


def test_collect_runs_every_engine(results: list[ControlResult]) -> None:
    families = {r.control.family for r in results}
    assert {"pss", "dockerfile", "workload_security", "rbac"} <= families
    assert any(r.control.id == "PSS-baseline-privileged" and r.verdict is Verdict.FAIL for r in results)
    assert any(r.control.id == "PSS-baseline-privileged" and r.verdict is Verdict.PASS for r in results)


def test_json_is_stable_and_sorted(results: list[ControlResult]) -> None:
    frameworks = fw.load(["pss", "cis-k8s-1.12"])
    one = render("json", results, frameworks)
    two = render("json", list(reversed(results)), frameworks)
    assert one == two
    doc = json.loads(one)
    assert doc["summary"]["verdicts"]["fail"] == sum(1 for r in results if r.verdict is Verdict.FAIL)
    assert [f["id"] for f in doc["frameworks"]] == ["pss", "cis-k8s-1.12"]
    assert doc["frameworks"][0]["score"] == scores(results, frameworks)[0].total.score


def test_sarif_validates_against_schema(results: list[ControlResult]) -> None:
    text = render("sarif", results)
    assert validate(text, "sarif") == []
    doc = json.loads(text)
    run = doc["runs"][0]
    failed = [r for r in results if r.verdict is Verdict.FAIL]
    assert len(run["results"]) == len(failed)
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids == sorted({r.control.id for r in failed})
    priv = next(r for r in run["results"] if r["ruleId"] == "GK-W-001")
    loc = priv["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("app.yaml")
    assert loc["region"]["startLine"] == 17
    rule = run["tool"]["driver"]["rules"][priv["ruleIndex"]]
    assert rule["id"] == "GK-W-001" and "Remediation:" in rule["help"]["text"]


def test_junit_structure(results: list[ControlResult]) -> None:
    root = ET.fromstring(render("junit", results))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert sorted(s.get("name", "") for s in suites) == sorted({r.control.family for r in results})
    cases = {(r.control.id, r.subject.ref) for r in results}
    assert int(root.get("tests", "0")) == len(cases) == len(root.findall(".//testcase"))
    failing = {(r.control.id, r.subject.ref) for r in results if r.verdict is Verdict.FAIL}
    assert int(root.get("failures", "0")) == len(failing) == len(root.findall(".//failure"))
    for suite in suites:
        assert int(suite.get("tests", "0")) == len(suite.findall("testcase"))
    case = next(c for c in root.iter("testcase") if c.get("name", "").startswith("GK-W-001 Deployment/shop/web"))
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "CRITICAL"


def test_policyreport(results: list[ControlResult]) -> None:
    docs = list(yaml.safe_load_all(render("policyreport", results)))
    kinds = {(d["kind"], d["metadata"].get("namespace", "")) for d in docs}
    assert kinds == {("PolicyReport", "shop"), ("PolicyReport", "pay"), ("ClusterPolicyReport", "")}
    for d in docs:
        assert d["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
        assert set(d["summary"]) == {"pass", "fail", "warn", "error", "skip"}
        assert sum(d["summary"].values()) == len(d["results"])
        for item in d["results"]:
            assert item["result"] in {"pass", "fail", "skip", "error"}
            assert item["severity"] in {"critical", "high", "medium", "low", "info"}
            assert isinstance(item["scored"], bool)
            assert item["resources"] and item["policy"] and item["rule"]
    shop = next(d for d in docs if d["metadata"].get("namespace") == "shop")
    assert any(i["rule"] == "GK-W-001" and i["result"] == "fail" for i in shop["results"])
    json.dumps(docs)  # JSON-representable as well


class _Scores(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], dict[str, str]] = {}
        self.external: list[str] = []
        self._row: tuple[str, str] | None = None
        self._in_score = False
        self.shown: dict[tuple[str, str], str] = {}
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if key in a and not a[key].startswith("#"):
                self.external.append(a[key])
        if tag == "link":
            self.external.append(a.get("href", ""))
        if tag == "tr" and ("data-framework" in a or "data-namespace" in a):
            if "data-namespace" in a:
                self._row = ("ns", f"{a['data-of']}/{a['data-namespace']}")
            else:
                self._row = ("fw", a["data-framework"])
            self.rows[self._row] = a
        if tag == "td" and a.get("class") == "score" and self._row:
            self._in_score = True

    def handle_data(self, data: str) -> None:
        if self._in_score and self._row:
            self.shown[self._row] = data.strip()
            self._in_score = False


def test_html_numbers_match_scores(results: list[ControlResult]) -> None:
    frameworks = fw.load(["cis-k8s-1.12", "pss", "nsa-cisa"])
    text = render("html", results, frameworks)
    parser = _Scores()
    parser.feed(text)
    assert parser.external == [] and parser.scripts == 0
    assert "@media print" in text and "<svg" in text
    assert "<b>&" not in text  # escaped
    for s in scores(results, frameworks):
        row = parser.rows[("fw", s.framework.id)]
        assert row["data-passed"] == str(s.total.passed)
        assert row["data-failed"] == str(s.total.failed)
        assert parser.shown[("fw", s.framework.id)] == f"{s.total.score:.1f}%"
        assert s.namespaces
        for ns, ns_score in s.namespaces.items():
            want = "n/a" if ns_score.score is None else f"{ns_score.score:.1f}%"
            assert parser.shown[("ns", f"{s.framework.id}/{ns}")] == want
            assert parser.rows[("ns", f"{s.framework.id}/{ns}")]["data-failed"] == str(ns_score.failed)
    failed = sum(1 for r in results if r.verdict is Verdict.FAIL)
    assert f'id="total-failed" data-value="{failed}"' in text
    for sev in ("CRITICAL", "HIGH"):
        assert f'href="#show-{sev}"' in text and f'id="show-{sev}"' in text


def test_html_renders_headless(results: list[ControlResult], tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(render("html", results, fw.load(["pss"])))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("GARRISON_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (GARRISON_REQUIRE_CHROMIUM=1): apt-get install -y chromium")
        assert html.stat().st_size > 0  # what can be checked without a browser
        return
    pdf = tmp_path / "report.pdf"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={pdf}", html.as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert pdf.exists() and pdf.stat().st_size > 1000, proc.stderr[-2000:]
    assert pdf.read_bytes()[:5] == b"%PDF-"


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from garrison.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_cli_report_and_frameworks(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in FORMATS:
        out = tmp_path / f"r.{fmt}"
        code, _, err = _main(
            ["posture", "report", str(tree), "--framework", "pss,nsa-cisa", "-f", fmt, "-o", str(out)], capsys
        )
        assert code == 1, err
        assert out.stat().st_size > 0
    code, _, err = _main(["posture", "report", str(tree), "--framework", "nope"], capsys)
    assert code == 2 and "unknown framework" in err and len(err.strip().splitlines()) == 1
    code, out_text, _ = _main(["posture", "frameworks", "-f", "json"], capsys)
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out_text)}
    assert rows["cis-k8s-1.12"]["controls"] == 131


def test_cli_baseline_flow(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.json"
    code, _, _ = _main(["posture", "report", str(tree), "-f", "json", "--write-baseline", str(base)], capsys)
    assert code == 1 and base.exists()
    code, out_text, err = _main(["posture", "report", str(tree), "-f", "json", "--baseline", str(base)], capsys)
    assert code == 0, err
    doc = json.loads(out_text)
    assert doc["summary"]["verdicts"]["fail"] == 0
    assert doc["summary"]["verdicts"]["skip"] > 0
