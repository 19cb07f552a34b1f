"""Reference parsing, WWW-Authenticate parsing and credential lookup."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.image._auth import find_credentials, parse_challenges
from garrison.image._digest import parse_digest
from garrison.image._oci import Descriptor, Platform, select_platform
from garrison.image.reference import parse_reference


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "api"),
    [
        pytest.param("alpine", "docker.io", "library/alpine", "latest", "registry-1.docker.io", id="hub-official"),
        pytest.param("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", "registry-1.docker.io", id="hub-user"),
        pytest.param("index.docker.io/library/debian:12", "docker.io", "library/debian", "12", "registry-1.docker.io", id="hub-alias"),
        pytest.param("ghcr.io/org/img:v1", "ghcr.io", "org/img", "v1", "ghcr.io", id="ghcr"),
        pytest.param("localhost:5000/a/b", "localhost:5000", "a/b", "latest", "localhost:5000", id="port"),
        pytest.param("localhost/a", "localhost", "a", "latest", "localhost", id="localhost"),
    ],
)
def test_parse_reference(text: str, registry: str, repository: str, tag: str, api: str) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.api_host) == (registry, repository, tag, api)


def test_reference_with_digest() -> None:
    digest = "sha256:" + "ab" * 32
    ref = parse_reference(f"quay.io/x/y@{digest}")
    assert ref.tag is None and ref.digest == digest and ref.reference == digest
    assert str(ref) == f"quay.io/x/y@{digest}"


@pytest.mark.parametrize("bad", ["", "UPPER/case", "a b", "x@sha256:zz", "repo:bad tag", "a//b", "-lead"])
def test_bad_references(bad: str) -> None:
    with pytest.raises(InputError):
        parse_reference(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InputError:
        return
    assert ref.repository and (ref.tag or ref.digest)


def test_challenges() -> None:
    [bearer] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'
    )
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull",
    }
    basic, second = parse_challenges('Basic realm="a \\"quoted\\" realm", Bearer realm="https://x/t",error="invalid_token"')
    assert basic.params == {"realm": 'a "quoted" realm'}
    assert second.params["error"] == "invalid_token"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_challenges(text: str) -> None:
    for challenge in parse_challenges(text):
        assert challenge.scheme == challenge.scheme.lower()


def test_credentials_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GARRISON_REGISTRY_USERNAME", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert find_credentials("ghcr.io") is None
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hubpass").decode()},
                    "ghcr.io": {"username": "gh", "password": "tok"},
                    "bad.example": {"auth": "***"},
                },
                "credsStore": "desktop",
            }
        )
    )
    hub = find_credentials("docker.io")
    assert hub is not None and (hub.username, hub.password) == ("hubuser", "hubpass")
    gh = find_credentials("ghcr.io")
    assert gh is not None and gh.username == "gh"
    assert find_credentials("bad.example") is None
    assert "tok" not in repr(gh)
    explicit = find_credentials("ghcr.io", "me", "pw")
    assert explicit is not None and explicit.username == "me"
    monkeypatch.setenv("GARRISON_REGISTRY_USERNAME", "envuser")
    monkeypatch.setenv("GARRISON_REGISTRY_PASSWORD", "envpw")
    env = find_credentials("ghcr.io")
    assert env is not None and (env.username, env.password) == ("envuser", "envpw")


def test_digest_validation() -> None:
    assert parse_digest("sha256:" + "0" * 64, input_name="x") == ("sha256", "0" * 64)
    for bad in ("sha256:../../etc/passwd", "md5:" + "0" * 32, "sha256:" + "0" * 63, 42):
        with pytest.raises(InputError):
            parse_digest(bad, input_name="x")


def _desc(os_: str, arch: str, variant: str = "") -> Descriptor:
    return Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "1" * 64, 1, Platform(os_, arch, variant))


def test_select_platform_rules() -> None:
    entries = [_desc("linux", "arm", "v7"), _desc("linux", "arm64", "v8"), _desc("linux", "amd64"), _desc("unknown", "unknown")]
    assert select_platform(entries, None, input_name="i").platform == Platform("linux", "amd64")
    assert select_platform(entries, Platform("linux", "arm64"), input_name="i").platform == Platform("linux", "arm64", "v8")
    assert select_platform(entries, Platform("linux", "arm", "v7"), input_name="i").platform == Platform("linux", "arm", "v7")
    plain_arm64 = [_desc("linux", "arm64")]
    assert select_platform(plain_arm64, Platform("linux", "arm64", "v8"), input_name="i").platform == Platform("linux", "arm64")
