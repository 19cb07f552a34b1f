"""``garrison policy apply`` and ``garrison policy quarantine``: the nftables dataplane commands.

Thin: they parse options and call :mod:`garrison.network.dataplane`. Registered on the ``policy``
command group by ``cli/policy.py`` (``app.command("apply")(apply_cmd)``,
``app.command("quarantine")(quarantine_cmd)``).
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from garrison.core.errors import ConfigError, InputError

NetnsOpt = Annotated[
    str | None,
    typer.Option(
        "--netns", help="Program this named network namespace instead of the current one.", show_default=False
    ),
]
InventoryOpt = Annotated[
    Path,
    typer.Option("--inventory", "-i", help="Kubernetes YAML (Namespaces, Pods with status.podIP): file or directory."),
]


def apply_cmd(
    policies: Annotated[Path, typer.Option("--policies", "-p", help="Policy YAML: file or directory.")],
    inventory: InventoryOpt,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the nftables ruleset instead of applying it.")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep running; re-apply whenever the files change.")] = False,
    netns_name: NetnsOpt = None,
    log_group: Annotated[int, typer.Option("--log-group", help="NFLOG group for flow logs (0: no logging).")] = 17,
    iface: Annotated[
        list[str] | None,
        typer.Option("--iface", help="NS/POD=IFACE: the node-side interface of a workload (repeatable)."),
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="Output format: text, json.")] = "text",
) -> None:
    """Compile policies to nftables and apply them atomically (only the difference to the kernel)."""
    from garrison.network.dataplane.agent import Agent, build
    from garrison.network.dataplane.nft import Nft

    if format not in ("text", "json"):
        raise ConfigError(f"unknown format {format!r}; choose from text, json")
    ifaces: dict[str, str] = {}
    for item in iface or []:
        key, sep, name = item.partition("=")
        if not sep or "/" not in key or not name:
            raise InputError(f"expected NS/POD=IFACE, got {item!r}", input_name="--iface")
        ifaces[key] = name
    group = log_group or None
    if dry_run:
        rs, _ = build(policies, inventory, ifaces, group)
        typer.echo(rs.pretty(), nl=False)
        return
    with Nft(netns_name) as nft:
        agent = Agent(policies, inventory, nft, ifaces, group)
        if watch:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                agent.run(stop)
            except KeyboardInterrupt:
                stop.set()
            return
        res = agent.sync()
    if format == "json":
        typer.echo(
            json.dumps(
                {
                    "mode": res.mode,
                    "commands": res.commands,
                    "seconds": round(res.seconds, 6),
                    "changed_chains": res.changed_chains,
                }
            )
        )
    else:
        typer.echo(
            f"applied ({res.mode}): {res.commands} commands, {len(res.changed_chains)} chains rewritten, "
            f"{res.seconds * 1000:.1f} ms"
        )


def quarantine_cmd(
    workload: Annotated[str, typer.Argument(help="NS/POD to isolate (or an IPv4 address).")],
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="Inventory YAML to find the workload's IP in.")
    ] = None,
    release: Annotated[bool, typer.Option("--release", help="Lift the quarantine instead.")] = False,
    netns_name: NetnsOpt = None,
) -> None:
    """Isolate one workload at once: drop everything to and from it, ahead of every policy (idempotent)."""
    import ipaddress

    from garrison.network.dataplane import quarantine as q
    from garrison.network.dataplane.nft import Nft

    try:
        ip = str(ipaddress.IPv4Address(workload))
    except ValueError:
        if "/" not in workload:
            raise InputError("expected NS/POD or an IPv4 address", input_name=workload) from None
        if inventory is None:
            raise InputError("--inventory is needed to find the workload's address", input_name=workload) from None
        from garrison.network.inventory import load_inventory

        ep = load_inventory(inventory).get(workload)
        ip = next((a for a in ep.ips if "." in a), "")
        if not ip:
            raise InputError("the workload has no IPv4 address in the inventory", input_name=workload) from None
    with Nft(netns_name) as nft:
        changed = q.release(nft, ip) if release else q.quarantine(nft, ip)
    state = (
        ("released" if changed else "was not quarantined")
        if release
        else ("quarantined" if changed else "already quarantined")
    )
    typer.echo(f"{workload} ({ip}): {state}")
