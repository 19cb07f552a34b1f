"""Calico's selector language: tokenizer, parser, canonical form, UID, compiled predicates.

The grammar, its quirks and its printed form follow ``libcalico-go/lib/selector`` (tokenizer and
parser packages) exactly, because selectors written for Calico must select the same endpoints here
and the nftables dataplane keys its sets on the canonical string:

* tokens: ``==``, ``!=``, ``!``, ``&&``, ``||``, ``(``, ``)``, ``{``, ``}``, ``,``, string literals
  in single or double quotes (no escapes: a literal ends at the next quote of its kind),
  ``has(label)``, ``all()``, ``global()``, label names ``[a-zA-Z0-9_./-]{1,512}``; after a label,
  the operators ``contains``, ``starts with``/``startswith``, ``ends with``/``endswith``, ``in``,
  ``not in``/``notin``;
* precedence: ``!`` (runs of ``!`` collapse to one or none), then ``&&``, then ``||``;
* an empty selector is ``all()``; ``global()`` matches everything too (it differs in where it may
  be used, not in what it matches);
* ``a != "x"`` and ``a not in {...}`` match endpoints without label ``a``;
* the canonical string puts every ``&&``/``||`` group in parentheses, sorts and de-duplicates set
  literals and quotes a value with ``'`` only when it contains ``"``; the UID is
  ``"s:" + base64url(sha224("s:" + canonical))`` without padding.

It is hand-written rather than generated (lark, pyparsing) because Calico's tokenizer is
context-sensitive (``contains`` is an operator only right after a label, ``in`` is recognised as a
prefix so ``inf`` tokenizes as ``in`` + ``f``) and a generated grammar would not reproduce those
edge cases; errors carry the 0-based character position of the offending token.

Parsed selectors are cached (``parse`` is memoised) and compiled once to a closure over a label
mapping; the evaluator calls the closure once per endpoint at load time and never per flow.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from garrison.core.errors import InputError

__all__ = [
    "LabelRestriction",
    "Node",
    "Selector",
    "SelectorError",
    "TokKind",
    "Token",
    "k8s_label_selector",
    "parse",
    "tokenize",
]

MAX_LABEL_LEN = 512
_IDENT = re.compile(rf"[a-zA-Z0-9_./-]{{1,{MAX_LABEL_LEN}}}")
_WS = " \t"

Labels = Mapping[str, str]
Predicate = Callable[[Labels], bool]


class SelectorError(InputError):
    """A selector that does not parse; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, selector: str, position: int, *, input_name: str | None = None) -> None:
        self.selector = selector
        self.position = position
        self.reason = message
        shown = selector if len(selector) <= 80 else selector[:77] + "..."
        super().__init__(f"invalid selector {shown!r} at character {position}: {message}", input_name=input_name)


class TokKind(enum.Enum):
    """Token kinds, named as Calico's ``tokenizer.Kind`` prints them."""

    TokLabel = "TokLabel"
    TokStringLiteral = "TokStringLiteral"
    TokLBrace = "TokLBrace"
    TokRBrace = "TokRBrace"
    TokComma = "TokComma"
    TokEq = "TokEq"
    TokNe = "TokNe"
    TokIn = "TokIn"
    TokNot = "TokNot"
    TokNotIn = "TokNotIn"
    TokContains = "TokContains"
    TokStartsWith = "TokStartsWith"
    TokEndsWith = "TokEndsWith"
    TokAll = "TokAll"
    TokHas = "TokHas"
    TokLParen = "TokLParen"
    TokRParen = "TokRParen"
    TokAnd = "TokAnd"
    TokOr = "TokOr"
    TokGlobal = "TokGlobal"
    TokEOF = "TokEOF"


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokKind
    value: str = ""
    pos: int = 0


_SIMPLE = {"(": TokKind.TokLParen, ")": TokKind.TokRParen, "{": TokKind.TokLBrace, "}": TokKind.TokRBrace,
           ",": TokKind.TokComma}


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens as Calico's ``tokenizer.Tokenize`` does; raise :class:`SelectorError`."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while True:
        i = _skip_ws(text, i)
        if i >= n:
            tokens.append(Token(TokKind.TokEOF, "", i))
            return tokens
        start = i
        c = text[i]
        last = tokens[-1].kind if tokens else None
        if c in _SIMPLE:
            tokens.append(Token(_SIMPLE[c], "", start))
            i += 1
        elif c in "\"'":
            end = text.find(c, i + 1)
            if end < 0:
                raise SelectorError("unterminated string", text, start)
            tokens.append(Token(TokKind.TokStringLiteral, text[i + 1 : end], start))
            i = end + 1
        elif c == "=":
            if text.startswith("==", i):
                tokens.append(Token(TokKind.TokEq, "", start))
                i += 2
            else:
                raise SelectorError("expected ==", text, start)
        elif c == "!":
            if text.startswith("!=", i):
                tokens.append(Token(TokKind.TokNe, "", start))
                i += 2
            else:
                tokens.append(Token(TokKind.TokNot, "", start))
                i += 1
        elif c == "&":
            if not text.startswith("&&", i):
                raise SelectorError("expected &&", text, start)
            tokens.append(Token(TokKind.TokAnd, "", start))
            i += 2
        elif c == "|":
            if not text.startswith("||", i):
                raise SelectorError("expected ||", text, start)
            tokens.append(Token(TokKind.TokOr, "", start))
            i += 2
        elif last is TokKind.TokLabel:
            i = _operator(text, i, tokens)
        elif text.startswith("has(", i):
            j = _skip_ws(text, i + 4)
            m = _IDENT.match(text, j)
            if not m:
                raise SelectorError("no label name in has( expression", text, j)
            j = _skip_ws(text, m.end())
            if not text.startswith(")", j):
                raise SelectorError("no closing ')' after has(", text, j)
            tokens.append(Token(TokKind.TokHas, m.group(), start))
            i = j + 1
        elif text.startswith("all(", i) or text.startswith("global(", i):
            word = "all(" if text.startswith("all(", i) else "global("
            j = _skip_ws(text, i + len(word))
            if not text.startswith(")", j):
                raise SelectorError(f"no closing ')' after {word}", text, j)
            tokens.append(Token(TokKind.TokAll if word == "all(" else TokKind.TokGlobal, "", start))
            i = j + 1
        else:
            m = _IDENT.match(text, i)
            if not m:
                raise SelectorError("unexpected characters", text, start)
            tokens.append(Token(TokKind.TokLabel, m.group(), start))
            i = m.end()


def _operator(text: str, i: int, tokens: list[Token]) -> int:
    """After a label only a word operator may follow (Calico matches them as prefixes)."""
    start = i
    label = tokens[-1].value
    if text.startswith("contains", i):
        tokens.append(Token(TokKind.TokContains, "", start))
        return i + len("contains")
    for word, kind, tail in (("starts", TokKind.TokStartsWith, "with"), ("ends", TokKind.TokEndsWith, "with"),
                             ("not", TokKind.TokNotIn, "in")):
        if text.startswith(word, i):
            j = _skip_ws(text, i + len(word))
            if text.startswith(tail, j):
                tokens.append(Token(kind, "", start))
                return j + len(tail)
            raise SelectorError(f"unexpected characters after label {label!r}, was expecting an operator", text, j)
    if text.startswith("in", i):
        tokens.append(Token(TokKind.TokIn, "", start))
        return i + 2
    raise SelectorError(f"unexpected characters after label {label!r}, was expecting an operator", text, start)


# --------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class LabelRestriction:
    """What a selector requires of one label (Calico ``LabelRestriction``); ``None`` values = unknown."""

    must_be_present: bool = False
    must_be_absent: bool = False
    must_have_one_of_values: tuple[str, ...] | None = None

    def as_calico(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.must_be_present:
            out["MustBePresent"] = True
        if self.must_be_absent:
            out["MustBeAbsent"] = True
        if self.must_have_one_of_values is not None:
            out["MustHaveOneOfValues"] = sorted(self.must_have_one_of_values)
        return out


def _quote(value: str) -> str:
    q = "'" if '"' in value else '"'
    return f"{q}{value}{q}"


class Node:
    """Base of the selector AST. Nodes are immutable; ``prefixed`` returns a rewritten copy."""

    __slots__ = ()

    def text(self) -> str:
        raise NotImplementedError

    def compile(self) -> Predicate:
        raise NotImplementedError

    def restrictions(self) -> dict[str, LabelRestriction] | None:
        return None

    def prefixed(self, prefix: str) -> Node:
        return self

    def labels(self) -> set[str]:
        return set()


@dataclass(frozen=True, slots=True)
class AllNode(Node):
    def text(self) -> str:
        return "all()"

    def compile(self) -> Predicate:
        return lambda labels: True


@dataclass(frozen=True, slots=True)
class GlobalNode(Node):
    def text(self) -> str:
        return "global()"

    def compile(self) -> Predicate:
        return lambda labels: True


@dataclass(frozen=True, slots=True)
class HasNode(Node):
    label: str

    def text(self) -> str:
        return f"has({self.label})"

    def compile(self) -> Predicate:
        key = self.label
        return lambda labels: key in labels

    def restrictions(self) -> dict[str, LabelRestriction] | None:
        return {self.label: LabelRestriction(must_be_present=True)}

    def prefixed(self, prefix: str) -> Node:
        return HasNode(prefix + self.label)

    def labels(self) -> set[str]:
        return {self.label}


class Op(enum.Enum):
    EQ = " == "
    NE = " != "
    CONTAINS = " contains "
    STARTS = " starts with "
    ENDS = " ends with "


@dataclass(frozen=True, slots=True)
class LabelOpNode(Node):
    label: str
    op: Op
    value: str

    def text(self) -> str:
        return f"{self.label}{self.op.value}{_quote(self.value)}"

    def compile(self) -> Predicate:
        key, value = self.label, self.value
        if self.op is Op.EQ:
            return lambda labels: labels.get(key) == value
        if self.op is Op.NE:
            return lambda labels: labels.get(key) != value
        if self.op is Op.CONTAINS:
            return lambda labels: (v := labels.get(key)) is not None and value in v
        if self.op is Op.STARTS:
            return lambda labels: (v := labels.get(key)) is not None and v.startswith(value)
        return lambda labels: (v := labels.get(key)) is not None and v.endswith(value)

    def restrictions(self) -> dict[str, LabelRestriction] | None:
        if self.op is Op.NE:
            return None
        if self.op is Op.EQ:
            return {self.label: LabelRestriction(must_be_present=True, must_have_one_of_values=(self.value,))}
        return {self.label: LabelRestriction(must_be_present=True)}

    def prefixed(self, prefix: str) -> Node:
        return LabelOpNode(prefix + self.label, self.op, self.value)

    def labels(self) -> set[str]:
        return {self.label}


@dataclass(frozen=True, slots=True)
class InSetNode(Node):
    label: str
    values: tuple[str, ...]  # sorted, unique
    negated: bool = False

    def text(self) -> str:
        op = "not in" if self.negated else "in"
        return f"{self.label} {op} {{{', '.join(_quote(v) for v in self.values)}}}"

    def compile(self) -> Predicate:
        key, values = self.label, frozenset(self.values)
        if self.negated:
            return lambda labels: labels.get(key) not in values
        return lambda labels: (v := labels.get(key)) is not None and v in values

    def restrictions(self) -> dict[str, LabelRestriction] | None:
        if self.negated:
            return None
        return {self.label: LabelRestriction(must_be_present=True, must_have_one_of_values=self.values)}

    def prefixed(self, prefix: str) -> Node:
        return InSetNode(prefix + self.label, self.values, self.negated)

    def labels(self) -> set[str]:
        return {self.label}


@dataclass(frozen=True, slots=True)
class NotNode(Node):
    operand: Node

    def text(self) -> str:
        return "!" + self.operand.text()

    def compile(self) -> Predicate:
        inner = self.operand.compile()
        return lambda labels: not inner(labels)

    def restrictions(self) -> dict[str, LabelRestriction] | None:
        if isinstance(self.operand, HasNode):
            return {self.operand.label: LabelRestriction(must_be_absent=True)}
        return None

    def prefixed(self, prefix: str) -> Node:
        return NotNode(self.operand.prefixed(prefix))

    def labels(self) -> set[str]:
        return self.operand.labels()


@dataclass(frozen=True, slots=True)
class AndNode(Node):
    operands: tuple[Node, ...]

    def text(self) -> str:
        return "(" + " && ".join(o.text() for o in self.operands) + ")"

    def compile(self) -> Predicate:
        preds = tuple(o.compile() for o in self.operands)
        return lambda labels: all(p(labels) for p in preds)

    def restrictions(self) -> dict[str, LabelRestriction] | None:
        out: dict[str, LabelRestriction] = {}
        for op in self.operands:
            for name, r in (op.restrictions() or {}).items():
                base = out.get(name, LabelRestriction())
                values = base.must_have_one_of_values
                if values is None:
                    values = r.must_have_one_of_values
                elif r.must_have_one_of_values is not None:
                    other = set(r.must_have_one_of_values)
                    values = tuple(v for v in values if v in other)
                out[name] = LabelRestriction(base.must_be_present or r.must_be_present,
                                             base.must_be_absent or r.must_be_absent, values)
        return out or None

    def prefixed(self, prefix: str) -> Node:
        return AndNode(tuple(o.prefixed(prefix) for o in self.operands))

    def labels(self) -> set[str]:
        return set().union(*(o.labels() for o in self.operands))


@dataclass(frozen=True, slots=True)
class OrNode(Node):
    operands: tuple[Node, ...]

    def text(self) -> str:
        return "(" + " || ".join(o.text() for o in self.operands) + ")"

    def compile(self) -> Predicate:
        preds = tuple(o.compile() for o in self.operands)
        return lambda labels: any(p(labels) for p in preds)

    def restrictions(self) -> dict[str, LabelRestriction] | None:
        lr = dict(self.operands[0].restrictions() or {})
        for op in self.operands[1:]:
            other = op.restrictions() or {}
            for name, r in list(lr.items()):
                o = other.get(name, LabelRestriction())
                present = r.must_be_present and o.must_be_present
                values: tuple[str, ...] | None = None
                if present and r.must_have_one_of_values is not None and o.must_have_one_of_values is not None:
                    values = r.must_have_one_of_values + tuple(
                        v for v in o.must_have_one_of_values if v not in r.must_have_one_of_values)
                absent = r.must_be_absent and o.must_be_absent
                if present or absent:
                    lr[name] = LabelRestriction(present, absent, values)
                else:
                    del lr[name]
        return lr or None

    def prefixed(self, prefix: str) -> Node:
        return OrNode(tuple(o.prefixed(prefix) for o in self.operands))

    def labels(self) -> set[str]:
        return set().union(*(o.labels() for o in self.operands))


# ------------------------------------------------------------------------------------------ parser


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.toks = tokens
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def fail(self, message: str, tok: Token | None = None) -> SelectorError:
        return SelectorError(message, self.text, (tok or self.peek()).pos)

    def parse_or(self) -> Node:
        nodes = [self.parse_and()]
        while self.peek().kind is TokKind.TokOr:
            self.i += 1
            nodes.append(self.parse_and())
        return nodes[0] if len(nodes) == 1 else OrNode(tuple(nodes))

    def parse_and(self) -> Node:
        nodes = [self.parse_op()]
        while self.peek().kind is TokKind.TokAnd:
            self.i += 1
            nodes.append(self.parse_op())
        return nodes[0] if len(nodes) == 1 else AndNode(tuple(nodes))

    def parse_op(self) -> Node:
        negated = False
        while self.peek().kind is TokKind.TokNot:
            negated = not negated
            self.i += 1
        tok = self.peek()
        node: Node
        if tok.kind is TokKind.TokHas:
            node = HasNode(tok.value)
            self.i += 1
        elif tok.kind is TokKind.TokAll:
            node = AllNode()
            self.i += 1
        elif tok.kind is TokKind.TokGlobal:
            node = GlobalNode()
            self.i += 1
        elif tok.kind is TokKind.TokLabel:
            node = self.parse_label_op(tok)
        elif tok.kind is TokKind.TokLParen:
            self.i += 1
            node = self.parse_or()
            if self.peek().kind is not TokKind.TokRParen:
                raise self.fail("expected )")
            self.i += 1
        elif tok.kind is TokKind.TokEOF:
            raise self.fail("unexpected end of selector")
        else:
            raise self.fail(f"unexpected token {tok.kind.value}")
        return NotNode(node) if negated else node

    def parse_label_op(self, tok: Token) -> Node:
        if len(self.toks) - self.i < 3:
            raise self.fail("unexpected end of string looking for op", self.toks[-1])
        op, arg = self.toks[self.i + 1], self.toks[self.i + 2]
        simple = {TokKind.TokEq: Op.EQ, TokKind.TokNe: Op.NE, TokKind.TokContains: Op.CONTAINS,
                  TokKind.TokStartsWith: Op.STARTS, TokKind.TokEndsWith: Op.ENDS}
        if op.kind in simple:
            if arg.kind is not TokKind.TokStringLiteral:
                raise self.fail("expected string", arg)
            self.i += 3
            return LabelOpNode(tok.value, simple[op.kind], arg.value)
        if op.kind in (TokKind.TokIn, TokKind.TokNotIn):
            if arg.kind is not TokKind.TokLBrace:
                raise self.fail("expected set literal", arg)
            self.i += 3
            values: list[str] = []
            while self.peek().kind is TokKind.TokStringLiteral:
                values.append(self.peek().value)
                self.i += 1
                if self.peek().kind is TokKind.TokComma:
                    self.i += 1
                else:
                    break
            if self.peek().kind is not TokKind.TokRBrace:
                raise self.fail("expected }")
            self.i += 1
            return InSetNode(tok.value, tuple(sorted(set(values))), op.kind is TokKind.TokNotIn)
        raise self.fail(f"expected an operator after label {tok.value!r}", op)


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector: its AST, canonical string, UID and compiled predicate."""

    root: Node
    source: str

    @property
    def canonical(self) -> str:
        return self.root.text()

    def __str__(self) -> str:
        return self.root.text()

    @property
    def uid(self) -> str:
        return _uid(self.root.text())

    def matches(self, labels: Labels) -> bool:
        return _compiled(self.root)(labels)

    @property
    def predicate(self) -> Predicate:
        return _compiled(self.root)

    def label_restrictions(self) -> dict[str, LabelRestriction] | None:
        return self.root.restrictions()

    def with_prefix(self, prefix: str) -> Selector:
        """Calico's ``PrefixVisitor``: prefix every label name (used for namespace selectors)."""
        return Selector(self.root.prefixed(prefix), self.source)

    @property
    def is_all(self) -> bool:
        return isinstance(self.root, AllNode | GlobalNode)

    def referenced_labels(self) -> set[str]:
        return self.root.labels()

    def select(self, items: Iterable[tuple[int, Labels]]) -> list[int]:
        """Indices of ``items`` whose labels match (the dataplane turns these into nftables sets)."""
        pred = self.predicate
        return [i for i, labels in items if pred(labels)]


@functools.lru_cache(maxsize=65536)
def _uid(canonical: str) -> str:
    digest = hashlib.sha224(("s:" + canonical).encode()).digest()
    return "s:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


@functools.lru_cache(maxsize=65536)
def _compiled(root: Node) -> Predicate:
    return root.compile()


@functools.lru_cache(maxsize=65536)
def _parse_cached(text: str) -> Selector:
    tokens = tokenize(text)
    if tokens[0].kind is TokKind.TokEOF:
        return Selector(AllNode(), text)
    p = _Parser(text, tokens)
    root = p.parse_or()
    if p.peek().kind is not TokKind.TokEOF:
        raise p.fail(f"unexpected content at end of selector ({p.peek().kind.value})")
    return Selector(root, text)


def parse(text: str, *, input_name: str | None = None) -> Selector:
    """Parse a Calico selector (memoised). Raises :class:`SelectorError` with the character position."""
    try:
        return _parse_cached(text)
    except SelectorError as err:
        if input_name is None:
            raise
        raise SelectorError(err.reason, text, err.position, input_name=input_name) from err


# ------------------------------------------------------------------- Kubernetes label selectors


def k8s_label_selector(spec: Mapping[str, object] | None, *, where: str = "labelSelector") -> str:
    """Translate a Kubernetes ``LabelSelector`` to a Calico selector string, as Calico's converter does.

    ``matchLabels`` become ``k == 'v'``; expressions ``In``/``NotIn``/``Exists``/``DoesNotExist``
    become ``k in {...}``, ``k not in {...}``, ``has(k)``, ``! has(k)``. An empty selector is
    ``all()``. Terms are joined with ``&&`` in sorted-key order.
    """
    if spec is None:
        return "all()"
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(spec).__name__}")
    parts: list[str] = []
    labels = spec.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        raise InputError(f"{where}.matchLabels: expected a mapping")
    for key in sorted(labels):
        value = labels[key]
        _check_label_key(str(key), f"{where}.matchLabels")
        parts.append(f"{key} == {_quote(str(value))}")
    exprs = spec.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise InputError(f"{where}.matchExpressions: expected a list")
    for n, expr in enumerate(exprs):
        if not isinstance(expr, Mapping):
            raise InputError(f"{where}.matchExpressions[{n}]: expected a mapping")
        key = str(expr.get("key", ""))
        _check_label_key(key, f"{where}.matchExpressions[{n}].key")
        op = expr.get("operator")
        values = expr.get("values") or []
        if not isinstance(values, list):
            raise InputError(f"{where}.matchExpressions[{n}].values: expected a list")
        vals = ", ".join(_quote(str(v)) for v in sorted({str(v) for v in values}))
        if op == "In":
            parts.append(f"{key} in {{{vals}}}")
        elif op == "NotIn":
            parts.append(f"{key} not in {{{vals}}}")
        elif op == "Exists":
            parts.append(f"has({key})")
        elif op == "DoesNotExist":
            parts.append(f"! has({key})")
        else:
            raise InputError(f"{where}.matchExpressions[{n}].operator: unknown operator {op!r}")
    return " && ".join(parts) if parts else "all()"


def _check_label_key(key: str, where: str) -> None:
    if not key or _IDENT.fullmatch(key) is None:
        raise InputError(f"{where}: invalid label key {key!r}")
