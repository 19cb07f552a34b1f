"""Manifest loader: line numbers, List kinds, stdin, hostile input, fuzzing."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.errors import ConfigError, GarrisonError, InputError, NotFoundError
from garrison.posture.k8s.loader import LoadLimits, ManifestError, load_paths, load_text
from garrison.posture.k8s.objects import pod_specs

FIXTURES = Path(__file__).resolve().parents[2] / "assets" / "posture" / "pss"

MULTI = b"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
spec:
  template:
    spec:
      containers:
      - name: app
        securityContext:
          privileged: true
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: job
"""


def test_line_numbers_multi_document() -> None:
    objs = load_text(MULTI, "m.yaml").objects
    assert [(o.kind, o.name, o.namespace) for o in objs] == [("Deployment", "web", "prod"), ("CronJob", "nightly", "")]
    web, cron = objs
    assert web.location.line == 1 and web.location.end_line == 12
    assert web.line_of("spec.template.spec.containers[0].securityContext.privileged") == 12
    assert web.line_of("spec.template.spec.containers[0].securityContext.runAsNonRoot") == 11  # nearest ancestor
    assert cron.location.line == 14
    assert list(pod_specs(cron)) == [("spec.jobTemplate.spec.template.spec", {"containers": [{"name": "job"}]})]
    assert web.subject().ref == "Deployment/prod/web"


def test_list_kinds_expanded() -> None:
    text = b'{"apiVersion": "v1", "kind": "PodList", "items": [\n{"kind": "Pod", "metadata": {"name": "a"}, "spec": {}},\n{"kind": "Pod", "metadata": {"name": "b"}}]}'
    objs = load_text(text, "l.json").objects
    assert [o.name for o in objs] == ["a", "b"]
    assert [o.location.line for o in objs] == [2, 3]


def test_real_fixture_directory() -> None:
    result = load_paths([FIXTURES])
    assert len(result.objects) == len(list(FIXTURES.rglob("*.yaml")))
    assert all(o.kind == "Pod" for o in result.objects)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(MULTI))
    monkeypatch.setattr(sys, "stdin", fake)
    objs = load_paths(["-"]).objects
    assert [o.location.file for o in objs] == ["<stdin>", "<stdin>"]


def test_syntax_error_has_file_and_line() -> None:
    with pytest.raises(ManifestError, match=r"^bad\.yaml:4: invalid YAML"):
        load_text(b"a: 1\nb:\n  - [x\n", "bad.yaml")


def test_billion_laughs_rejected() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    with pytest.raises(InputError, match="alias"):
        load_text("\n".join(lines).encode(), "bomb.yaml")


def test_recursive_alias_and_depth() -> None:
    with pytest.raises(InputError):
        load_text(b"a: &x [*x]\n", "r.yaml")
    with pytest.raises(ManifestError, match="nesting"):
        load_text(b"a: " + b"[" * 100 + b"]" * 100, "deep.yaml", LoadLimits(max_depth=50))


def test_size_and_encoding() -> None:
    with pytest.raises(ManifestError, match="larger than"):
        load_text(b"a: 1\n" * 100, "big.yaml", LoadLimits(max_bytes=10))
    with pytest.raises(ManifestError, match=r"^latin\.yaml:2: not UTF-8"):
        load_text(b"a: 1\nb: caf\xe9\n", "latin.yaml")


def test_duplicate_keys_warn_and_non_mapping_kept() -> None:
    result = load_text(b"kind: Pod\nkind: Service\n---\n- 1\n- 2\n", "d.yaml")
    assert any("duplicate key 'kind'" in w for w in result.warnings)
    assert [o.kind for o in result.objects] == ["Service", ""]
    assert list(pod_specs(result.objects[1])) == []


def test_missing_path_and_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotFoundError):
        load_paths([tmp_path / "nope.yaml"])
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("name: x\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="install helm"):
        load_paths([chart])
    kust = tmp_path / "k"
    kust.mkdir()
    (kust / "kustomization.yaml").write_text("resources: []\n")
    with pytest.raises(ConfigError, match="install kubectl"):
        load_paths([kust])


SEEDS = [MULTI, *(p.read_bytes() for p in sorted(FIXTURES.rglob("*.yaml")))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    cut=st.integers(min_value=0, max_value=4000),
    pos=st.integers(min_value=0, max_value=4000),
    junk=st.binary(max_size=8),
)
def test_fuzz_only_garrison_errors(seed: bytes, cut: int, pos: int, junk: bytes) -> None:
    data = seed[:cut] if cut < len(seed) else seed
    p = pos % (len(data) + 1)
    data = data[:p] + junk + data[p:]
    try:
        result = load_text(data, "fuzz.yaml")
    except GarrisonError as err:
        assert str(err).startswith("fuzz.yaml")
        return
    for obj in result.objects:
        obj.line_of("spec.containers[0].securityContext")
        list(pod_specs(obj))
