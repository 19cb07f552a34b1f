"""``garrison posture dockerfile``: discovery, formats, filters and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.cli.main import main
from garrison.cli.posture_dockerfile import find_dockerfiles

GOOD = (
    "FROM alpine:3.20@sha256:" + "a" * 64 + "\n"
    "RUN apk add --no-cache curl=8.5.0-r0\n"
    "USER 1000\n"
    'HEALTHCHECK CMD ["true"]\n'
    'CMD ["app"]\n'
)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["posture", "dockerfile", *argv])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_clean_dockerfile_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text(GOOD)
    code, out, _ = _run([str(tmp_path / "Dockerfile")], capsys)
    assert code == 0
    assert "0 failed" in out


def test_failures_exit_1_and_json_is_sorted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine\nEXPOSE 22\n")
    code, out, _ = _run([str(tmp_path), "--format", "json"], capsys)
    assert code == 1
    doc = json.loads(out)
    failed = {r["control"] for r in doc["results"] if r["verdict"] == "fail"}
    assert {"GD-001", "GD-006", "GD-009"} <= failed
    assert out == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert doc["summary"]["fail"] == sum(1 for r in doc["results"] if r["verdict"] == "fail")


def test_skip_and_severity_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\nEXPOSE 22\n" + GOOD.split("\n", 1)[1])
    code, out, _ = _run([str(tmp_path), "-f", "json", "--skip", "GD-009,GD-007"], capsys)
    assert code == 0, out
    code, out, _ = _run([str(tmp_path), "-f", "json", "--severity", "HIGH"], capsys)
    assert code == 1
    assert {r["severity"] for r in json.loads(out)["results"]} == {"HIGH"}


def test_inline_suppression_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD + "# garrison:ignore=GD-009 bastion host\nEXPOSE 22\n"
    (tmp_path / "Dockerfile").write_text(text)
    code, out, _ = _run([str(tmp_path / "Dockerfile")], capsys)
    assert code == 0
    assert "suppressed: bastion host" in out and "1 skipped" in out


def test_directory_discovery(tmp_path: Path) -> None:
    for name in ("Dockerfile", "api.Dockerfile", "Dockerfile.dev", "Containerfile", "Dockerfile.dockerignore", "x.txt"):
        (tmp_path / name).write_text(GOOD)
    (tmp_path / "node_modules" / "pkg").mkdir(parents=True)
    (tmp_path / "node_modules" / "pkg" / "Dockerfile").write_text(GOOD)
    names = sorted(p.name for p in find_dockerfiles([tmp_path]))
    assert names == ["Containerfile", "Dockerfile", "Dockerfile.dev", "api.Dockerfile"]


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        (None, [], "no such file or directory"),
        (b"FROM a\nRUN <<EOF\n", [], "Dockerfile:2: unterminated heredoc 'EOF'"),
        (GOOD.encode(), ["--format", "xml"], "unknown format 'xml'"),
        (GOOD.encode(), ["--skip", "GD-999"], "unknown Dockerfile control(s): GD-999"),
        (GOOD.encode(), ["--severity", "bad"], "unknown severity 'BAD'"),
    ],
)
def test_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, args: list[str], needle: str
) -> None:
    path = tmp_path / "Dockerfile"
    if content is not None:
        path.write_bytes(content)
    code, _, err = _run([str(path), *args], capsys)
    assert code == 2
    assert needle in err and err.count("\n") == 1


def test_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text(GOOD)
    report = tmp_path / "out.json"
    code, out, _ = _run([str(tmp_path / "Dockerfile"), "-f", "json", "-o", str(report)], capsys)
    assert code == 0 and out == ""
    assert json.loads(report.read_text())["summary"]["fail"] == 0


def test_sarif_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM debian:latest\nADD https://example.com/x.tgz /x\n")
    with pytest.raises(SystemExit) as done:
        main(["posture", "dockerfile", str(path), "--format", "sarif"])
    out = capsys.readouterr().out
    assert done.value.code == 1
    doc = json.loads(out)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    assert results and all(r["ruleId"].startswith("GD-") for r in results)
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("Dockerfile")
