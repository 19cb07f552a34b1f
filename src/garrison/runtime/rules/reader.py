"""Stage 1 (reader): YAML text to items with positions, validated against the shipped JSON Schema.

PyYAML's composer keeps a mark (line, column) on every node, so the reader composes the node tree,
constructs plain values from it and records where each item and each of its keys starts. Items
that fail the schema are reported (``LOAD_ERR_YAML_VALIDATE``, or ``LOAD_UNKNOWN_ITEM`` for unknown
keys, a warning as in Falco) and dropped; the rest go on to the collector.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from garrison.runtime.rules.errors import (
    LOAD_ERR_FILE_READ,
    LOAD_ERR_YAML_PARSE,
    LOAD_ERR_YAML_VALIDATE,
    LOAD_UNKNOWN_ITEM,
    LoadResult,
)

MAX_FILE_BYTES = 16 * 1024 * 1024
KINDS = ("rule", "macro", "list", "required_engine_version", "required_plugin_versions")


@dataclass(slots=True)
class Item:
    kind: str
    name: str
    data: dict[str, Any]
    file: str
    line: int
    col: int
    key_pos: dict[str, tuple[int, int]] = field(default_factory=dict)
    # for string values: (start index in the file text, end index, YAML style) to map offsets back
    key_span: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)
    text: str = ""

    def offset_where(self, key: str, value: str, index: int) -> dict[str, str | int]:
        """Like :meth:`where`, pointing at character ``index`` of the string value of ``key``."""
        out = self.where(key)
        span = self.key_span.get(key)
        if span is not None:
            pos = _map_offset(self.text, span, value, index)
            if pos is not None:
                out["line"], out["col"] = pos
        return out

    def where(self, key: str | None = None) -> dict[str, str | int]:
        line, col = self.key_pos.get(key, (self.line, self.col)) if key else (self.line, self.col)
        item_type = self.kind if self.kind in ("rule", "macro", "list") else ""
        return {"file": self.file, "line": line, "col": col, "item_type": item_type, "item_name": self.name}


_SCHEMA: dict[str, Any] | None = None


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 7) for one rules-file item, as shipped in ``rules.schema.json``."""
    global _SCHEMA
    if _SCHEMA is None:
        text = resources.files("garrison.runtime.rules").joinpath("rules.schema.json").read_text("utf-8")
        _SCHEMA = json.loads(text)
    return _SCHEMA


_VALIDATORS: dict[str, Any] = {}


def _validator(kind: str) -> Any:
    v = _VALIDATORS.get(kind)
    if v is None:
        full = schema()
        sub = {"definitions": full["definitions"], "$ref": f"#/definitions/{kind}"}
        v = jsonschema.Draft7Validator(sub)
        _VALIDATORS[kind] = v
    return v


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads a bare ``=`` as the string it is in Falco files (``comps: [=, in]``),
    not as YAML's ``value`` tag, as yaml-cpp does."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def _read_text(path: Path, res: LoadResult) -> str | None:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            res.error(LOAD_ERR_FILE_READ, f"file is larger than {MAX_FILE_BYTES} bytes", file=name, line=1, col=1)
            return None
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        res.error(LOAD_ERR_FILE_READ, f"not UTF-8 text: {e.reason} at byte {e.start}", file=name, line=1, col=1)
    except OSError as e:
        res.error(LOAD_ERR_FILE_READ, f"cannot read file: {e.strerror or e}", file=name, line=1, col=1)
    return None


def read_file(path: Path, res: LoadResult) -> list[Item]:
    text = _read_text(path, res)
    return [] if text is None else read_text(text, str(path), res)


def read_text(text: str, name: str, res: LoadResult) -> list[Item]:
    """Parse one rules document; problems go to ``res``; returns the schema-valid items."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as e:
        res.error(LOAD_ERR_YAML_PARSE, f"invalid YAML: {e}", file=name, line=1, col=1)
        return []
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        res.error(LOAD_ERR_YAML_PARSE, f"invalid YAML: {e.problem or e.context or e}", file=name, line=line, col=col)
        return []
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as e:
        res.error(LOAD_ERR_YAML_PARSE, f"invalid YAML: {type(e).__name__}: {e}", file=name, line=1, col=1)
        return []
    finally:
        loader.dispose()
    if node is None or data is None:
        return []  # an empty file is valid and defines nothing
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        res.error(
            LOAD_ERR_YAML_VALIDATE, "rules content is not a YAML sequence of items", file=name, line=line, col=col
        )
        return []
    items: list[Item] = []
    for value, sub in zip(data, node.value, strict=True):
        line, col = sub.start_mark.line + 1, sub.start_mark.column + 1
        if not isinstance(value, dict) or not isinstance(sub, yaml.MappingNode):
            res.error(LOAD_ERR_YAML_VALIDATE, "item is not a YAML mapping", file=name, line=line, col=col)
            continue
        key_pos: dict[str, tuple[int, int]] = {}
        key_span: dict[str, tuple[int, int, str | None]] = {}
        for knode, vnode in sub.value:
            if isinstance(knode, yaml.ScalarNode):
                key_pos[str(knode.value)] = (vnode.start_mark.line + 1, vnode.start_mark.column + 1)
                if isinstance(vnode, yaml.ScalarNode):
                    key_span[str(knode.value)] = (vnode.start_mark.index, vnode.end_mark.index, vnode.style)
        kind = next((k for k in KINDS if k in value), "")
        raw_name = value.get(kind) if kind in ("rule", "macro", "list") else kind
        item_name = raw_name if isinstance(raw_name, str) else str(raw_name)
        item = Item(kind, item_name, value, name, line, col, key_pos, key_span, text)
        if not kind:
            keys = ", ".join(sorted(str(k) for k in value)) or "nothing"
            res.warn(LOAD_UNKNOWN_ITEM, f"unknown top level item with keys: {keys}", file=name, line=line, col=col)
            continue
        if _validate(item, res):
            items.append(item)
    return items


def _validate(item: Item, res: LoadResult) -> bool:
    ok = True
    # json-compatible view: YAML keys may be non-strings
    data = {str(k): v for k, v in item.data.items()}
    errors = sorted(_validator(item.kind).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    for err in errors:
        path = [str(p) for p in err.absolute_path]
        key = path[0] if path else None
        if err.validator == "additionalProperties" and not path:
            extra = sorted(set(data) - set(err.schema.get("properties", {})))
            for k in extra:
                res.warn(LOAD_UNKNOWN_ITEM, f"unknown key '{k}' ignored", **item.where(k))
                item.data.pop(k, None)
            continue
        where = "/".join(path) or "item"
        res.error(LOAD_ERR_YAML_VALIDATE, f"{where}: {_short(err)}", **item.where(key))
        ok = False
    return ok


def _short(err: Any) -> str:
    msg = str(err.message)
    return msg if len(msg) <= 200 else msg[:197] + "..."


def _map_offset(text: str, span: tuple[int, int, str | None], value: str, index: int) -> tuple[int, int] | None:
    """File (line, col) of ``value[index]`` for a scalar spanning ``text[start:end]``.

    Walks the value and the source together: folding turns a line break plus indentation into one
    space (or keeps a newline in literal blocks), so whitespace runs in the source match one
    whitespace character of the value. Gives up (``None``) on escapes it cannot follow.
    """
    start, end, style = span
    i = start
    if style in ("|", ">"):
        nl = text.find("\n", start, end)
        if nl < 0:
            return None
        i = nl + 1
    elif style in ("'", '"'):
        i = start + 1
    while i < end and text[i] in " \t\r\n":
        i += 1
    k = 0
    index = max(0, min(index, len(value)))
    while k < index and i < end:
        v, c = value[k], text[i]
        if v == c:
            i += 1
            k += 1
        elif v in " \n" and c in " \t\r\n":
            while i < end and text[i] in " \t\r\n":
                i += 1
            k += 1
            while k < index and value[k] in " \n" and (i >= end or text[i] not in " \t\r\n"):
                k += 1
        elif v in " \n":
            k += 1
        else:
            return None
    if i > len(text):
        return None
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col
