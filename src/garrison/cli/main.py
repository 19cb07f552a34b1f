"""Entry point of the ``garrison`` command.

Exit codes: 0 clean (or below the gate), 1 the gate failed, 2 an error (bad input, missing DB,
registry failure, bad flag). Errors are one line on stderr; ``GARRISON_DEBUG=1`` adds the
traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Annotated

import click
import typer

from garrison.cli import admission as admission_cli
from garrison.cli import db as db_cli
from garrison.cli import policy as policy_cli
from garrison.cli import posture as posture_cli
from garrison.cli import rules as rules_cli
from garrison.cli import scan as scan_cli
from garrison.cli import sensor as sensor_cli
from garrison.cli.config import build_default_map, find_config, load_config
from garrison.core.errors import GarrisonError

app = typer.Typer(
    name="garrison",
    help="Cloud-native application protection: scan images, filesystems and SBOMs for vulnerabilities and "
    "secrets, produce SBOMs, and manage the offline vulnerability database.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(scan_cli.app, name="scan")
app.command("sbom", help=scan_cli.SBOM_HELP, context_settings={"allow_interspersed_args": True})(scan_cli.sbom)
app.add_typer(db_cli.app, name="db")
app.add_typer(db_cli.cache_app, name="cache")
app.add_typer(posture_cli.app, name="posture")
app.add_typer(admission_cli.app, name="admission")
app.add_typer(rules_cli.app, name="rules")
app.add_typer(sensor_cli.app, name="sensor")
app.add_typer(policy_cli.app, name="policy")


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", help="YAML config file (default: ./garrison.yaml or $GARRISON_CONFIG).", show_default=False
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug).")] = 0,
) -> None:
    level = os.environ.get("GARRISON_LOGLEVEL", "").upper() or (
        "DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING"
    )
    logger = logging.getLogger("garrison")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("garrison: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "WARNING")
    path = find_config(config)
    if path is not None:
        ctx.default_map = build_default_map(ctx.command, load_config(path), str(path))


@app.command()
def version() -> None:
    """Print Garrison's version."""
    from garrison import __version__

    typer.echo(__version__)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, turning every expected failure into one line and exit code 2."""
    try:
        # without standalone mode click returns the code of a ``typer.Exit`` instead of raising
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except click.exceptions.Abort:
        sys.stderr.write("garrison: aborted\n")
        sys.exit(130)
    except GarrisonError as err:
        if os.environ.get("GARRISON_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(f"garrison: {err}\n")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("garrison: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as err:  # never a bare traceback for users
        if os.environ.get("GARRISON_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(f"garrison: internal error: {type(err).__name__}: {err} (set GARRISON_DEBUG=1 for details)\n")
        sys.exit(2)
    sys.exit(0)


if __name__ == "__main__":
    main()
