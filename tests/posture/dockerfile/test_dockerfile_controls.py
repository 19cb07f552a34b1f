"""Every GD control fails on a small Dockerfile that breaks it and passes on one that does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.core.errors import ConfigError
from garrison.posture.dockerfile.controls import check_dockerfile, checkov_map, load_controls
from garrison.posture.dockerfile.parser import parse
from garrison.posture.model import Verdict

GOOD_TAIL = 'USER app\nHEALTHCHECK CMD ["true"]\n'

# control -> (failing Dockerfile, passing Dockerfile, line the failure is reported on or 0)
CASES: dict[str, tuple[str, str, int]] = {
    "GD-001": ("FROM alpine:3.20\nRUN true\n", "FROM alpine:3.20\nUSER 1000\n", 0),
    "GD-002": ("FROM alpine:3.20\nUSER app\nUSER root:root\n", "FROM alpine:3.20\nUSER root\nUSER app\n", 3),
    "GD-003": ("FROM alpine:3.20\nADD app.py /app/\n", "FROM alpine:3.20\nADD rootfs.tar.gz /\nCOPY app.py /app/\n", 2),
    "GD-004": (
        "FROM alpine:3.20\nADD https://example.com/x.tgz /x.tgz\n",
        "FROM alpine:3.20\nADD --checksum=sha256:abc https://example.com/x.tgz /x.tgz\n",
        2,
    ),
    "GD-005": (
        "FROM alpine:3.20\nRUN curl -fsSL https://get.example.com | sh -s --\n",
        "FROM alpine:3.20\nRUN curl -fsSLo /tmp/i.sh https://get.example.com && sh /tmp/i.sh\n",
        2,
    ),
    "GD-006": ("FROM alpine:3.20 AS b\nFROM nginx:latest\n", "ARG V=3.20\nFROM alpine:${V} AS b\nFROM b\n", 2),
    "GD-007": ("FROM alpine:3.20\n", "FROM alpine:3.20@sha256:" + "a" * 64 + "\nFROM scratch\n", 1),
    "GD-008": ("FROM alpine:3.20\nHEALTHCHECK NONE\n", "FROM alpine:3.20\nHEALTHCHECK --interval=5s CMD true\n", 2),
    "GD-009": ("FROM alpine:3.20\nEXPOSE 80 20-25/tcp\n", "FROM alpine:3.20\nEXPOSE 80 22/udp 2222\n", 2),
    "GD-010": ("FROM alpine:3.20\nMAINTAINER me@example.com\n", "FROM alpine:3.20\nLABEL maintainer=me\n", 2),
    "GD-011": (
        "FROM debian:12\nRUN apt-get install -y x && apt-get update\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y x\n",
        2,
    ),
    "GD-012": (
        "FROM debian:12\nRUN apt-get install -y curl=7\n",
        "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=7\n",
        2,
    ),
    "GD-013": (
        "FROM debian:12\nRUN apt-get install -y curl\n",
        "FROM debian:12\nRUN apt-get install -y curl=7.88 ./x.deb\n",
        2,
    ),
    "GD-014": (
        "FROM fedora:40\nRUN dnf install httpd-2.4\n",
        "FROM fedora:40\nRUN dnf -y install httpd-2.4\nRUN apt-get -qy install a=1\n",
        2,
    ),
    "GD-015": (
        "FROM debian:12\nRUN apt-get update && apt-get install -y a=1\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y a=1 && rm -rf /var/lib/apt/lists/*\n"
        "RUN --mount=type=cache,target=/var/lib/apt apt-get install -y b=1\n",
        2,
    ),
    "GD-016": (
        "FROM debian:12\nRUN apt install -y curl\n",
        "FROM debian:12\nRUN apt-get install -y curl && apt-key list\n",
        2,
    ),
    "GD-017": ("FROM alpine:3.20\nRUN apk add curl=8.5\n", "FROM alpine:3.20\nRUN apk add --no-cache curl=8.5\n", 2),
    "GD-018": (
        "FROM alpine:3.20\nRUN apk add --no-cache curl\n",
        "FROM alpine:3.20\nRUN apk add --no-cache curl=8.5.0-r0\n",
        2,
    ),
    "GD-019": (
        "FROM centos:7\nRUN yum install -y httpd-2.4\n",
        "FROM centos:7\nRUN yum install -y httpd-2.4 && yum clean all\n",
        2,
    ),
    "GD-020": ("FROM fedora:40\nRUN dnf install -y httpd\n", "FROM fedora:40\nRUN dnf install -y httpd-2.4.62\n", 2),
    "GD-021": ("FROM debian:12\nRUN sudo -u app make\n", "FROM debian:12\nRUN echo sudo is a word here\n", 2),
    "GD-022": (
        "FROM alpine:3.20\nENV APP=1 DB_PASSWORD=hunter2\n",
        "FROM alpine:3.20\nENV PUBLIC_KEY=abc KEYBOARD=us\nARG PASSWORDLESS=1\n",
        2,
    ),
    "GD-023": (
        "FROM alpine:3.20\nRUN chmod -R 777 /data\n",
        "FROM alpine:3.20\nRUN chmod 755 /data\nCOPY --chmod=644 a /a\n",
        2,
    ),
    "GD-024": ("FROM alpine:3.20\nWORKDIR app\n", "FROM alpine:3.20\nENV D=/srv\nWORKDIR $D/app\nWORKDIR /app\n", 2),
    "GD-025": ("FROM alpine:3.20 AS b\nFROM alpine:3.20 AS B\n", "FROM alpine:3.20 AS a\nFROM alpine:3.20 AS b\n", 2),
    "GD-026": ("FROM alpine:3.20\nRUN cd /src && make\n", "FROM alpine:3.20\nWORKDIR /src\nRUN make\n", 2),
    "GD-027": ('FROM alpine:3.20\nCMD ["a"]\nCMD ["b"]\n', 'FROM alpine:3.20 AS x\nCMD ["a"]\nFROM x\nCMD ["b"]\n', 2),
    "GD-028": ("FROM alpine:3.20\nENTRYPOINT /app --serve\n", 'FROM alpine:3.20\nENTRYPOINT ["/app", "--serve"]\n', 2),
    "GD-029": (
        "FROM python:3.12\nRUN pip install flask==3.0\n",
        "FROM python:3.12\nRUN pip install --no-cache-dir flask==3.0\nRUN PIP_NO_CACHE_DIR=1 pip install a==1\n",
        2,
    ),
    "GD-030": (
        "FROM python:3.12\nRUN python -m pip install --no-cache-dir flask\n",
        "FROM python:3.12\nRUN pip install --no-cache-dir -r requirements.txt flask==3.0 .\n",
        2,
    ),
    "GD-031": (
        "FROM node:20\nRUN npm install -g typescript\n",
        "FROM node:20\nRUN npm ci && npm install -g typescript@5.4.5 @scope/x@1.0.0\n",
        2,
    ),
    "GD-032": (
        "FROM alpine:3.20\nCOPY id_rsa .env /root/\n",
        "FROM alpine:3.20\nCOPY id_rsa.pub .env.example /root/\n",
        2,
    ),
    "GD-034": ("FROM --platform=linux/amd64 alpine:3.20\n", "FROM --platform=$BUILDPLATFORM alpine:3.20\n", 1),
    "GD-035": (
        "FROM debian:12\nRUN useradd -u 123456789 app\n",
        "FROM debian:12\nRUN useradd -l -u 123456789 app && useradd -u 1000 b\n",
        2,
    ),
    "GD-036": (
        "FROM debian:12\nRUN apt-get update && apt-get -y dist-upgrade\n",
        "FROM debian:12\nRUN apt-get update\n",
        2,
    ),
    "GD-037": (
        "FROM alpine:3.20\nRUN curl -k https://example.com/x -o /x\n",
        "FROM alpine:3.20\nRUN curl -fsS https://example.com/x -o /x\nENV GIT_SSL_NO_VERIFYX=1\n",
        2,
    ),
    "GD-038": (
        "FROM alpine:3.20\nRUN apk add --allow-untrusted /tmp/x.apk\n",
        "FROM alpine:3.20\nRUN apk add --no-cache x=1\n",
        2,
    ),
    "GD-039": ("FROM debian:12\nRUN echo 'root:pw' | chpasswd\n", "FROM debian:12\nRUN passwd -l root\n", 2),
    "GD-040": (
        "FROM debian:12\nRUN wget -O - https://x | tar xz\n",
        'FROM debian:12\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN wget -O - https://x | tar xz\n',
        2,
    ),
    "GD-041": (
        "FROM alpine:3.20 AS build\nCOPY --from=build /a /b\n",
        "FROM alpine:3.20 AS build\nFROM alpine:3.20\nCOPY --from=build /a /b\n",
        2,
    ),
}


def _verdicts(text: str, control: str, **kw: object) -> list[tuple[Verdict, int]]:
    results = check_dockerfile(parse(text, "Dockerfile"), only={control}, **kw)  # type: ignore[arg-type]
    return [(r.verdict, r.location.line) for r in results]


def test_at_least_30_controls_with_metadata() -> None:
    controls = load_controls()
    assert len(controls) >= 30
    for cid, ctl in controls.items():
        assert ctl.title and ctl.rationale and ctl.remediation, cid
        assert ctl.family == "dockerfile"


def test_every_control_has_a_case() -> None:
    assert set(load_controls()) == {*CASES, "GD-033"}


def test_checkov_mapping_covers_ckv_docker_1_to_11() -> None:
    assert {f"CKV_DOCKER_{n}" for n in range(1, 12)} <= set(checkov_map())


@pytest.mark.parametrize("control", sorted(CASES))
def test_control_fails(control: str) -> None:
    bad, _good, line = CASES[control]
    verdicts = _verdicts(bad, control)
    assert (Verdict.FAIL, line or 1) in verdicts, verdicts


@pytest.mark.parametrize("control", sorted(CASES))
def test_control_passes(control: str) -> None:
    _bad, good, _line = CASES[control]
    assert _verdicts(good, control) == [(Verdict.PASS, 1)]


def test_whole_context_copy_needs_dockerignore(tmp_path: Path) -> None:
    text = "FROM alpine:3.20\nCOPY . /app\n"
    assert _verdicts(text, "GD-033", context_dir=tmp_path) == [(Verdict.FAIL, 2)]
    (tmp_path / ".dockerignore").write_text(".git\n")
    assert _verdicts(text, "GD-033", context_dir=tmp_path) == [(Verdict.PASS, 1)]
    assert _verdicts("FROM alpine:3.20\nCOPY src /app\n", "GD-033", context_dir=tmp_path.parent) == [(Verdict.PASS, 1)]


def test_user_inherited_from_parent_stage() -> None:
    text = "FROM alpine:3.20 AS base\nUSER app\nFROM base\nRUN true\n"
    assert _verdicts(text, "GD-001") == [(Verdict.PASS, 1)]
    assert _verdicts("FROM alpine:3.20 AS b\nUSER app\nFROM alpine:3.20\n", "GD-001") == [(Verdict.FAIL, 1)]


def test_heredoc_script_is_checked() -> None:
    text = "FROM debian:12\nRUN <<EOF\nset -e\nsudo apt-get install -y x=1\nEOF\n"
    assert _verdicts(text, "GD-021") == [(Verdict.FAIL, 2)]


def test_onbuild_run_is_checked() -> None:
    assert _verdicts("FROM debian:12\nONBUILD RUN sudo make\n", "GD-021") == [(Verdict.FAIL, 2)]


def test_garrison_ignore_comment_suppresses() -> None:
    text = "FROM alpine:3.20\n# garrison:ignore=GD-026 legacy build script\nRUN cd /src && make\n"
    results = check_dockerfile(parse(text), only={"GD-026"})
    assert [(r.verdict, r.message) for r in results] == [(Verdict.SKIP, "suppressed: legacy build script")]


def test_checkov_skip_comment_suppresses_mapped_control() -> None:
    text = "FROM alpine:3.20\n# checkov:skip=CKV_DOCKER_1:bastion image\nEXPOSE 22\n"
    assert _verdicts(text, "GD-009") == [(Verdict.SKIP, 3)]
    text2 = "FROM alpine:3.20\n# checkov:skip=CKV_DOCKER_2:probes in k8s\n"
    assert _verdicts(text2, "GD-008") == [(Verdict.SKIP, 1)]
    # a comment that is not right before the instruction does not suppress it
    text3 = "FROM alpine:3.20\n# checkov:skip=CKV_DOCKER_1:x\nRUN true\nEXPOSE 22\n"
    assert _verdicts(text3, "GD-009") == [(Verdict.FAIL, 4)]


def test_unknown_control_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="GD-999"):
        check_dockerfile(parse("FROM alpine:3.20\n"), skip={"GD-999"})


def test_result_dict_is_stable() -> None:
    [r] = check_dockerfile(parse("FROM alpine:3.20\nEXPOSE 22\n", "x/Dockerfile"), only={"GD-009"})
    d = r.to_dict()
    assert (
        d["control"] == "GD-009"
        and d["verdict"] == "fail"
        and d["location"] == {"file": "x/Dockerfile", "line": 2, "end_line": 2}
    )
    assert d["details"] == {"instruction": "EXPOSE", "stage": "stage 0"}
