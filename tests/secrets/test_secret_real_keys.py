"""Private keys and tokens made by real tools (ssh-keygen, openssl, gpg) are found and redacted."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from secret_tokens import TokenFactory, bech32_verify

from garrison.secrets import SecretScanner

GPG = shutil.which("gpg")
AGE_KEYGEN = shutil.which("age-keygen")


def _run(*cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True, cwd=cwd)


def _ssh(kind: str, *extra: str):  # type: ignore[no-untyped-def]
    def make(tmp: Path) -> str:
        _run("ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "deploy@example.org", "-f", str(tmp / "id"))
        return (tmp / "id").read_text()

    return make


def _openssl(*steps: list[str]):  # type: ignore[no-untyped-def]
    def make(tmp: Path) -> str:
        for step in steps:
            _run("openssl", *step, cwd=tmp)
        return (tmp / "key.pem").read_text()

    return make


def _gpg_key(tmp: Path) -> str:
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    base = ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    _run(*base, "--quick-gen-key", "Build Bot <bot@example.org>", "ed25519", "default", "never")
    out = subprocess.run([*base, "--armor", "--export-secret-keys"], check=True, capture_output=True).stdout.decode()
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
    return out


KEY_MAKERS = [
    pytest.param(_ssh("rsa", "-b", "2048"), "OPENSSH PRIVATE KEY", id="ssh-keygen-rsa"),
    pytest.param(_ssh("ed25519"), "OPENSSH PRIVATE KEY", id="ssh-keygen-ed25519"),
    pytest.param(_ssh("ecdsa", "-b", "256"), "OPENSSH PRIVATE KEY", id="ssh-keygen-ecdsa"),
    pytest.param(_ssh("rsa", "-b", "2048", "-m", "PEM"), "RSA PRIVATE KEY", id="ssh-keygen-rsa-pem"),
    pytest.param(
        _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "key.pem"]),
        "PRIVATE KEY",
        id="openssl-pkcs8-rsa",
    ),
    pytest.param(
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "key.pem"]),
        "PRIVATE KEY",
        id="openssl-pkcs8-ec",
    ),
    pytest.param(
        _openssl(["genpkey", "-algorithm", "ED25519", "-out", "key.pem"]), "PRIVATE KEY", id="openssl-pkcs8-ed25519"
    ),
    pytest.param(
        _openssl(["genrsa", "-traditional", "-out", "key.pem", "2048"]), "RSA PRIVATE KEY", id="openssl-rsa-traditional"
    ),
    pytest.param(
        _openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"]),
        "EC PRIVATE KEY",
        id="openssl-ec-traditional",
    ),
    pytest.param(
        _openssl(
            ["genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt", "dsa_paramgen_bits:2048", "-out", "p.pem"],
            ["genpkey", "-paramfile", "p.pem", "-out", "k.pem"],
            ["pkey", "-in", "k.pem", "-traditional", "-out", "key.pem"],
        ),
        "DSA PRIVATE KEY",
        id="openssl-dsa-traditional",
    ),
    pytest.param(
        _openssl(
            ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "k.pem"],
            ["pkcs8", "-topk8", "-in", "k.pem", "-v2", "aes256", "-passout", "pass:hunter22", "-out", "key.pem"],
        ),
        "ENCRYPTED PRIVATE KEY",
        id="openssl-pkcs8-encrypted",
    ),
    pytest.param(
        _openssl(
            ["genrsa", "-traditional", "-out", "k.pem", "2048"],
            ["rsa", "-in", "k.pem", "-aes256", "-traditional", "-passout", "pass:hunter22", "-out", "key.pem"],
        ),
        "RSA PRIVATE KEY",
        id="openssl-rsa-encrypted-proc-type",
    ),
]
if GPG:
    KEY_MAKERS.append(pytest.param(_gpg_key, "PGP PRIVATE KEY BLOCK", id="gpg-armored"))


def _body_lines(text: str) -> list[str]:
    lines = text.splitlines()
    begin = next(i for i, line in enumerate(lines) if "-----BEGIN" in line)
    end = next(i for i, line in enumerate(lines) if "-----END" in line)
    return [line for line in lines[begin + 1 : end] if line.strip()]


@pytest.mark.parametrize(("make", "label"), KEY_MAKERS)
def test_real_private_key_found_and_redacted(scanner: SecretScanner, tmp_path: Path, make, label: str) -> None:  # type: ignore[no-untyped-def]
    key = make(tmp_path)
    assert f"-----BEGIN {label}-----" in key
    content = f"# deploy credentials\nuser: deploy\n{key}trailing: true\n"
    matches = scanner.scan("srv/app/keys/deploy_id", content.encode())
    assert [m.rule_id for m in matches] == ["private-key"]
    match = matches[0]
    lines = content.splitlines()
    first_body = _body_lines(key)[0]
    assert match.line == lines.index(first_body) + 1
    # the reported line is all secret: at most its first four characters survive
    assert match.redacted == first_body[:4] + "*" * (len(first_body) - 4)
    for body in _body_lines(key):
        for i in range(len(body) - 4):
            assert body[i : i + 5] not in match.redacted


def test_two_keys_in_one_file_are_two_findings(scanner: SecretScanner, tokens: TokenFactory) -> None:
    one = tokens.openssl_key("rsa").read_text()
    two = tokens.openssl_key("ec").read_text()
    content = f"{one}\n{two}"
    matches = scanner.scan("srv/app/bundle.pem", content.encode())
    assert [m.rule_id for m in matches] == ["private-key", "private-key"]
    assert matches[0].line == 2
    assert matches[1].line == one.count("\n") + 3


def test_gcp_service_account_json_with_openssl_key(scanner: SecretScanner, tokens: TokenFactory) -> None:
    pem = tokens.openssl_key("rsa").read_text()
    doc = {
        "type": "service_account",
        "project_id": "shop-prod",
        "private_key_id": tokens.rand("hex", 40),
        "private_key": pem,
        "client_email": "ci@shop-prod.iam.gserviceaccount.com",
    }
    content = json.dumps(doc, indent=2)
    matches = scanner.scan("srv/app/sa.json", content.encode())
    assert {m.rule_id for m in matches} == {"gcp-service-account", "private-key"}
    key_match = next(m for m in matches if m.rule_id == "private-key")
    assert key_match.line == 5  # the JSON line holding "private_key"
    assert "BEGIN PRIVATE KEY" in key_match.redacted
    assert pem.splitlines()[1][:5] not in key_match.redacted


def test_kubernetes_service_account_token_signed_by_openssl(scanner: SecretScanner, tokens: TokenFactory) -> None:
    token = tokens.jwt_rs256({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:shop:web"})
    path = "var/run/secrets/kubernetes.io/serviceaccount/token"
    assert [m.rule_id for m in scanner.scan(path, token.encode())] == ["kubernetes-service-account-token"]
    # anywhere else it is a plain JWT
    assert [m.rule_id for m in scanner.scan("srv/app/token.txt", token.encode())] == ["jwt-token"]


def test_openssh_public_key_is_not_a_secret(scanner: SecretScanner, tmp_path: Path) -> None:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id"))
    public = (tmp_path / "id.pub").read_bytes()
    assert re.match(rb"ssh-ed25519 ", public)
    assert scanner.scan("root/.ssh/authorized_keys", public) == []


AGE_CASES = [pytest.param(AGE_KEYGEN, id="age-keygen")] if AGE_KEYGEN else []


@pytest.mark.parametrize("tool", [*AGE_CASES, pytest.param(None, id="bech32-per-spec")])
def test_age_identity(scanner: SecretScanner, tokens: TokenFactory, tool: str | None) -> None:
    if tool:
        out = subprocess.run([tool], check=True, capture_output=True, text=True).stdout
    else:
        out = f"# public key: age1...\n{tokens.age()}\n"
    key = next(line for line in out.splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    assert bech32_verify(key)
    matches = scanner.scan("root/.config/sops/age/keys.txt", out.encode())
    assert [m.rule_id for m in matches] == ["age-secret-key"]
    assert matches[0].redacted == "AGE-" + "*" * (len(key) - 4)
