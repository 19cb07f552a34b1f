"""The kube-bench test engine: evaluate a check's tests on audit outputs.

Semantics follow kube-bench's ``check/test.go`` and ``check/check.go`` exactly, including the
human ``expected_result`` strings (``'--audit-log-maxage' is greater or equal to 30``):

* a test item looks for its ``flag`` in the audit command output (``--flag=value``,
  ``flag: value``, ``--flag value`` when a comparison needs a value, bare ``--flag`` = ``true``),
  then for its ``path`` (JSONPath) in the ``audit_config`` output when the flag was not found,
  then for its ``env`` in the ``audit_env`` output;
* ``set: false`` means "must not be present"; ``compare`` applies one of eq, noteq, gt, gte, lt,
  lte, has, nothave, regex, valid_elements, bitmask;
* ``bin_op`` and/or combines the items; ``use_multiple_values`` evaluates every output line.

:func:`run_check` adds kube-bench's states (PASS, FAIL, WARN, INFO) for manual/skip checks and
failing audit commands; the commands themselves are run by a caller-supplied function.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from garrison.core.errors import GarrisonError
from garrison.posture.cis import jsonpath
from garrison.posture.cis.definitions import Check, TestItem

# Go regexp's \s (RE2: [\t\n\f\r ]) and unicode.IsSpace for strings.TrimSpace
_GO_S = r"\t\n\f\r "
_GO_TRIM = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_INT = re.compile(r"[+-]?[0-9]+")
_OCT = re.compile(r"[+-]?[0-7]+")
_INT64 = (-(2**63), 2**63 - 1)


class State(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a state, not a password
    FAIL = "FAIL"
    WARN = "WARN"
    INFO = "INFO"


class Source(enum.Enum):
    COMMAND = "auditCommand"
    CONFIG = "auditConfig"
    ENV = "auditEnv"


@dataclass(slots=True)
class TestOutput:
    test_result: bool = False
    flag_found: bool = False
    actual_result: str = ""
    expected_result: str = ""


@dataclass(slots=True)
class Outputs:
    """What the audit commands printed."""

    audit: str = ""
    config: str = ""
    env: str = ""


@dataclass(slots=True)
class CheckResult:
    check: Check
    state: State
    reason: str = ""
    actual_value: str = ""
    expected_result: str = ""


class EngineError(GarrisonError):
    """A check cannot be evaluated (unknown bin_op); kube-bench reports it as the reason."""


# ----------------------------------------------------------------------------------------------
# finding values


def _label(item: TestItem, source: Source) -> str:
    if source is Source.CONFIG:
        return item.path
    if source is Source.ENV:
        return item.env
    return item.flag


def _flag_value(item: TestItem, s: str) -> tuple[bool, str]:
    if s == "" or item.flag == "":
        return False, ""
    if item.flag not in s:
        return False, ""
    try:
        pattern = re.compile("(" + item.flag + f")(=|: *)*([^{_GO_S}]*) *")
    except re.error as err:
        raise EngineError(f"invalid flag in testItem definition: {item.flag}: {err}") from None
    m = pattern.search(s)
    if m is None:
        raise EngineError(f"invalid flag in testItem definition: {s}")
    if m.group(3):
        return True, m.group(3)
    if item.compare.op:
        spaced = re.search(re.escape(item.flag) + f"[{_GO_S}]+([^{_GO_S}-][^{_GO_S}]*)", s)
        if spaced:
            return True, spaced.group(1)
    if item.flag.startswith("--"):
        return True, "true"
    return True, m.group(1) or ""


def _path_value(item: TestItem, s: str) -> tuple[bool, str]:
    try:
        document = jsonpath.unmarshal(s)
    except jsonpath.JSONPathError as err:
        raise EngineError(f'failed to load YAML or JSON from input "{s}": {err}') from None
    try:
        value = jsonpath.execute(item.path, document)
    except jsonpath.JSONPathError as err:
        raise EngineError(f'unable to parse path expression "{item.path}": {err}') from None
    return value != "", value


def _env_value(item: TestItem, s: str) -> tuple[bool, str]:
    if s == "" or item.env == "":
        return False, ""
    try:
        m = re.search(item.env + r"=.*(?:\Z|\n)", s)
    except re.error:
        return False, ""
    out = m.group(0) if m else ""
    out = out.replace("\n", "", 1).replace(f"{item.env}=", "", 1)
    return (True, out) if out else (False, "")


def find_value(item: TestItem, source: Source, s: str) -> tuple[bool, str]:
    """(found, value) of the item in one output line; raises :class:`EngineError`."""
    if source is Source.ENV:
        return _env_value(item, s)
    if source is Source.CONFIG:
        return _path_value(item, s)
    return _flag_value(item, s)


# ----------------------------------------------------------------------------------------------
# comparisons


def _go_atoi(text: str) -> int | None:
    text = text.strip(_GO_TRIM)
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64[0] <= value <= _INT64[1] else None


def _go_parse_octal(text: str) -> int | None:
    if not _OCT.fullmatch(text):
        return None
    value = int(text, 8)
    return value if _INT64[0] <= value <= _INT64[1] else None


def _split(s: str) -> list[str]:
    clean = s.strip(_GO_TRIM).rstrip(",")
    if not clean:
        return []
    return [part.strip(_GO_TRIM) for part in clean.split(",")]


def _all_valid(source: list[str], target: list[str]) -> bool:
    if not source and not target:
        return True
    if not source or not target:
        return False
    return all(sv in target for sv in source)


def compare_op(op: str, flag_val: str, compare_value: str, flag_name: str) -> tuple[str, bool]:
    """kube-bench's ``compareOp``: the expected-result text and whether the value passes."""
    pattern = ""
    result = False
    if op in ("eq", "noteq"):
        lower = flag_val.lower()
        equal = lower == compare_value if lower in ("true", "false") else flag_val == compare_value
        if op == "eq":
            pattern, result = "'{}' is equal to '{}'", equal
        else:
            pattern, result = "'{}' is not equal to '{}'", not equal
    elif op in ("gt", "gte", "lt", "lte"):
        a, b = _go_atoi(flag_val), _go_atoi(compare_value)
        if a is None or b is None:
            return f"Invalid Number(s) used for comparison: '{flag_val}' '{compare_value}'", False
        pattern, result = {
            "gt": ("'{}' is greater than {}", a > b),
            "gte": ("'{}' is greater or equal to {}", a >= b),
            "lt": ("'{}' is lower than {}", a < b),
            "lte": ("'{}' is lower or equal to {}", a <= b),
        }[op]
    elif op == "has":
        pattern, result = "'{}' has '{}'", compare_value in flag_val
    elif op == "nothave":
        pattern, result = "'{}' does not have '{}'", compare_value not in flag_val
    elif op == "regex":
        pattern = "'{}' matched by regex expression '{}'"
        try:
            result = re.search(compare_value, flag_val) is not None
        except re.error:
            result = False
    elif op == "valid_elements":
        pattern = "'{}' contains valid elements from '{}'"
        result = _all_valid(_split(flag_val), _split(compare_value))
    elif op == "bitmask":
        requested = _go_parse_octal(flag_val)
        if requested is None:
            return f"Not numeric value - flag: {flag_val}", False
        maximum = _go_parse_octal(compare_value)
        if maximum is None:
            return f"Not numeric value - flag: {compare_value}", False
        return (
            f"{flag_name} has permissions {flag_val}, expected {compare_value} or more restrictive",
            (maximum & requested) == requested,
        )
    if not pattern:
        return "", result
    return pattern.format(flag_name, compare_value), result


# ----------------------------------------------------------------------------------------------
# evaluation


def _evaluate(item: TestItem, source: Source, s: str) -> TestOutput:
    try:
        match, value = find_value(item, source, s)
    except EngineError as err:
        return TestOutput(test_result=False, actual_result=str(err))
    out = TestOutput(flag_found=match)
    name = _label(item, source)
    if item.set:
        if match and item.compare.op:
            out.expected_result, out.test_result = compare_op(item.compare.op, value, item.compare.value, name)
        else:
            out.expected_result, out.test_result = f"'{name}' is present", match
    else:
        out.expected_result, out.test_result = f"'{name}' is not present", not match
    return out


def execute_item(item: TestItem, source: Source, s: str, multiple: bool) -> TestOutput:
    s = s.rstrip(" \n")
    rows = s.split("\n") if multiple else [s]
    result = TestOutput()
    for row in rows:
        result = _evaluate(item, source, row)
        if not result.test_result:
            break
    result.actual_result = s
    return result


def execute(check: Check, outputs: Outputs) -> TestOutput:
    """kube-bench's ``Check.execute``: combine every test item with the check's ``bin_op``.
    Raises :class:`EngineError` for an unknown ``bin_op``."""
    assert check.tests is not None
    results: list[TestOutput] = []
    for item in check.tests.test_items:
        result = execute_item(item, Source.COMMAND, outputs.audit, check.use_multiple_values)
        if not result.flag_found and check.audit_config != "":
            result = execute_item(item, Source.CONFIG, outputs.config, check.use_multiple_values)
            if not result.flag_found and item.env != "":
                result = execute_item(item, Source.ENV, outputs.env, check.use_multiple_values)
        if not result.flag_found and item.env != "":
            result = execute_item(item, Source.ENV, outputs.env, check.use_multiple_values)
        results.append(result)
    expected = [r.expected_result for r in results]
    bin_op = check.tests.bin_op
    if bin_op in ("and", ""):
        passed = all(r.test_result for r in results)
        joined = " AND ".join(expected)
    elif bin_op == "or":
        passed = any(r.test_result for r in results)
        joined = " OR ".join(expected)
    else:
        raise EngineError(f"unknown binary operator for tests {bin_op}")
    return TestOutput(
        test_result=passed,
        actual_result=results[0].actual_result if results else "",
        expected_result=joined,
    )


#: runs one audit command and returns its output; raises GarrisonError when it fails
AuditRunner = Callable[[str], str]


def run_check(check: Check, audit: AuditRunner, group_type: str = "") -> CheckResult:
    """kube-bench's ``Check.run``: the state of one check, running its audit commands."""
    ctype = "skip" if group_type == "skip" else check.type
    if check.scored and ctype.strip() == "" and check.tests is None:
        return CheckResult(check, State.WARN, "There are no tests")
    if ctype == "skip":
        return CheckResult(check, State.INFO, "Test marked as skip")
    if ctype == "manual":
        return CheckResult(check, State.WARN, "Test marked as a manual test")
    failed = State.FAIL if check.scored else State.WARN
    if check.tests is None or not check.tests.test_items:
        return CheckResult(check, failed, "No tests defined")
    outputs = Outputs()
    try:
        if check.audit_env.strip():
            outputs.env = audit(check.audit_env)
        if check.audit.strip():
            outputs.audit = audit(check.audit)
        if check.audit_config.strip():
            outputs.config = audit(check.audit_config)
    except GarrisonError as err:
        return CheckResult(check, failed, str(err))
    try:
        final = execute(check, outputs)
    except EngineError as err:
        return CheckResult(check, failed, str(err))
    return CheckResult(
        check,
        State.PASS if final.test_result else failed,
        actual_value=final.actual_result,
        expected_result=final.expected_result,
    )
