"""Kubernetes-template JSONPath (``{.authentication.anonymous.enabled}``) as kube-bench evaluates it.

kube-bench reads config output with Go's ``encoding/json`` and, failing that, ``gopkg.in/yaml.v2``,
then runs client-go's ``util/jsonpath`` with missing keys allowed and compares the *printed text*.
The printed text is what the checks compare (``1e+06`` for a JSON number 1000000, ``<nil>`` for a
null value, compact JSON for maps and lists), so this module is a port of that parser and
evaluator (text, fields, ``..``, ``*``, slices, unions, ``['key']``, filters, ``range``/``end``)
plus Go's value formatting. General-purpose Python JSONPath libraries (jsonpath-ng and friends)
implement a different dialect with different output, hence the hand-written port.

Every failure raises :class:`JSONPathError` (a :class:`garrison.core.errors.InputError`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from garrison.core.errors import InputError


class JSONPathError(InputError):
    """The expression does not parse, or cannot be evaluated on the document."""


class YamlMap(dict[Any, Any]):
    """A mapping decoded from YAML: Go decodes it as ``map[interface{}]interface{}``, which
    ``encoding/json`` refuses to marshal, so printing one is an error (as upstream)."""


# ----------------------------------------------------------------------------------------------
# document decoding (encoding/json, then yaml.v2)

_INT_RE = re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _GoYamlLoader(yaml.SafeLoader):
    """YAML 1.1 like yaml.v2 when decoding into ``interface{}``: timestamps stay strings and
    there are no sexagesimal numbers."""


_GoYamlLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_GoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT_RE, list("-+0123456789"))
_GoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def _yaml_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_yaml_int(node)
    if -(2**63) <= value < 2**64:
        return value
    return float(value)  # yaml.v2 falls back to float64 when the integer overflows


def _yaml_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    data = YamlMap()
    yield data
    data.update(loader.construct_mapping(node))


_GoYamlLoader.add_constructor("tag:yaml.org,2002:int", _yaml_int)
_GoYamlLoader.add_constructor("tag:yaml.org,2002:map", _yaml_map)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name!r}")


def _json_number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"cannot unmarshal number {text} into a float64")
    return value


def unmarshal(text: str) -> Any:
    """Decode config output as kube-bench does: JSON (numbers become floats), else YAML (first
    document). Raises :class:`JSONPathError` when neither accepts it."""
    try:
        return json.loads(text, parse_int=_json_number, parse_float=_json_number, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        pass
    try:
        loader = _GoYamlLoader(text)
        try:
            return loader.get_data() if loader.check_data() else None  # type: ignore[no-untyped-call]
        finally:
            loader.dispose()
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as err:
        problem = getattr(err, "problem", None) or str(err)
        raise JSONPathError(f"failed to load YAML or JSON from input: {' '.join(str(problem).split())}") from None


# ----------------------------------------------------------------------------------------------
# Go value formatting


def _digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits and the decimal point position (Go's ``digs.dp``)."""
    _sign, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    dp = len(digit_tuple) + exponent
    return digits, dp


def _fmt_e(neg: bool, digits: str, dp: int) -> str:
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = dp - 1 if digits != "0" else 0
    sign = "-" if exp < 0 else "+"
    return f"{'-' if neg else ''}{mant}e{sign}{abs(exp):02d}"


def _fmt_f(neg: bool, digits: str, dp: int) -> str:
    if dp <= 0:
        text = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        text = digits + "0" * (dp - len(digits))
    else:
        text = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + text


def format_float_v(value: float) -> str:
    """Go's ``fmt.Fprint(float64)``: ``strconv.FormatFloat(v, 'g', -1, 64)``, i.e. the shortest
    digits, in exponent form when the exponent is < -4 or >= 6 (``1e+06``, ``1.5e-05``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    neg = math.copysign(1.0, value) < 0
    if value == 0:
        return "-0" if neg else "0"
    digits, dp = _digits(value)
    exp = dp - 1
    if exp < -4 or exp >= 6:
        return _fmt_e(neg, digits, dp)
    return _fmt_f(neg, digits, dp)


def _json_float(value: float) -> str:
    """``encoding/json`` float64: 'f' unless the exponent is < -6 or >= 21, then 'e' with a
    single-digit negative exponent cleaned up (``1e-07``→``1e-7``)."""
    if math.isnan(value) or math.isinf(value):
        raise JSONPathError(f"json: unsupported value: {format_float_v(value)}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    absv = abs(value)
    if absv < 1e-6 or absv >= 1e21:
        digits, dp = _digits(value)
        text = _fmt_e(value < 0, digits, dp)
        return re.sub(r"e-0(\d)$", r"e-\1", text)
    digits, dp = _digits(value)
    return _fmt_f(value < 0, digits, dp)


def _json_string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    return (
        out.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def go_json_marshal(value: Any) -> str:
    """``json.Marshal`` of a decoded document: compact, map keys sorted, HTML-safe escapes."""
    if isinstance(value, YamlMap):
        raise JSONPathError("json: unsupported type: map[interface {}]interface {}")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json_marshal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json_marshal(v)}" for k, v in items) + "}"
    raise JSONPathError(f"json: unsupported type: {type(value).__name__}")


def go_print(value: Any) -> str:
    """``fmt.Fprint`` of a scalar as client-go's ``evalToText`` does."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float_v(value)
    return str(value)


# ----------------------------------------------------------------------------------------------
# parser (port of client-go util/jsonpath/parser.go)


@dataclass
class _Node:
    kind: str  # list, text, field, array, filter, int, float, bool, wildcard, recursive, union, identifier
    value: Any = None
    nodes: list[_Node] = field(default_factory=list)
    # filter: left list, right list, operator
    left: _Node | None = None
    right: _Node | None = None
    op: str = ""


@dataclass
class _Param:
    value: int = 0
    known: bool = False
    derived: bool = False


_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=~]+)(.+?)$", re.S)
_MAX_DEPTH = 64


def _is_terminator(ch: str) -> bool:
    return ch in ("", " ", "\t", "\r", "\n", ".", ",", "[", "]", "$", "@", "{", "}")


def _is_alnum(ch: str) -> bool:
    return ch != "" and (ch == "_" or ch.isalpha() or ch.isdigit())


class _Parser:
    def __init__(self, text: str, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            raise JSONPathError("jsonpath expression nested too deeply")
        self.input = text
        self.pos = 0
        self.start = 0
        self.width = 0
        self.depth = depth
        self.root = _Node("list")

    def parse(self) -> _Node:
        self._parse_text()
        return self.root

    # -- scanning helpers
    def _next(self) -> str:
        if self.pos >= len(self.input):
            self.width = 0
            return ""
        self.width = 1
        self.pos += 1
        return self.input[self.pos - 1]

    def _peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def _backup(self) -> None:
        self.pos -= self.width

    def _consume(self) -> str:
        value = self.input[self.start : self.pos]
        self.start = self.pos
        return value

    # -- grammar (iterative where upstream tail-recurses)
    def _parse_text(self) -> None:
        while True:
            idx = self.input.find("{", self.pos)
            if idx < 0:
                self.pos = len(self.input)
                if self.pos > self.start:
                    self.root.nodes.append(_Node("text", self._consume()))
                return
            self.pos = idx
            if self.pos > self.start:
                self.root.nodes.append(_Node("text", self._consume()))
            self.pos += 1
            self._consume()
            cur = _Node("list")
            self.root.nodes.append(cur)
            self._parse_inside(cur)

    def _parse_inside(self, cur: _Node) -> None:
        while True:
            rest = self.input[self.pos :]
            if rest.startswith("}"):
                self.pos += 1
                self._consume()
                return
            if rest.startswith("[?("):
                self._parse_filter(cur)
                continue
            if rest.startswith(".."):
                self._parse_recursive(cur)
                continue
            ch = self._next()
            if ch == "" or ch in "\r\n":
                raise JSONPathError("unclosed action")
            if ch in (" ", "@", "$"):
                self._consume()
            elif ch == "[":
                self._parse_array(cur)
            elif ch in ('"', "'"):
                self._parse_quote(cur, ch)
            elif ch == ".":
                self._parse_field(cur)
            elif ch in "+-" or ch.isdigit():
                self._backup()
                self._parse_number(cur)
            elif _is_alnum(ch):
                self._backup()
                self._parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: U+{ord(ch):04X} {ch!r}")

    def _parse_identifier(self, cur: _Node) -> None:
        while True:
            ch = self._next()
            if _is_terminator(ch):
                self._backup()
                break
        value = self._consume()
        if value in ("true", "false"):
            cur.nodes.append(_Node("bool", value == "true"))
        else:
            cur.nodes.append(_Node("identifier", value))

    def _parse_recursive(self, cur: _Node) -> None:
        if cur.nodes and cur.nodes[-1].kind == "recursive":
            raise JSONPathError("invalid multiple recursive descent")
        self.pos += 2
        self._consume()
        cur.nodes.append(_Node("recursive"))
        if _is_alnum(self._peek()):
            self._parse_field(cur)

    def _parse_number(self, cur: _Node) -> None:
        if self._peek() in ("+", "-"):
            self._next()
        while True:
            ch = self._next()
            if ch != "." and not (ch != "" and ch.isdigit()):
                self._backup()
                break
        value = self._consume()
        if re.fullmatch(r"[-+]?[0-9]+", value):
            cur.nodes.append(_Node("int", int(value)))
            return
        if re.fullmatch(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)", value):
            cur.nodes.append(_Node("float", float(value)))
            return
        raise JSONPathError(f"cannot parse number {value}")

    def _parse_array(self, cur: _Node) -> None:
        while True:
            ch = self._next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated array")
            if ch == "]":
                break
        text = self._consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            union = [self._action(f"[{part.strip(' ')}]") for part in parts]
            cur.nodes.append(_Node("union", nodes=union))
            return
        key = _DICT_KEY.match(text)
        if key:
            cur.nodes.extend(self._action(f".{key.group(1)}").nodes)
            return
        m = _SLICE.match(text)
        if not m:
            raise JSONPathError(f"invalid array index {text}")
        groups = [m.group(1) or "", m.group(2) or "", m.group(3) or ""]
        params = [_Param(), _Param(), _Param()]
        for i in range(3):
            raw = groups[i]
            if raw:
                if i > 0:
                    raw = raw[1:]
                if i > 0 and raw == "":
                    params[i].known = False
                else:
                    params[i].known = True
                    params[i].value = int(raw)
            elif i == 1:
                params[i] = _Param(params[0].value + 1, True, True)
        cur.nodes.append(_Node("array", params))

    def _parse_filter(self, cur: _Node) -> None:
        self.pos += 3
        self._consume()
        begin = end = False
        pair = ""
        while True:
            ch = self._next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated filter")
            if ch in ('"', "'"):
                if not begin:
                    begin, pair = True, ch
                    continue
                if self.input[self.pos - 2] != "\\" and ch == pair:
                    end = True
            elif ch == ")" and begin == end:
                break
        if self._next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self._consume()[:-2]
        m = _FILTER.match(text)
        if not m:
            cur.nodes.append(_Node("filter", left=self._action(text), right=_Node("list"), op="exists"))
        else:
            left, right = self._action(m.group(1)), self._action(m.group(3))
            cur.nodes.append(_Node("filter", left=left, right=right, op=m.group(2)))

    def _parse_quote(self, cur: _Node, quote: str) -> None:
        while True:
            ch = self._next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated quoted string")
            if ch == quote and self.input[self.pos - 2] != "\\":
                break
        value = self._consume()
        cur.nodes.append(_Node("text", _unquote(value)))

    def _parse_field(self, cur: _Node) -> None:
        self._consume()
        while True:
            ch = self._next()
            if ch == "\\":
                self._next()
            elif _is_terminator(ch):
                self._backup()
                break
        value = self._consume()
        if value == "*":
            cur.nodes.append(_Node("wildcard"))
        else:
            cur.nodes.append(_Node("field", value.replace("\\", "")))

    def _action(self, text: str) -> _Node:
        root = _Parser("{" + text + "}", self.depth + 1).parse()
        first = root.nodes[0]
        assert first.kind == "list"
        return first


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unquote(text: str) -> str:
    """``UnquoteExtend``: Go string unquoting that also accepts single quotes."""
    if len(text) < 2 or text[-1] != text[0]:
        raise JSONPathError(f"unquote string {text} error invalid syntax")
    quote, body = text[0], text[1:-1]
    if "\\" not in body and quote not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote:
            raise JSONPathError(f"unquote string {text} error invalid syntax")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise JSONPathError(f"unquote string {text} error invalid syntax")
        esc = body[i + 1]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc == quote:
            out.append(quote)
            i += 2
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise JSONPathError(f"unquote string {text} error invalid syntax")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise JSONPathError(f"unquote string {text} error invalid syntax")
            out.append(chr(code))
            i += 2 + width
        elif esc in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise JSONPathError(f"unquote string {text} error invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise JSONPathError(f"unquote string {text} error invalid syntax")
    return "".join(out)


def parse(expression: str) -> _Node:
    """Parse a template; raises :class:`JSONPathError` with upstream's reason."""
    try:
        return _Parser(expression).parse()
    except RecursionError:
        raise JSONPathError("jsonpath expression nested too deeply") from None


# ----------------------------------------------------------------------------------------------
# evaluator (port of client-go util/jsonpath/jsonpath.go, AllowMissingKeys(true))


class _Unset:
    """A reflect.Value that is not valid (what ``range`` evaluates with when it has no results)."""


_UNSET = _Unset()


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return list(value.encode("utf-8"))  # indexing a Go string yields bytes
    return []


def _go_type(value: Any) -> str:
    if isinstance(value, YamlMap):
        return "map[interface {}]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    return "string"


class _Evaluator:
    def __init__(self) -> None:
        self.begin_range = 0
        self.in_range = 0
        self.end_range = 0
        self.last_end: int | None = None
        self.steps = 0

    def _tick(self) -> None:
        self.steps += 1
        if self.steps > 1_000_000:
            raise JSONPathError("jsonpath evaluation too large")

    def find_results(self, data: Any, nodes: list[_Node], offset: int = 0) -> list[list[Any]]:
        cur = [] if data is _UNSET else [data]
        full: list[list[Any]] = []
        i = 0
        while i < len(nodes):
            self._tick()
            node = nodes[i]
            results = self.walk(cur, node)
            if self.end_range > 0 and self.end_range <= self.in_range:
                self.end_range -= 1
                self.last_end = offset + i
                break
            if self.begin_range > 0:
                self.begin_range -= 1
                self.in_range += 1
                if results:
                    for value in results:
                        full.extend(self.find_results(value, nodes[i + 1 :], offset + i + 1))
                else:
                    self.find_results(_UNSET, nodes[i + 1 :], offset + i + 1)
                self.in_range -= 1
                for k in range(i + 1, len(nodes)):
                    if offset + k == self.last_end:
                        i = k
                        break
                i += 1
                continue
            full.append(results)
            i += 1
        return full

    def walk(self, values: list[Any], node: _Node) -> list[Any]:
        kind = node.kind
        if kind == "list":
            for child in node.nodes:
                values = self.walk(values, child)
            return values
        if kind == "text":
            return [node.value]
        if kind == "field":
            return self._field(values, node.value)
        if kind == "array":
            return self._array(values, node.value)
        if kind == "filter":
            return self._filter(values, node)
        if kind in ("int", "float", "bool"):
            return [node.value for _ in values]
        if kind == "wildcard":
            return [child for v in values if v is not None for child in _children(v)]
        if kind == "recursive":
            return self._recursive(values)
        if kind == "union":
            out: list[Any] = []
            for child in node.nodes:
                out.extend(self.walk(values, child))
            return out
        if kind == "identifier":
            if node.value == "range":
                self.begin_range += 1
                return values
            if node.value == "end":
                if self.in_range > 0:
                    self.end_range += 1
                    return []
                raise JSONPathError("not in range, nothing to end")
            raise JSONPathError(f"unrecognized identifier {node.value}")
        raise JSONPathError(f"unexpected node {kind}")

    @staticmethod
    def _field(values: list[Any], name: str) -> list[Any]:
        return [value[name] for value in values if isinstance(value, dict) and name in value]

    @staticmethod
    def _array(values: list[Any], params: list[_Param]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if value is None:
                continue
            if isinstance(value, str):
                seq: list[Any] | bytes = value.encode("utf-8")
            elif isinstance(value, list):
                seq = value
            else:
                raise JSONPathError(f"{_go_type(value)} is not array or slice")
            p = [_Param(x.value, x.known, x.derived) for x in params]
            length = len(seq)
            if not p[0].known:
                p[0].value = 0
            if p[0].value < 0:
                p[0].value += length
            if not p[1].known:
                p[1].value = length
            if p[1].value < 0 or (p[1].value == 0 and p[1].derived):
                p[1].value += length
            if p[1].value == p[0].value:
                return out
            if p[0].value >= length or p[0].value < 0:
                raise JSONPathError(f"array index out of bounds: index {p[0].value}, length {length}")
            if p[1].value > length or p[1].value < 0:
                raise JSONPathError(f"array index out of bounds: index {p[1].value - 1}, length {length}")
            if p[0].value > p[1].value:
                raise JSONPathError(f"starting index {p[0].value} is greater than ending index {p[1].value}")
            step = 1
            if p[2].known:
                if p[2].value <= 0:
                    raise JSONPathError("step must be > 0")
                step = p[2].value
            out.extend(seq[p[0].value : p[1].value : step])
        return out

    def _recursive(self, values: list[Any]) -> list[Any]:
        out: list[Any] = []
        # iterative pre-order: a value with children, then the recursion over its children
        pending: list[Any] = list(reversed(values))
        while pending:
            self._tick()
            value = pending.pop()
            if value is None:
                continue
            children = _children(value)
            if children:
                out.append(value)
                pending.extend(reversed(children))
        return out

    def _filter(self, values: list[Any], node: _Node) -> list[Any]:
        out: list[Any] = []
        assert node.left is not None and node.right is not None
        for value in values:
            if not isinstance(value, list):
                raise JSONPathError(f"{go_print(value)} is not array or slice and cannot be filtered")
            for item in value:
                self._tick()
                try:
                    lefts = self.walk([item], node.left)
                except JSONPathError:
                    if node.op == "exists":
                        continue
                    raise
                if node.op == "exists":
                    if lefts:
                        out.append(item)
                    continue
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self.walk([item], node.right)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError("can only compare one element at a time")
                if _compare(lefts[0], rights[0], node.op):
                    out.append(item)
        return out


def _basic(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int):
        return "int", value
    if isinstance(value, float):
        return "float", value
    if isinstance(value, str):
        return "string", value
    raise JSONPathError("invalid type for comparison")


def _compare(left: Any, right: Any, op: str) -> bool:
    if op == "=~":
        if not isinstance(left, str) or not isinstance(right, str):
            raise JSONPathError("regexp search only support string now")
        try:
            return re.search(right, left) is not None
        except re.error as err:
            raise JSONPathError(f"error parsing regexp: {err}") from None
    lk, lv = _basic(left)
    rk, rv = _basic(right)
    if {lk, rk} <= {"int", "float"}:
        lk = rk = "float"
    if lk != rk:
        raise JSONPathError("incompatible types for comparison")
    if op == "==":
        return bool(lv == rv)
    if op == "!=":
        return bool(lv != rv)
    if lk == "bool":
        raise JSONPathError("invalid type for comparison")
    if op == "<":
        return bool(lv < rv)
    if op == ">":
        return bool(lv > rv)
    if op == "<=":
        return bool(lv <= rv)
    if op == ">=":
        return bool(lv >= rv)
    raise JSONPathError(f"unrecognized filter operator {op}")


def _print_results(results: list[Any]) -> str:
    parts = []
    for value in results:
        if isinstance(value, dict | list):
            parts.append(go_json_marshal(value))
        else:
            parts.append(go_print(value))
    return " ".join(parts)


def execute(expression: str, document: Any) -> str:
    """Evaluate ``expression`` on a decoded document and return the printed text (empty when
    nothing matched). Raises :class:`JSONPathError`."""
    root = parse(expression)
    try:
        full = _Evaluator().find_results(document, root.nodes)
    except RecursionError:
        raise JSONPathError("jsonpath evaluation nested too deeply") from None
    return "".join(_print_results(results) for results in full)
