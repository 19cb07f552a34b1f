"""Property tests: the scanner never raises, redaction never shows more than four characters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from secret_tokens import TokenFactory

from garrison.core.errors import GarrisonError
from garrison.secrets import MAX_LINE, RuleSet, SecretScanner, load_config, redact_line, revealed, rules_from_document
from garrison.secrets.keywords import available_backends

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "secrets" / "examples.yaml"
SCANNERS = {backend: SecretScanner(prefilter=backend) for backend in available_backends()}


def _real_inputs() -> list[bytes]:
    data = yaml.safe_load(EXAMPLES.read_text())
    factory = TokenFactory("fuzz", Path("/nonexistent"))
    out: list[bytes] = []
    for entry in data.values():
        for template in entry["positive"] + entry["negative"]:
            if "<<pem" in template or "<<jwt-rs256" in template:
                continue  # these need openssl and a work dir; covered in test_secret_real_keys
            out.append(factory.render(template).encode())
    return out


REAL = _real_inputs()
CORPUS = b"\n".join(REAL)


def _check(matches: list, content: bytes) -> None:  # type: ignore[type-arg]
    lines = content.count(b"\n") + 1
    for m in matches:
        assert 1 <= m.line <= lines
        assert len(m.redacted) <= MAX_LINE
        assert m.path == "srv/app/fuzz.env"


@SETTINGS
@given(content=st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(content: bytes) -> None:
    for scanner in SCANNERS.values():
        _check(scanner.scan("srv/app/fuzz.env", content), content)


@SETTINGS
@given(data=st.data())
def test_mutated_and_truncated_real_inputs(data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from([*REAL, CORPUS])))
    for _ in range(data.draw(st.integers(0, 8))):
        if not base:
            break
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    content = bytes(base[:cut])
    results = [scanner.scan("srv/app/fuzz.env", content) for scanner in SCANNERS.values()]
    assert all(r == results[0] for r in results)
    _check(results[0], content)


SECRET = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=400)
FILLER = st.text(alphabet=" \t=:;,.'\"(){}[]<>#-_\n\r", max_size=300)
_TOKEN_RULES = rules_from_document(
    yaml.safe_load(r"""
rules:
  - id: fuzz-token
    category: Fuzz
    title: Fuzz token
    severity: HIGH
    keywords: ["tok="]
    scope: line
    regex: 'tok=(?P<secret>[A-Za-z0-9]{1,400})'
""")
)
TOKEN_SCANNER = SecretScanner(RuleSet(_TOKEN_RULES, (), "fuzz"))


@SETTINGS
@given(secret=SECRET, before=FILLER, after=FILLER, copies=st.integers(0, 2))
def test_redaction_reveals_at_most_four_characters(secret: str, before: str, after: str, copies: int) -> None:
    content = f"#---------\n{before}tok={secret} {after}" + f" {secret}" * copies
    matches = TOKEN_SCANNER.scan("srv/app/fuzz.env", content.encode())
    assert len(matches) == 1
    redacted = matches[0].redacted
    assert len(redacted) <= MAX_LINE
    for i in range(max(0, len(secret) - 4)):
        assert secret[i : i + 5] not in redacted
    shown = re.findall(r"tok=([A-Za-z0-9]*)", redacted)
    assert all(len(s) <= revealed(len(secret)) <= 4 for s in shown)
    expected_line = content[: content.index("tok=")].count("\n") + 1
    assert matches[0].line == expected_line


@SETTINGS
@given(
    line=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=MAX_LINE),
    data=st.data(),
)
def test_redact_line_masks_exactly_the_span(line: str, data: st.DataObject) -> None:
    raw = line.encode()
    start = data.draw(st.integers(0, len(raw) - 1))
    end = data.draw(st.integers(start + 1, len(raw)))
    keep = revealed(end - start)
    out = redact_line(raw, 0, len(raw), (start, end))
    assert len(out) == len(line)
    assert out[start : start + keep] == line[start : start + keep]
    assert out[start + keep : end] == "*" * (end - start - keep)
    assert all(o in (c, "*") for o, c in zip(out, line, strict=True))


@SETTINGS
@given(line=st.binary(max_size=2000), data=st.data())
def test_redact_line_on_arbitrary_bytes(line: bytes, data: st.DataObject) -> None:
    assume(line)
    start = data.draw(st.integers(0, len(line) - 1))
    end = data.draw(st.integers(start + 1, len(line)))
    out = redact_line(line, 0, len(line), (start, end), [(0, 1)])
    assert len(out) <= MAX_LINE


CONFIG_TEXTS = [
    "disable-rules: [github-pat]\nallow-rules:\n  - id: ci\n    regex: '^ghp_'\n",
    "rules:\n  - id: acme-api-key\n    category: Acme\n    title: Acme key\n    severity: HIGH\n"
    "    keywords: [acme_]\n    regex: '(?P<secret>acme_[a-f0-9]{32})'\n    entropy: 3.0\n",
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_configs_load_or_raise_config_errors(tmp_path: Path, data: st.DataObject) -> None:
    text = bytearray(data.draw(st.sampled_from(CONFIG_TEXTS)).encode())
    for _ in range(data.draw(st.integers(0, 4))):
        pos = data.draw(st.integers(0, len(text) - 1))
        text[pos] = data.draw(st.integers(0, 255))
    text = text[: data.draw(st.integers(0, len(text)))]
    path = tmp_path / "secret.yaml"
    path.write_bytes(bytes(text))
    try:
        ruleset = load_config(path)
    except GarrisonError as err:
        assert "\n" not in str(err)
        return
    assert ruleset.rules


@pytest.mark.parametrize("backend", available_backends())
def test_scanning_many_keyword_lines_is_linear(backend: str) -> None:
    line = b"token = value; password: x; key=AKIA; ghp_ sk_live_ -----BEGIN PRIVATE KEY----- eyJ.eyJ\n"
    content = line * 20000  # 1.6 MB of keyword-dense text
    assert SCANNERS[backend].scan("srv/app/dense.txt", content) == []


@pytest.mark.parametrize(
    ("content", "found"),
    [
        pytest.param(b"-----BEGIN RSA PRIVATE KEY-----" + b" " * 200_000 + b"x", 0, id="pem-header-then-spaces"),
        pytest.param(b"-----BEGIN PRIVATE KEY-----\n" + b"ab-" * 100_000, 0, id="pem-no-footer-dashes"),
        pytest.param(b"-----BEGIN PRIVATE KEY-----\nabc\n" * 20_000, 0, id="pem-many-headers"),
        pytest.param(b"facebook" + b" " * 1_000_000, 0, id="kv-name-then-spaces"),
        pytest.param(b"password" + b" " * 1_000_000 + b"=", 0, id="generic-name-then-spaces"),
        pytest.param(b"token=" + b"a" * 2_000_000, 0, id="generic-endless-value"),
        pytest.param(b"postgres://" + b"a:" * 100_000, 0, id="db-url-colons"),
        pytest.param(b"8Q~" + b"a." * 500_000, 0, id="azure-dots"),
    ],
)
def test_adversarial_inputs_finish(scanner: SecretScanner, content: bytes, found: int) -> None:
    assert len(scanner.scan("srv/app/adversarial.yaml", content)) == found
