"""Rendered inputs: a Kustomize directory (base, overlay, strategic-merge and JSON 6902 patches)
rendered by the real ``kubectl kustomize`` and a Helm chart rendered by the real ``helm
template``; failing controls point at the rendered objects and their lines in the rendered
output. Without the tool the error says what to install."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from garrison.cli.main import main

KUBECTL = shutil.which("kubectl")
HELM = shutil.which("helm")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


KUSTOMIZE = {
    "base/kustomization.yaml": """
        resources:
        - deployment.yaml
        - service.yaml
        commonLabels:
          app: web
    """,
    "base/deployment.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 1
          selector:
            matchLabels:
              app: web
          template:
            metadata:
              labels:
                app: web
            spec:
              automountServiceAccountToken: false
              securityContext:
                runAsNonRoot: true
                seccompProfile:
                  type: RuntimeDefault
              containers:
              - name: web
                image: registry.example.com/web@sha256:0b8f1e8a1dbd2b6e2b5b4c7b1f3f62c3c3a5c2f0b6c2a7d1e1c4d2f6a8b9c0d1
                securityContext:
                  allowPrivilegeEscalation: false
                  capabilities:
                    drop: ["ALL"]
    """,
    "base/service.yaml": """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          selector:
            app: web
          ports:
          - port: 80
    """,
    "overlays/prod/kustomization.yaml": """
        resources:
        - ../../base
        namespace: prod
        namePrefix: prod-
        patches:
        - path: debug-patch.yaml
        - target:
            kind: Deployment
            name: web
          patch: |-
            - op: add
              path: /spec/template/spec/hostPID
              value: true
    """,
    "overlays/prod/debug-patch.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          template:
            spec:
              containers:
              - name: web
                securityContext:
                  privileged: true
    """,
}


def _pss_failures(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        r["control"]: r
        for o in report["objects"]
        if o["ref"].startswith("Deployment/")
        for r in o["results"]
        if r["control"].startswith("PSS-baseline")
    }



@pytest.fixture
def need_kubectl() -> None:
    if KUBECTL is None:
        pytest.fail("kubectl is missing: `make k8s-tools` installs it")


@pytest.fixture
def need_helm() -> None:
    if HELM is None:
        pytest.fail("helm is missing: `make k8s-tools` installs it (tests/assets/posture/cluster/README.md)")

@pytest.mark.usefixtures("need_kubectl")
def test_kustomize_overlay_failures_point_at_rendered_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, KUSTOMIZE)
    overlay = tmp_path / "overlays" / "prod"
    assert KUBECTL is not None
    rendered = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, check=True).stdout
    lines = rendered.splitlines()

    code, out, _ = _run(["posture", "k8s", str(overlay), "-f", "json", "--only", "pss", "--pss", "baseline"], capsys)
    assert code == 1
    report = json.loads(out)
    assert {o["ref"] for o in report["objects"]} == {"Deployment/prod/prod-web"}  # namePrefix + namespace applied
    failed = _pss_failures(report)
    assert set(failed) == {"PSS-baseline-privileged", "PSS-baseline-hostNamespaces"}
    for control, needle in (
        ("PSS-baseline-privileged", "privileged: true"),
        ("PSS-baseline-hostNamespaces", "hostPID: true"),
    ):
        loc = failed[control]["location"]
        assert loc["file"] == f"{overlay} (kustomize)"
        assert needle in lines[loc["line"] - 1], (control, loc, rendered)

    code, out, _ = _run(
        ["posture", "k8s", str(tmp_path / "base"), "-f", "json", "--only", "pss", "--pss", "baseline"], capsys
    )
    assert code == 0, out  # the base alone passes: the overlay's patches make it fail


@pytest.mark.usefixtures("need_kubectl")
def test_kustomize_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, {"kustomization.yaml": "resources:\n- missing.yaml\n"})
    code, out, err = _run(["posture", "k8s", str(tmp_path)], capsys)
    assert code == 2 and not out
    assert "kustomize failed" in err and str(tmp_path) in err and len(err.strip().splitlines()) == 1


def test_kustomize_without_kubectl_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, KUSTOMIZE)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    code, _, err = _run(["posture", "k8s", str(tmp_path / "overlays" / "prod")], capsys)
    assert code == 2
    assert "install kubectl (or kustomize) to render it" in err


CHART = {
    "Chart.yaml": """
        apiVersion: v2
        name: web
        version: 0.1.0
        appVersion: "1.0"
    """,
    "values.yaml": """
        replicas: 2
        image: registry.example.com/web:1.0
        hostNetwork: true
        privileged: false
    """,
    "templates/deployment.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}-{{ .Chart.Name }}
          labels:
            app.kubernetes.io/name: {{ .Chart.Name }}
        spec:
          replicas: {{ .Values.replicas }}
          selector:
            matchLabels:
              app.kubernetes.io/name: {{ .Chart.Name }}
          template:
            metadata:
              labels:
                app.kubernetes.io/name: {{ .Chart.Name }}
            spec:
              {{- if .Values.hostNetwork }}
              hostNetwork: true
              {{- end }}
              containers:
              - name: web
                image: {{ .Values.image }}
                securityContext:
                  privileged: {{ .Values.privileged }}
    """,
    "templates/service.yaml": """
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ .Release.Name }}-{{ .Chart.Name }}
        spec:
          selector:
            app.kubernetes.io/name: {{ .Chart.Name }}
          ports:
          - port: 80
    """,
}


@pytest.mark.usefixtures("need_helm")
def test_helm_chart_failures_point_at_rendered_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "web"
    _write(chart, CHART)
    assert HELM is not None
    rendered = subprocess.run(
        [HELM, "template", "garrison", str(chart)], capture_output=True, text=True, check=True
    ).stdout
    lines = rendered.splitlines()
    code, out, _ = _run(["posture", "k8s", str(chart), "-f", "json", "--only", "pss", "--pss", "baseline"], capsys)
    assert code == 1
    report = json.loads(out)
    assert {o["ref"] for o in report["objects"]} == {"Deployment/garrison-web"}
    failed = _pss_failures(report)
    assert set(failed) == {"PSS-baseline-hostNamespaces"}  # values: hostNetwork on, privileged off
    loc = failed["PSS-baseline-hostNamespaces"]["location"]
    assert loc["file"] == f"{chart} (helm)"
    assert "hostNetwork: true" in lines[loc["line"] - 1]


@pytest.mark.usefixtures("need_helm")
def test_helm_chart_found_while_walking_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "charts" / "web", CHART)
    code, out, _ = _run(["posture", "k8s", str(tmp_path), "-f", "json", "--only", "pss", "--pss", "baseline"], capsys)
    assert code == 1
    assert "Deployment/garrison-web" in {o["ref"] for o in json.loads(out)["objects"]}


@pytest.mark.usefixtures("need_helm")
def test_helm_template_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "broken"
    _write(chart, {"Chart.yaml": CHART["Chart.yaml"], "templates/x.yaml": "kind: {{ .Values.missing.deeper }}\n"})
    code, out, err = _run(["posture", "k8s", str(chart)], capsys)
    assert code == 2 and not out
    assert "helm template failed" in err and len(err.strip().splitlines()) == 1


def test_helm_chart_without_helm_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = tmp_path / "web"
    _write(chart, CHART)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    code, _, err = _run(["posture", "k8s", str(chart)], capsys)
    assert code == 2
    assert f"{chart}: is a Helm chart; install helm to render it" in err
    # inside a directory walk the chart is skipped with a warning instead
    (tmp_path / "plain.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    code, _, err = _run(["posture", "k8s", str(tmp_path), "--only", "pss"], capsys)
    assert code == 0
    assert "Helm chart skipped (helm is not installed)" in err
