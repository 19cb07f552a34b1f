"""The attack-simulation scripts run for real, in podman containers and on the host, and clean up.

Detection (the rule that fires within a second) is asserted later by the rules-test runner with
the live sensor; here we hold the scripts to their promise: each runs to "done:", leaves no file,
mount or process behind, and names rules and MITRE techniques that exist in our rule pack.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests._containers import ATTACKS, Containers, running_containers

from garrison.runtime.drift import exe_origin

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "src" / "garrison" / "runtime" / "rules" / "pack"
MANIFEST: list[dict[str, Any]] = yaml.safe_load((ATTACKS / "attacks.yaml").read_text())["attacks"]


@pytest.fixture
def containers() -> Iterator[Containers]:
    yield from running_containers()


def _cases(where: str) -> list[Any]:
    return [pytest.param(a, id=a["name"]) for a in MANIFEST if where in a["where"]]


def test_manifest_covers_every_script_and_pack_rule() -> None:
    scripts = {p.name for p in ATTACKS.glob("*.sh")}
    assert scripts == {a["script"] for a in MANIFEST}
    pack: dict[str, list[str]] = {}
    for path in PACK.glob("*.yaml"):
        for item in yaml.safe_load(path.read_text()) or []:
            if isinstance(item, dict) and "rule" in item:
                pack[item["rule"]] = list(item.get("tags", []))
    for attack in MANIFEST:
        for exp in attack["expect"]:
            assert exp["rule"] in pack, f"{attack['name']}: rule {exp['rule']!r} is not in the pack"
            assert exp["mitre"] in pack[exp["rule"]], f"{exp['rule']!r} lacks tag {exp['mitre']}"


def _tmp_listing(root: str) -> set[str]:
    return set(glob.glob(f"{root}/tmp/*")) | set(glob.glob(f"{root}/etc/cron.d/garrison-attack-sim-*"))


@pytest.mark.parametrize("attack", _cases("container"))
def test_attack_runs_in_container(containers: Containers, attack: dict[str, Any]) -> None:
    extra = ["--privileged"] if attack.get("privileged") else []
    c = containers.run(attack["image"], "sleep", "300", volumes=[f"{ATTACKS}:/attacks:ro"], extra=extra)
    root = f"/proc/{c.pid}/root"
    before = _tmp_listing(root)
    mounts_before = Path(f"/proc/{c.pid}/mountinfo").read_text().count("\n")
    out = c.exec("sh", f"/attacks/{attack['script']}", check=False, timeout=60)
    assert "done:" in out, out
    assert _tmp_listing(root) == before, "the simulation left files behind"
    assert Path(f"/proc/{c.pid}/mountinfo").read_text().count("\n") == mounts_before
    assert sorted(c.pids()) == [c.pid], "the simulation left processes behind"
    assert exe_origin(c.pid) == "image"


def _tmp_mounts() -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if " /tmp/" in line]


@pytest.mark.parametrize("attack", _cases("host"))
def test_attack_runs_on_host(attack: dict[str, Any], tmp_path: Path) -> None:
    # TMPDIR confines the scripts' mktemp to a private directory (other suites share /tmp)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cron_before = set(glob.glob("/etc/cron.d/garrison-attack-sim-*"))
    mounts_before = _tmp_mounts()
    proc = subprocess.run(
        ["sh", str(ATTACKS / attack["script"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    if proc.returncode == 77:
        pytest.fail(f"host lacks a tool the simulation needs: {proc.stdout.strip()}")
    assert proc.returncode == 0 and "done:" in proc.stdout, proc.stdout + proc.stderr
    assert list(scratch.iterdir()) == [], "the simulation left files behind"
    assert set(glob.glob("/etc/cron.d/garrison-attack-sim-*")) == cron_before
    assert _tmp_mounts() == mounts_before
