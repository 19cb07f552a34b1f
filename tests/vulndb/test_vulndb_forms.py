"""Schema 3: ranges compiled at import (``range_forms``) and dictionary-encoded entry profiles.

The stored forms decode to exactly what compiling the text gives and match exactly as it does;
a scheme whose keys no longer match the stored probe digest compiles from the text; schema-1
and schema-2 files are migrated in place by ``db import`` to what a fresh import builds.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import DatabaseError
from garrison.model import OperatingSystem, Package
from garrison.vulndb.db import VulnDB
from garrison.vulndb.forms import PROBE_VERSIONS, decode_form, encode_form, probe_digest
from garrison.vulndb.importer import import_paths
from garrison.vulndb.matcher import Matcher
from garrison.vulndb.ranges import compile_ranges, form_hit, form_of
from garrison.vulndb.schema import SCHEMA_VERSION
from garrison.vulndb.versions import InvalidVersion, get_scheme

_LANG = {"PyPI": "pypi", "Go": "golang", "crates.io": "cargo"}


def _key(scheme: str) -> Any:
    def key(text: str) -> Any:
        try:
            return get_scheme(scheme).key(text)
        except (InvalidVersion, ValueError) as err:
            raise InvalidVersion(str(err)) from None

    return key


_deb_version = st.builds(
    lambda epoch, up, rev: f"{epoch}{up}{rev}",
    st.sampled_from(["", "1:", "2:"]),
    st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}(~rc[0-9]|\+dfsg)?", fullmatch=True),
    st.sampled_from(["", "-1", "-2", "-1+deb11u1", "-1~bpo1"]),
)
_event = st.tuples(st.sampled_from(["introduced", "fixed", "last_affected", "limit"]), _deb_version)


@settings(max_examples=300, deadline=None)
@given(
    ranges=st.lists(
        st.lists(_event, max_size=4).map(lambda evs: ["ECOSYSTEM", [list(e) for e in evs], ""]), max_size=3
    ),
    installed=_deb_version,
    intro_zero=st.booleans(),
)
def test_stored_form_hits_as_the_compiled_ranges(ranges: list[Any], installed: str, intro_zero: bool) -> None:
    """marshal round trip is lossless and the first hit of the form is the compiled ranges' hit."""
    if intro_zero and ranges:
        ranges[0][1].insert(0, ["introduced", "0"])
    key = _key("deb")
    compiled = compile_ranges(ranges, key, "t")
    form = form_of(compiled)
    blob = encode_form(form)
    assert blob is not None
    assert decode_form(blob) == form
    v = key(installed)
    expected = next((h for h in (r.evaluate(v) for r in compiled) if h is not None), None)
    got = form_hit(decode_form(blob), v)
    assert got == (None if expected is None else (expected.matched_range, (expected.fixed,) if expected.fixed else ()))


def test_object_keys_are_not_stored_and_digests_tell_schemes_apart() -> None:
    ranges = [["ECOSYSTEM", [["introduced", "1.0"], ["fixed", "2.0"]], ""]]
    assert encode_form(form_of(compile_ranges(ranges, _key("pep440"), "t"))) is None
    assert encode_form(form_of(compile_ranges(ranges, _key("deb"), "t"))) is not None
    assert probe_digest(get_scheme("pep440")) == ""  # Version objects: compiled from text
    digests = {name: probe_digest(get_scheme(name)) for name in ("deb", "rpm", "apk", "go", "cargo")}
    assert all(digests.values()) and len(set(digests.values())) == len(digests)
    assert probe_digest(get_scheme("deb")) == digests["deb"]  # stable
    assert len(PROBE_VERSIONS) == len(set(PROBE_VERSIONS))


def test_one_scheme_is_imported_alone() -> None:
    code = (
        "import sys; from garrison.vulndb.versions import get_scheme; get_scheme('deb');"
        "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('garrison.vulndb.versions.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.replace("'", '"')) == ["deb", "interface"]


def _packages(db_path: Path) -> dict[str, tuple[OperatingSystem | None, list[Package]]]:
    """Packages at the bounds of the stored ranges (and just below them), per ecosystem group."""
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT ecosystem, package, ranges FROM affected ORDER BY rowid").fetchall()
    conn.close()
    groups: dict[str, tuple[OperatingSystem | None, list[Package]]] = {
        "Debian:11": (OperatingSystem("debian", "11", codename="bullseye"), []),
        "Alpine:v3.10": (OperatingSystem("alpine", "3.10.9"), []),
        "AlmaLinux:9": (OperatingSystem("almalinux", "9.3"), []),
        "lang": (None, []),
    }
    seen: set[tuple[str, str, str]] = set()
    for eco, name, text in rows:
        for rng in json.loads(text):
            for _kind, version in rng[1][:2]:
                if version == "0" or (eco, name, version) in seen or len(seen) > 40_000:
                    continue
                seen.add((eco, name, version))
                if eco in groups and eco.startswith("Debian"):
                    groups[eco][1].extend(Package(name, v, "deb", source_name=name) for v in (version, version + "~"))
                elif eco in groups and eco.startswith("Alpine"):
                    groups[eco][1].append(Package(name, version, "apk", source_name=name))
                elif eco in groups:
                    groups[eco][1].append(Package(name, version, "rpm"))
                elif eco in _LANG:
                    if eco == "Go":
                        head, _, tail = name.rpartition("/")
                        groups["lang"][1].append(Package(tail, "v" + version, "golang", namespace=head or None))
                    else:
                        groups["lang"][1].append(Package(name, version, _LANG[eco]))
    return groups


def _matches(db_path: Path, groups: dict[str, tuple[OperatingSystem | None, list[Package]]]) -> list[str]:
    with VulnDB.open(db_path) as db:
        matcher = Matcher(db)
        return [json.dumps(m.to_dict(), sort_keys=True) for os, pkgs in groups.values() for m in matcher.match(pkgs, os)]


def _set_forms(path: Path, blob: bytes | None, digests: str | None) -> None:
    conn = sqlite3.connect(path)
    with conn:
        if blob is not None:
            conn.execute("UPDATE range_forms SET form = ? WHERE form IS NOT NULL", (blob,))
        if digests is not None:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'range_keys'", (digests,))
    conn.close()


def test_stale_digest_compiles_from_the_text(
    osv_db: Path, tmp_path: Path, advisories_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    groups = _packages(osv_db)
    assert sum(len(p) for _o, p in groups.values()) > 5_000
    expected = _matches(osv_db, groups)
    assert len(expected) > 5_000
    empty = encode_form(())
    assert empty is not None

    hollow = tmp_path / "hollow.db"  # every stored form says "no ranges": the matcher reads them
    shutil.copyfile(osv_db, hollow)
    _set_forms(hollow, empty, None)
    assert len(_matches(hollow, groups)) < len(expected) // 2

    stale = tmp_path / "stale.db"  # same, but the keys were made by "another" scheme version
    shutil.copyfile(osv_db, stale)
    _set_forms(stale, empty, json.dumps({"rpm": "0", "go": "0", "cargo": "0"}))
    with caplog.at_level(logging.WARNING, logger="garrison.vulndb.matcher"):
        assert _matches(stale, groups) == expected
    assert "compiling them again" in caplog.text

    # extending the file recompiles the stale forms before it stamps the current digests
    import_paths(stale, [advisories_dir / "alpine" / "v3.10"])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="garrison.vulndb.matcher"):
        assert _matches(stale, groups) == expected
    assert "compiling them again" not in caplog.text
    # (pep440 keys are objects: its few stored forms are never read, so never refreshed; forms of
    # ranges that are all GIT are empty in both files)
    count = "SELECT count(*) FROM range_forms WHERE form = ? AND scheme != 'pep440'"
    now, before = sqlite3.connect(stale), sqlite3.connect(osv_db)
    assert now.execute(count, (empty,)).fetchone() == before.execute(count, (empty,)).fetchone()
    now.close()
    before.close()


def _downgrade(path: Path, version: int) -> None:
    """A current database in the layout of schema 2 (no forms) or 1 (no ``listed`` either)."""
    conn = sqlite3.connect(path)
    with conn:
        for table in ("range_forms", "profiles"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE affected DROP COLUMN form")
        conn.execute("ALTER TABLE affected DROP COLUMN profile")
        conn.execute("DELETE FROM meta WHERE key = 'range_keys'")
        if version == 1:
            conn.execute("ALTER TABLE affected DROP COLUMN listed")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.close()


def _layout(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT a.ecosystem, a.package, a.vuln_id, a.listed, f.scheme, f.ranges, f.form, p.source, p.status, "
        "p.severity FROM affected a LEFT JOIN range_forms f ON f.id = a.form JOIN profiles p ON p.id = a.profile "
        "WHERE a.ecosystem NOT LIKE 'Alpine:%' ORDER BY a.rowid"
    ).fetchall()
    conn.close()
    # marshal's bytes depend on object sharing at encoding time; compare what they decode to
    return [(*r[:6], None if r[6] is None else decode_form(r[6]), *r[7:]) for r in rows]


@pytest.mark.parametrize("version", [1, 2])
def test_old_schemas_are_migrated_by_import(
    debian_db: Path, tmp_path: Path, advisories_dir: Path, version: int
) -> None:
    old = tmp_path / "old.db"
    shutil.copyfile(debian_db, old)
    _downgrade(old, version)
    import_paths(old, [advisories_dir / "alpine" / "v3.10"])
    fresh = tmp_path / "fresh.db"
    shutil.copyfile(debian_db, fresh)
    import_paths(fresh, [advisories_dir / "alpine" / "v3.10"])
    with VulnDB.open(old) as db:
        assert db.status().schema_version == SCHEMA_VERSION
        assert db.conn.execute("SELECT count(*) FROM affected WHERE ecosystem LIKE 'Alpine:%'").fetchone()[0] > 0
    assert _layout(old) == _layout(fresh)  # ids may differ; what they stand for does not
    groups = _packages(old)
    assert len(groups["Debian:11"][1]) > 500 and len(groups["Alpine:v3.10"][1]) > 100
    got = _matches(old, groups)
    assert len(got) > 1_000
    assert got == _matches(fresh, groups)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param("UPDATE range_forms SET form = x'00ff' WHERE form IS NOT NULL", "does not decode", id="form"),
        pytest.param("DELETE FROM profiles", "has no profile", id="profile"),
    ],
)
def test_a_damaged_database_is_a_one_line_error(osv_db: Path, tmp_path: Path, damage: str, message: str) -> None:
    bad = tmp_path / "bad.db"
    shutil.copyfile(osv_db, bad)
    conn = sqlite3.connect(bad)
    with conn:
        name = conn.execute("SELECT package FROM affected WHERE ecosystem = 'AlmaLinux:9' AND form != 0").fetchone()[0]
        conn.execute(damage)
    conn.close()
    pkg = Package(name, "0:0.1-1.el9", "rpm")
    with VulnDB.open(bad) as db, pytest.raises(DatabaseError, match=f"inconsistent database: .*{message}") as err:
        Matcher(db).match([pkg], OperatingSystem("almalinux", "9.3"))
    assert "\n" not in str(err.value) and "garrison db import" in str(err.value)
    with VulnDB.open(osv_db) as db:
        assert Matcher(db).match([pkg], OperatingSystem("almalinux", "9.3"))  # the intact file matches it
