"""Entry point of the ``garrison`` command.

Exit codes: 0 clean (or below the gate), 1 the gate failed, 2 an error (bad input, missing DB,
registry failure, bad flag). Errors are one line on stderr; ``GARRISON_DEBUG=1`` adds the
traceback.

Command groups load lazily. Importing every group's module (posture with its controls, policy,
admission, the sensor, ...) and turning every typer function into a click command took about
50 ms, a fifth of a warm ``garrison sbom`` run, so the root group (:class:`LazyGroup`) holds a
placeholder per group, built from the static table :data:`COMMANDS` (name, module, attribute,
one-paragraph help), and imports a group's module only when that group is resolved. ``--help``
lists every group from the table without importing anything; the placeholders stay in
``commands`` so click's and typer's "did you mean" suggestions see every name. A config file
needs the whole tree (keys are checked against every command's options), so it loads them all.
click has no lazy group of its own (its docs show this pattern as a recipe), hence the subclass.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NamedTuple

import click
import typer
import typer.main
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

from garrison.core.errors import GarrisonError


class LazyCommand(NamedTuple):
    """One entry of the root's static command table."""

    name: str
    module: str  # imported when the command is resolved
    attr: str  # a ``typer.Typer`` (a group) or a function (a command)
    help: str  # the first paragraph of the command's help, shown by ``garrison --help``
    settings: Mapping[str, Any] | None = None  # click context settings of a function command
    help_attr: str = ""  # the module attribute holding a function command's full help


#: In ``--help`` order. ``tests/cli`` checks every ``help`` against the loaded command.
COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "sbom",
        "garrison.cli.scan",
        "sbom",
        "Produce a software bill of materials.",
        {"allow_interspersed_args": True},
        "SBOM_HELP",
    ),
    LazyCommand("version", "", "", "Print Garrison's version."),  # defined below, not lazy
    LazyCommand("scan", "garrison.cli.scan", "app", "Scan images, directories and SBOMs for vulnerabilities and secrets."),
    LazyCommand(
        "db", "garrison.cli.db", "app", "Manage the local vulnerability database (one SQLite file, works offline)."
    ),
    LazyCommand("cache", "garrison.cli.db", "cache_app", "Manage the per-layer analysis cache."),
    LazyCommand(
        "posture",
        "garrison.cli.posture",
        "app",
        "Check Kubernetes manifests, Dockerfiles and nodes against controls, PSS and CIS benchmarks.",
    ),
    LazyCommand(
        "admission",
        "garrison.cli.admission",
        "app",
        "Kubernetes admission webhook: enforce policies when objects are created.",
    ),
    LazyCommand("rules", "garrison.cli.rules", "app", "Validate and inspect runtime rules (Falco format)."),
    LazyCommand(
        "sensor", "garrison.cli.sensor", "app", "Run the runtime sensor: kernel events -> rules -> alerts and responses."
    ),
    LazyCommand(
        "policy", "garrison.cli.policy", "app", "Zero-trust network policy: validate, evaluate, explain, export."
    ),
)


#: the config files looked for in the working directory (``garrison.cli.config.DEFAULT_FILES``;
#: ``tests/cli`` keeps the two equal)
CONFIG_FILES = ("garrison.yaml", "garrison.yml", ".garrison.yaml")


class _Pending(click.Command):
    """Placeholder for a command whose module is not imported yet (carries the table's help)."""

    def __init__(self, entry: LazyCommand) -> None:
        super().__init__(entry.name, help=entry.help)
        self.entry = entry


def load_command(entry: LazyCommand) -> click.Command:
    """Import ``entry``'s module and build its click command exactly as ``add_typer`` /
    ``app.command`` on the root would have."""
    module = importlib.import_module(entry.module)
    target = getattr(module, entry.attr)
    short, markup = app.pretty_exceptions_short, app.rich_markup_mode
    if isinstance(target, typer.Typer):
        info = TyperInfo(target, name=entry.name)
        return typer.main.get_group_from_info(
            info, pretty_exceptions_short=short, rich_markup_mode=markup, suggest_commands=app.suggest_commands
        )
    help_text = getattr(module, entry.help_attr) if entry.help_attr else None
    command = CommandInfo(name=entry.name, callback=target, help=help_text, context_settings=dict(entry.settings or {}))
    return typer.main.get_command_from_info(command, pretty_exceptions_short=short, rich_markup_mode=markup)


class LazyGroup(TyperGroup):
    """Root group whose subcommands are imported on first use (see the module docstring)."""

    def __init__(
        self, *, commands: Mapping[str, click.Command] | Sequence[click.Command] | None = None, **attrs: Any
    ) -> None:
        given = dict(commands) if isinstance(commands, Mapping) else {c.name: c for c in commands or () if c.name}
        ordered: dict[str, click.Command] = {}
        for entry in COMMANDS:
            if entry.name in given:
                ordered[entry.name] = given.pop(entry.name)
            elif entry.module:
                ordered[entry.name] = _Pending(entry)
        ordered.update(given)
        super().__init__(commands=ordered, **attrs)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self.commands.get(cmd_name)
        if isinstance(cmd, _Pending):
            cmd = self.commands[cmd_name] = load_command(cmd.entry)
        return cmd

    def load_all(self) -> None:
        """Import every pending command (a config file is checked against the whole tree)."""
        for name, cmd in list(self.commands.items()):
            if isinstance(cmd, _Pending):
                self.commands[name] = load_command(cmd.entry)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, from the placeholders' help instead of importing every group."""
        commands = [(name, cmd) for name, cmd in self.commands.items() if not cmd.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])


app = typer.Typer(
    cls=LazyGroup,
    name="garrison",
    help="Cloud-native application protection for Kubernetes workloads.\n\n"
    "Build: scan images, filesystems and SBOMs for vulnerabilities and secrets, produce SBOMs (sbom, scan, "
    "db, cache). Deploy: check manifests, Dockerfiles, images, clusters and nodes against Pod Security, CIS "
    "and best-practice controls, and enforce them at admission (posture, admission). Run: zero-trust network "
    "policy with an nftables dataplane (policy), and kernel sensors with Falco-compatible rules, drift "
    "detection and response (sensor, rules).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


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
    if not (config or os.environ.get("GARRISON_CONFIG") or any(os.path.isfile(n) for n in CONFIG_FILES)):
        return  # no config file: spare importing the config module (and PyYAML)
    from garrison.cli.config import build_default_map, find_config, load_config

    path = find_config(config)
    if path is not None:
        if isinstance(ctx.command, LazyGroup):
            ctx.command.load_all()
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
