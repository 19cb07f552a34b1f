"""Agreement with checkov 3.3.30 on its own Dockerfile check fixtures.

``expected.jsonl`` holds checkov's verdict per (file, check, resource). Each CKV id maps to our
controls through ``references.checkov`` in controls.yaml. For a FAILED row at least one mapped
control must fail on the file (at the reported line when checkov names an instruction); for a
PASSED row none of them may fail. The CKV2 graph checks are compared per failing instruction.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from garrison.posture.dockerfile.controls import check_dockerfile, checkov_map
from garrison.posture.dockerfile.parser import parse_file
from garrison.posture.model import Verdict

# Deliberate differences with a reason: (file suffix, check id) -> reason. Empty on purpose:
# every expected.jsonl row currently agrees.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


def _rows(conformance_dir: Path) -> list[dict[str, object]]:
    path = conformance_dir / "posture" / "checkov" / "expected.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["framework"] == "dockerfile"]


def _failing_lines(path: Path, controls: tuple[str, ...]) -> set[int]:
    results = check_dockerfile(parse_file(path), only=set(controls))
    return {r.location.line for r in results if r.verdict is Verdict.FAIL}


def test_every_checkov_dockerfile_check_in_fixtures_is_mapped(conformance_dir: Path) -> None:
    mapping = checkov_map()
    ids = {str(r["check_id"]) for r in _rows(conformance_dir)}
    assert ids, "no dockerfile rows in expected.jsonl"
    assert ids <= set(mapping), sorted(ids - set(mapping))


def test_agreement_with_checkov(conformance_dir: Path) -> None:
    root = conformance_dir / "posture" / "checkov"
    mapping = checkov_map()
    agree = 0
    disagreements: list[str] = []
    rows = _rows(conformance_dir)
    for row in rows:
        check_id, file = str(row["check_id"]), str(row["file"])
        if (file, check_id) in KNOWN_DIFFERENCES:
            agree += 1
            continue
        lines = _failing_lines(root / file, mapping[check_id])
        if row["result"] == "FAILED":
            ok = bool(lines)
            resource = str(row["resource"])
            if ok and not resource.endswith("."):  # an instruction, not the whole file
                first = int(row["lines"][0])  # type: ignore[index]
                ok = first in lines or check_id == "CKV_DOCKER_11"  # checkov reports the first FROM
        else:
            ok = not lines
        if ok:
            agree += 1
        else:
            disagreements.append(f"{check_id} {row['result']} {file} {row['lines']} ours={sorted(lines)}")
    assert len(rows) == 38
    assert agree == len(rows), "\n".join(disagreements)


GRAPH = {
    "RunUsingSudo": "CKV2_DOCKER_1",
    "RunUnsafeCurl": "CKV2_DOCKER_2",
    "RunUnsafeWget": "CKV2_DOCKER_3",
    "RunPipTrustedHost": "CKV2_DOCKER_4",
    "EnvPythonHttpsVerify": "CKV2_DOCKER_5",
    "EnvNodeTlsRejectUnauthorized": "CKV2_DOCKER_6",
    "RunApkAllowUntrusted": "CKV2_DOCKER_7",
    "RunAptGetAllowUnauthenticated": "CKV2_DOCKER_8",
    "RunYumNoGpgCheck": "CKV2_DOCKER_9",
    "RunRpmNoSignature": "CKV2_DOCKER_10",
    "RunAptGetForceYes": "CKV2_DOCKER_11",
    "EnvNpmConfigStrictSsl": "CKV2_DOCKER_12",
    "RunNpmConfigSetStrictSsl": "CKV2_DOCKER_13",
    "EnvGitSslNoVerify": "CKV2_DOCKER_14",
    "RunYumConfigManagerSslVerify": "CKV2_DOCKER_15",
    "EnvPipTrustedHost": "CKV2_DOCKER_16",
    "RunChpasswd": "CKV2_DOCKER_17",
}


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_graph_checks_fail_the_same_instructions(conformance_dir: Path, name: str) -> None:
    folder = (
        conformance_dir
        / "posture"
        / "checkov"
        / "tests"
        / "dockerfile"
        / "graph_builder"
        / "checks"
        / "resources"
        / name
    )
    expected = yaml.safe_load((folder / "expected.yaml").read_text())
    controls = checkov_map()[GRAPH[name]]
    want = Counter(str(r).rsplit(".", 1)[0] for r in expected.get("fail") or [])
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "expected.yaml")
    got: Counter[str] = Counter()
    for path in files:
        rel = path.relative_to(folder).as_posix()
        got[rel] = len(_failing_lines(path, controls))
    for rel in {*want, *got}:
        if rel.startswith("pass/"):
            assert got[rel] == 0, f"{rel}: {got[rel]} failing instructions, checkov none"
        else:
            assert got[rel] == want[rel], f"{rel}: ours {got[rel]}, checkov {want[rel]}"
