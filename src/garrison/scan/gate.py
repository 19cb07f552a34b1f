"""Filtering findings and the CI gate.

Besides ``--fail-on SEVERITY`` the gate takes an expression over each finding, e.g.::

    severity >= HIGH and fixable
    kind == "secret" or (cvss >= 9 and status != "will_not_fix")
    id in ("CVE-2024-3094", "CVE-2021-44228") or type == "golang" and severity >= MEDIUM

Names: ``id``, ``kind``, ``severity`` (compare with LOW..CRITICAL), ``cvss`` (highest base score,
0 when none), ``fixable``, ``status``, ``type`` (purl type), ``package``, ``version``, ``path``,
``layer``, ``source`` (data source), ``suppressed``. Operators: ``and or not == != < <= > >= in
not in`` and parentheses. The expression is parsed with :mod:`ast` and evaluated by a small
interpreter over those names only: no attribute access, calls or other Python.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from garrison.core.errors import ConfigError
from garrison.model import Finding, Severity, VulnStatus

_NAMES = {
    "id",
    "kind",
    "severity",
    "cvss",
    "fixable",
    "status",
    "type",
    "package",
    "version",
    "path",
    "layer",
    "source",
    "suppressed",
}


def finding_fields(f: Finding) -> dict[str, Any]:
    v = f.vuln
    scores = [c.score for c in v.vulnerability.cvss] if v else []
    return {
        "id": f.id,
        "kind": str(f.kind),
        "severity": int(f.severity),
        "cvss": max(scores) if scores else 0.0,
        "fixable": bool(v and v.fixed_versions),
        "status": str(v.status) if v else "",
        "type": v.package.type if v else "",
        "package": v.package.name if v else "",
        "version": v.installed_version if v else "",
        "path": v.package.path if v else (f.secret.path if f.secret else ""),
        "layer": (v.package.layer or "") if v else ((f.secret.layer or "") if f.secret else ""),
        "source": v.data_source if v else "",
        "suppressed": f.suppressed,
    }


class GateExpression:
    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as err:
            raise ConfigError(f"gate expression {text!r}: syntax error at column {err.offset}") from None
        self._check(tree.body)
        self._tree = tree.body

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.BoolOp,
            ast.And,
            ast.Or,
            ast.UnaryOp,
            ast.Not,
            ast.Compare,
            ast.Name,
            ast.Load,
            ast.Constant,
            ast.Tuple,
            ast.List,
            ast.Eq,
            ast.NotEq,
            ast.Lt,
            ast.LtE,
            ast.Gt,
            ast.GtE,
            ast.In,
            ast.NotIn,
            ast.USub,
        )
        for sub in ast.walk(node):
            if not isinstance(sub, allowed):
                raise ConfigError(f"gate expression {self.text!r}: {type(sub).__name__} is not allowed")
            if (
                isinstance(sub, ast.Name)
                and sub.id not in _NAMES
                and sub.id.upper() not in Severity.__members__
                and sub.id not in ("true", "false", "True", "False")
            ):
                raise ConfigError(
                    f"gate expression {self.text!r}: unknown name {sub.id!r}; known: {', '.join(sorted(_NAMES))}"
                )

    def __call__(self, finding: Finding) -> bool:
        return bool(self._eval(self._tree, finding_fields(finding)))

    def _eval(self, node: ast.AST, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v, env) for v in node.values)
            return any(self._eval(v, env) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, env)
            return (not value) if isinstance(node.op, ast.Not) else -value
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, env)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in ("true", "True"):
                return True
            if node.id in ("false", "False"):
                return False
            return int(Severity[node.id.upper()])
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str) and value.upper() in Severity.__members__:
                return int(Severity[value.upper()])
            return value
        if isinstance(node, ast.Tuple | ast.List):
            return [self._eval(e, env) for e in node.elts]
        raise ConfigError(f"gate expression {self.text!r}: cannot evaluate {type(node).__name__}")


def _compare(op: ast.cmpop, a: Any, b: Any) -> bool:
    try:
        if isinstance(op, ast.Eq):
            return bool(a == b)
        if isinstance(op, ast.NotEq):
            return bool(a != b)
        if isinstance(op, ast.In):
            return a in b
        if isinstance(op, ast.NotIn):
            return a not in b
        if isinstance(op, ast.Lt):
            return bool(a < b)
        if isinstance(op, ast.LtE):
            return bool(a <= b)
        if isinstance(op, ast.Gt):
            return bool(a > b)
        if isinstance(op, ast.GtE):
            return bool(a >= b)
    except TypeError:
        return False
    return False


@dataclass(slots=True)
class FilterOptions:
    severities: frozenset[Severity] | None = None  # shown severities; None = all
    ignore_unfixed: bool = False
    ignore_statuses: frozenset[str] = frozenset()


def filter_findings(findings: Iterable[Finding], opts: FilterOptions) -> list[Finding]:
    kept = []
    for f in findings:
        if opts.severities is not None and f.severity not in opts.severities:
            continue
        if f.vuln is not None:
            if opts.ignore_unfixed and not f.vuln.fixed_versions:
                continue
            if str(f.vuln.status) in opts.ignore_statuses:
                continue
        kept.append(f)
    return kept


def parse_severities(text: str) -> frozenset[Severity]:
    out = set()
    for word in text.split(","):
        word = word.strip().upper()
        if not word:
            continue
        if word not in Severity.__members__:
            raise ConfigError(f"unknown severity {word!r}; use UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL")
        out.add(Severity[word])
    return frozenset(out)


def parse_statuses(text: str) -> frozenset[str]:
    known = {str(s) for s in VulnStatus}
    out = set()
    for word in text.split(","):
        word = word.strip().lower().replace("-", "_")
        if word == "no_dsa":
            word = "no-dsa"
        if not word:
            continue
        if word not in known:
            raise ConfigError(f"unknown status {word!r}; known: {', '.join(sorted(known))}")
        out.add(word)
    return frozenset(out)


def gate_failures(
    findings: Iterable[Finding], fail_on: Severity | None, expr: Callable[[Finding], bool] | None
) -> list[Finding]:
    """Unsuppressed findings that fail the gate."""
    failed = []
    for f in findings:
        if f.suppressed:
            continue
        if (fail_on is not None and f.severity >= fail_on) or (expr is not None and expr(f)):
            failed.append(f)
    return failed
