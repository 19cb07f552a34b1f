"""``garrison posture image``: an image's history and config checked with the Dockerfile controls.

Images are built for real by podman (buildah) from Containerfiles over a static busybox, saved as
docker-archives and read back by our image reader; the verdicts must agree with ``posture
dockerfile`` on the Containerfile they were built from (controls that judge the source file
only are not applicable to images)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.cli.main import main
from garrison.model import Artifact, ArtifactKind
from garrison.posture.image import NOT_APPLICABLE, check_image, instruction_of, reconstruct

BUSYBOX = Path("/bin/busybox")

CONTAINERFILES = {
    "risky": """FROM scratch
COPY busybox /bin/sh
COPY busybox /bin/busybox
ENV API_TOKEN=abc123
EXPOSE 22 8080
RUN busybox true || busybox wget -qO- https://example.com/install.sh | sh
RUN busybox mkdir -p /srv && cd /srv && busybox chmod 777 /srv
USER root
CMD ["sh"]
""",
    "tidy": """FROM scratch
COPY busybox /bin/busybox
COPY busybox /bin/sh
WORKDIR /srv
EXPOSE 8080
USER 10001
HEALTHCHECK --interval=30s CMD ["/bin/busybox", "true"]
ENTRYPOINT ["/bin/busybox"]
CMD ["httpd", "-f", "-p", "8080"]
""",
    "overrides": """FROM scratch
COPY busybox /bin/sh
CMD ["sh"]
USER 65534
RUN set -o pipefail; busybox echo 1 | busybox cat
CMD ["sh", "-c", "true"]
USER root
""",
}


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "--runtime", "/usr/sbin/runc", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    if shutil.which("podman") is None or not BUSYBOX.exists():
        pytest.fail("podman and busybox-static are needed (make test installs them)")
    out: dict[str, tuple[Path, Path]] = {}
    for name, text in CONTAINERFILES.items():
        ctx = tmp_path_factory.mktemp(f"ctx-{name}")
        shutil.copy(BUSYBOX, ctx / "busybox")
        (ctx / "Containerfile").write_text(text)
        tag = f"localhost/garrison-posture-image-{name}-{uuid.uuid4().hex[:8]}:1"
        fmt = "oci" if name == "overrides" else "docker"  # both history flavours buildah writes
        # No layer cache: another test worker may build the same Containerfile at the same time, and
        # removing one build's image must never remove cached layers the other build stands on.
        done = _podman("build", "--layers=false", "--no-cache", "--format", fmt, "--network", "none", "-t", tag, str(ctx))
        assert done.returncode == 0, done.stderr[-2000:]
        archive = ctx / "image.tar"
        saved = _podman("save", "--format", "docker-archive", "-o", str(archive), tag)
        _podman("rmi", "-f", tag)
        assert saved.returncode == 0, saved.stderr[-2000:]
        out[name] = (ctx / "Containerfile", archive)
    return out


def _failed(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[set[str], dict[str, object]]:
    with pytest.raises(SystemExit):
        main(argv)
    doc = json.loads(capsys.readouterr().out)
    return {r["control"] for r in doc["results"] if r["verdict"] == "fail"}, doc


@pytest.mark.parametrize("name", sorted(CONTAINERFILES))
def test_image_agrees_with_its_containerfile(
    name: str, built: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    containerfile, archive = built[name]
    from_source, _ = _failed(["posture", "dockerfile", str(containerfile), "-f", "json"], capsys)
    from_image, doc = _failed(["posture", "image", str(archive), "-f", "json"], capsys)
    assert from_image == from_source - NOT_APPLICABLE
    for r in doc["results"]:  # type: ignore[attr-defined]
        if r["verdict"] == "fail" and "history_index" in r["details"]:
            assert r["location"]["line"] == r["details"]["history_index"] + 1


def test_risky_image_findings_point_at_history(built: dict[str, tuple[Path, Path]], capsys) -> None:  # type: ignore[no-untyped-def]
    _, archive = built["risky"]
    failed, doc = _failed(["posture", "image", str(archive), "-f", "json"], capsys)
    assert {"GD-002", "GD-008", "GD-009", "GD-022", "GD-026", "GD-040"} <= failed
    secret = next(r for r in doc["results"] if r["control"] == "GD-022" and r["verdict"] == "fail")  # type: ignore[attr-defined]
    assert "API_TOKEN" in secret["details"]["created_by"]
    assert secret["subject"]["kind"] == "Image"


def test_sarif_and_exit_codes(built: dict[str, tuple[Path, Path]], capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, archive = built["risky"]
    with pytest.raises(SystemExit) as done:
        main(["posture", "image", str(archive), "-f", "sarif"])
    assert done.value.code == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    with pytest.raises(SystemExit) as done:
        main(["posture", "image", str(tmp_path / "missing.tar")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "missing.tar" in err and len(err.strip().splitlines()) == 1


def _artifact(history: list[dict[str, object]], config: dict[str, object]) -> Artifact:
    return Artifact(name="img", kind=ArtifactKind.DOCKER_ARCHIVE, config=config, history=history)


@pytest.mark.parametrize(
    ("created_by", "expected"),
    [
        # classic builder and buildah
        ('/bin/sh -c #(nop)  CMD ["bash"]', 'CMD ["bash"]'),
        ("/bin/sh -c #(nop) EXPOSE 22 8080", "EXPOSE 22 8080"),
        ("/bin/sh -c apt-get update && apt-get install -y curl", "RUN apt-get update && apt-get install -y curl"),
        ("|2 A=1 B=2 /bin/sh -c make install", "RUN make install"),
        ('/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "/bin/true"] "1m0s" "5s" "0s" \'\\x00\'}', "HEALTHCHECK CMD true"),
        ('/bin/sh -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}', "HEALTHCHECK NONE"),
        # BuildKit
        ("RUN /bin/sh -c apt-get update # buildkit", "RUN apt-get update"),
        ("RUN |1 VERSION=1.2 /bin/sh -c make # buildkit", "RUN make"),
        ("EXPOSE map[22/tcp:{} 8080/tcp:{}]", "EXPOSE 22/tcp 8080/tcp"),
        ("COPY . /app # buildkit", "COPY . /app"),
        ("ENV NODE_ENV=production", "ENV NODE_ENV=production"),
        # tools that write the bare command
        ("ADD file:3a2b in / ", "ADD file:3a2b in /"),
        ("make install", "RUN make install"),
    ],
)
def test_instruction_of(created_by: str, expected: str) -> None:
    assert instruction_of(created_by) == expected


def test_config_fills_what_history_does_not_show() -> None:
    art = _artifact(
        [{"created_by": "ADD rootfs.tar /"}],
        {"User": "0", "ExposedPorts": {"22/tcp": {}}, "Env": ["PATH=/bin", "DB_PASSWORD=x"]},
    )
    text = reconstruct(art).text
    assert "USER 0" in text and "EXPOSE 22/tcp" in text and "ENV DB_PASSWORD=x" in text and "PATH" not in text
    failed = {r.control.id for r in check_image(art) if str(r.verdict) == "fail"}
    assert {"GD-002", "GD-009", "GD-022", "GD-008"} <= failed
    config_result = next(r for r in check_image(art) if r.control.id == "GD-022" and str(r.verdict) == "fail")
    assert config_result.details.get("source") == "image config"


@given(
    st.lists(st.fixed_dictionaries({"created_by": st.text(max_size=80)}), max_size=8),
    st.dictionaries(st.sampled_from(["User", "Env", "ExposedPorts", "Healthcheck"]), st.none() | st.text(max_size=10)),
)
def test_fuzz_reconstruct_never_crashes(history: list[dict[str, object]], config: dict[str, object]) -> None:
    from garrison.core.errors import GarrisonError

    art = _artifact(history, config)
    try:
        check_image(art)
    except GarrisonError:
        pass
