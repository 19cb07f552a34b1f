"""``garrison policy check|eval|matrix|export``: zero-trust network policy.

Thin layer over :mod:`garrison.network`: load policies (``--policies``, a file or a directory of
YAML) and endpoints (``--inventory``, plain Kubernetes YAML), then validate, evaluate one flow,
print the connectivity matrix or export. Exit codes: 0 fine; 1 ``check`` found errors; 2 bad input
(unreadable files, invalid policies for ``eval``/``matrix``, unknown endpoints, bad flags).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from garrison.cli._output import emit as _emit
from garrison.cli._output import use_color as _use_color
from garrison.core.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

app = typer.Typer(help="Zero-trust network policy: validate, evaluate, explain, export.", no_args_is_help=True)

FORMATS = ("table", "json")

PoliciesOpt = Annotated[Path, typer.Option("--policies", "-p", help="Policy YAML file or directory.",
                                           show_default=False)]
InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="Inventory YAML file or directory "
                                            "(Namespaces, Pods, workloads, HostEndpoints, NetworkSets).",
                                            show_default=False)]
FormatOpt = Annotated[str, typer.Option("--format", "-f", envvar="GARRISON_FORMAT",
                                        help=f"Output format: {', '.join(FORMATS)}.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                                                show_default=False)]
def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def _rich(render: Any, color: bool) -> str:
    from rich.console import Console

    console = Console(record=True, force_terminal=color, no_color=not color, width=160, file=io.StringIO())
    render(console)
    return console.export_text(styles=color)


def _load(policies: Path, *, strict: bool) -> Any:
    from garrison.network.loader import load_policies

    pset = load_policies(policies)
    for w in pset.warnings:
        logger.warning("%s", w)
    if strict and pset.errors:
        raise InputError(str(pset.errors[0]))
    return pset


def _evaluator(policies: Path, inventory: Path) -> Any:
    from garrison.network.evaluator import Evaluator
    from garrison.network.inventory import load_inventory

    pset = _load(policies, strict=True)
    return Evaluator(pset, load_inventory(inventory))


@app.command()
def check(
    policies: PoliciesOpt,
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Also check named ports against "
                                                   "this inventory.", show_default=False)] = None,
    format: FormatOpt = "table",
    output: OutputOpt = None,
) -> None:
    """Load and validate policies; report errors, warnings and unreachable (shadowed) rules."""
    _check_format(format)
    from garrison.network.check import check as run_check
    from garrison.network.inventory import load_inventory

    pset = _load(policies, strict=False)
    problems = run_check(pset, load_inventory(inventory) if inventory is not None else None)
    errors = [p for p in problems if p.level == "error"]
    summary = {"policies": len(pset.policies), "tiers": len(pset.tiers), "errors": len(errors),
               "warnings": len(problems) - len(errors)}
    if format == "json":
        _emit(json.dumps({"summary": summary, "problems": [
            {"level": p.level, "where": p.where, "message": p.message} for p in problems]}, indent=2), output)
    else:
        def render(console: Any) -> None:
            from rich.table import Table

            table = Table(title=f"Policy check: {summary['policies']} policies in {summary['tiers']} tiers")
            table.add_column("Level", no_wrap=True)
            table.add_column("Where", overflow="fold")
            table.add_column("Problem", overflow="fold", ratio=2)
            for p in problems:
                table.add_row(f"[red]{p.level}[/red]" if p.level == "error" else f"[yellow]{p.level}[/yellow]",
                              p.where, p.message)
            console.print(table)
            console.print(f"{summary['errors']} error(s), {summary['warnings']} warning(s)")

        _emit(_rich(render, _use_color(output)), output)
    if errors:
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    policies: PoliciesOpt,
    inventory: InventoryOpt,
    src: Annotated[str, typer.Option("--src", help="Source: NAMESPACE/POD, host endpoint, IP or DNS name.",
                                     show_default=False)],
    dst: Annotated[str, typer.Option("--dst", help="Destination: NAMESPACE/POD, host endpoint, IP or DNS name.",
                                     show_default=False)],
    protocol: Annotated[str, typer.Option("--protocol", help="TCP, UDP, SCTP, ICMP, ICMPv6 or a number.")] = "TCP",
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Destination port.",
                                             show_default=False)] = None,
    src_port: Annotated[int | None, typer.Option("--src-port", min=0, max=65535, show_default=False)] = None,
    icmp_type: Annotated[int | None, typer.Option("--icmp-type", min=0, max=255, show_default=False)] = None,
    icmp_code: Annotated[int | None, typer.Option("--icmp-code", min=0, max=255, show_default=False)] = None,
    format: FormatOpt = "table",
    output: OutputOpt = None,
) -> None:
    """Evaluate one flow: the verdict and the policy hits (Calico flow-log form), enforced and pending."""
    _check_format(format)
    ev = _evaluator(policies, inventory)
    verdict = ev.evaluate(src, dst, protocol, port, src_port=src_port, icmp_type=icmp_type, icmp_code=icmp_code)
    data = verdict.to_dict()
    if format == "json":
        _emit(json.dumps(data, indent=2), output)
        return

    def render(console: Any) -> None:
        from rich.table import Table

        colour = "green" if verdict.allowed else "red"
        console.print(f"{src} -> {dst} {protocol.upper()}/{port if port is not None else '*'}: "
                      f"[bold {colour}]{verdict.action.value}[/bold {colour}]")
        for title, hits in (("Enforced", verdict.hits), ("Pending (staged)", verdict.pending)):
            table = Table(title=title)
            for col in ("Reporter", "Tier", "Policy", "Rule", "Action"):
                table.add_column(col, overflow="fold")
            for h in hits:
                table.add_row(h.reporter, h.tier, h.name, "end of tier" if h.rule < 0 else str(h.rule),
                              h.action.value)
            console.print(table)

    _emit(_rich(render, _use_color(output)), output)


@app.command()
def matrix(
    policies: PoliciesOpt,
    inventory: InventoryOpt,
    port: Annotated[list[str] | None, typer.Option("--port", help="Only these PROTO/PORT columns (repeatable), "
                                                   "e.g. TCP/80.", show_default=False)] = None,
    format: FormatOpt = "table",
    output: OutputOpt = None,
) -> None:
    """Connectivity matrix of every ordered pair of pods on every named port (or --port)."""
    _check_format(format)
    from garrison.network.matrix import connectivity

    ports: list[tuple[str, int]] | None = None
    if port:
        ports = []
        for item in port:
            proto, _, number = item.partition("/")
            if proto.upper() not in ("TCP", "UDP", "SCTP") or not number.isdigit() or not 0 <= int(number) <= 65535:
                raise ConfigError(f"--port {item!r}: expected PROTO/PORT with PROTO one of TCP, UDP, SCTP")
            ports.append((proto.upper(), int(number)))
    ev = _evaluator(policies, inventory)
    result = connectivity(ev, ports)
    if format == "json":
        _emit(json.dumps(result, indent=2, sort_keys=True), output)
        return
    cols = sorted({c for row in result.values() for cell in row.values() for c in cell})

    def render(console: Any) -> None:
        from rich.table import Table

        keys = list(result)
        for col in cols:
            table = Table(title=f"{col} (rows: from, columns: to)")
            table.add_column("from \\ to", no_wrap=True)
            for k in keys:
                table.add_column(k, no_wrap=True)
            for sk in keys:
                cells = []
                for dk in keys:
                    v = result[sk][dk][col]
                    cells.append("[green]allow[/green]" if v == "allow" else "[red]deny[/red]")
                table.add_row(sk, *cells)
            console.print(table)
        if not cols:
            console.print("no ports: the inventory names no container ports (use --port PROTO/PORT)")

    _emit(_rich(render, _use_color(output)), output)


@app.command()
def export(
    policies: PoliciesOpt,
    to: Annotated[str, typer.Option("--to", help="Target format: k8s or calico.")] = "calico",
    output: OutputOpt = None,
) -> None:
    """Render the policies as Kubernetes NetworkPolicy or Calico v3 YAML (warn on what does not fit)."""
    if to not in ("k8s", "calico"):
        raise ConfigError(f"unknown export target {to!r}; choose from k8s, calico")
    from garrison.network.export import export as run_export

    pset = _load(policies, strict=True)
    text, warnings = run_export(pset, to)
    for w in warnings:
        logger.warning("%s", w)
    _emit(text, output)


# the dataplane's commands live in their own module (they touch the kernel)
from garrison.cli.policy_dataplane import apply_cmd, quarantine_cmd  # noqa: E402

app.command("apply")(apply_cmd)
app.command("quarantine")(quarantine_cmd)

from garrison.cli.policy_live import snapshot_cmd  # noqa: E402

app.command("snapshot")(snapshot_cmd)

from garrison.cli.policy_flows import flows_cmd, preview_cmd, promote_cmd, recommend_cmd  # noqa: E402

app.command("flows")(flows_cmd)
app.command("preview")(preview_cmd)
app.command("recommend")(recommend_cmd)
app.command("promote")(promote_cmd)
