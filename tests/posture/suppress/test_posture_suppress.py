"""Suppressions: annotations, inline comments, exceptions file with expiry, baseline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import GarrisonError
from garrison.posture import suppress
from garrison.posture.k8s.controls import run_controls
from garrison.posture.k8s.loader import load_paths
from garrison.posture.k8s.objects import K8sObject
from garrison.posture.model import ControlResult, Verdict

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
{annotations}spec:
  template:
    metadata:
{pod_annotations}      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        securityContext:
          privileged: true
      - name: side
        image: busybox:1.36
        securityContext:
          privileged: true
"""


def _run(tmp_path: Path, text: str, **kw: object) -> tuple[list[ControlResult], suppress.Outcome]:
    path = tmp_path / "app.yaml"
    path.write_text(text)
    objects: list[K8sObject] = list(load_paths([str(path)]).objects)
    results = run_controls(objects, only={"GK-W-001", "GK-W-002"})
    return results, suppress.apply(results, objects=objects, **kw)  # type: ignore[arg-type]


def _verdicts(outcome: suppress.Outcome, cid: str) -> list[Verdict]:
    return [r.verdict for r in outcome.results if r.control.id == cid]


def test_without_suppression_both_containers_fail(tmp_path: Path) -> None:
    _, out = _run(tmp_path, DEPLOY.format(annotations="", pod_annotations=""))
    assert _verdicts(out, "GK-W-001") == [Verdict.FAIL, Verdict.FAIL]
    assert out.suppressed == 0


def test_resource_annotation(tmp_path: Path) -> None:
    ann = '  annotations:\n    garrison.dev/ignore: "GK-W-001"\n    garrison.dev/ignore-reason: CNI needs it\n'
    _, out = _run(tmp_path, DEPLOY.format(annotations=ann, pod_annotations=""))
    skipped = [r for r in out.results if r.control.id == "GK-W-001"]
    assert [r.verdict for r in skipped] == [Verdict.SKIP, Verdict.SKIP]
    assert skipped[0].details["suppression"] == "CNI needs it"
    assert skipped[0].details["suppressed_by"] == "annotation"
    assert Verdict.FAIL in _verdicts(out, "GK-W-002")


def test_pod_template_annotation(tmp_path: Path) -> None:
    ann = '      annotations:\n        garrison.dev/ignore: "GK-W-002, GK-W-001"\n'
    _, out = _run(tmp_path, DEPLOY.format(annotations="", pod_annotations=ann))
    assert set(_verdicts(out, "GK-W-001")) == {Verdict.SKIP}
    assert set(_verdicts(out, "GK-W-002")) == {Verdict.SKIP}


def test_container_annotation_only_that_container(tmp_path: Path) -> None:
    ann = "      annotations:\n        container.garrison.dev/side: GK-W-001\n"
    _, out = _run(tmp_path, DEPLOY.format(annotations="", pod_annotations=ann))
    by_container = {r.paths[0].split("[")[1][0]: r.verdict for r in out.results if r.control.id == "GK-W-001"}
    assert by_container == {"0": Verdict.FAIL, "1": Verdict.SKIP}


def test_checkov_annotation_through_references(tmp_path: Path) -> None:
    ann = "  annotations:\n    checkov.io/skip1: CKV_K8S_16=approved by security\n"
    _, out = _run(tmp_path, DEPLOY.format(annotations=ann, pod_annotations=""))
    r = next(r for r in out.results if r.control.id == "GK-W-001")
    assert r.verdict is Verdict.SKIP
    assert r.details["suppression"] == "approved by security"


def test_inline_comment_on_line_or_before(tmp_path: Path) -> None:
    text = DEPLOY.format(annotations="", pod_annotations="").replace(
        "          privileged: true\n      - name: side",
        "          privileged: true  # garrison:ignore=GK-W-001 lab only\n      - name: side",
    )
    _, out = _run(tmp_path, text)
    assert _verdicts(out, "GK-W-001") == [Verdict.SKIP, Verdict.FAIL]
    text2 = DEPLOY.format(annotations="", pod_annotations="").replace(
        "      - name: side\n        image: busybox:1.36\n        securityContext:\n",
        "      - name: side\n        image: busybox:1.36\n        securityContext:\n          # garrison:ignore=GK-W-001\n",
    )
    _, out2 = _run(tmp_path, text2)
    assert _verdicts(out2, "GK-W-001") == [Verdict.FAIL, Verdict.SKIP]


def test_comment_reason_unit() -> None:
    lines = ["a: 1", "# garrison:ignore=X-1,Y-2 because", "b: 2"]
    assert suppress.comment_reason(lines, 3, "Y-2") == "because"
    assert suppress.comment_reason(lines, 2, "X-1") == "because"
    assert suppress.comment_reason(lines, 1, "X-1") is None
    assert suppress.comment_reason(lines, 3, "Z-3") is None


EXC = """exceptions:
  - id: GK-W-00[12]
    resource: {kind: Deployment, namespace: "sh*", name: web}
    justification: legacy workload
    owner: team-a
    expires: 2999-01-01
  - id: GK-W-001
    resource: {kind: "*", namespace: "*", name: "*"}
    justification: old waiver
    expires: 2020-01-01
"""


def test_exceptions_with_globs_and_expiry(tmp_path: Path) -> None:
    (tmp_path / "exc.yaml").write_text(EXC)
    rules = suppress.load_exceptions(tmp_path / "exc.yaml")
    assert rules[0].expires == dt.date(2999, 1, 1)
    _, out = _run(tmp_path, DEPLOY.format(annotations="", pod_annotations=""), exceptions=rules)
    assert {r.verdict for r in out.results if r.verdict is not Verdict.PASS} == {Verdict.SKIP}
    assert "legacy workload (owner: team-a)" in out.results[0].details["suppression"]
    assert any("expired on 2020-01-01" in w for w in out.warnings)


def test_expired_exception_stops_applying(tmp_path: Path) -> None:
    rules = suppress.parse_exceptions(EXC.split("  - id: GK-W-001\n")[0].replace("2999", "2001"), "e.yaml")
    _, out = _run(tmp_path, DEPLOY.format(annotations="", pod_annotations=""), exceptions=rules)
    assert _verdicts(out, "GK-W-001") == [Verdict.FAIL, Verdict.FAIL]
    assert out.warnings and "no longer applies" in out.warnings[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exceptions:\n  - id: GK-W-001\n    resource: {name: x}\n", "no justification"),
        ("exceptions:\n  - justification: x\n", "'id' is required"),
        ("exceptions:\n  - {id: A, justification: x, expires: tomorrow}\n", "expires"),
        ("exceptions: [", "invalid YAML"),
        ("- 1", "expected a mapping"),
    ],
)
def test_exception_errors(text: str, message: str) -> None:
    with pytest.raises(suppress.SuppressionError, match=message) as err:
        suppress.parse_exceptions(text, "exc.yaml")
    assert "exc.yaml" in str(err.value)


def test_baseline_roundtrip_and_stale(tmp_path: Path) -> None:
    text = DEPLOY.format(annotations="", pod_annotations="")
    results, _ = _run(tmp_path, text)
    base = tmp_path / "baseline.json"
    n = suppress.write_baseline(results, base)
    assert n == sum(1 for r in results if r.verdict is Verdict.FAIL) > 0
    known = suppress.load_baseline(base)
    # lines moved: the same failures are still suppressed
    moved = text.replace("kind: Deployment\n", "kind: Deployment\n# a comment\n# another\n")
    _, out = _run(tmp_path, moved, baseline=known)
    assert not [r for r in out.results if r.verdict is Verdict.FAIL]
    assert out.baseline_stale == 0
    # one container fixed: its entry is stale, the other is still suppressed
    fixed = text.replace(
        "image: busybox:1.36\n        securityContext:\n          privileged: true\n", "image: busybox:1.36\n"
    )
    _, out2 = _run(tmp_path, fixed, baseline=known)
    assert out2.baseline_stale >= 1
    assert any("no longer occur" in w for w in out2.warnings)


def test_baseline_errors(tmp_path: Path) -> None:
    with pytest.raises(suppress.SuppressionError, match="invalid JSON"):
        suppress.parse_baseline("{", "b.json")
    with pytest.raises(suppress.SuppressionError, match="baseline"):
        suppress.parse_baseline(json.dumps({"version": 9, "entries": []}), "b.json")
    with pytest.raises(GarrisonError, match="not found"):
        suppress.load_baseline(tmp_path / "missing.json")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["# note", "", "#garrison:x"])), max_size=5))
def test_fingerprints_stable_when_unrelated_lines_are_inserted(
    tmp_path_factory: pytest.TempPathFactory, inserts: list[tuple[int, str]]
) -> None:
    tmp = tmp_path_factory.mktemp("fp")
    text = DEPLOY.format(annotations="", pod_annotations="")
    lines = text.splitlines()
    for pos, extra in inserts:
        lines.insert(min(pos, len(lines)), extra)
    path = tmp / "app.yaml"
    path.write_text(text)
    before = sorted(suppress.fingerprint(r) for r in run_controls(list(load_paths([str(path)]).objects)))
    path.write_text("\n".join(lines) + "\n")
    after = sorted(suppress.fingerprint(r) for r in run_controls(list(load_paths([str(path)]).objects)))
    assert before == after


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(EXC)), st.text(max_size=6))
def test_fuzz_exceptions(cut: int, junk: str) -> None:
    try:
        suppress.parse_exceptions(EXC[:cut] + junk, "fuzz.yaml")
    except GarrisonError:
        pass


def test_dockerfile_cli_baseline_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from garrison.cli.main import main

    (tmp_path / "Dockerfile").write_text("FROM ubuntu\nRUN apt-get update\n")
    base = tmp_path / "b.json"
    for argv, want in (
        (["-f", "junit", "--write-baseline", str(base)], 1),
        (["-f", "json", "--baseline", str(base)], 0),
    ):
        with pytest.raises(SystemExit) as done:
            main(["posture", "dockerfile", str(tmp_path), *argv])
        assert int(done.value.code or 0) == want
    out, _ = capsys.readouterr()
    doc = json.loads(out[out.index("\n{") :])
    assert doc["summary"]["fail"] == 0 and doc["summary"]["skip"] >= 1
