"""``garrison policy apply`` / ``quarantine`` command functions, through a typer app as the lead wires them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from tests.network.dataplane._dataplane_cluster import ONLY_FRONT, write_yaml
from typer.testing import CliRunner

from garrison.cli.policy_dataplane import apply_cmd, quarantine_cmd
from garrison.core.errors import InputError
from garrison.network.dataplane import netns
from garrison.network.dataplane.nft import Nft
from garrison.network.dataplane.quarantine import quarantined

app = typer.Typer()
app.command("apply")(apply_cmd)
app.command("quarantine")(quarantine_cmd)


def test_dry_run_prints_the_ruleset(tmp_path: Path, inventory_file: Path) -> None:
    pol = write_yaml(tmp_path / "p.yaml", [ONLY_FRONT])
    res = CliRunner().invoke(app, ["apply", "--policies", str(pol), "--inventory", str(inventory_file), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("table inet garrison {")
    assert "hook forward" in res.output and 'prefix "g|' in res.output


def test_bad_inputs_are_one_line_errors(tmp_path: Path, inventory_file: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [oops\n")
    res = CliRunner().invoke(app, ["apply", "--policies", str(bad), "--inventory", str(inventory_file), "--dry-run"])
    assert res.exit_code != 0 and isinstance(res.exception, InputError)
    assert "\n" not in str(res.exception)
    res = CliRunner().invoke(app, ["quarantine", "web"])
    assert isinstance(res.exception, InputError) and "NS/POD" in str(res.exception)
    res = CliRunner().invoke(app, ["apply", "--policies", str(bad), "--inventory", str(inventory_file), "--iface", "x"])
    assert isinstance(res.exception, InputError) and "--iface" in str(res.exception)


@pytest.mark.slow
def test_apply_and_quarantine_in_a_namespace(tmp_path: Path, inventory_file: Path) -> None:
    ns = f"gdp-{__import__('os').getpid()}-cli"
    netns.ip_batch([f"netns add {ns}"])
    try:
        pol = write_yaml(tmp_path / "p.yaml", [ONLY_FRONT])
        args = ["apply", "--policies", str(pol), "--inventory", str(inventory_file), "--netns", ns, "--format", "json"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert '"mode": "full"' in res.output
        assert '"mode": "noop"' in CliRunner().invoke(app, args).output
        q = ["quarantine", "web/front", "--inventory", str(inventory_file), "--netns", ns]
        assert "quarantined" in CliRunner().invoke(app, q).output
        assert "already quarantined" in CliRunner().invoke(app, q).output
        with Nft(ns) as nft:
            assert quarantined(nft) == {"10.60.0.2"}
        assert "released" in CliRunner().invoke(app, [*q, "--release"]).output
    finally:
        netns.delete_netns([ns])
