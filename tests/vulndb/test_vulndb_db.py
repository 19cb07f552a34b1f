"""The SQLite database: default path, schema checks, read-only access, status and staleness."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from garrison.core.errors import DatabaseError
from garrison.vulndb.db import VulnDB, default_db_path
from garrison.vulndb.schema import SCHEMA_VERSION


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({"GARRISON_DB": "/srv/g.db"}, "/srv/g.db", id="env"),
        pytest.param({"XDG_CACHE_HOME": "/xdg"}, "/xdg/garrison/db/garrison.db", id="xdg"),
        pytest.param({"HOME": "/home/u"}, "/home/u/.cache/garrison/db/garrison.db", id="home"),
    ],
)
def test_default_path(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for var in ("GARRISON_DB", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert default_db_path() == Path(expected)


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy.db"
    shutil.copyfile(src, dst)
    return dst


def _set_meta(path: Path, key: str, value: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    conn.close()


def test_missing_db(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="garrison db import") as err:
        VulnDB.open(tmp_path / "nope.db")
    assert "nope.db" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param("random", id="random-bytes"),
        pytest.param("truncate", id="truncated"),
        pytest.param("empty-sqlite", id="foreign-sqlite"),
        pytest.param("schema", id="other-schema-version"),
        pytest.param("format", id="other-format"),
    ],
)
def test_broken_db_raises_with_hint(alpine_db: Path, tmp_path: Path, damage: str) -> None:
    path = _copy(alpine_db, tmp_path)
    if damage == "random":
        path.write_bytes(bytes(range(256)) * 64)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "empty-sqlite":
        path.unlink()
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    elif damage == "schema":
        _set_meta(path, "schema_version", str(SCHEMA_VERSION + 1))
    else:
        _set_meta(path, "format", "something-else")
    with pytest.raises(DatabaseError) as err:
        with VulnDB.open(path) as db:
            db.status()
    text = str(err.value)
    assert "garrison db import" in text and "garrison db update" in text and "\n" not in text
    if damage == "schema":
        assert f"schema version {SCHEMA_VERSION + 1}" in text


def test_readonly_connection_cannot_write(alpine_db: Path) -> None:
    with VulnDB.open(alpine_db) as db, pytest.raises(sqlite3.OperationalError):
        db.conn.execute("DELETE FROM affected")


def test_status_lists_every_feed(alpine_db: Path, advisories_dir: Path) -> None:
    with VulnDB.open(alpine_db) as db:
        st = db.status()
        stale = db.is_stale()
    files = sorted((advisories_dir / "alpine").rglob("*.yaml"))
    with_data = [p for p in files if "secfixes" in p.read_text()]
    assert {s.name for s in st.sources} == {f"alpine-secdb:{p.parent.name}/{p.stem}" for p in with_data}
    d = st.to_dict()
    assert d["schema_version"] == SCHEMA_VERSION
    assert d["records"] == sum(s.records for s in st.sources) > 0
    assert d["age_seconds"] is not None and d["age_seconds"] < 3600
    assert all(s["url"].startswith("https://secdb.alpinelinux.org/v3.") for s in d["sources"])
    assert not stale


@pytest.mark.parametrize(("days", "stale"), [pytest.param(1, False, id="fresh"), pytest.param(8, True, id="old")])
def test_is_stale(alpine_db: Path, tmp_path: Path, days: int, stale: bool) -> None:
    path = _copy(alpine_db, tmp_path)
    built = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _set_meta(path, "built", built)
    with VulnDB.open(path) as db:
        assert db.is_stale() is stale
        assert db.is_stale(timedelta(days=days + 1)) is False
        assert db.status().to_dict()["built"] == built
