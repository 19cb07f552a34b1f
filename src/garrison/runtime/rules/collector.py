"""Stage 2 (collector): items to named lists, macros and rules, applying append/override/replace.

Follows Falco's ``rule_loader_collector.cpp``: a later definition of a name replaces the earlier
one in place (keeping its position); ``append: true`` extends a list's items, adds a macro's or
rule's condition (joined by a space) and merges exceptions by name; ``override:`` maps each key
to ``append`` or ``replace``; a rule item with only ``enabled`` toggles an existing rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from garrison.model.runtime import Priority
from garrison.runtime.rules.errors import (
    LOAD_APPEND_NO_VALUES,
    LOAD_ERR_VALIDATE,
    LOAD_EXCEPTION_NAME_NOT_UNIQUE,
    LOAD_UNKNOWN_SOURCE,
    LoadResult,
)
from garrison.runtime.rules.reader import Item

ENGINE_VERSION = (0, 57, 0)
BUILTIN_PLUGINS = frozenset({"container"})  # container.* fields are native here
SOURCES = frozenset({"syscall"})

_APPENDABLE = {"condition", "output", "desc", "tags", "exceptions"}
_REPLACEABLE = _APPENDABLE | {
    "priority",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
}


@dataclass(slots=True)
class ListInfo:
    name: str
    items: list[str]
    item: Item


@dataclass(slots=True)
class MacroInfo:
    name: str
    cond: str
    item: Item
    used: bool = False


@dataclass(slots=True)
class ExceptionInfo:
    name: str
    fields: str | list[str] | None
    comps: str | list[str] | None
    values: list[Any]
    item: Item


@dataclass(slots=True)
class RuleInfo:
    name: str
    cond: str
    output: str
    desc: str
    priority: Priority
    tags: list[str]
    enabled: bool
    exceptions: list[ExceptionInfo]
    source: str
    warn_evttypes: bool
    skip_if_unknown_filter: bool
    item: Item
    unknown_source: bool = False


@dataclass(slots=True)
class Collection:
    lists: dict[str, ListInfo] = field(default_factory=dict)
    macros: dict[str, MacroInfo] = field(default_factory=dict)
    rules: dict[str, RuleInfo] = field(default_factory=dict)
    required_engine_version: tuple[int, int, int] | None = None
    required_plugins: list[dict[str, Any]] = field(default_factory=list)


def _parse_version(v: Any) -> tuple[int, int, int] | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return (0, v, 0)  # Falco's legacy integer engine versions map onto the minor number
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\.(\d+)\s*", str(v))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _items(values: list[Any]) -> list[str]:
    return [str(v) for v in values]


def _exceptions(item: Item) -> list[ExceptionInfo]:
    return [
        ExceptionInfo(
            name=str(ex["name"]),
            fields=ex.get("fields"),
            comps=ex.get("comps"),
            values=list(ex.get("values") or []),
            item=item,
        )
        for ex in item.data.get("exceptions") or []
    ]


class Collector:
    def __init__(self, res: LoadResult) -> None:
        self.res = res
        self.out = Collection()

    def collect(self, items: list[Item]) -> Collection:
        for item in items:
            try:
                getattr(self, f"_{item.kind}")(item)
            except _Invalid as e:
                self.res.error(LOAD_ERR_VALIDATE, e.message, **item.where(e.key))
        return self.out

    # --- versions ---
    def _required_engine_version(self, item: Item) -> None:
        raw = item.data["required_engine_version"]
        v = _parse_version(raw)
        if v is None:
            raise _Invalid(f"invalid required_engine_version '{raw}'", "required_engine_version")
        ours = ENGINE_VERSION
        if v[0] != ours[0] or v > ours:
            have = ".".join(map(str, ours))
            raise _Invalid(
                f"Rules require engine version {raw}, but engine version is {have}", "required_engine_version"
            )
        if self.out.required_engine_version is None or v > self.out.required_engine_version:
            self.out.required_engine_version = v

    def _required_plugin_versions(self, item: Item) -> None:
        for req in item.data["required_plugin_versions"]:
            names = {req["name"], *(a.get("name") for a in req.get("alternatives") or [])}
            if _parse_version(req["version"]) is None:
                raise _Invalid(
                    f"Invalid required version '{req['version']}' for plugin '{req['name']}'",
                    "required_plugin_versions",
                )
            if not names & BUILTIN_PLUGINS:
                self.res.warn(
                    LOAD_UNKNOWN_SOURCE,
                    f"plugin '{req['name']}' is required but not available; rules "
                    "that need its fields will be reported unsupported",
                    **item.where("required_plugin_versions"),
                )
            self.out.required_plugins.append(dict(req))

    # --- lists ---
    def _list(self, item: Item) -> None:
        d = item.data
        name = item.name
        override = d.get("override")
        if override is not None and d.get("append"):
            raise _Invalid("keys 'override' and 'append: true' cannot be used together", "override")
        mode = "append" if d.get("append") else (override or {}).get("items", "replace") if override else "define"
        if "items" not in d:
            raise _Invalid("Item has no mapping for key 'items'", None)
        if override is not None and set(override) != {"items"}:
            raise _Invalid("list override may only name 'items'", "override")
        items = _items(d["items"])
        prev = self.out.lists.get(name)
        if mode == "define":
            self.out.lists[name] = ListInfo(name, items, item)
            return
        if prev is None:
            what = "append" if mode == "append" else "override"
            raise _Invalid(f"List has '{what}' key but no list by that name already exists", None)
        if mode == "append":
            if not items:
                self.res.warn(LOAD_APPEND_NO_VALUES, "Overriding/appending list with no values", **item.where("items"))
            prev.items.extend(items)
        else:
            prev.items = items

    # --- macros ---
    def _macro(self, item: Item) -> None:
        d = item.data
        name = item.name
        override = d.get("override")
        if override is not None and d.get("append"):
            raise _Invalid("keys 'override' and 'append: true' cannot be used together", "override")
        if "condition" not in d:
            raise _Invalid("Item has no mapping for key 'condition'", None)
        cond = str(d["condition"])
        mode = "append" if d.get("append") else override.get("condition", "replace") if override else "define"
        prev = self.out.macros.get(name)
        if mode == "define":
            self.out.macros[name] = MacroInfo(name, cond, item)
            return
        if prev is None:
            what = "append" if mode == "append" else "override"
            raise _Invalid(f"Macro has '{what}' key but no macro by that name already exists", None)
        if mode == "append":
            prev.cond = prev.cond + " " + cond
        else:
            prev.cond = cond
            prev.item = item

    # --- rules ---
    def _rule(self, item: Item) -> None:
        d = item.data
        name = item.name
        override = d.get("override")
        if override is not None and d.get("append"):
            raise _Invalid("keys 'override' and 'append: true' cannot be used together", "override")
        if d.get("append"):
            self._rule_append(item, {k for k in d if k in _APPENDABLE})
        elif override is not None:
            self._rule_override(item, override)
        elif "condition" not in d and "enabled" in d:
            prev = self.out.rules.get(name)
            if prev is None:
                raise _Invalid("Rule has 'enabled' key but no rule by that name already exists", "enabled")
            prev.enabled = bool(d["enabled"])
        else:
            self._rule_define(item)

    def _rule_define(self, item: Item) -> None:
        d = item.data
        for key in ("condition", "output", "priority"):
            if key not in d:
                raise _Invalid(f"Item has no mapping for key '{key}'", None)
        source = str(d.get("source", "syscall"))
        prev = self.out.rules.get(item.name)
        if prev is not None and prev.source != source:
            raise _Invalid("Rule has been re-defined with a different source", "source")
        excs = _exceptions(item)
        self._check_exceptions(item, excs)
        info = RuleInfo(
            name=item.name,
            cond=str(d["condition"]),
            output=" ".join(str(d["output"]).split()),
            desc=str(d.get("desc", "")),
            priority=Priority.parse(str(d["priority"])),
            tags=list(dict.fromkeys(str(t) for t in d.get("tags") or [])),
            enabled=bool(d.get("enabled", True)),
            exceptions=excs,
            source=source,
            warn_evttypes=bool(d.get("warn_evttypes", True)),
            skip_if_unknown_filter=bool(d.get("skip-if-unknown-filter", False)),
            item=item,
        )
        if source not in SOURCES:
            info.unknown_source = True
            self.res.warn(LOAD_UNKNOWN_SOURCE, f"Unknown source {source}, skipping", **item.where("source"))
        self.out.rules[item.name] = info  # replaces in place: dicts keep the first insertion position

    def _check_exceptions(self, item: Item, excs: list[ExceptionInfo]) -> None:
        seen: set[str] = set()
        for ex in excs:
            if ex.name in seen:
                self.res.warn(
                    LOAD_EXCEPTION_NAME_NOT_UNIQUE,
                    f"Multiple definitions of exception '{ex.name}' in the same rule",
                    **item.where("exceptions"),
                )
            seen.add(ex.name)
            if ex.fields is None:
                raise _Invalid(
                    f"Rule exception '{ex.name}' must have fields property with a list of fields", "exceptions"
                )
            if isinstance(ex.fields, list):
                if isinstance(ex.comps, str):
                    raise _Invalid(
                        f"Rule exception '{ex.name}': comps must be a list when fields is a list", "exceptions"
                    )
                if ex.comps is not None and len(ex.comps) != len(ex.fields):
                    raise _Invalid(
                        f"Rule exception '{ex.name}': fields and comps lists must have equal length", "exceptions"
                    )
                for v in ex.values:
                    if not isinstance(v, list) or len(v) != len(ex.fields):
                        raise _Invalid(
                            f"Rule exception '{ex.name}': Fields and values lists must have equal length", "exceptions"
                        )
            else:
                if isinstance(ex.comps, list):
                    raise _Invalid(
                        f"Rule exception '{ex.name}': comps must be a string when fields is a string", "exceptions"
                    )
                for v in ex.values:
                    if isinstance(v, list):
                        raise _Invalid(
                            f"Rule exception '{ex.name}': Expected values array to contain a list of strings",
                            "exceptions",
                        )

    def _prev_rule(self, item: Item, what: str) -> RuleInfo:
        prev = self.out.rules.get(item.name)
        if prev is None:
            raise _Invalid(f"Rule has '{what}' key but no rule by that name already exists", None)
        return prev

    def _rule_append(self, item: Item, keys: set[str]) -> None:
        prev = self._prev_rule(item, "append")
        d = item.data
        if not keys:
            raise _Invalid("Appended rule must have exceptions or condition property", None)
        if d.get("condition"):
            prev.cond = prev.cond + " " + str(d["condition"])
        if d.get("output"):
            prev.output = prev.output + " " + " ".join(str(d["output"]).split())
        if d.get("desc"):
            prev.desc = prev.desc + " " + str(d["desc"])
        if "tags" in d:
            prev.tags = list(dict.fromkeys([*prev.tags, *(str(t) for t in d["tags"] or [])]))
        if "exceptions" in d:
            self._append_exceptions(prev, item)

    def _append_exceptions(self, prev: RuleInfo, item: Item) -> None:
        for ex in _exceptions(item):
            old = next((x for x in prev.exceptions if x.name == ex.name), None)
            if old is None:
                if not ex.values:
                    raise _Invalid(
                        f"Rule exception '{ex.name}' must have values property with a list of values", "exceptions"
                    )
                self._check_exceptions(item, [ex])
                prev.exceptions.append(ex)
            else:
                if ex.fields is not None:
                    raise _Invalid("Can not append exception fields to existing exception, only values", "exceptions")
                if ex.comps is not None:
                    raise _Invalid("Can not append exception comps to existing exception, only values", "exceptions")
                old.values.extend(ex.values)

    def _rule_override(self, item: Item, override: dict[str, str]) -> None:
        d = item.data
        present = {k for k in d if k not in ("rule", "override")}
        for key in override:
            if key not in present:
                raise _Invalid(f"An override is defined for '{key}' but the item has no such key", "override")
        for key in present:
            if key not in override:
                raise _Invalid(f"Key '{key}' must be specified in override", key)
            if override[key] == "append" and key not in _APPENDABLE:
                raise _Invalid(f"Key '{key}' cannot be appended to, use 'replace' instead", "override")
            if override[key] == "replace" and key not in _REPLACEABLE:
                raise _Invalid(f"Key '{key}' cannot be replaced", "override")
        appends = {k for k, v in override.items() if v == "append"}
        if appends:
            sub = Item(item.kind, item.name, {k: d[k] for k in appends}, item.file, item.line, item.col, item.key_pos)
            self._rule_append(sub, appends)
        replaces = {k for k, v in override.items() if v == "replace"}
        if replaces:
            prev = self._prev_rule(item, "override")
            for key in replaces:
                v = d[key]
                if key == "condition":
                    prev.cond = str(v)
                elif key == "output":
                    prev.output = " ".join(str(v).split())
                elif key == "desc":
                    prev.desc = str(v)
                elif key == "tags":
                    prev.tags = list(dict.fromkeys(str(t) for t in v or []))
                elif key == "exceptions":
                    excs = _exceptions(item)
                    self._check_exceptions(item, excs)
                    prev.exceptions = excs
                elif key == "priority":
                    prev.priority = Priority.parse(str(v))
                elif key == "enabled":
                    prev.enabled = bool(v)
                elif key == "warn_evttypes":
                    prev.warn_evttypes = bool(v)
                elif key == "skip-if-unknown-filter":
                    prev.skip_if_unknown_filter = bool(v)


class _Invalid(Exception):
    def __init__(self, message: str, key: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


__all__ = ["LOAD_ERR_VALIDATE", "Collection", "Collector", "ExceptionInfo", "ListInfo", "MacroInfo", "RuleInfo"]
