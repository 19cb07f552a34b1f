"""``garrison db import|update|status`` and ``garrison cache clean``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Manage the local vulnerability database (one SQLite file, works offline).", no_args_is_help=True
)
cache_app = typer.Typer(help="Manage the per-layer analysis cache.", no_args_is_help=True)

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="GARRISON_DB",
        help="Database file (default: $GARRISON_DB or ~/.cache/garrison/db/garrison.db).",
        show_default=False,
    ),
]


def _db_path(db: Path | None) -> Path:
    from garrison.vulndb.db import default_db_path

    return db or default_db_path()


FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]


def _print_counts(summary: Any, fmt: str = "table") -> None:
    data = summary.to_dict() if hasattr(summary, "to_dict") else summary
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return
    if fmt != "table":
        from garrison.core.errors import ConfigError

        raise ConfigError(f"unknown format {fmt!r}; use table or json")
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if "downloads" in data:  # an update: what was fetched, what failed, then what was imported
        for source, files in data["downloads"].items():
            console.print(f"downloaded {source}: {len(files)} file(s)")
        for source, why in data.get("failed", {}).items():
            console.print(f"failed {source}: {why}", style="yellow")
        if data.get("import"):
            _print_counts(data["import"], fmt)
        return
    table = Table("feed", "records", "affected entries", "withdrawn", "newest")
    for name, feed in sorted(data.get("feeds", {}).items()):
        table.add_row(
            name, str(feed.get("records", "")), str(feed.get("affected", "")), str(feed.get("withdrawn", "")),
            str(feed.get("newest") or ""),
        )  # fmt: skip
    console.print(table)
    seconds = data.get("seconds")
    took = f" in {float(seconds):.1f} s" if isinstance(seconds, int | float) else ""
    console.print(
        f"{data.get('records', '')} records from {data.get('files', '')} files into {data.get('db', '')}{took}"
    )
    for path in data.get("skipped", []):
        console.print(f"skipped (not advisory data): {path}", style="dim")


@app.command("import")
def import_(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Advisory files or directories (OSV zip/dir, Debian DSA/DLA lists or tracker JSON, Alpine secdb, NVD JSON); a directory tree may hold several."
        ),
    ],
    db: DbOpt = None,
    format: FormatOpt = "table",
) -> None:
    """Import advisory data offline into the local database."""
    from garrison.vulndb.importer import import_paths

    summary = import_paths(_db_path(db), paths)
    _print_counts(summary, format)


@app.command("update")
def update(
    db: DbOpt = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="Only these sources (repeatable); default: all.", show_default=False),
    ] = None,
    mirror: Annotated[
        list[str] | None,
        typer.Option(
            "--mirror", help="SOURCE=BASE_URL to download a source from a mirror (repeatable).", show_default=False
        ),
    ] = None,
    format: FormatOpt = "table",
) -> None:
    """Download advisories from the official public sources and rebuild the database."""
    from garrison.core.errors import ConfigError
    from garrison.vulndb.update import update as run

    mirrors: dict[str, str] = {}
    for item in mirror or []:
        if "=" not in item:
            raise ConfigError(f"--mirror {item!r}: expected SOURCE=BASE_URL")
        key, url = item.split("=", 1)
        mirrors[key] = url
    summary = run(_db_path(db), sources=source or None, base_urls=mirrors or None)
    _print_counts(summary, format)


@app.command("status")
def status(
    db: DbOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Show the database's age, sources and record counts."""
    from garrison.vulndb.db import VulnDB

    path = _db_path(db)
    with VulnDB.open(path, readonly=True) as vdb:
        st = vdb.status()
        stale = vdb.is_stale()
    data = st.to_dict()
    if format == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"database: {path}")
    for key in ("schema_version", "built", "imported_at", "age"):
        if key in data:
            console.print(f"{key}: {data[key]}")
    table = Table("source", "records", "newest", "imported")
    for src in data.get("sources", []):
        table.add_row(
            str(src.get("name")),
            str(src.get("records")),
            str(src.get("newest") or ""),
            str(src.get("imported_at") or ""),
        )
    console.print(table)
    if stale:
        sys.stderr.write("garrison: warning: the database is more than a week old; run 'garrison db update'\n")


@cache_app.command("clean")
def cache_clean() -> None:
    """Forget every cached layer analysis."""
    from garrison.scan.cache import LayerCache

    removed = LayerCache().clear()
    typer.echo(f"removed {removed} cached layer analyses")
