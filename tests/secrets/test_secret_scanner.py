"""SecretScanner behaviour: file selection, binary detection, lines, overlaps, redaction, allow lists."""

from __future__ import annotations

import binascii

import pytest
from secret_tokens import TokenFactory, base62, bech32_verify, crc32_token_valid

from garrison.model import Severity
from garrison.secrets import DEFAULT_MAX_FILE_SIZE, SecretScanner, builtin_rules, severity_of, shannon_entropy
from garrison.secrets.keywords import KeywordIndex, available_backends


@pytest.mark.parametrize(
    ("path", "size", "expected"),
    [
        pytest.param("srv/app/.env", 120, True, id="dotenv"),
        pytest.param("/srv/app/config.yaml", 4096, True, id="leading-slash"),
        pytest.param("./etc/app/secrets.json", 4096, True, id="dot-slash"),
        pytest.param("root/.ssh/id_rsa", 1679, True, id="ssh-key"),
        pytest.param("srv/app/tls/server.key", 1700, True, id="pem-key"),
        pytest.param("srv/app/.env", 5, False, id="too-small"),
        pytest.param("srv/app/dump.sql", DEFAULT_MAX_FILE_SIZE + 1, False, id="too-large"),
        pytest.param("srv/app/dump.sql", DEFAULT_MAX_FILE_SIZE, True, id="at-limit"),
        pytest.param("usr/share/doc/openssl/README", 900, False, id="usr-share-doc"),
        pytest.param("usr/lib/python3/dist-packages/x.py", 900, False, id="usr-lib"),
        pytest.param("usr/local/go/src/crypto/tls/key.go", 900, False, id="go-toolchain"),
        pytest.param("srv/app/node_modules/left-pad/index.js", 900, False, id="node-modules"),
        pytest.param("srv/app/node_modules/x/test/fixture.pem", 900, False, id="node-modules-test"),
        pytest.param("srv/app/.git/config", 900, False, id="git-dir"),
        pytest.param("srv/app/package-lock.json", 90000, False, id="npm-lock"),
        pytest.param("srv/app/poetry.lock", 90000, False, id="poetry-lock"),
        pytest.param("srv/app/go.sum", 9000, False, id="go-sum"),
        pytest.param("srv/app/logo.PNG", 9000, False, id="image-upper-ext"),
        pytest.param("srv/app/app.jar", 9000, False, id="jar"),
        pytest.param("srv/app/lib/libssl.so", 9000, False, id="shared-object"),
        pytest.param("srv/app/tests/fixtures/key.pem", 900, False, id="tests-dir"),
        pytest.param("srv/app/config.example.yaml", 900, False, id="example-file"),
        pytest.param("srv/app/README.md", 900, False, id="markdown"),
        pytest.param("srv/app/vendor/lib/key.php", 900, False, id="vendor"),
        pytest.param("srv/app/locale/de/messages.po", 900, False, id="locale"),
    ],
)
def test_wants(scanner: SecretScanner, path: str, size: int, expected: bool) -> None:
    assert scanner.wants(path, size) is expected


def test_max_file_size_is_configurable() -> None:
    small = SecretScanner(max_file_size=1000)
    assert small.wants("srv/app/.env", 1000)
    assert not small.wants("srv/app/.env", 1001)
    assert small.fingerprint != SecretScanner().fingerprint


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(b"\0", id="nul-first"),
        pytest.param(b"ELF" + b"x" * 8000 + b"\0", id="nul-within-8k"),
    ],
)
def test_binary_content_is_skipped(scanner: SecretScanner, tokens: TokenFactory, prefix: bytes) -> None:
    content = prefix + f"\nGITHUB_TOKEN={tokens.github('ghp')}\n".encode()
    assert scanner.scan("srv/app/blob", content) == []


def test_nul_after_8k_still_scanned(scanner: SecretScanner, tokens: TokenFactory) -> None:
    content = b"x" * 9000 + b"\0\n" + f"GITHUB_TOKEN={tokens.github('ghp')}\n".encode()
    assert [m.rule_id for m in scanner.scan("srv/app/blob", content)] == ["github-pat"]


def test_lines_are_one_based_and_crlf_is_trimmed(scanner: SecretScanner, tokens: TokenFactory) -> None:
    token = tokens.github("ghp")
    content = f"GITHUB_TOKEN={token}\r\n\r\n# again\r\n  export GH={token}  \r\n".encode()
    matches = scanner.scan("srv/app/env.bat", content)
    assert [(m.rule_id, m.line) for m in matches] == [("github-pat", 1), ("github-pat", 4)]
    assert matches[0].redacted == "GITHUB_TOKEN=ghp_" + "*" * 36
    assert matches[1].redacted == "export GH=ghp_" + "*" * 36


def test_aws_documented_example_key_is_not_reported(scanner: SecretScanner, tokens: TokenFactory) -> None:
    content = (
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    assert scanner.scan("root/.aws/credentials", content.encode()) == []
    real = content.replace("AKIAIOSFODNN7EXAMPLE", "AKIA" + tokens.rand("b32", 16))
    matches = scanner.scan("root/.aws/credentials", real.encode())
    assert [(m.rule_id, m.line, m.category) for m in matches] == [("aws-access-key-id", 2, "AWS")]
    assert matches[0].redacted == "aws_access_key_id = AKIA" + "*" * 16


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("${GITHUB_TOKEN}", id="env-ref"),
        pytest.param("<your-token>", id="angle-placeholder"),
        pytest.param("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", id="x-filler"),
        pytest.param("{{ .Values.token }}", id="template"),
        pytest.param("$TOKEN", id="shell-var"),
    ],
)
def test_placeholders_are_not_reported(scanner: SecretScanner, value: str) -> None:
    content = f"GITHUB_TOKEN={value}\nAPI_TOKEN={value}\nDB_PASSWORD={value}\n"
    assert scanner.scan("srv/app/.env", content.encode()) == []


def test_vendor_rule_wins_over_generic_on_same_text(scanner: SecretScanner, tokens: TokenFactory) -> None:
    content = f"STRIPE_SECRET_KEY=sk_live_{tokens.rand('alnum', 24)}\n"
    matches = scanner.scan("srv/app/.env", content.encode())
    assert [m.rule_id for m in matches] == ["stripe-secret-token"]


def test_overlap_keeps_higher_severity(scanner: SecretScanner, tokens: TokenFactory) -> None:
    # npm's own token format inside an .npmrc line matches both npm rules on the same span
    content = f"//registry.npmjs.org/:_authToken={tokens.github('npm')}\n"
    matches = scanner.scan("home/node/.npmrc", content.encode())
    assert [m.rule_id for m in matches] == ["npm-access-token"]
    assert severity_of("npm-access-token") is Severity.CRITICAL


def test_two_secrets_on_one_line_mask_each_other(scanner: SecretScanner, tokens: TokenFactory) -> None:
    gh, key_id = tokens.github("ghp"), "AKIA" + tokens.rand("b32", 16)
    content = f"creds: {gh} {key_id}\n"
    matches = scanner.scan("srv/app/creds.txt", content.encode())
    assert [m.rule_id for m in matches] == ["aws-access-key-id", "github-pat"]
    by_rule = {m.rule_id: m.redacted for m in matches}
    assert by_rule["github-pat"] == "creds: ghp_" + "*" * 36 + " " + "*" * 20
    assert by_rule["aws-access-key-id"] == "creds: " + "*" * 40 + " AKIA" + "*" * 16


def test_long_line_is_cut_around_the_secret(scanner: SecretScanner, tokens: TokenFactory) -> None:
    token = tokens.github("ghp")
    content = ("a" * 5000 + " token " + token + " " + "b" * 5000).encode()
    (match,) = scanner.scan("srv/app/app.min.js", content)
    assert len(match.redacted) == 200
    assert "ghp_" + "*" * 36 in match.redacted


def test_results_sorted_by_line_and_rule(scanner: SecretScanner, tokens: TokenFactory) -> None:
    lines = [f"GITHUB_TOKEN={tokens.github('ghp')}", "nothing here", f"STRIPE=sk_live_{tokens.rand('alnum', 30)}"]
    matches = scanner.scan("srv/app/.env", "\n".join(lines).encode())
    assert [(m.line, m.rule_id) for m in matches] == [(1, "github-pat"), (3, "stripe-secret-token")]
    assert all(m.layer is None for m in matches)


def test_rules_argument_limits_the_scan(tokens: TokenFactory) -> None:
    only_github = SecretScanner([builtin_rules().get("github-pat")])  # type: ignore[list-item]
    content = f"A={tokens.github('ghp')}\nB=sk_live_{tokens.rand('alnum', 24)}\n".encode()
    assert [m.rule_id for m in only_github.scan("srv/app/.env", content)] == ["github-pat"]


def test_allowed_path_is_skipped_by_scan_too(scanner: SecretScanner, tokens: TokenFactory) -> None:
    content = f"GITHUB_TOKEN={tokens.github('ghp')}\n".encode()
    assert scanner.scan("usr/share/doc/app/NEWS", content) == []
    assert scanner.scan("srv/app/NEWS", content) != []


@pytest.mark.parametrize("backend", available_backends())
def test_prefilter_backends_agree(backend: str, tokens: TokenFactory) -> None:
    scanner = SecretScanner(prefilter=backend)
    assert scanner.prefilter_backend == backend
    content = (
        f"key: {tokens.github('ghp')}\nAWS_KEY=AKIA{tokens.rand('b32', 16)}\n"
        f"DB_PASSWORD={tokens.rand('alnum', 14)}7#\nplain text without anything\n"
    ).encode()
    expected = SecretScanner(prefilter="stdlib").scan("srv/app/.env", content)
    assert scanner.scan("srv/app/.env", content) == expected
    assert {m.rule_id for m in expected} == {"github-pat", "aws-access-key-id", "generic-password"}


@pytest.mark.parametrize("backend", available_backends())
def test_keyword_index_offsets(backend: str) -> None:
    index = KeywordIndex([b"key", b"akia", b"ke"], backend)
    found = index.find(b"a key, akia key")
    assert found == {0: [2, 12], 1: [7], 2: [2, 12]}
    assert index.find(b"nothing") == {}


def test_unknown_prefilter_backend() -> None:
    with pytest.raises(ValueError, match="unknown keyword backend"):
        SecretScanner(prefilter="hyperscan")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", 0.0, id="empty"),
        pytest.param(b"aaaa", 0.0, id="constant"),
        pytest.param(b"abab", 1.0, id="two-symbols"),
        pytest.param(bytes(range(256)), 8.0, id="all-bytes"),
    ],
)
def test_shannon_entropy(data: bytes, expected: float) -> None:
    assert shannon_entropy(data) == pytest.approx(expected)


def test_generated_tokens_follow_published_checksums(tokens: TokenFactory) -> None:
    gh = tokens.github("ghp")
    assert crc32_token_valid(gh)
    assert not crc32_token_valid(gh[:-1] + ("A" if gh[-1] != "A" else "B"))
    assert base62(binascii.crc32(b"")) == "000000"
    assert crc32_token_valid(tokens.github("npm"))
    age = tokens.age()
    assert age.startswith("AGE-SECRET-KEY-1") and len(age) == 74
    assert bech32_verify(age)
    assert tokens.pypi().startswith("pypi-AgEIcHlwaS5vcmc")
    assert tokens.pypi("test.pypi.org").startswith("pypi-AgENdGVzdC5weXBpLm9yZw")
