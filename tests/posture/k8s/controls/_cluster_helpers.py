"""Helpers for the Kubernetes control tests: run one control over a manifest text."""

from __future__ import annotations

import textwrap

from garrison.posture.k8s.controls import run_controls
from garrison.posture.k8s.loader import load_text
from garrison.posture.model import ControlResult, Verdict


def run(cid: str, manifest: str) -> list[ControlResult]:
    objects = load_text(textwrap.dedent(manifest), "m.yaml").objects
    return run_controls(objects, only={cid})


def failures(cid: str, manifest: str) -> list[ControlResult]:
    return [r for r in run(cid, manifest) if r.verdict is Verdict.FAIL]


def assert_case(cid: str, failing: str, line: int, passing: str) -> None:
    """``failing`` fails ``cid`` with a result on ``line``; ``passing`` has results and none fail."""
    bad = failures(cid, failing)
    assert bad, f"{cid}: expected a failure"
    assert line in [r.location.line for r in bad], f"{cid}: lines {[r.location.line for r in bad]}"
    assert all(r.message for r in bad)
    good = run(cid, passing)
    assert good, f"{cid}: control did not apply to the passing case"
    assert all(r.verdict is Verdict.PASS for r in good), [r.message for r in good]
