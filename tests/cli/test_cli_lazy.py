"""Lazy command groups: the static table agrees with the commands it stands for, ``--help`` and
``sbom`` import no other group, and suggestions, config files and exit codes behave as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer

from garrison.cli.main import COMMANDS, LazyGroup, app, load_command

_OTHER_GROUPS = ("garrison.cli.posture", "garrison.cli.policy", "garrison.cli.admission", "garrison.cli.rules", "garrison.cli.sensor")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "garrison.cli.main", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.name) for e in COMMANDS if e.module])
def test_table_help_is_the_commands_own(entry: object) -> None:
    from garrison.cli.main import LazyCommand

    assert isinstance(entry, LazyCommand)
    cmd = load_command(entry)
    assert cmd.name == entry.name
    first_paragraph = (cmd.help or "").split("\n\n")[0].strip()
    assert first_paragraph == entry.help
    assert isinstance(cmd, click.Group) == isinstance(getattr(__import__(entry.module, fromlist=["x"]), entry.attr), typer.Typer)


def test_listing_equals_the_eagerly_loaded_one() -> None:
    lazy = typer.main.get_command(app)
    assert isinstance(lazy, LazyGroup)
    ctx = click.Context(lazy, info_name="garrison")
    before = lazy.get_help(ctx)
    eager = typer.main.get_command(app)
    assert isinstance(eager, LazyGroup)
    eager.load_all()
    assert [n for n, c in eager.commands.items() if type(c).__name__ == "_Pending"] == []
    assert eager.get_help(click.Context(eager, info_name="garrison")) == before
    assert list(eager.commands) == [e.name for e in COMMANDS]


@pytest.mark.parametrize("args", [pytest.param(["--help"], id="help"), pytest.param(["sbom", "--help"], id="sbom-help")])
def test_other_groups_are_not_imported(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from garrison.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {_OTHER_GROUPS!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "Usage:" in out.stdout


def test_every_group_still_answers() -> None:
    for entry in COMMANDS:
        out = _run(entry.name, "--help")
        assert out.returncode == 0, (entry.name, out.stderr)
        assert entry.help.split(".")[0] in " ".join(out.stdout.split())


def test_typo_is_suggested_and_exits_2() -> None:
    out = _run("posure", "k8s")
    assert out.returncode == 2
    assert "No such command 'posure'" in out.stderr and "'posture'" in out.stderr


def test_config_key_of_an_unloaded_group_is_known(tmp_path: Path) -> None:
    (tmp_path / "garrison.yaml").write_text("framework: cis\n")  # an option of posture commands only
    out = _run("version", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (tmp_path / "garrison.yaml").write_text("framewrk: cis\n")
    bad = _run("version", cwd=tmp_path)
    assert bad.returncode == 2 and "framewrk" in bad.stderr


def test_config_file_names_match_the_config_module() -> None:
    from garrison.cli.config import DEFAULT_FILES
    from garrison.cli.main import CONFIG_FILES

    assert CONFIG_FILES == DEFAULT_FILES
