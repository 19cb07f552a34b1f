"""``garrison rules check|list``: validate and inspect Falco-format rules files.

``check`` loads the files in order exactly as the sensor would and prints every error and warning
as ``file:line:col: rule 'NAME': message [CODE]``; exit 0 when the files load, 1 when they do not.
``list`` shows the rules a set of files yields (default: our pack) with priority, MITRE tags, the
event types each rule is indexed under and whether it is active.

``test`` runs declarative rule-test suites against the live sensor (format: docs/runtime.md and
``runtime/rules/suite.schema.json``): exit 0 when every case passes, 1 when one fails, 2 on an
error (bad suite, sensor that cannot start). Its default rules are Falco's stable rules plus our
pack, as the sensor would run them on a node.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from garrison.core.errors import ConfigError

app = typer.Typer(help="Validate and inspect runtime rules (Falco format).", no_args_is_help=True)

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Rules files, loaded in order (default: Garrison's rule pack).", show_default=False),
]


def resolve_paths(paths: list[Path] | None) -> list[Path]:
    """The files to load: the given ones in order, or our rule pack; a directory expands to its *.yaml."""
    from garrison.runtime.rules import default_pack

    if not paths:
        return default_pack()
    out: list[Path] = []
    for p in paths:
        out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p])
    return out


def _line(m: Any) -> str:
    if not m.warning:
        return str(m)
    where = f"{m.file}:{m.line}:{m.col}: " if m.file else ""
    what = f"{m.item_type} '{m.item_name}': " if m.item_type else ""
    return f"{where}{what}warning: {' '.join(m.message.split())} [{m.code}]"


@app.command("check")
def check(
    paths: Annotated[list[Path], typer.Argument(help="Rules files to validate, loaded in order.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only, not warnings.")] = False,
) -> None:
    """Validate rules files: exit 0 if they load, 1 if not (every problem is listed)."""
    from garrison.runtime.rules import load_result

    if fmt not in ("text", "json"):
        raise ConfigError(f"unknown format {fmt!r}; use text or json")
    ruleset, res = load_result(resolve_paths(paths))
    if fmt == "json":
        doc = {
            "successful": res.ok,
            "errors": [_msg_dict(m) for m in res.errors],
            "warnings": [] if quiet else [_msg_dict(m) for m in res.warnings],
            "rules": len(ruleset.all_rules),
            "active": len(ruleset.rules),
            "unsupported": ruleset.unsupported,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for m in res.errors:
            sys.stdout.write(_line(m) + "\n")
        if not quiet:
            for m in res.warnings:
                sys.stdout.write(_line(m) + "\n")
        state = "ok" if res.ok else f"invalid ({len(res.errors)} error(s))"
        sys.stdout.write(
            f"{len(paths)} file(s): {len(ruleset.all_rules)} rules, {len(ruleset.rules)} active, "
            f"{len(ruleset.unsupported)} unsupported, {len(res.warnings)} warning(s): {state}\n"
        )
    raise typer.Exit(0 if res.ok else 1)


def _msg_dict(m: Any) -> dict[str, Any]:
    return {
        "code": m.code,
        "message": m.message,
        "file": m.file,
        "line": m.line,
        "col": m.col,
        "item_type": m.item_type,
        "item_name": m.item_name,
    }


@app.command("list")
def list_(
    paths: PathsArg = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """List the rules the files define, with priority, tags, event types and status."""
    from garrison.runtime.rules import load_rules

    if fmt not in ("table", "json"):
        raise ConfigError(f"unknown format {fmt!r}; use table or json")
    ruleset = load_rules(resolve_paths(paths))
    rows: list[dict[str, Any]] = []
    for r in ruleset.all_rules:
        status = "active" if r.loaded else "unsupported" if r.unsupported else "disabled"
        rows.append(
            {
                "rule": r.name,
                "priority": r.priority.label(),
                "tags": r.tags,
                "mitre": [t for t in r.tags if t[:1] == "T" and t[1:2].isdigit()],
                "evttypes": sorted(r.evttypes) if r.evttypes is not None else None,
                "status": status,
                "unsupported": r.unsupported,
                "file": r.file,
                "line": r.line,
            }
        )
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("rule", "priority", "mitre", "event types", "status")
    for row in rows:
        types = ",".join(row["evttypes"]) if row["evttypes"] is not None else "(any)"
        table.add_row(row["rule"], row["priority"], " ".join(row["mitre"]), types, row["status"])
    Console(highlight=False, width=200).print(table)


@app.command("test")
def test(
    suites: Annotated[list[Path], typer.Argument(help="Suite files (YAML), run in order.")],
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Rules file or directory (repeat; default: Falco stable + Garrison pack)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or junit.")] = "table",
    sensors: Annotated[str, typer.Option("--sensors", help="auto, or a comma list of sensors.")] = "auto",
    image: Annotated[
        list[str] | None, typer.Option("--image", help="Image alias override KEY=REFERENCE (repeat).")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--case", "-k", help="Run only cases whose name contains this.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here instead of stdout.")
    ] = None,
) -> None:
    """Run rule-test suites against the live sensor: exit 0 all pass, 1 a case failed, 2 error."""
    from garrison.runtime.rules import falco_and_pack, load_rules
    from garrison.runtime.ruletest import RuleTestRunner, load_suite
    from garrison.runtime.ruletest.report import RENDERERS
    from garrison.runtime.sensors import build_sensors, parse_selection

    if fmt not in RENDERERS:
        raise ConfigError(f"unknown format {fmt!r}; use table, json or junit", input_name="--format")
    images: dict[str, str] = {}
    for item in image or []:
        key, sep, ref = item.partition("=")
        if not sep or not key or not ref:
            raise ConfigError(f"expected KEY=REFERENCE, got {item!r}", input_name="--image")
        images[key] = ref
    loaded = [load_suite(p, images) for p in suites]
    for suite in loaded:
        if only:
            suite.cases = [c for c in suite.cases if any(k in c.name for k in only)]
    if not any(s.cases for s in loaded):
        raise ConfigError("no case to run", input_name=", ".join(map(str, suites)))
    paths = resolve_paths(rules) if rules else falco_and_pack()
    ruleset = load_rules(paths)
    # another sensor on the machine may hold the audit daemon role for a while: wait for it
    # auto includes audit here: complete exec records (argv) even for test commands that exit at once
    chosen, skipped = build_sensors(
        parse_selection(sensors), event_types=ruleset.event_types(), lock_timeout=300.0, with_audit=True
    )
    if not chosen:
        raise ConfigError("no sensor can run here: " + "; ".join(skipped.values()), input_name="--sensors")
    results = RuleTestRunner(ruleset, chosen).run(loaded)
    text = RENDERERS[fmt](results)
    if output is not None:
        try:
            output.write_text(text)
        except OSError as e:
            raise ConfigError(f"cannot write: {e.strerror}", input_name=str(output)) from e
    else:
        sys.stdout.write(text)
    raise typer.Exit(0 if all(r.passed for r in results) else 1)
