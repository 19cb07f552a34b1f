"""Schema 2: ``affected.listed`` (the listed versions the ranges do not cover, computed at import)
gives exactly the matches the full ``versions`` lists give, and schema-1 files are migrated by
``db import`` while scans refuse them with the command that fixes it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import DatabaseError
from garrison.model import Package
from garrison.vulndb.db import VulnDB
from garrison.vulndb.importer import import_paths
from garrison.vulndb.matcher import Matcher
from garrison.vulndb.ranges import uncovered_versions
from garrison.vulndb.schema import SCHEMA_VERSION, listed_versions
from garrison.vulndb.versions import InvalidVersion, get_scheme


def _pep440(text: str) -> object:
    try:
        return get_scheme("pep440").key(text)
    except (InvalidVersion, ValueError) as err:
        raise InvalidVersion(str(err)) from None


def test_covered_and_unparseable_versions_are_dropped() -> None:
    ranges = [["ECOSYSTEM", [["introduced", "1.0"], ["fixed", "2.0"]], ""], ["GIT", [["introduced", "0"]], "r"]]
    versions = ["1.0", "1.5", "2.0.0rc1", "2.5", "not a version!", "3.0", "1.0.0"]
    assert uncovered_versions(ranges, versions, _pep440) == ["2.5", "3.0"]


def test_listed_keeps_everything_without_a_scheme() -> None:
    assert listed_versions("NoSuchEcosystem", [], ["a", "b"], {}) == ["a", "b"]
    assert listed_versions("PyPI", [], [], {}) == []


_version = st.builds(
    lambda parts, pre: ".".join(map(str, parts)) + pre,
    st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=3),
    st.sampled_from(["", "rc1", ".post1", "a0", ".dev2"]),
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.tuples(st.sampled_from(["introduced", "fixed", "last_affected"]), _version), max_size=4),
    versions=st.lists(_version, max_size=6),
    installed=_version,
)
def test_pruning_never_changes_a_verdict(events: list[tuple[str, str]], versions: list[str], installed: str) -> None:
    """A version is affected by ranges-or-full-list exactly when it is by ranges-or-pruned-list
    (string or key equality, as the matcher compares listed versions)."""
    from garrison.vulndb.ranges import compile_ranges

    ranges = [["ECOSYSTEM", [list(e) for e in events], ""]]
    compiled = compile_ranges(ranges, _pep440, "t")
    key = _pep440(installed)

    def affected(listed: list[str]) -> bool:
        if any(r.evaluate(key) is not None for r in compiled):
            return True
        keys = set()
        for v in listed:
            try:
                keys.add(_pep440(v))
            except InvalidVersion:
                continue
        return installed in listed or key in keys

    assert affected(versions) == affected(uncovered_versions(ranges, versions, _pep440))


def _lang_packages(db_path: Path) -> list[Package]:
    """Every listed version of every PyPI/Go/crates.io entry, plus spellings equal only by key."""
    lang = {"PyPI": "pypi", "Go": "golang", "crates.io": "cargo"}
    conn = sqlite3.connect(db_path)
    pkgs: list[Package] = []
    rows = conn.execute("SELECT ecosystem, package, versions FROM affected WHERE versions != '[]'").fetchall()
    conn.close()
    for eco, name, text in rows:
        if eco not in lang:
            continue
        listed = json.loads(text)
        for version in listed[:25] + [v + ".0" for v in listed[:5]]:
            if eco == "Go":
                head, _, tail = name.rpartition("/")
                pkgs.append(Package(tail, "v" + version, "golang", namespace=head or None))
            else:
                pkgs.append(Package(name, version, lang[eco]))
    return pkgs


def _digest(db_path: Path, pkgs: list[Package]) -> list[tuple[object, ...]]:
    with VulnDB.open(db_path) as db:
        return [
            (m.package.name, m.package.version, m.vulnerability.id, m.matched_range, m.fixed_versions, str(m.status))
            for m in Matcher(db).match(pkgs)
        ]


def test_matches_equal_those_of_the_full_lists(osv_db: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.db"
    shutil.copyfile(osv_db, full)
    conn = sqlite3.connect(full)
    with conn:
        pruned = conn.execute("SELECT count(*) FROM affected WHERE listed != versions").fetchone()[0]
        conn.execute("UPDATE affected SET listed = versions")
    conn.close()
    assert pruned > 1000  # the real OSV lists are mostly covered by their ranges
    pkgs = _lang_packages(osv_db)
    assert len(pkgs) > 10_000
    got = _digest(osv_db, pkgs)
    assert len(got) > 10_000
    assert got == _digest(full, pkgs)


def _downgrade(path: Path) -> None:
    """Turn a current database into the schema-1 layout (no ``listed`` column)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE affected DROP COLUMN listed")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()


def test_schema_1_is_refused_by_scans_and_migrated_by_import(osv_db: Path, tmp_path: Path, advisories_dir: Path) -> None:
    old = tmp_path / "old.db"
    shutil.copyfile(osv_db, old)
    _downgrade(old)
    with pytest.raises(DatabaseError, match=r"schema version 1 .*garrison db import") as err:
        VulnDB.open(old)
    assert "\n" not in str(err.value)

    before = sqlite3.connect(osv_db)
    expected = before.execute("SELECT ecosystem, package, vuln_id, listed FROM affected ORDER BY rowid").fetchall()
    before.close()
    import_paths(old, [advisories_dir / "alpine" / "v3.10"])
    with VulnDB.open(old) as db:
        assert db.status().schema_version == SCHEMA_VERSION
        rows = db.conn.execute(
            "SELECT ecosystem, package, vuln_id, listed FROM affected WHERE ecosystem NOT LIKE 'Alpine:%' ORDER BY rowid"
        ).fetchall()
        assert db.conn.execute("SELECT count(*) FROM affected WHERE ecosystem LIKE 'Alpine:%'").fetchone()[0] > 0
    assert rows == expected  # the earlier feeds kept, their ``listed`` computed as a fresh import does


def test_cli_db_import_migrates(osv_db: Path, tmp_path: Path, advisories_dir: Path) -> None:
    old = tmp_path / "cli.db"
    shutil.copyfile(osv_db, old)
    _downgrade(old)
    env = {"GARRISON_DB": str(old), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "garrison.cli.main"]
    scan = subprocess.run([*cmd, "db", "status"], capture_output=True, text=True, env=env, timeout=300)
    assert scan.returncode == 2 and "schema version 1" in scan.stderr and "Traceback" not in scan.stderr
    done = subprocess.run(
        [*cmd, "db", "import", str(advisories_dir / "alpine" / "v3.10")], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    status = subprocess.run([*cmd, "db", "status", "--format", "json"], capture_output=True, text=True, env=env, timeout=300)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["schema_version"] == SCHEMA_VERSION
