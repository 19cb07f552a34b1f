"""Loader stages: append/override/replace, exceptions, enabled toggles, and coded errors with
file, item, line and column, all returned at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.runtime.rules import RuleLoadError, load_result, load_rules_text
from garrison.runtime.rules.reader import schema
from garrison.runtime.rules.testing import make_event

BASE = """
- list: bins
  items: [nc, ncat]
- macro: spawned
  condition: evt.type = execve
- rule: Netcat
  desc: netcat run
  condition: spawned and proc.name in (bins)
  output: netcat %proc.name
  priority: WARNING
  tags: [a]
"""


def fired(text: str, **kw: object) -> set[str]:
    rs = load_rules_text(text)
    return {a.rule for a in rs.evaluate(make_event("execve", **kw))}  # type: ignore[arg-type]


def test_list_append_and_override() -> None:
    assert fired(BASE, name="socat") == set()
    assert fired(BASE + "- list: bins\n  items: [socat]\n  append: true\n", name="socat") == {"Netcat"}
    over = BASE + "- list: bins\n  items: [socat]\n  override:\n    items: replace\n"
    assert fired(over, name="socat") == {"Netcat"}
    assert fired(over, name="nc") == set()


def test_later_definition_replaces_earlier() -> None:
    text = BASE + "- list: bins\n  items: [busybox]\n"
    assert fired(text, name="busybox") == {"Netcat"}
    assert fired(text, name="nc") == set()


def test_macro_append_and_override() -> None:
    app = BASE + "- macro: spawned\n  condition: and proc.tty != 0\n  append: true\n"
    assert fired(app, name="nc", tty=0) == set()
    assert fired(app, name="nc", tty=5) == {"Netcat"}
    rep = BASE + "- macro: spawned\n  condition: evt.type = connect\n  override:\n    condition: replace\n"
    assert fired(rep, name="nc") == set()


def test_rule_append_override_and_enabled() -> None:
    app = BASE + "- rule: Netcat\n  condition: and proc.args contains -e\n  append: true\n"
    assert fired(app, name="nc", args=["-l"]) == set()
    assert fired(app, name="nc", args=["-e", "sh"]) == {"Netcat"}
    ov = BASE + (
        "- rule: Netcat\n  condition: and user.name = root\n  priority: ERROR\n  tags: [b]\n"
        "  override:\n    condition: append\n    priority: replace\n    tags: append\n"
    )
    rs = load_rules_text(ov)
    (r,) = rs.rules
    assert r.priority.name == "ERROR" and r.tags == ["a", "b"]
    assert fired(ov, name="nc", user="bob", uid=1000) == set()
    off = BASE + "- rule: Netcat\n  enabled: false\n"
    assert fired(off, name="nc") == set()
    assert fired(off + "- rule: Netcat\n  enabled: true\n", name="nc") == {"Netcat"}


def test_exceptions_tuple_and_single_field_forms() -> None:
    text = BASE.replace(
        "  tags: [a]\n",
        "  tags: [a]\n  exceptions:\n"
        "    - name: by_parent\n      fields: [proc.pname, proc.args]\n      comps: [=, startswith]\n"
        "      values:\n        - [cron, -z]\n"
        "    - name: by_user\n      fields: user.name\n      values: [svc, 'build bot']\n"
        "    - name: by_list\n      fields: [proc.pname, user.uid]\n      comps: [in, =]\n"
        "      values:\n        - [[make, ninja], 0]\n",
    )
    assert fired(text, name="nc", ancestors=["bash"]) == {"Netcat"}
    assert fired(text, name="nc", args=["-z", "host"], ancestors=["cron"]) == set()
    assert fired(text, name="nc", args=["-l"], ancestors=["cron"]) == {"Netcat"}
    assert fired(text, name="nc", user="svc", uid=5, ancestors=["bash"]) == set()
    assert fired(text, name="nc", user="build bot", uid=5, ancestors=["bash"]) == set()
    assert fired(text, name="nc", ancestors=["ninja"]) == set()
    # a list name as an exception value expands like in a condition
    listed = (
        BASE.replace(
            "  tags: [a]\n",
            "  tags: [a]\n  exceptions:\n    - name: builders\n      fields: [proc.pname]\n      comps: [in]\n"
            "      values:\n        - [build_parents]\n",
        )
        + "- list: build_parents\n  items: [make, ninja]\n"
    )
    assert fired(listed, name="nc", ancestors=["ninja"]) == set()
    assert fired(listed, name="nc", ancestors=["bash"]) == {"Netcat"}
    # exceptions appended by name add values
    more = text + "- rule: Netcat\n  exceptions:\n    - name: by_user\n      values: [alice]\n  append: true\n"
    assert fired(more, name="nc", user="alice", uid=1000, ancestors=["bash"]) == set()


def test_macro_cycle_is_an_error_with_position() -> None:
    text = (
        "- macro: a\n  condition: b and proc.name = x\n- macro: b\n  condition: a\n"
        "- rule: R\n  desc: d\n  condition: evt.type = execve and a\n  output: o\n  priority: INFO\n"
    )
    with pytest.raises(RuleLoadError) as ei:
        load_rules_text(text, "cyc.yaml")
    (m,) = ei.value.messages
    assert m.code == "LOAD_ERR_COMPILE_CONDITION"
    assert "reference loop in macro" in m.message
    assert (m.file, m.item_type, m.item_name, m.line, m.col) == ("cyc.yaml", "rule", "R", 7, 14)


def test_all_errors_are_reported_not_just_the_first(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "- rule: Undefined macro\n  desc: d\n  condition: evt.type = execve and no_such_macro\n"
        "  output: o\n  priority: INFO\n"
        "- rule: Bad syntax\n  desc: d\n  condition: evt.type = execve and (proc.name = x\n"
        "  output: o\n  priority: INFO\n"
        "- rule: Unknown field\n  desc: d\n  condition: evt.type = execve and proc.nosuch = 1\n"
        "  output: o\n  priority: INFO\n"
        "- rule: Bad priority\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: LOUD\n"
        "- rule: No output\n  desc: d\n  condition: evt.type = execve\n  priority: INFO\n"
        "- list: l\n  items: x\n"
        "- rule: Bad value\n  desc: d\n  condition: evt.type = execve and proc.pid = abc\n"
        "  output: o\n  priority: INFO\n"
        "- rule: Bad output\n  desc: d\n  condition: evt.type = execve\n  output: '%proc.nosuch'\n"
        "  priority: INFO\n"
        "- rule: Append without base\n  condition: and x\n  append: true\n"
    )
    _, res = load_result([f])
    got = {(m.item_name, m.code) for m in res.errors}
    assert got == {
        ("Undefined macro", "LOAD_ERR_COMPILE_CONDITION"),
        ("Bad syntax", "LOAD_ERR_COMPILE_CONDITION"),
        ("Unknown field", "LOAD_ERR_COMPILE_CONDITION"),
        ("Bad priority", "LOAD_ERR_YAML_VALIDATE"),
        ("No output", "LOAD_ERR_VALIDATE"),
        ("l", "LOAD_ERR_YAML_VALIDATE"),
        ("Bad value", "LOAD_ERR_COMPILE_CONDITION"),
        ("Bad output", "LOAD_ERR_COMPILE_OUTPUT"),
        ("Append without base", "LOAD_ERR_VALIDATE"),
    }
    lines = {m.item_name: m.line for m in res.errors}
    assert lines["Undefined macro"] == 3 and lines["Bad priority"] == 20 and lines["l"] == 26
    for m in res.errors:
        assert m.file == str(f) and m.col >= 1
        assert str(m).startswith(f"{f}:{m.line}:{m.col}: ")


def test_unused_macros_and_lists_are_warnings() -> None:
    rs = load_rules_text(BASE + "- macro: lonely\n  condition: proc.name = x\n- list: spare\n  items: [a]\n")
    assert any("LOAD_UNUSED_MACRO" in w and "'lonely'" in w for w in rs.warnings)
    assert any("LOAD_UNUSED_LIST" in w and "'spare'" in w for w in rs.warnings)
    assert not any("'bins'" in w or "'spawned'" in w for w in rs.warnings)


def test_skip_if_unknown_filter_turns_error_into_warning() -> None:
    text = (
        "- rule: Future\n  desc: d\n  condition: evt.type = execve and proc.from_the_future = 1\n"
        "  output: o\n  priority: INFO\n  skip-if-unknown-filter: true\n"
    )
    rs = load_rules_text(text)
    assert rs.rules == [] and rs.unsupported == {"Future": ["proc.from_the_future"]}
    assert any("LOAD_UNKNOWN_FILTER" in w for w in rs.warnings)


def test_yaml_errors_have_positions(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("- rule: x\n  condition: [unclosed\n")
    _, res = load_result([f])
    (m,) = res.errors
    assert m.code == "LOAD_ERR_YAML_PARSE" and m.line >= 2
    _, res = load_result([tmp_path / "missing.yaml"])
    assert res.errors[0].code == "LOAD_ERR_FILE_READ"
    f.write_text("rule: not a list\n")
    _, res = load_result([f])
    assert res.errors[0].code == "LOAD_ERR_YAML_VALIDATE"


def test_unknown_keys_and_items_are_warnings() -> None:
    text = (
        BASE + "- something_else: 1\n- rule: Other\n  desc: d\n  condition: evt.type=open\n  output: o\n"
        "  priority: INFO\n  colour: blue\n"
    )
    rs = load_rules_text(text)
    assert len(rs.rules) == 2
    assert sum("LOAD_UNKNOWN_ITEM" in w for w in rs.warnings) == 2


def test_engine_version_requirement() -> None:
    with pytest.raises(RuleLoadError, match="engine version"):
        load_rules_text("- required_engine_version: 9.0.0\n")
    load_rules_text("- required_engine_version: 0.26.0\n- required_engine_version: 10\n")


def test_unknown_source_is_skipped_with_warning() -> None:
    rs = load_rules_text(
        "- rule: Audit\n  desc: d\n  condition: ka.verb = create\n  output: o\n  priority: INFO\n  source: k8s_audit\n"
    )
    assert rs.rules == [] and any("LOAD_UNKNOWN_SOURCE" in w for w in rs.warnings)


def test_schema_is_shipped_and_valid_json_schema() -> None:
    import jsonschema

    s = schema()
    jsonschema.Draft7Validator.check_schema(s)
    assert {"rule", "macro", "list", "exception"} <= set(s["definitions"])


yaml_scalars = st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none())
yaml_values = st.recursive(
    yaml_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=12,
)
item_keys = st.sampled_from(
    [
        "rule",
        "macro",
        "list",
        "condition",
        "output",
        "priority",
        "items",
        "append",
        "override",
        "exceptions",
        "enabled",
        "tags",
        "desc",
        "source",
        "required_engine_version",
    ]
)


@given(st.lists(st.dictionaries(item_keys, yaml_values, max_size=6), max_size=6))
def test_fuzz_loader_structures_never_crash(items: list[dict[str, object]]) -> None:
    import yaml

    text = yaml.safe_dump(items)
    try:
        load_rules_text(text)
    except RuleLoadError as e:
        assert e.messages and all(m.code.startswith("LOAD_ERR") for m in e.messages)


@given(st.text(max_size=300))
def test_fuzz_loader_text_never_crashes(text: str) -> None:
    try:
        load_rules_text(text)
    except RuleLoadError as e:
        assert str(e)


cond_atoms = st.sampled_from(
    [
        "proc.name",
        "fd.name",
        "evt.type",
        "=",
        "in",
        "and",
        "or",
        "not",
        "(",
        ")",
        "bins",
        "spawned",
        "execve",
        "'x'",
        "exists",
        "contains",
        "proc.aname[1]",
        "pmatch",
        "(bins)",
        "glob",
        "*",
        "fd.sip",
        "1.2.3.4",
        "0",
    ]
)


@given(st.lists(cond_atoms, min_size=1, max_size=15).map(" ".join), st.sampled_from(["INFO", "WARNING", "BAD"]))
def test_fuzz_rules_with_random_conditions(cond: str, prio: str) -> None:
    import yaml

    text = BASE + yaml.safe_dump(
        [{"rule": "F", "desc": "d", "condition": cond, "output": "%proc.name", "priority": prio}]
    )
    try:
        rs = load_rules_text(text)
    except RuleLoadError as e:
        assert all(m.item_name in ("F", "Netcat") or m.code == "LOAD_ERR_YAML_VALIDATE" for m in e.messages)
        return
    rs.evaluate(make_event("execve", name="nc"))


def test_condition_syntax_errors_point_into_the_file(tmp_path: Path) -> None:
    f = tmp_path / "pos.yaml"
    f.write_text(
        "- rule: Folded\n  desc: d\n  condition: >\n    evt.type = execve\n    and proc.name in (a, b\n"
        "    and x\n  output: o\n  priority: INFO\n"
        '- rule: Quoted\n  desc: d\n  condition: "evt.type = execve and proc.name ~ x"\n  output: o\n'
        "  priority: INFO\n"
        "- rule: Plain\n  desc: d\n  condition: evt.type = execve and\n     proc.name ?? x\n  output: o\n"
        "  priority: INFO\n"
        "- macro: m\n  condition: proc.name =\n"
    )
    _, res = load_result([f])
    got = {m.item_name: (m.line, m.col) for m in res.errors}
    assert got == {"Folded": (6, 5), "Quoted": (11, 47), "Plain": (17, 16), "m": (21, 25)}
