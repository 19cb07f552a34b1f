"""Calico selector grammar: every section of the shared conformance file, plus property tests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.network.selector import SelectorError, k8s_label_selector, parse, tokenize


def _data() -> dict[str, Any]:
    from tests.conftest import CONFORMANCE

    return json.loads((CONFORMANCE / "netpol" / "calico_selectors.json").read_text(encoding="utf-8"))


DATA = _data()


def _ids(section: str, key: str = "id") -> list[Any]:
    return [pytest.param(case, id=str(case.get(key, case.get("desc")))) for case in DATA[section]]


def test_every_section_is_present() -> None:
    for section in ("match_cases", "invalid_selectors", "canonicalisation", "tokenizer", "visitor_prefix",
                    "label_restrictions"):
        assert DATA[section], section


@pytest.mark.parametrize("case", _ids("match_cases"))
def test_match_cases(case: dict[str, Any]) -> None:
    assert parse(case["selector"]).matches(case["labels"]) is case["expect"]


@pytest.mark.parametrize("case", _ids("invalid_selectors"))
def test_invalid_selectors(case: dict[str, Any]) -> None:
    with pytest.raises(SelectorError) as err:
        parse(case["selector"])
    assert 0 <= err.value.position <= len(case["selector"])
    assert f"at character {err.value.position}" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("case", _ids("canonicalisation"))
def test_canonicalisation(case: dict[str, Any]) -> None:
    sel = parse(case["input"])
    assert sel.canonical == case["canonical"]
    if case["uid"] is not None:
        assert sel.uid == case["uid"]


def _tokens(text: str) -> list[list[str]]:
    valued = {"TokLabel", "TokStringLiteral", "TokHas"}
    return [[t.kind.value, t.value] if t.kind.value in valued else [t.kind.value] for t in tokenize(text)]


@pytest.mark.parametrize("case", _ids("tokenizer"))
def test_tokenizer(case: dict[str, Any]) -> None:
    assert _tokens(case["input"]) == case["tokens"]


@pytest.mark.parametrize("case", _ids("visitor_prefix", "desc"))
def test_visitor_prefix(case: dict[str, Any]) -> None:
    assert parse(case["input"]).with_prefix("visited/").canonical == case["output_with_prefix_visited/"]


@pytest.mark.parametrize("case", _ids("label_restrictions"))
def test_label_restrictions(case: dict[str, Any]) -> None:
    got = parse(case["selector"]).label_restrictions()
    assert (None if got is None else {k: v.as_calico() for k, v in got.items()}) == case["restrictions"]


def test_error_position_points_at_offending_token() -> None:
    with pytest.raises(SelectorError) as err:
        parse('a == "b" && %')
    assert err.value.position == 12
    with pytest.raises(SelectorError) as err2:
        parse("has(foo) &&")
    assert err2.value.position == 11


def test_label_length_limit() -> None:
    assert parse("a" * 512 + " == 'x'").matches({"a" * 512: "x"})
    with pytest.raises(SelectorError):
        parse("a" * 513 + " == 'x'")


def test_k8s_label_selector_translation() -> None:
    text = k8s_label_selector({"matchLabels": {"b": "2", "a": "1"},
                               "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]},
                                                    {"key": "d", "operator": "NotIn", "values": ["z"]},
                                                    {"key": "e", "operator": "Exists"},
                                                    {"key": "f", "operator": "DoesNotExist"}]})
    sel = parse(text)
    assert sel.matches({"a": "1", "b": "2", "c": "x", "e": ""})
    assert not sel.matches({"a": "1", "b": "2", "c": "x", "e": "", "f": "1"})
    assert not sel.matches({"a": "1", "b": "2", "c": "x", "d": "z", "e": ""})
    assert k8s_label_selector({}) == "all()"
    with pytest.raises(InputError, match="unknown operator"):
        k8s_label_selector({"matchExpressions": [{"key": "a", "operator": "Near"}]})


# ----------------------------------------------------------------------------------------- properties

_labels = st.sampled_from(["a", "b", "app", "k8s-app", "x.io/name"])
_values = st.sampled_from(["", "v", "web", "a'b", 'q"t', "x y"])


def _leaf() -> st.SearchStrategy[str]:
    def quote(v: str) -> str:
        return f"'{v}'" if '"' in v else f'"{v}"'

    return st.one_of(
        st.builds(lambda k, op, v: f"{k} {op} {quote(v)}", _labels,
                  st.sampled_from(["==", "!=", "contains", "starts with", "ends with", "startswith"]), _values),
        st.builds(lambda k, neg, vs: f"{k} {'not in' if neg else 'in'} {{{', '.join(quote(v) for v in vs)}}}",
                  _labels, st.booleans(), st.lists(_values, max_size=3)),
        st.builds(lambda k: f"has({k})", _labels),
        st.just("all()"),
        st.just("global()"),
    )


_selectors = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} && {b}", inner, inner),
        st.builds(lambda a, b: f"{a} || {b}", inner, inner),
        st.builds(lambda a: f"!({a})", inner),
        st.builds(lambda a: f"({a})", inner),
    ),
    max_leaves=8,
)
_label_maps = st.dictionaries(_labels, _values, max_size=5)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
@given(_selectors, _label_maps)
def test_canonical_form_is_equivalent(text: str, labels: dict[str, str]) -> None:
    sel = parse(text)
    again = parse(sel.canonical)
    assert again.matches(labels) == sel.matches(labels)
    # Calico prints a collapsed "!!" run as written, so the canonical form is a fixpoint from the
    # second round on, and the UID (a hash of the canonical form) is stable there
    assert parse(again.canonical).uid == again.uid


def test_double_negation_prints_like_calico() -> None:
    assert parse("!(!(all()))").canonical == "!!all()"
    assert parse("!!all()").canonical == "all()"


@given(st.text(max_size=80))
def test_parser_never_crashes(text: str) -> None:
    try:
        sel = parse(text)
    except SelectorError as err:
        assert 0 <= err.position <= len(text)
        return
    assert parse(sel.canonical).canonical == sel.canonical


@given(st.text(alphabet=st.sampled_from(list("ab =!&|()'\"{},hasl*")), max_size=40))
def test_parser_never_crashes_on_selector_like_text(text: str) -> None:
    try:
        parse(text).matches({"a": "b"})
    except SelectorError as err:
        assert 0 <= err.position <= len(text)
