"""Every built-in rule fires on its positive examples and stays quiet on its negatives.

The examples live in tests/assets/secrets/examples.yaml; their tokens are built at test time per
each vendor's format (tests/secrets/secret_tokens.py), keys by openssl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from secret_tokens import TokenFactory

from garrison.secrets import SecretScanner, builtin_rules

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "secrets" / "examples.yaml"
DEFAULT_PATH = "srv/app/config.env"


def _cases(kind: str) -> list[Any]:
    data = yaml.safe_load(EXAMPLES.read_text())
    return [
        pytest.param(rule_id, entry.get("path", DEFAULT_PATH), template, id=f"{rule_id}-{i}")
        for rule_id, entry in data.items()
        for i, template in enumerate(entry[kind])
    ]


def test_every_builtin_rule_has_examples(examples: dict[str, Any]) -> None:
    ids = {r.id for r in builtin_rules().rules}
    assert set(examples) == ids
    for rule_id, entry in examples.items():
        assert entry["positive"], rule_id
        assert entry["negative"], rule_id


def test_builtin_rule_set_covers_trivy_categories() -> None:
    rules = builtin_rules().rules
    assert len(rules) >= 80
    categories = {r.category for r in rules}
    for needed in (
        "AWS",
        "GCP",
        "Azure",
        "GitHub",
        "GitLab",
        "Slack",
        "Stripe",
        "Twilio",
        "SendGrid",
        "npm",
        "PyPI",
        "Docker",
        "AsymmetricPrivateKey",
        "JWT",
        "Generic",
        "Database",
        "Kubernetes",
    ):
        assert needed in categories, needed
    assert all(r.keywords for r in rules), "every built-in rule is gated by keywords"


@pytest.mark.parametrize(("rule_id", "path", "template"), _cases("positive"))
def test_positive_example(scanner: SecretScanner, tmp_path: Path, rule_id: str, path: str, template: str) -> None:
    text = TokenFactory(f"{rule_id}:{template}", tmp_path).render(template)
    matches = scanner.scan(path, text.encode())
    found = [m for m in matches if m.rule_id == rule_id]
    assert found, f"{rule_id} not reported; got {[m.rule_id for m in matches]}"
    match = found[0]
    assert match.path == path
    assert match.line >= 1
    assert "*" in match.redacted
    assert len(match.redacted) <= 200
    rule = builtin_rules().get(rule_id)
    assert rule is not None
    assert (match.category, match.title) == (rule.category, rule.title)


@pytest.mark.parametrize(("rule_id", "path", "template"), _cases("negative"))
def test_negative_example(scanner: SecretScanner, tmp_path: Path, rule_id: str, path: str, template: str) -> None:
    text = TokenFactory(f"{rule_id}:{template}", tmp_path).render(template)
    assert rule_id not in {m.rule_id for m in scanner.scan(path, text.encode())}
