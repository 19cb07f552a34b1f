"""``garrison policy flows|preview|recommend|promote``: flow logs, staged preview, recommendations.

Thin layer over :mod:`garrison.network.flows`, :mod:`~garrison.network.preview` and
:mod:`~garrison.network.recommend`; the functions are registered on the ``policy`` group by
:mod:`garrison.cli.policy`'s owner. Exit codes: 0 fine; 1 ``preview`` found a currently allowed flow
that the staged policies would deny (the CI gate); 2 bad input (malformed flow lines, with the line
number; unreadable or invalid policies; bad flags).
"""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from garrison.cli._output import use_color
from garrison.core.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

FORMATS = ("table", "json")

FlowsOpt = Annotated[list[Path] | None, typer.Option("--flows", help="Flow log (JSON lines, Calico fields; gzip ok). "
                                              "Repeatable.", show_default=False)]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="Output format: table, json.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                                                show_default=False)]
InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="Inventory YAML file or directory.",
                                            show_default=False)]


def _emit(text: str, output: Path | None) -> None:
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as err:
            raise InputError(f"cannot write: {err.strerror or err}", input_name=str(output)) from err


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def _rich(render: Any, output: Path | None) -> str:
    from rich.console import Console

    color = use_color(output)
    console = Console(record=True, force_terminal=color, no_color=not color, width=180, file=io.StringIO())
    render(console)
    return console.export_text(styles=color)


def _need_flows(flows: list[Path] | None) -> list[Path]:
    if not flows:
        raise ConfigError("--flows FILE is required (repeatable)")
    return flows


def _port(proto: str, port: int | None) -> str:
    return proto.upper() if port is None else f"{proto.upper()}/{port}"


def flows_cmd(
    flows: FlowsOpt = None,
    format: FormatOpt = "table",
    filter: Annotated[list[str] | None, typer.Option(
        "--filter", help="KEY=VALUE[,KEY=VALUE] with KEY ns, src_ns, dst_ns, src, dst, action, reporter, proto, "
        "port, policy. Repeatable (AND).", show_default=False)] = None,
    aggregate: Annotated[str, typer.Option("--aggregate", help="none (per 5-tuple), port (fold source ports) or "
                                           "workload (fold pods of a workload), as Felix's aggregation kinds.")
                         ] = "port",
    policies: Annotated[Path | None, typer.Option("--policies", "-p", help="Recompute policy hits of flows "
                                                  "recorded without any, with these policies.", show_default=False)
                        ] = None,
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory for --policies.",
                                                   show_default=False)] = None,
    output: OutputOpt = None,
) -> None:
    """Summarise flow logs: who talks to whom, allowed or denied, and by which policies."""
    _check_format(format)
    from garrison.network.flows import aggregate as run_aggregate
    from garrison.network.flows import endpoint_label, matches, parse_filter, read_flows

    paths = _need_flows(flows)
    flt = parse_filter(filter or [])
    if (policies is None) != (inventory is None):
        raise ConfigError("--policies and --inventory go together")
    records = run_aggregate((r for r in read_flows(paths) if matches(r, flt)), aggregate)
    records.sort(key=lambda r: (endpoint_label(r, "source"), endpoint_label(r, "dest"), r.proto, r.dest_port or 0,
                                r.reporter))
    computed: set[int] = set()
    unknown: dict[str, int] = {}
    if policies is not None and inventory is not None:
        from garrison.network.evaluator import Evaluator
        from garrison.network.flows import Resolver
        from garrison.network.inventory import load_inventory
        from garrison.network.preview import load_preview_set

        ev = Evaluator(load_preview_set(policies, None), load_inventory(inventory))
        resolver = Resolver(ev.endpoints)
        for i, rec in enumerate(records):
            if rec.enforced_policies:
                continue
            src, dst = resolver.resolve(rec, "source"), resolver.resolve(rec, "dest")
            if src is None or dst is None:
                continue
            for peer in (src, dst):
                if not peer.known:
                    unknown[peer.display] = unknown.get(peer.display, 0) + 1
            verdict = ev.evaluate(src.evaluator_ref, dst.evaluator_ref, rec.proto, rec.dest_port)
            rec.enforced_policies = [str(h) for h in verdict.hits if h.reporter == rec.reporter]
            rec.pending_policies = [str(h) for h in verdict.pending if h.reporter == rec.reporter]
            computed.add(i)
    allowed = sum(r.num_flows for r in records if r.action == "allow")
    denied = sum(r.num_flows for r in records if r.action == "deny")
    summary = {"records": len(records), "flows_allowed": allowed, "flows_denied": denied,
               "aggregation": aggregate, "recomputed": len(computed), "unknown_endpoints": len(unknown)}
    for name, count in sorted(unknown.items()):
        logger.warning("endpoint %s is not in the inventory (%d record(s)); its own policies were not applied",
                       name, count)
    if format == "json":
        out = []
        for i, r in enumerate(records):
            d = r.to_calico()
            d["policies_recomputed"] = i in computed
            out.append(d)
        _emit(json.dumps({"summary": summary, "flows": out}, indent=2), output)
        return

    def render(console: Any) -> None:
        from rich.table import Table

        table = Table(title=f"Flows ({aggregate} aggregation): {allowed} allowed, {denied} denied")
        for col in ("Source", "Destination", "Port", "Action", "Rep", "Flows", "Bytes in/out", "Policies"):
            table.add_column(col, overflow="fold")
        for i, r in enumerate(records):
            act = "[green]allow[/green]" if r.action == "allow" else "[red]deny[/red]"
            pols = "\n".join(r.enforced_policies) + ("\n(recomputed)" if i in computed else "")
            if r.pending_policies and r.pending_policies != r.enforced_policies:
                pols += "\npending: " + "\n".join(r.pending_policies)
            table.add_row(endpoint_label(r, "source"), endpoint_label(r, "dest"), _port(r.proto, r.dest_port), act,
                          r.reporter, str(r.num_flows), f"{r.bytes_in}/{r.bytes_out}", pols)
        console.print(table)

    _emit(_rich(render, output), output)


def preview_cmd(
    inventory: InventoryOpt,
    flows: FlowsOpt = None,
    policies: Annotated[Path | None, typer.Option("--policies", "-p", help="Current policies (file or directory; "
                                                  "may also hold Staged* policies).", show_default=False)] = None,
    staged: Annotated[Path | None, typer.Option("--staged", "-s", help="Policies to preview as staged (Staged* "
                                                "kinds, or ordinary policies treated as staged).",
                                                show_default=False)] = None,
    examples: Annotated[int, typer.Option("--examples", min=0, max=100, help="Examples per policy rule.")] = 5,
    format: FormatOpt = "table",
    output: OutputOpt = None,
) -> None:
    """Replay recorded flows through current and staged policies; exit 1 if an allowed flow would be denied."""
    _check_format(format)
    from garrison.network.evaluator import Evaluator
    from garrison.network.flows import read_flows
    from garrison.network.inventory import load_inventory
    from garrison.network.preview import load_preview_set, preview

    paths = _need_flows(flows)
    pset = load_preview_set(policies, staged)
    ev = Evaluator(pset, load_inventory(inventory))
    result = preview(ev, read_flows(paths), examples=examples)
    for name, count in sorted(result.unknown.items()):
        logger.warning("endpoint %s is not in the inventory (%d record(s)); its own policies were not applied",
                       name, count)
    if format == "json":
        _emit(json.dumps(result.to_dict(), indent=2), output)
    else:
        def render(console: Any) -> None:
            from rich.table import Table

            console.print(f"{result.distinct} distinct flows ({result.flows} connections, {result.records} records): "
                          f"{result.unchanged} unchanged, [red]{result.newly_denied} allowed -> denied[/red], "
                          f"[green]{result.newly_allowed} denied -> allowed[/green]"
                          + (f", {result.drift} recorded verdicts differ from the current policies" if result.drift
                             else "")
                          + (f", {result.unresolved} records without identifiable ends" if result.unresolved
                             else ""))
            if result.by_policy:
                table = Table(title="Changes per staged policy rule")
                for col in ("Change", "Tier", "Policy", "Rule", "Rep", "Distinct", "Flows", "Examples"):
                    table.add_column(col, overflow="fold")
                for g in result.by_policy:
                    colour = "red" if g.change == "allow->deny" else "green"
                    table.add_row(f"[{colour}]{g.change}[/{colour}]", g.tier, g.policy,
                                  "end of tier" if g.rule < 0 else str(g.rule), g.reporter, str(g.keys),
                                  str(g.flows), "\n".join(g.examples))
                console.print(table)

        _emit(_rich(render, output), output)
    if result.blocking:
        raise typer.Exit(1)


def recommend_cmd(
    inventory: InventoryOpt,
    flows: FlowsOpt = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Only policies for this namespace.",
                                                  show_default=False)] = None,
    scope: Annotated[str, typer.Option("--scope", help="One policy per namespace or per workload.")] = "namespace",
    tier: Annotated[str, typer.Option("--tier", help="Calico tier for the policies (a Tier document is added "
                                      "unless it is 'default').")] = "default",
    format: Annotated[str, typer.Option("--format", "-f", help="calico (StagedNetworkPolicy) or k8s "
                                        "(StagedKubernetesNetworkPolicy).")] = "calico",
    include_denied: Annotated[bool, typer.Option("--include-denied", help="Also allow flows recorded as denied."
                                                 )] = False,
    output: OutputOpt = None,
) -> None:
    """Recommend least-privilege staged policies from observed flows (allow what was seen, deny the rest)."""
    from garrison.network.flows import read_flows
    from garrison.network.inventory import load_inventory
    from garrison.network.recommend import recommend

    paths = _need_flows(flows)
    rec = recommend(load_inventory(inventory), read_flows(paths), scope=scope, fmt=format, tier=tier,
                    namespace=namespace, include_denied=include_denied)
    for w in rec.warnings:
        logger.warning("%s", w)
    for name, count in sorted(rec.unknown.items()):
        logger.warning("endpoint %s is not in the inventory (%d record(s))", name, count)
    header = (f"# Recommended from {rec.flows_used} flow record(s) ({rec.flows_skipped} skipped): review, then "
              "`garrison policy promote`.\n")
    _emit(header + rec.yaml(), output)


def promote_cmd(
    files: Annotated[list[Path], typer.Argument(help="Reviewed YAML with StagedNetworkPolicy / "
                                                "StagedGlobalNetworkPolicy / StagedKubernetesNetworkPolicy.",
                                                show_default=False)],
    output: OutputOpt = None,
) -> None:
    """Turn staged policies into their enforced kinds (names, order and tier kept), as Calico's promote does."""
    from garrison.network.loader import iter_documents
    from garrison.network.recommend import promote

    objects = [obj for path in files for _, _, obj in iter_documents(path)]
    result = promote(objects)
    for ref in result.deletions:
        logger.warning("staged deletion: delete %s when promoting (no document written)", ref)
    if not result.promoted and not result.deletions:
        logger.warning("no staged policies found")
    _emit(result.yaml() if result.documents else "", output)
