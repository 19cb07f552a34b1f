"""Entry point of the ``garrison`` command."""

from __future__ import annotations

import typer

app = typer.Typer(name="garrison", help="Cloud-native application protection, from build to run.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print Garrison's version."""
    from garrison import __version__

    typer.echo(__version__)


def main() -> None:
    app()
