"""kube-bench style benchmark definitions: ``config.yaml`` and the per-target control files.

A control file (``cis-1.12/node.yaml``) is ``controls`` → ``groups`` → ``checks``; a check has
an ``audit`` shell command (plus optional ``audit_config`` printing a config file and
``audit_env`` printing the process environment), ``tests`` (``bin_op`` and ``test_items`` with
``flag`` | ``path`` | ``env``, ``set`` and ``compare {op, value}``), ``remediation``, ``scored``
and ``type`` (``manual`` / ``skip``).

The files are read with PyYAML's ``BaseLoader`` so every scalar stays the literal text, as Go's
``yaml.v2`` gives it to kube-bench's string fields (``value: 0600`` is ``"0600"``, an id ``4.10``
stays ``"4.10"``). Malformed definitions raise :class:`DefinitionError` naming the file and the
check id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import InputError

#: compare operators the engine implements
COMPARE_OPS = frozenset(
    {"eq", "noteq", "gt", "gte", "lt", "lte", "has", "nothave", "regex", "valid_elements", "bitmask"}
)
TARGETS = ("master", "node", "controlplane", "etcd", "policies", "managedservices")
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_MAX_DEFINITION_BYTES = 8 * 1024 * 1024


class DefinitionError(InputError):
    """A benchmark definition file is malformed."""


@dataclass(frozen=True, slots=True)
class Compare:
    op: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True)
class TestItem:
    flag: str = ""
    path: str = ""
    env: str = ""
    set: bool = True
    compare: Compare = Compare()


@dataclass(frozen=True, slots=True)
class Tests:
    test_items: tuple[TestItem, ...] = ()
    bin_op: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    text: str = ""
    audit: str = ""
    audit_config: str = ""
    audit_env: str = ""
    type: str = ""
    tests: Tests | None = None
    remediation: str = ""
    scored: bool = False
    use_multiple_values: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    text: str = ""
    type: str = ""
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True, slots=True)
class Controls:
    id: str
    text: str = ""
    type: str = ""
    version: str = ""
    groups: tuple[Group, ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class Component:
    """One component of a target in ``config.yaml`` (``kubelet`` under ``node`` ...)."""

    name: str
    optional: bool = False
    bins: tuple[str, ...] = ()
    #: list-valued path settings (``confs``, ``svc``, ``kubeconfig``, ``cafile``, ``datadirs``)
    paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: scalar settings (``defaultconf``, ``defaultsvc``, ``client_cert_file`` ...)
    defaults: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    targets: dict[str, tuple[Component, ...]]
    version_mapping: dict[str, str]
    target_mapping: dict[str, tuple[str, ...]]


# ----------------------------------------------------------------------------------------------


def _load_yaml(text: str, name: str) -> Any:
    try:
        return yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader builds only str/list/dict
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise DefinitionError(f"invalid YAML{where}: {problem}", input_name=name) from None
    except (RecursionError, ValueError) as err:
        raise DefinitionError(f"invalid YAML: {type(err).__name__}", input_name=name) from None


def _str(value: Any, what: str, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DefinitionError(f"{what} must be a scalar", input_name=name)
    return value


def _bool(value: Any, what: str, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise DefinitionError(f"{what} must be true or false, not {value!r}", input_name=name)


def _map(value: Any, what: str, name: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise DefinitionError(f"{what} must be a mapping", input_name=name)
    return value


def _list(value: Any, what: str, name: str) -> list[Any]:
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise DefinitionError(f"{what} must be a list", input_name=name)
    return value


def _test_item(raw: Any, where: str, name: str) -> TestItem:
    item = _map(raw, f"{where}: test item", name)
    flag = _str(item.get("flag"), f"{where}: flag", name)
    path = _str(item.get("path"), f"{where}: path", name)
    env = _str(item.get("env"), f"{where}: env", name)
    if not (flag or path or env):
        raise DefinitionError(f"{where}: test item needs a flag, path or env", input_name=name)
    comp = _map(item.get("compare"), f"{where}: compare", name)
    op = _str(comp.get("op"), f"{where}: compare op", name)
    value = _str(comp.get("value"), f"{where}: compare value", name)
    if comp and op not in COMPARE_OPS:
        raise DefinitionError(f"{where}: unknown compare op {op!r}", input_name=name)
    if op == "regex":
        try:
            re.compile(value)
        except re.error as err:
            raise DefinitionError(f"{where}: invalid regex {value!r}: {err}", input_name=name) from None
    if flag:
        try:
            re.compile(flag)
        except re.error:
            raise DefinitionError(f"{where}: flag {flag!r} is not a valid pattern", input_name=name) from None
    return TestItem(
        flag=flag,
        path=path,
        env=env,
        set=_bool(item.get("set"), f"{where}: set", name, True),
        compare=Compare(op, value),
    )


def _check(raw: Any, group_id: str, index: int, name: str) -> Check:
    where = f"group {group_id} check #{index}"
    data = _map(raw, where, name)
    check_id = _str(data.get("id"), f"{where}: id", name)
    if not check_id:
        raise DefinitionError(f"{where}: check has no id", input_name=name)
    where = f"check {check_id}"
    tests: Tests | None = None
    if data.get("tests") not in (None, ""):
        traw = _map(data.get("tests"), f"{where}: tests", name)
        bin_op = _str(traw.get("bin_op"), f"{where}: bin_op", name)
        if bin_op not in ("", "and", "or"):
            raise DefinitionError(f"{where}: unknown bin_op {bin_op!r} (use and, or)", input_name=name)
        items = tuple(_test_item(t, where, name) for t in _list(traw.get("test_items"), f"{where}: test_items", name))
        tests = Tests(items, bin_op)
    return Check(
        id=check_id,
        text=_str(data.get("text"), f"{where}: text", name),
        audit=_str(data.get("audit"), f"{where}: audit", name),
        audit_config=_str(data.get("audit_config"), f"{where}: audit_config", name),
        audit_env=_str(data.get("audit_env"), f"{where}: audit_env", name),
        type=_str(data.get("type"), f"{where}: type", name),
        tests=tests,
        remediation=_str(data.get("remediation"), f"{where}: remediation", name),
        scored=_bool(data.get("scored"), f"{where}: scored", name, False),
        use_multiple_values=_bool(data.get("use_multiple_values"), f"{where}: use_multiple_values", name, False),
    )


def parse_controls(text: str, name: str) -> Controls:
    """Parse one control file. ``name`` is the file name used in errors."""
    data = _map(_load_yaml(text, name), "document", name)
    if "groups" not in data:
        raise DefinitionError("not a control file (no groups)", input_name=name)
    groups = []
    for gi, graw in enumerate(_list(data.get("groups"), "groups", name)):
        g = _map(graw, f"group #{gi}", name)
        gid = _str(g.get("id"), f"group #{gi}: id", name) or str(gi)
        gtype = _str(g.get("type"), f"group {gid}: type", name)
        checks = tuple(
            _check(c, gid, ci, name) for ci, c in enumerate(_list(g.get("checks"), f"group {gid}: checks", name))
        )
        groups.append(Group(gid, _str(g.get("text"), f"group {gid}: text", name), gtype, checks))
    return Controls(
        id=_str(data.get("id"), "id", name),
        text=_str(data.get("text"), "text", name),
        type=_str(data.get("type"), "type", name),
        version=_str(data.get("version"), "version", name),
        groups=tuple(groups),
        source=name,
    )


def parse_config(text: str, name: str) -> Config:
    """Parse ``config.yaml``: components per target, version and target mappings."""
    data = _map(_load_yaml(text, name), "document", name)
    targets: dict[str, tuple[Component, ...]] = {}
    for target in TARGETS:
        if target not in data:
            continue
        section = _map(data[target], target, name)
        comps = []
        for comp_name in _list(section.get("components"), f"{target}: components", name):
            comp_name = _str(comp_name, f"{target}: component", name)
            raw = _map(section.get(comp_name), f"{target}.{comp_name}", name)
            paths: dict[str, tuple[str, ...]] = {}
            defaults: dict[str, str] = {}
            for key, value in raw.items():
                if key in ("bins", "optional"):
                    continue
                if isinstance(value, list):
                    paths[key] = tuple(_str(v, f"{target}.{comp_name}.{key}", name) for v in value)
                else:
                    defaults[key] = _str(value, f"{target}.{comp_name}.{key}", name)
            comps.append(
                Component(
                    name=comp_name,
                    optional=_bool(raw.get("optional"), f"{target}.{comp_name}.optional", name, False),
                    bins=tuple(
                        _str(b, f"{target}.{comp_name}.bins", name)
                        for b in _list(raw.get("bins"), f"{target}.{comp_name}.bins", name)
                    ),
                    paths=paths,
                    defaults=defaults,
                )
            )
        targets[target] = tuple(comps)
    vmap = {
        _str(k, "version_mapping", name): _str(v, "version_mapping", name)
        for k, v in _map(data.get("version_mapping"), "version_mapping", name).items()
    }
    tmap = {
        _str(k, "target_mapping", name): tuple(
            _str(t, "target_mapping", name) for t in _list(v, "target_mapping", name)
        )
        for k, v in _map(data.get("target_mapping"), "target_mapping", name).items()
    }
    return Config(targets, vmap, tmap)


# ----------------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The packaged kube-bench definitions."""
    return Path(str(resources.files("garrison.posture.cis") / "data"))


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_DEFINITION_BYTES + 1)
    except FileNotFoundError:
        raise DefinitionError("file not found", input_name=str(path)) from None
    except OSError as err:
        raise DefinitionError(f"cannot read: {err.strerror}", input_name=str(path)) from None
    if len(raw) > _MAX_DEFINITION_BYTES:
        raise DefinitionError("definition file too large", input_name=str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DefinitionError("not UTF-8 text", input_name=str(path)) from None


def load_config(base: Path | None = None) -> Config:
    path = (base or data_dir()) / "config.yaml"
    return parse_config(_read(path), str(path))


def available_benchmarks(base: Path | None = None) -> list[str]:
    root = base or data_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "config.yaml").exists())


def load_benchmark(benchmark: str, base: Path | None = None) -> dict[str, Controls]:
    """Every control file of a benchmark, by target (``node`` → ``cis-1.12/node.yaml``)."""
    root = base or data_dir()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", benchmark) or not (root / benchmark).is_dir():
        known = ", ".join(available_benchmarks(root)) or "none"
        raise DefinitionError(f"unknown benchmark {benchmark!r} (available: {known})")
    out: dict[str, Controls] = {}
    for path in sorted((root / benchmark).glob("*.yaml")):
        if path.stem == "config":
            continue
        out[path.stem] = parse_controls(_read(path), str(path))
    return out
