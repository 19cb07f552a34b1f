"""Every posture control has a failing and a passing example, kept as data, run through the real engine.

Examples live in ``tests/assets/posture/examples/``:

* ``k8s/<ID>/fail-<n>.yaml`` and ``pass-<n>.yaml``: Kubernetes manifests loaded with the manifest
  loader and judged by :func:`run_controls` (cross-object controls find their other objects in the
  same file);
* ``dockerfile/<ID>/fail-<n>.Dockerfile`` and ``pass-<n>.Dockerfile``: parsed with the Dockerfile
  parser and judged by :func:`check_dockerfile`. When a directory ``<stem>.context/`` sits beside an
  example it is passed as the build context (controls that read ``.dockerignore``).

The control ids come from the registries, never from a list here, so a new control without both
examples fails :func:`test_every_control_has_examples`.

A fail example must produce a FAIL result for its control; a pass example must produce no FAIL for
it (other controls may fail: only the control under test is judged). Where a fail example marks a
line with ``# expect: <ID>``, one of the control's failures must point at that line (and a fail
example whose failures point at lines must mark one; only whole-file findings such as a Dockerfile
without ``USER`` go unmarked):

* in YAML the marker is a trailing comment on the line itself;
* in a Dockerfile a ``#`` after an instruction is not a comment (BuildKit keeps it as arguments),
  so the marker is a whole comment line and names the *next* instruction; the failure's reported
  range must contain that instruction's first line.

Controls that apply only under a setting (the registry allow-list of ``GK-W-074``) state it in the
example as a comment line ``# env: GARRISON_NAME=value``, the variable a user would export before
running ``garrison``; the test sets it for that example only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.posture.dockerfile.controls import check_dockerfile, load_controls
from garrison.posture.dockerfile.parser import parse_file
from garrison.posture.k8s.controls import registry, run_controls
from garrison.posture.k8s.loader import load_file
from garrison.posture.model import ControlResult, Verdict

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "posture" / "examples"
_EXAMPLE_NAME = re.compile(r"^(fail|pass)-\d+$")
_EXPECT = re.compile(r"#\s*expect:\s*([A-Za-z0-9_-]+)\s*$", re.MULTILINE)
_ENV = re.compile(r"^#\s*env:\s*(GARRISON_[A-Z0-9_]+)=(.*)$", re.MULTILINE)
_SUFFIX = {"k8s": ".yaml", "dockerfile": ".Dockerfile"}


def _k8s_ids() -> set[str]:
    return set(registry())


def _dockerfile_ids() -> set[str]:
    return set(load_controls())


def _examples(kind: str) -> Iterator[Path]:
    root = EXAMPLES / kind
    if root.is_dir():
        yield from sorted(p for p in root.glob(f"*/*{_SUFFIX[kind]}") if p.is_file())


def _param(path: Path) -> pytest.ParameterSet:
    return pytest.param(path, id=f"{path.parent.name}/{path.name}")


def _expected_lines(path: Path, cid: str) -> list[int]:
    """The 1-based lines a failure of ``cid`` must point at (see the module docstring)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    marked = [i for i, text in enumerate(lines, 1) if (m := _EXPECT.search(text)) and m.group(1) == cid]
    if path.suffix != ".Dockerfile":
        return marked
    instructions = [i for i, text in enumerate(lines, 1) if text.strip() and not text.lstrip().startswith("#")]
    out = []
    for line in marked:
        following = [i for i in instructions if i > line]
        assert following, f"{path}: '# expect: {cid}' on line {line} is not followed by an instruction"
        out.append(following[0])
    return out


def _judge(results: list[ControlResult], cid: str, path: Path) -> None:
    verdict = path.stem.split("-")[0]
    fails = [r for r in results if r.control.id == cid and r.verdict is Verdict.FAIL]
    if verdict == "pass":
        assert results, f"{path}: {cid} did not apply to the passing example"
        assert not fails, f"{path}: {cid} failed a passing example: {[(r.location.line, r.message) for r in fails]}"
        return
    assert fails, f"{path}: {cid} did not fail: {[(str(r.verdict), r.message) for r in results]}"
    assert all(r.message for r in fails), f"{path}: a failure of {cid} has no message"
    expected = _expected_lines(path, cid)
    pointed = [r for r in fails if r.location != r.subject.location]
    assert expected or not pointed, f"{path}: {cid} reports line {pointed[0].location.line}: mark it '# expect: {cid}'"
    for line in expected:
        spans = [(r.location.line, r.location.end_line or r.location.line) for r in fails]
        assert any(lo <= line <= hi for lo, hi in spans), f"{path}: {cid} expected at line {line}, reported at {spans}"


@pytest.mark.parametrize("kind", ["k8s", "dockerfile"])
def test_every_control_has_examples(kind: str) -> None:
    known = _k8s_ids() if kind == "k8s" else _dockerfile_ids()
    assert known, f"no {kind} controls registered"
    root = EXAMPLES / kind
    dirs = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    unknown = sorted(dirs - known)
    assert not unknown, f"example directories name unknown {kind} controls: {unknown}"
    for p in root.glob("*/*") if root.is_dir() else ():
        if p.is_file():
            assert p.suffix == _SUFFIX[kind] and _EXAMPLE_NAME.match(p.stem), f"unexpected example file {p}"
    missing = []
    for cid in sorted(known):
        stems = [p.stem for p in (root / cid).glob(f"*{_SUFFIX[kind]}")] if (root / cid).is_dir() else []
        for verdict in ("fail", "pass"):
            if not any(s.startswith(f"{verdict}-") for s in stems):
                missing.append(f"{cid} ({verdict})")
    assert not missing, f"{len(missing)} {kind} examples missing: {', '.join(missing)}"


def _apply_env(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _ENV.findall(path.read_text(encoding="utf-8")):
        monkeypatch.setenv(name, value.strip())


@pytest.mark.parametrize("path", [_param(p) for p in _examples("k8s")])
def test_k8s_example(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = path.parent.name
    _apply_env(path, monkeypatch)
    assert cid in registry(), f"{path}: unknown control {cid}"
    loaded = load_file(path)
    assert loaded.objects, f"{path}: no objects"
    _judge(run_controls(loaded.objects, only={cid}), cid, path)


@pytest.mark.parametrize("path", [_param(p) for p in _examples("dockerfile")])
def test_dockerfile_example(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = path.parent.name
    _apply_env(path, monkeypatch)
    assert cid in load_controls(), f"{path}: unknown control {cid}"
    context = path.with_name(f"{path.stem}.context")
    results = check_dockerfile(parse_file(path), context_dir=context if context.is_dir() else None, only={cid})
    _judge(results, cid, path)


def test_fail_examples_mark_lines() -> None:
    """The line markers are in use and name the example's own control (a typo would go unchecked)."""
    marked = 0
    for kind in _SUFFIX:
        for path in _examples(kind):
            for m in _EXPECT.finditer(path.read_text(encoding="utf-8")):
                assert m.group(1) == path.parent.name, f"{path}: marker names {m.group(1)}"
                assert path.stem.startswith("fail-"), f"{path}: markers belong in fail examples"
                marked += 1
    assert marked, "no example marks a line"
