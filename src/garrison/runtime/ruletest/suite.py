"""Rule-test suites: the YAML format ``garrison rules test`` reads, validated and normalised.

A suite is data (``suite.schema.json`` next to the rules engine is its JSON Schema, and docs/runtime.md
documents it): each case runs a command on the host or in a container and names the alerts that
must follow (``expect``: rule, tags, lowest priority) or that no alert of the case may reach a
priority (``expect_none``). The schema catches shape errors; this module adds what a schema
cannot (priority words, a container case without an image) and turns every problem into one
:class:`~garrison.core.errors.ConfigError` line naming the file and the case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from garrison.core.errors import ConfigError
from garrison.core.yamlfile import read_yaml_file
from garrison.model.runtime import Priority

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "rules" / "suite.schema.json"
DEFAULT_WITHIN = 1.0
DEFAULT_TIMEOUT = 60.0


@cache
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return data


@dataclass(frozen=True, slots=True)
class Expectation:
    """An alert that must be seen: every given criterion must hold for one alert of the case."""

    rule: str | None = None
    tags: tuple[str, ...] = ()
    priority: Priority | None = None

    def matches(self, rule: str, tags: list[str], priority: Priority) -> bool:
        if self.rule is not None and rule != self.rule:
            return False
        if not set(self.tags) <= set(tags):
            return False
        return self.priority is None or priority.at_least(self.priority)

    def describe(self) -> str:
        parts = [repr(self.rule)] if self.rule else []
        if self.tags:
            parts.append("tags " + ",".join(self.tags))
        if self.priority is not None:
            parts.append(f">= {self.priority.label()}")
        return " ".join(parts) or "any alert"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    where: str  # host | container
    command: tuple[str, ...]  # argv
    image: str = ""  # resolved image reference (container cases)
    privileged: bool = False
    setup: tuple[str, ...] = ()
    cleanup: tuple[str, ...] = ()
    expect: tuple[Expectation, ...] = ()
    expect_none: Priority | None = None  # no alert at or above this priority
    within: float = DEFAULT_WITHIN
    timeout: float = DEFAULT_TIMEOUT
    allowed_exit_codes: tuple[int, ...] = (0,)


@dataclass(slots=True)
class Suite:
    name: str
    path: Path
    cases: list[Case] = field(default_factory=list)


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return ("sh", "-c", value)
    return tuple(str(v) for v in value)


def _priority(word: str, source: str, where: str) -> Priority:
    try:
        return Priority.parse(word)
    except KeyError:
        raise ConfigError(f"{where}: unknown priority {word!r}", input_name=source) from None


def _where(error: jsonschema.ValidationError, data: Any) -> str:
    path = list(error.absolute_path)
    label = "suite"
    if len(path) >= 2 and path[0] == "cases" and isinstance(path[1], int):
        cases = data.get("cases") if isinstance(data, dict) else None
        case = cases[path[1]] if isinstance(cases, list) and path[1] < len(cases) else None
        name = case.get("name") if isinstance(case, dict) else None
        label = f"case {name!r}" if isinstance(name, str) else f"cases[{path[1]}]"
        path = path[2:]
    return label + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def suite_from_data(data: Any, source: str, images: dict[str, str] | None = None) -> Suite:
    """Validate a parsed suite document; ``images`` (alias -> reference) override the suite's own."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        err = errors[0]
        best = jsonschema.exceptions.best_match([err]) or err
        raise ConfigError(f"{_where(best, data)}: {best.message}", input_name=source)
    assert isinstance(data, dict)
    aliases = {**data.get("images", {}), **(images or {})}
    defaults = data.get("defaults", {})
    suite = Suite(str(data.get("suite") or Path(source).stem), Path(source))
    seen: set[str] = set()
    for raw in data["cases"]:
        name = raw["name"]
        label = f"case {name!r}"
        if name in seen:
            raise ConfigError(f"{label}: duplicate case name", input_name=source)
        seen.add(name)
        run = raw["run"]
        where = run.get("where", defaults.get("where", "host"))
        image = run.get("image", defaults.get("image", ""))
        if where == "container" and not image:
            raise ConfigError(f"{label}: a container case needs run.image", input_name=source)
        if where == "host" and "image" in run:
            raise ConfigError(f"{label}: run.image is only for where: container", input_name=source)
        expect_raw = raw.get("expect", [])
        expect_list = expect_raw if isinstance(expect_raw, list) else [expect_raw]
        expect = tuple(
            Expectation(
                e.get("rule"),
                tuple(e.get("tags", ())),
                _priority(e["priority_at_least"], source, f"{label}.expect") if "priority_at_least" in e else None,
            )
            for e in expect_list
        )
        none_raw = raw.get("expect_none")
        expect_none = None
        if none_raw is True:
            expect_none = Priority.WARNING
        elif isinstance(none_raw, dict):
            expect_none = _priority(none_raw["priority"], source, f"{label}.expect_none")
        suite.cases.append(
            Case(
                name=name,
                where=where,
                command=_command(run["argv"] if "argv" in run else run["script"]),
                image=aliases.get(image, image),
                privileged=bool(run.get("privileged", False)),
                setup=_command(run["setup"]) if "setup" in run else (),
                cleanup=_command(run["cleanup"]) if "cleanup" in run else (),
                expect=expect,
                expect_none=expect_none,
                within=float(raw.get("within_seconds", defaults.get("within_seconds", DEFAULT_WITHIN))),
                timeout=float(raw.get("timeout_seconds", defaults.get("timeout_seconds", DEFAULT_TIMEOUT))),
                allowed_exit_codes=tuple(raw.get("allowed_exit_codes", (0,))),
            )
        )
    return suite


def load_suite(path: Path, images: dict[str, str] | None = None) -> Suite:
    """Read and validate one suite file."""
    return suite_from_data(read_yaml_file(path), str(path), images)
