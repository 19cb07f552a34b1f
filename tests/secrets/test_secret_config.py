"""--secret-config: adding, replacing and disabling rules; errors name the file and the entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from secret_tokens import TokenFactory

from garrison.core.errors import ConfigError, NotFoundError
from garrison.model import Severity
from garrison.secrets import SecretScanner, builtin_rules, load_config, merge_config, rules_from_document, severity_of

CUSTOM_RULE = """
rules:
  - id: acme-api-key
    category: Acme
    title: Acme API key
    severity: HIGH
    keywords: [acme_]
    regex: '(?P<secret>acme_[a-f0-9]{32})'
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secret.yaml"
    path.write_text(text)
    return path


def test_custom_rule_is_added(tmp_path: Path, tokens: TokenFactory) -> None:
    scanner = SecretScanner.from_config(_write(tmp_path, CUSTOM_RULE))
    key = "acme_" + tokens.rand("hex", 32)
    content = f"ACME={key}\nGITHUB_TOKEN={tokens.github('ghp')}\n".encode()
    matches = scanner.scan("srv/app/.env", content)
    assert [(m.rule_id, m.category, m.line) for m in matches] == [
        ("acme-api-key", "Acme", 1),
        ("github-pat", "GitHub", 2),
    ]
    assert severity_of("acme-api-key") is Severity.HIGH
    assert scanner.fingerprint != SecretScanner().fingerprint
    assert len(scanner.rules) == len(builtin_rules().rules) + 1


def test_disable_rules_and_allow_rules(tmp_path: Path, tokens: TokenFactory) -> None:
    config = _write(tmp_path, "disable-rules: [github-pat]\ndisable-allow-rules: [usr-dirs]\n")
    scanner = SecretScanner.from_config(config)
    content = f"A={tokens.github('ghp')}\nB=sk_live_{tokens.rand('alnum', 24)}\n".encode()
    assert [m.rule_id for m in scanner.scan("usr/share/app/env", content)] == ["stripe-secret-token"]
    assert scanner.wants("usr/share/app/env", 100)
    assert not SecretScanner().wants("usr/share/app/env", 100)


def test_enable_builtin_rules_keeps_custom_rules(tmp_path: Path, tokens: TokenFactory) -> None:
    config = _write(tmp_path, "enable-builtin-rules: [aws-access-key-id]\n" + CUSTOM_RULE)
    ruleset = load_config(config)
    assert [r.id for r in ruleset.rules] == ["aws-access-key-id", "acme-api-key"]


def test_builtin_rule_can_be_replaced(tmp_path: Path, tokens: TokenFactory) -> None:
    text = CUSTOM_RULE.replace("acme-api-key", "github-pat").replace("severity: HIGH", "severity: LOW")
    ruleset = load_config(_write(tmp_path, text))
    rule = ruleset.get("github-pat")
    assert rule is not None and rule.severity is Severity.LOW and rule.category == "Acme"
    assert sum(r.id == "github-pat" for r in ruleset.rules) == 1


def test_custom_allow_rule(tmp_path: Path, tokens: TokenFactory) -> None:
    config = _write(
        tmp_path, "allow-rules:\n  - id: ci-fixture\n    regex: '^ghp_'\n  - id: build\n    path: '^build/'\n"
    )
    scanner = SecretScanner.from_config(config)
    content = f"A={tokens.github('ghp')}\n".encode()
    assert scanner.scan("srv/app/.env", content) == []
    assert not scanner.wants("build/out.txt", 100)


def test_empty_config_is_the_builtin_set(tmp_path: Path) -> None:
    ruleset = load_config(_write(tmp_path, ""))
    assert [r.id for r in ruleset.rules] == [r.id for r in builtin_rules().rules]
    assert ruleset.fingerprint == builtin_rules().fingerprint


def test_unknown_ids_only_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_config(_write(tmp_path, "disable-rules: [no-such-rule]\n"))
    assert "no-such-rule" in caplog.text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("rules: [1, 2", "not valid YAML at line", id="bad-yaml"),
        pytest.param("- a\n- b\n", "must be a mapping", id="not-a-mapping"),
        pytest.param("rulez: []\n", "Additional properties", id="unknown-key"),
        pytest.param("disable-rules: github-pat\n", "disable-rules", id="wrong-type"),
        pytest.param(CUSTOM_RULE.replace("severity: HIGH", "severity: SEVERE"), "rules/0/severity", id="bad-severity"),
        pytest.param(
            CUSTOM_RULE.replace("    title: Acme API key\n", ""), "'title' is a required property", id="missing-title"
        ),
        pytest.param(
            CUSTOM_RULE.replace("(?P<secret>acme_", "(?P<secret>(acme_"),
            "rules[0] (acme-api-key).regex: bad regex",
            id="bad-regex",
        ),
        pytest.param(CUSTOM_RULE.replace("(?P<secret>", "("), "no named group (?P<secret>", id="no-secret-group"),
        pytest.param(CUSTOM_RULE.replace("id: acme-api-key", "id: Acme Key"), "rules/0/id", id="bad-id"),
        pytest.param("allow-rules:\n  - id: nothing\n", "allow-rules/0", id="allow-rule-without-pattern"),
        pytest.param(
            CUSTOM_RULE + CUSTOM_RULE.split("rules:\n")[1], "rules: duplicate id(s) acme-api-key", id="duplicate-id"
        ),
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_config_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="secret config file not found"):
        SecretScanner.from_config(tmp_path / "absent.yaml")


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_bytes(b"rules: [\xff\xfe]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_documents_without_files() -> None:
    import yaml

    rules = rules_from_document(yaml.safe_load(CUSTOM_RULE))
    assert [r.id for r in rules] == ["acme-api-key"]
    merged = merge_config({"disable-rules": ["jwt-token"]})
    assert merged.get("jwt-token") is None and merged.get("github-pat") is not None
    with pytest.raises(ConfigError, match="secret config"):
        merge_config({"rules": "nope"})


def test_unknown_rule_severity_is_unknown() -> None:
    assert severity_of("no-such-rule") is Severity.UNKNOWN
    assert severity_of("aws-access-key-id") is Severity.CRITICAL


def test_builtin_rules_validate_and_compile() -> None:
    """The built-in document skips both checks at run time (for speed), so they happen here."""
    import re

    from garrison.secrets import rules as rules_mod

    doc = rules_mod._builtin_document()
    assert list(rules_mod._schema_validator().iter_errors(doc)) == []
    for i, raw in enumerate(doc["rules"]):
        eager = rules_mod._compile_rule(raw, "built-in", i)
        assert isinstance(eager.regex, re.Pattern)
        assert rules_mod.SECRET_GROUP in eager.regex.groupindex
