"""kube-bench's engine cases (check/test_test.go) and operator corner cases."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from garrison.core.errors import GarrisonError
from garrison.posture.cis.definitions import Check, Compare, Controls, parse_controls
from garrison.posture.cis.definitions import TestItem as Item
from garrison.posture.cis.definitions import Tests as ItemList
from garrison.posture.cis.engine import Outputs, Source, State, compare_op, execute, execute_item, run_check


@pytest.fixture(scope="module")
def engine_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "posture" / "kube-bench" / "engine-cases"


@pytest.fixture(scope="module")
def controls(engine_dir: Path) -> Controls:
    text = (engine_dir / "data.yaml").read_text().replace("$user", getpass.getuser())
    return parse_controls(text, "data.yaml")


def test_case_file_has_42_cases(engine_dir: Path) -> None:
    cases = json.loads((engine_dir / "cases.json").read_text())
    assert len(cases) == 42
    assert sum(1 for c in cases if c["expect_pass"]) == 37


def test_engine_cases_agree_exactly(controls: Controls, engine_dir: Path) -> None:
    cases = json.loads((engine_dir / "cases.json").read_text())
    disagreements = []
    for n, case in enumerate(cases):
        check = controls.groups[case["group_index"]].checks[case["check_index"]]
        out = execute(check, Outputs(audit=case["str"], config=case["strConfig"], env=case["strEnv"]))
        if out.test_result != case["expect_pass"]:
            disagreements.append((n, check.text, "result", out.test_result))
        if case["expectedTestResult"] is not None and out.expected_result != case["expectedTestResult"]:
            disagreements.append((n, check.text, out.expected_result, case["expectedTestResult"]))
    assert disagreements == []


def _audit_table(check: Check) -> dict[str, str]:
    """Outputs of the data.yaml echo/printf commands, computed by a real shell."""
    import subprocess

    out = {}
    for cmd in (check.audit, check.audit_config, check.audit_env):
        if cmd.strip():
            out[cmd] = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    return out


# group 2.1 / 3.1 of data.yaml: the check text says the upstream expectation ("-> pass" / "-> fail")
@pytest.mark.parametrize("group", [1, 2])
def test_audit_command_groups_follow_their_stated_outcome(controls: Controls, group: int) -> None:
    for check in controls.groups[group].checks:
        table = _audit_table(check)
        result = run_check(check, table.__getitem__)
        expect_pass = "-> pass" in check.text or check.text.endswith("- passing")
        assert (result.state is State.PASS) == expect_pass, (check.id, check.text, result)


def test_manual_skip_and_no_tests_states() -> None:
    manual = Check(id="1", type="manual", scored=True, tests=ItemList((Item(flag="--x"),)))
    skip = Check(id="2", type="skip", tests=ItemList((Item(flag="--x"),)))
    no_tests_scored = Check(id="3", scored=True)
    empty_unscored = Check(id="4", tests=ItemList(()))
    never = lambda cmd: pytest.fail("audit must not run")  # noqa: E731
    assert run_check(manual, never).state is State.WARN
    assert run_check(manual, never).reason == "Test marked as a manual test"
    assert run_check(skip, never).state is State.INFO
    assert run_check(no_tests_scored, never).reason == "There are no tests"
    assert run_check(empty_unscored, never).state is State.WARN
    normal = Check(id="5", tests=ItemList((Item(flag="--x"),)), scored=True)
    assert run_check(normal, never, group_type="skip").state is State.INFO


def test_failing_audit_command_fails_scored_check() -> None:
    def boom(cmd: str) -> str:
        raise GarrisonError("failed to run: 'false'")

    check = Check(id="1", audit="false", tests=ItemList((Item(flag="--x"),)), scored=True)
    result = run_check(check, boom)
    assert result.state is State.FAIL and "failed to run" in result.reason


def test_unknown_bin_op_is_reported_as_reason() -> None:
    check = Check(id="1", audit="x", tests=ItemList((Item(flag="--x"),), bin_op="xor"))
    result = run_check(check, lambda cmd: "--x")
    assert result.state is State.WARN
    assert result.reason == "unknown binary operator for tests xor"


@pytest.mark.parametrize(
    ("op", "flag_val", "value", "expected", "ok"),
    [
        ("eq", "", "", "'f' is equal to ''", True),
        ("eq", "TRUE", "true", "'f' is equal to 'true'", True),
        ("eq", "Foo", "foo", "'f' is equal to 'foo'", False),
        ("noteq", "false", "false", "'f' is not equal to 'false'", False),
        ("gt", "abc", "1", "Invalid Number(s) used for comparison: 'abc' '1'", False),
        ("gte", " 30 ", "30", "'f' is greater or equal to 30", True),
        ("lte", "1_0", "30", "Invalid Number(s) used for comparison: '1_0' '30'", False),
        ("has", "a,b,c", "b", "'f' has 'b'", True),
        ("nothave", "a,b,c", "b", "'f' does not have 'b'", False),
        ("regex", "1.12.7", r"^1\.12", r"'f' matched by regex expression '^1\.12'", True),
        ("valid_elements", "A,B,", "A,B,C", "'f' contains valid elements from 'A,B,C'", True),
        ("valid_elements", "", "A", "'f' contains valid elements from 'A'", False),
        ("valid_elements", "A, D", "A,B", "'f' contains valid elements from 'A,B'", False),
        ("bitmask", "644", "600", "f has permissions 644, expected 600 or more restrictive", False),
        ("bitmask", "400", "600", "f has permissions 400, expected 600 or more restrictive", True),
        ("bitmask", "9", "600", "Not numeric value - flag: 9", False),
        ("bitmask", "600", "x", "Not numeric value - flag: x", False),
        ("blah", "a", "b", "", False),
    ],
)
def test_compare_op(op: str, flag_val: str, value: str, expected: str, ok: bool) -> None:
    assert compare_op(op, flag_val, value, "f") == (expected, ok)


@pytest.mark.parametrize(
    ("line", "op", "found", "text"),
    [
        ("kubelet --anonymous-auth=false --x", "eq", True, "'--anonymous-auth' is equal to 'false'"),
        ("kubelet --anonymous-auth false --x", "eq", True, "'--anonymous-auth' is equal to 'false'"),
        ("kubelet --anonymous-auth --x", "eq", True, "'--anonymous-auth' is equal to 'false'"),
        ("kubelet --x", "eq", False, "'--anonymous-auth' is present"),
    ],
)
def test_flag_forms(line: str, op: str, found: bool, text: str) -> None:
    item = Item(flag="--anonymous-auth", compare=Compare(op, "false"))
    out = execute_item(item, Source.COMMAND, line, multiple=False)
    assert out.flag_found is found
    assert out.expected_result == text
    # "--anonymous-auth" alone reads as true, so only the explicit false forms pass
    assert out.test_result is (found and "false" in line)


def test_json_numbers_print_like_go() -> None:
    item = Item(path="{.eventRecordQPS}", compare=Compare("eq", "1e+06"))
    out = execute_item(item, Source.CONFIG, '{"eventRecordQPS": 1000000}', multiple=False)
    assert out.test_result
    yaml_item = Item(path="{.eventRecordQPS}", compare=Compare("eq", "1000000"))
    assert execute_item(yaml_item, Source.CONFIG, "eventRecordQPS: 1000000", multiple=False).test_result
