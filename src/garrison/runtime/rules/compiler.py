"""Stage 3 (compiler): conditions to Python functions, compiled once per rule.

Each rule's condition is parsed (:mod:`.condition`), its macros are inlined (with cycle detection)
and its list references expanded, exceptions are added as ``and not (...)`` clauses exactly as
Falco's ``build_rule_exception_infos`` builds them, and the resulting tree is turned into the
source of one Python function::

    def _rule(e):
        return ((e.type in _K0) and (e.proc.name in _K1) and not (...))

Field reads are the expressions of the field table (:mod:`.fields`), list values are interned
``frozenset`` constants, ``icontains`` needles are lowercased at compile time, ``glob`` patterns
are precompiled regexes. Children of ``and``/``or`` are ordered cheapest first (the language has
no side effects, so order does not change the result), so most events are rejected by one
attribute read. No AST is interpreted per event. The function is built with ``compile``/``exec``
from source we generate ourselves: every identifier in it comes from the field table or from
constants we name, and user text only ever appears inside the constants dict, never in the
source.

Also computed here, like Falco's ``filter_evttype_resolver``: the set of ``evt.type`` values a
condition can match, so the engine indexes rules by event type.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from garrison.model.runtime import Event
from garrison.runtime.rules import fields as F
from garrison.runtime.rules.collector import Collection, ExceptionInfo, RuleInfo
from garrison.runtime.rules.condition import (
    LIST_OPS,
    And,
    Check,
    ConditionSyntaxError,
    Const,
    Field,
    Ident,
    ListValue,
    Node,
    Not,
    Or,
    parse_condition,
)
from garrison.runtime.rules.errors import (
    LOAD_ERR_COMPILE_CONDITION,
    LOAD_NO_EVTTYPE,
    LOAD_UNKNOWN_FILTER,
    LOAD_UNSUPPORTED_FILTER,
    LOAD_UNUSED_LIST,
    LOAD_UNUSED_MACRO,
    LoadResult,
)
from garrison.runtime.rules.escaping import unquote_item
from garrison.runtime.rules.reader import Item

_ATTR_CHAIN = re.compile(r"e(?:\.[a-z_]+)+")
_UNSET = object()
_TRANSFORMER_FUNCS = {"tolower": "_lower", "toupper": "_upper", "basename": "_basename", "b64": "_b64"}


class CompileError(Exception):
    def __init__(self, message: str, code: str = LOAD_ERR_COMPILE_CONDITION) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Unsupported(Exception):
    """The condition uses fields (or operators) that the event model cannot supply."""

    def __init__(self, names: list[str], unknown: bool) -> None:
        super().__init__(", ".join(names))
        self.names = names
        self.unknown = unknown


@dataclass(slots=True)
class ResolvedField:
    spec: F.FieldSpec
    arg: Any  # int | str | None
    token: str  # as written, e.g. proc.aname[2]

    def expr(self) -> str:
        return self.spec.expr.format(a=self.arg)


def field_token(name: str, arg: str | None) -> str:
    return f"{name}[{arg}]" if arg is not None else name


def resolve_field(name: str, arg: str | None) -> ResolvedField:
    """Map a field name (and argument) to its spec; raises :class:`Unsupported` if we lack it."""
    token = field_token(name, arg)
    spec = F.lookup(name)
    if spec is None:
        for prefix in ("evt.arg.", "evt.rawarg."):
            if name.startswith(prefix) and arg is None and len(name) > len(prefix):
                spec, arg = F.FIELDS[prefix[:-1]], name[len(prefix) :]
                break
    if spec is None:
        known = F.is_unsupported(name) or F.is_unsupported(name + ".")
        raise Unsupported([token], unknown=not known)
    if spec.arg == "none" and arg is not None:
        raise CompileError(f"field '{name}' does not take an argument")
    if spec.arg == "required" and arg is None:
        raise CompileError(f"field '{name}' requires an argument")
    value: Any = arg
    if spec.arg == "index" and arg is not None:
        if not arg.isdigit():
            raise CompileError(f"wrong argument for field '{name}': '{arg}' is not a number")
        value = int(arg)
    return ResolvedField(spec, value, token)


def _field_names(node: Node, out: list[Field]) -> None:
    if isinstance(node, And | Or):
        for c in node.children:
            _field_names(c, out)
    elif isinstance(node, Not):
        _field_names(node.child, out)
    elif isinstance(node, Check):
        out.append(node.field)
        if isinstance(node.value, Field):
            out.append(node.value)


def evttypes(node: Node) -> frozenset[str] | None:
    """Event types ``node`` can match; ``None`` means any."""
    if isinstance(node, Check):
        f = node.field
        if f.name == "evt.type" and not f.transformers:
            if node.op in ("=", "==") and isinstance(node.value, str):
                return frozenset({node.value})
            if node.op == "in" and isinstance(node.value, ListValue):
                return frozenset(node.value.items)
        return None
    if isinstance(node, And):
        sets: list[frozenset[str]] = []
        for c in node.children:
            s = evttypes(c)
            if s is not None:
                sets.append(s)
        return frozenset.intersection(*sets) if sets else None
    if isinstance(node, Or):
        acc: set[str] = set()
        for c in node.children:
            s = evttypes(c)
            if s is None:
                return None
            acc |= s
        return frozenset(acc)
    if isinstance(node, Const):
        return None if node.value else frozenset()
    return None


class _Gen:
    """Generates Python source for resolved condition trees, sharing one constants namespace."""

    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self._const_ids: dict[Any, str] = {}
        self.tmp = 0
        # when set, field reads that cost more than an attribute chain are cached in function locals
        self.lazy: dict[str, str] | None = None

    def read(self, expr: str) -> str:
        """A field read; in group mode computed at most once per event (a lazily filled local)."""
        if self.lazy is None or (_ATTR_CHAIN.fullmatch(expr) and not expr.endswith(".cmdline")):
            return expr
        var = self.lazy.get(expr)
        if var is None:
            var = f"_c{len(self.lazy)}"
            self.lazy[expr] = var
        return f"({var} if {var} is not _U else ({var} := {expr}))"

    def const(self, value: Any) -> str:
        try:
            key: Any = (type(value).__name__, value)
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in self._const_ids:
            return self._const_ids[key]
        name = f"_K{len(self.consts)}"
        self.consts[name] = value
        if key is not None:
            self._const_ids[key] = name
        return name

    def var(self) -> str:
        self.tmp += 1
        return f"_t{self.tmp}"

    def cost(self, node: Node) -> int:
        if isinstance(node, And | Or):
            return sum(self.cost(c) for c in node.children)
        if isinstance(node, Not):
            return self.cost(node.child)
        if isinstance(node, Const):
            return 0
        if isinstance(node, Check):
            try:
                rf = resolve_field(node.field.name, node.field.arg)
                base = rf.spec.cost + (3 if rf.spec.multi or (rf.arg is None and rf.spec.arg == "index") else 0)
            except (Unsupported, CompileError):
                base = 5
            extra = {"glob": 4, "iglob": 5, "pmatch": 3, "icontains": 2, "contains": 1, "endswith": 1}.get(node.op, 0)
            return base + extra + (2 if isinstance(node.value, Field) else 0)
        return 1

    def gen(self, node: Node) -> str:
        if isinstance(node, And | Or):
            kids = sorted(node.children, key=self.cost)
            sep = " and " if isinstance(node, And) else " or "
            return "(" + sep.join(self.gen(c) for c in kids) + ")"
        if isinstance(node, Not):
            return f"(not {self.gen(node.child)})"
        if isinstance(node, Const):
            return "True" if node.value else "False"
        if isinstance(node, Check):
            return self.check(node)
        raise CompileError(f"unresolved identifier in condition: {node!r}")

    def value_expr(self, f: Field, *, cached: bool = True) -> str:
        rf = resolve_field(f.name, f.arg)
        x = self.read(rf.expr()) if cached else rf.expr()
        for t in reversed(f.transformers):
            if t != "val":
                x = f"{_TRANSFORMER_FUNCS[t]}({x})"
        return x

    def check(self, c: Check) -> str:
        rf = resolve_field(c.field.name, c.field.arg)
        spec = rf.spec
        multi = spec.multi or (spec.arg == "index" and rf.arg is None)
        # a comprehension's iterable may not contain an assignment expression: multi reads are not cached
        x = rf.expr() if multi else self.read(rf.expr())
        kind = spec.kind
        for t in reversed(c.field.transformers):
            x = f"{_TRANSFORMER_FUNCS[t]}({x})"
            kind = "str"
        op = c.op
        if op == "exists":
            return f"bool({x})" if multi else f"({x} is not None)"
        if isinstance(c.value, Field):
            other = self.value_expr(c.value, cached=not multi)
            cmp = self.const(_dyn_op(op))
            v = self.var()
            if multi:
                return f"any({cmp}({v}, {other}) for {v} in {x})"
            return f"{cmp}({x}, {other})"
        tmpl = self.template(kind, op, c.value, c.field)
        if multi:
            v = self.var()
            if op == "!=":
                eq = self.template(kind, "=", c.value, c.field)
                return f"(bool({v}s := {x}) and not any({eq.format(v=v)} for {v} in {v}s))"
            return f"any({tmpl.format(v=v)} for {v} in {x})"
        if spec.nullable or c.field.transformers:
            if op in ("=", "==", "in", "intersects") and kind != "net":
                return "(" + tmpl.format(v=x) + ")"
            v = self.var()
            return f"(({v} := {x}) is not None and {tmpl.format(v=v)})"
        return "(" + tmpl.format(v=x) + ")"

    def template(self, kind: str, op: str, value: str | ListValue | None, fld: Field) -> str:
        """A boolean expression over ``{v}`` (the field value, known not to be ``None``)."""
        name = field_token(fld.name, fld.arg)
        if isinstance(value, ListValue):
            items: list[str] = list(value.items)
            if op not in LIST_OPS:
                raise CompileError(f"operator '{op}' does not take a list")
        else:
            assert value is not None
            items = [value]
            if op in LIST_OPS:
                items = [value]
        if op in ("in", "intersects"):
            vals = frozenset(self.coerce(kind, i, name) for i in items)
            if kind == "net":
                return f"_in_nets({{v}}, {self.const(tuple(vals))})"
            return f"{{v}} in {self.const(vals)}"
        if op == "pmatch":
            prefixes = tuple(sorted({i.rstrip("/") or "/" for i in items}))
            return f"_pmatch({{v}}, {self.const(prefixes)})"
        sval = items[0]
        if kind == "net":
            nets = (self.coerce("net", sval, name),)
            if op in ("=", "=="):
                return f"_in_nets({{v}}, {self.const(nets)})"
            if op == "!=":
                return f"(not _in_nets({{v}}, {self.const(nets)}))"
            raise CompileError(f"operator '{op}' is not supported for network field '{name}'")
        if op in ("=", "==", "!=", "<", "<=", ">", ">="):
            pyop = "==" if op == "=" else op
            if op in ("<", "<=", ">", ">=") and kind != "int":
                n = _to_int(sval, name)
                v2 = self.var()
                return f"(({v2} := _num({{v}})) is not None and {v2} {pyop} {n!r})"
            if op in ("<", "<=", ">", ">="):
                return f"{{v}} {pyop} {self.const(_to_int(sval, name))}"
            if kind == "bool":
                b = _to_bool(sval, name)
                return f"{{v}} is {b}" if pyop == "==" else f"{{v}} is not {b}"
            return f"{{v}} {pyop} {self.const(self.coerce(kind, sval, name))}"
        sv = "str({v})" if kind in ("int", "bool") else "{v}"
        if op == "contains":
            return f"{self.const(sval)} in {sv}"
        if op == "icontains":
            return f"{self.const(sval.lower())} in {sv}.lower()"
        if op == "startswith":
            return f"{sv}.startswith({self.const(sval)})"
        if op == "endswith":
            return f"{sv}.endswith({self.const(sval)})"
        if op in ("glob", "iglob"):
            flags = re.IGNORECASE if op == "iglob" else 0
            rx = re.compile(fnmatch.translate(sval), flags | re.DOTALL)
            return f"({self.const(rx)}.match({sv}) is not None)"
        if op in ("bcontains", "bstartswith"):
            try:
                needle = bytes.fromhex(sval)
            except ValueError as e:
                raise CompileError(f"'{op}' needs a hexadecimal string, got '{sval}'") from e
            if op == "bcontains":
                return f"{self.const(needle)} in _bytes({{v}})"
            return f"_bytes({{v}}).startswith({self.const(needle)})"
        raise CompileError(f"unsupported operator '{op}'")

    def coerce(self, kind: str, value: str, name: str) -> Any:
        if kind == "int":
            return _to_int(value, name)
        if kind == "bool":
            return _to_bool(value, name)
        if kind == "ip":
            try:
                return str(ipaddress.ip_address(value))
            except ValueError as e:
                raise CompileError(f"wrong IP address '{value}' for field '{name}'") from e
        if kind == "net":
            try:
                return ipaddress.ip_network(value, strict=False)
            except ValueError as e:
                raise CompileError(f"wrong network '{value}' for field '{name}'") from e
        return value


def _to_int(value: str, name: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        try:
            f = float(value)
        except ValueError:
            raise CompileError(f"wrong value '{value}' for numeric field '{name}'") from None
        if f != int(f):
            raise CompileError(f"wrong value '{value}' for numeric field '{name}'") from None
        return int(f)


def _to_bool(value: str, name: str) -> bool:
    v = value.lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise CompileError(f"wrong value '{value}' for boolean field '{name}'")


def _dyn_op(op: str) -> Callable[[Any, Any], bool]:
    def f(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        if op in ("=", "=="):
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        sa, sb = str(a), str(b)
        if op == "contains":
            return sb in sa
        if op == "icontains":
            return sb.lower() in sa.lower()
        if op == "startswith":
            return sa.startswith(sb)
        if op == "endswith":
            return sa.endswith(sb)
        if op in ("<", "<=", ">", ">="):
            na, nb = F._num(a), F._num(b)
            if na is None or nb is None:
                return False
            return {"<": na < nb, "<=": na <= nb, ">": na > nb, ">=": na >= nb}[op]
        return False

    return f


def _pmatch(value: Any, prefixes: tuple[str, ...]) -> bool:
    if not isinstance(value, str):
        return False
    return any(value == p or value.startswith(p if p == "/" else p + "/") for p in prefixes)


@dataclass(slots=True)
class CompiledCondition:
    fn: Callable[[Event], bool]
    source: str
    evttypes: frozenset[str] | None
    fields: list[str] = field(default_factory=list)
    node: Node | None = None


class Compiler:
    """Resolves macros and lists of one :class:`Collection` and compiles conditions."""

    def __init__(self, col: Collection, res: LoadResult) -> None:
        self.col = col
        self.res = res
        self.gen = _Gen()
        self.lists = self._resolve_lists()
        self.used_lists: set[str] = set()
        self.macro_ast: dict[str, Node | None] = {}
        self.resolved_macros: dict[str, Node] = {}
        self.used_macros: set[str] = set()
        for m in col.macros.values():
            try:
                self.macro_ast[m.name] = parse_condition(m.cond)
            except ConditionSyntaxError as e:
                self.macro_ast[m.name] = None
                self._cond_error(m.item, e)

    def _cond_error(self, item: Item, e: ConditionSyntaxError) -> None:
        cond = item.data.get("condition")
        where = item.offset_where("condition", cond, e.index) if isinstance(cond, str) else item.where("condition")
        self.res.error(LOAD_ERR_COMPILE_CONDITION, e.message, **where)

    def _resolve_lists(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}

        def expand(name: str, stack: tuple[str, ...]) -> tuple[str, ...]:
            if name in out:
                return out[name]
            items: list[str] = []
            for raw in self.col.lists[name].items:
                if raw in self.col.lists and raw not in stack and raw != name:
                    items.extend(expand(raw, (*stack, name)))
                else:
                    items.append(unquote_item(raw))
            out[name] = tuple(items)
            return out[name]

        for name in self.col.lists:
            expand(name, ())
        return out

    # --- resolution ---
    def resolve(self, node: Node, stack: tuple[str, ...] = ()) -> Node:
        if isinstance(node, Ident):
            name = node.name
            if name in stack:
                raise CompileError(f"reference loop in macro '{name}': {' -> '.join((*stack, name))}")
            if name not in self.macro_ast:
                raise CompileError(f"Undefined macro '{name}' used in filter.")
            self.used_macros.add(name)
            if name in self.resolved_macros:
                return self.resolved_macros[name]
            ast = self.macro_ast[name]
            if ast is None:
                raise CompileError(f"macro '{name}' has an invalid condition")
            out = self.resolve(ast, (*stack, name))
            self.resolved_macros[name] = out
            return out
        if isinstance(node, And):
            return And(tuple(self.resolve(c, stack) for c in node.children))
        if isinstance(node, Or):
            return Or(tuple(self.resolve(c, stack) for c in node.children))
        if isinstance(node, Not):
            return Not(self.resolve(node.child, stack))
        if isinstance(node, Check) and isinstance(node.value, ListValue):
            items: list[str] = []
            for it in node.value.items:
                if it in self.lists:
                    self.used_lists.add(it)
                    items.extend(self.lists[it])
                else:
                    items.append(it)
            return Check(node.field, node.op, ListValue(tuple(items), node.value.pos), node.pos)
        return node

    def exceptions_node(self, excs: list[ExceptionInfo]) -> Node | None:
        """Falco's ``build_rule_exception_infos`` as a tree: ``not (exc1) and not (exc2)...``."""
        clauses: list[Node] = []
        for ex in excs:
            if isinstance(ex.fields, list):
                comps = ex.comps if isinstance(ex.comps, list) else ["="] * len(ex.fields)
                alts: list[Node] = []
                for tup in ex.values:
                    parts: list[Node] = []
                    for fname, comp, val in zip(ex.fields, comps, tup, strict=True):
                        parts.append(self._exc_check(str(fname), str(comp), val))
                    alts.append(And(tuple(parts)) if len(parts) > 1 else parts[0])
                if alts:
                    clauses.append(Not(Or(tuple(alts)) if len(alts) > 1 else alts[0]))
            elif ex.fields is not None and ex.values:
                comp = str(ex.comps) if ex.comps else "in"
                if comp not in LIST_OPS:
                    raise CompileError(f"exception '{ex.name}': operator '{comp}' needs a list of values")
                f = _field_from_text(str(ex.fields))
                clauses.append(Not(Check(f, comp, ListValue(tuple(_lit(v) for v in ex.values)))))
        if not clauses:
            return None
        return And(tuple(clauses)) if len(clauses) > 1 else clauses[0]

    def _exc_check(self, fname: str, comp: str, val: Any) -> Node:
        f = _field_from_text(fname)
        if isinstance(val, list):
            return Check(f, comp, ListValue(tuple(_lit(v) for v in val)))
        if comp in LIST_OPS:
            return Check(f, comp, ListValue((_lit(val),)))
        if comp == "exists":
            return Check(f, comp, None)
        return Check(f, comp, _lit(val))

    # --- compilation ---
    def check_fields(self, node: Node) -> None:
        found: list[Field] = []
        _field_names(node, found)
        missing: list[str] = []
        unknown = False
        for f in found:
            try:
                resolve_field(f.name, f.arg)
            except Unsupported as u:
                unknown = unknown or u.unknown
                for n in u.names:
                    if n not in missing:
                        missing.append(n)
        if missing:
            raise Unsupported(missing, unknown)

    def compile_node(self, node: Node, label: str) -> CompiledCondition:
        self.check_fields(node)
        body = self.gen.gen(node)
        src = f"def _cond(e):\n    return {body}\n"
        namespace: dict[str, Any] = {**F.RUNTIME_NAMES, "_pmatch": _pmatch, "__builtins__": _BUILTINS}
        namespace.update(self.gen.consts)
        code = compile(src, f"<rule {label}>", "exec")
        exec(code, namespace)  # noqa: S102 - source generated from the field table; see module docstring
        fn: Callable[[Event], bool] = namespace["_cond"]
        found: list[Field] = []
        _field_names(node, found)
        return CompiledCondition(fn, src, evttypes(node), [field_token(f.name, f.arg) for f in found], node)

    def compile_group(self, members: list[tuple[int, Node]], label: str) -> Callable[[Event], list[int]]:
        """One function evaluating several rules' conditions on an event, sharing field reads.

        Returns the indices (as given in ``members``) of the conditions that hold, in order. Each
        condition sits in its own ``try`` (free in CPython 3.11 unless it raises), so a rule that
        fails on an odd event does not hide the others.
        """
        gen = _Gen()
        gen.lazy = {}
        body: list[str] = []
        for idx, node in members:
            expr = gen.gen(node)
            body.append(f"    try:\n        if {expr}:\n            _h({idx})\n    except _ERRS:\n        pass")
        head = ["def _group(e):", "    hits = []", "    _h = hits.append"]
        head.extend(f"    {var} = _U" for var in gen.lazy.values())
        src = "\n".join([*head, *body, "    return hits", ""])
        namespace: dict[str, Any] = {**F.RUNTIME_NAMES, "_pmatch": _pmatch, "__builtins__": _BUILTINS}
        namespace.update(gen.consts)
        namespace["_U"] = _UNSET
        namespace["_ERRS"] = (AttributeError, TypeError, ValueError, IndexError, KeyError)
        exec(compile(src, f"<rules {label}>", "exec"), namespace)  # noqa: S102 - see module docstring
        fn: Callable[[Event], list[int]] = namespace["_group"]
        return fn

    def compile_rule(self, info: RuleInfo) -> tuple[CompiledCondition | None, list[str]]:
        """Compile a rule's condition. Returns (compiled, unsupported field names)."""
        where = info.item.where("condition")
        try:
            ast = parse_condition(info.cond)
        except ConditionSyntaxError as e:
            self._cond_error(info.item, e)
            return None, []
        try:
            node = self.resolve(ast)
            exc = self.exceptions_node(info.exceptions)
            if exc is not None:
                node = And((node, self.resolve(exc)))
            compiled = self.compile_node(node, info.name)
        except CompileError as e:
            self.res.error(e.code, e.message, **where)
            return None, []
        except ConditionSyntaxError as e:
            self._cond_error(info.item, e)
            return None, []
        except Unsupported as u:
            if u.unknown and not info.skip_if_unknown_filter:
                self.res.error(
                    LOAD_ERR_COMPILE_CONDITION,
                    f"filter_check called with nonexistent field {', '.join(u.names)}",
                    **where,
                )
                return None, u.names
            code = LOAD_UNKNOWN_FILTER if u.unknown else LOAD_UNSUPPORTED_FILTER
            self.res.warn(
                code,
                f"rule disabled: condition uses field(s) not supported by this engine: {', '.join(u.names)}",
                **where,
            )
            return None, u.names
        if compiled.evttypes is None and info.warn_evttypes:
            self.res.warn(
                LOAD_NO_EVTTYPE,
                "Rule matches too many evt.type values. This has a significant performance penalty.",
                **where,
            )
        return compiled, []

    def report_unused(self) -> None:
        for name, m in self.col.macros.items():
            if name not in self.used_macros:
                self.res.warn(LOAD_UNUSED_MACRO, "Macro not referred to by any other rule/macro", **m.item.where())
        referenced: set[str] = set(self.used_lists)
        for lst in self.col.lists.values():
            referenced.update(i for i in lst.items if i in self.col.lists and i != lst.name)
        for name, lst in self.col.lists.items():
            if name not in referenced:
                self.res.warn(LOAD_UNUSED_LIST, "List not referred to by any other rule/macro", **lst.item.where())


_BUILTINS = {"any": any, "all": all, "bool": bool, "str": str, "int": int, "len": len, "True": True, "False": False}


def _lit(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return unquote_item(str(v))


_FIELD_TEXT = re.compile(r"^([a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+)(?:\[(.*)\])?$")


def _field_from_text(text: str) -> Field:
    m = _FIELD_TEXT.match(text.strip())
    if not m:
        raise CompileError(f"'{text}' is not a valid field name")
    arg = m.group(2)
    return Field(m.group(1), unquote_item(arg) if arg is not None else None)


def compile_expression(expr: str, *, label: str = "expr") -> CompiledCondition:
    """Compile a standalone condition with no macros or lists (tests, ad-hoc filters)."""
    comp = Compiler(Collection(), LoadResult())
    node = comp.resolve(parse_condition(expr))
    return comp.compile_node(node, label)


def field_getter(token_name: str, arg: str | None) -> tuple[Callable[[Event], Any], ResolvedField]:
    """A compiled ``lambda e: <field expr>`` for output formatting."""
    rf = resolve_field(token_name, arg)
    src = f"def _get(e):\n    return {rf.expr()}\n"
    namespace: dict[str, Any] = {**F.RUNTIME_NAMES, "__builtins__": _BUILTINS}
    exec(compile(src, f"<field {rf.token}>", "exec"), namespace)  # noqa: S102 - expression from the field table
    getter: Callable[[Event], Any] = namespace["_get"]
    return getter, rf
