"""The loaded rule set: per-event-type index and evaluation.

Like Falco's ``evttype_index_ruleset``, every rule is filed under the ``evt.type`` values its
condition can match; an event visits only the rules of its type plus the few whose condition does
not pin a type. Lookups are one dict access per event; rules keep their load order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.model.runtime import Alert, Event, Priority
from garrison.runtime.rules.collector import Collector, RuleInfo
from garrison.runtime.rules.compiler import CompileError, Compiler
from garrison.runtime.rules.errors import LOAD_ERR_COMPILE_OUTPUT, LoadMessage, LoadResult, RuleLoadError
from garrison.runtime.rules.output import Formatter
from garrison.runtime.rules.reader import Item, read_file, read_text

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Rule:
    name: str
    desc: str
    priority: Priority
    tags: list[str]
    source: str
    condition: str
    output: str
    enabled: bool
    evttypes: frozenset[str] | None
    file: str
    line: int
    fn: Callable[[Event], bool] | None = None
    formatter: Formatter | None = None
    unsupported: list[str] = field(default_factory=list)
    code: str = ""
    node: Any = None  # the resolved condition tree

    @property
    def loaded(self) -> bool:
        """Compiled and active: enabled, supported, and selected by priority and tags."""
        return self.fn is not None


class RuleSet:
    """Compiled rules indexed by event type. Build with :func:`load_rules`."""

    def __init__(self, rules: list[Rule], result: LoadResult, compiler: Compiler | None = None) -> None:
        self.all_rules = rules
        self.rules = [r for r in rules if r.fn is not None]
        self.result = result
        self.warnings: list[str] = [str(w) for w in result.warnings]
        self.unsupported: dict[str, list[str]] = {r.name: r.unsupported for r in rules if r.unsupported}
        self._any: list[Rule] = [r for r in self.rules if r.evttypes is None]
        by_type: dict[str, list[Rule]] = {}
        for r in self.rules:
            for t in r.evttypes or ():
                by_type.setdefault(t, [])
        for t, lst in by_type.items():
            lst.extend(r for r in self.rules if r.evttypes is None or t in r.evttypes)
        self._lists = by_type
        # one generated function per event type evaluates all of its rules, sharing field reads
        self._groups: dict[str, tuple[Callable[[Event], list[int]], list[Rule]]] = {}
        self._fallback_group: tuple[Callable[[Event], list[int]], list[Rule]] | None = None
        if compiler is not None:
            for t, lst in by_type.items():
                self._groups[t] = (compiler.compile_group([(i, r.node) for i, r in enumerate(lst)], t), lst)
            if self._any:
                fb = compiler.compile_group([(i, r.node) for i, r in enumerate(self._any)], "any")
                self._fallback_group = (fb, self._any)
        else:
            for t, lst in by_type.items():
                self._groups[t] = (_chain(lst), lst)
            if self._any:
                self._fallback_group = (_chain(self._any), self._any)

    def __len__(self) -> int:
        return len(self.rules)

    def event_types(self) -> set[str] | None:
        """Syscall names the loaded rules can match; ``None`` when some rule matches any type."""
        if self._any:
            return None
        return set(self._lists)

    def rules_for(self, evt_type: str) -> list[Rule]:
        """The rules an event of ``evt_type`` is evaluated against, in load order."""
        return list(self._lists.get(evt_type, self._any))

    def evaluate(self, event: Event) -> list[Alert]:
        """Every alert ``event`` raises, in rule load order."""
        group = self._groups.get(event.type, self._fallback_group)
        if group is None:
            return []
        fn, rules = group
        hits = fn(event)
        if not hits:
            return []
        return [self._alert(rules[i], event) for i in hits]

    def _alert(self, rule: Rule, event: Event) -> Alert:
        assert rule.formatter is not None
        text, values = rule.formatter.format(event)
        return Alert(
            time=event.time,
            rule=rule.name,
            priority=rule.priority,
            output=text,
            tags=list(rule.tags),
            source=rule.source,
            fields=values,
            event=event,
        )


def _chain(rules: list[Rule]) -> Callable[[Event], list[int]]:
    fns = [(i, r.fn) for i, r in enumerate(rules) if r.fn is not None]

    def run(e: Event) -> list[int]:
        out: list[int] = []
        for i, fn in fns:
            try:
                if fn(e):
                    out.append(i)
            except (AttributeError, TypeError, ValueError, IndexError, KeyError) as err:
                logger.debug("rule %r failed on event %s: %s", rules[i].name, e.type, err)
        return out

    return run


def _select(
    info: RuleInfo, min_priority: Priority, enable_tags: set[str] | None, disable_tags: set[str] | None
) -> bool:
    if not info.enabled:
        return False
    if not info.priority.at_least(min_priority):
        return False
    tags = set(info.tags)
    if disable_tags and tags & disable_tags:
        return False
    return not (enable_tags is not None and not tags & enable_tags)


def compile_items(
    items: list[Item],
    res: LoadResult,
    *,
    min_priority: Priority = Priority.DEBUG,
    enable_tags: Iterable[str] | None = None,
    disable_tags: Iterable[str] | None = None,
) -> RuleSet:
    col = Collector(res).collect(items)
    comp = Compiler(col, res)
    en = set(enable_tags) if enable_tags is not None else None
    dis = set(disable_tags) if disable_tags is not None else None
    rules: list[Rule] = []
    for info in col.rules.values():
        if info.unknown_source:
            continue
        rule = Rule(
            name=info.name,
            desc=info.desc,
            priority=info.priority,
            tags=info.tags,
            source=info.source,
            condition=info.cond,
            output=info.output,
            enabled=info.enabled,
            evttypes=None,
            file=info.item.file,
            line=info.item.line,
        )
        compiled, missing = comp.compile_rule(info)
        rule.unsupported = missing
        try:
            formatter = Formatter.compile(info.output)
        except CompileError as e:
            if info.skip_if_unknown_filter:
                res.warn("LOAD_UNKNOWN_FILTER", e.message, **info.item.where("output"))
            else:
                res.error(LOAD_ERR_COMPILE_OUTPUT, e.message, **info.item.where("output"))
            compiled = None
            formatter = None
        if compiled is not None:
            rule.evttypes = compiled.evttypes
            rule.code = compiled.source
            rule.node = compiled.node
            if _select(info, min_priority, en, dis):
                rule.fn = compiled.fn
                rule.formatter = formatter
        rules.append(rule)
    comp.report_unused()
    return RuleSet(rules, res, comp)


def load_result(
    paths: Sequence[Path | str],
    *,
    min_priority: Priority = Priority.DEBUG,
    enable_tags: Iterable[str] | None = None,
    disable_tags: Iterable[str] | None = None,
) -> tuple[RuleSet, LoadResult]:
    """Load rules files in order and return the rule set and every message, without raising."""
    res = LoadResult()
    items: list[Item] = []
    for p in paths:
        items.extend(read_file(Path(p), res))
    ruleset = compile_items(items, res, min_priority=min_priority, enable_tags=enable_tags, disable_tags=disable_tags)
    return ruleset, res


def load_rules(
    paths: Sequence[Path | str],
    min_priority: Priority = Priority.DEBUG,
    enable_tags: Iterable[str] | None = None,
    disable_tags: Iterable[str] | None = None,
) -> RuleSet:
    """Load Falco-format rules files in order; raises :class:`RuleLoadError` with every error found."""
    ruleset, res = load_result(paths, min_priority=min_priority, enable_tags=enable_tags, disable_tags=disable_tags)
    if res.errors:
        raise RuleLoadError(res.errors, res.warnings)
    return ruleset


def load_rules_text(text: str, name: str = "<rules>", **kw: Priority | Iterable[str] | None) -> RuleSet:
    """Load rules from a string (tests, the rule-test runner)."""
    res = LoadResult()
    items = read_text(text, name, res)
    ruleset = compile_items(items, res, **kw)  # type: ignore[arg-type]
    if res.errors:
        raise RuleLoadError(res.errors, res.warnings)
    return ruleset


__all__ = ["LoadMessage", "Rule", "RuleLoadError", "RuleSet", "load_result", "load_rules", "load_rules_text"]
