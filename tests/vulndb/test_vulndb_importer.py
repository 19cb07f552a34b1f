"""``db import``: sniffing a whole advisory tree, per-feed replacement, atomicity, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

from garrison.core.errors import InputError, NotFoundError
from garrison.vulndb.db import VulnDB
from garrison.vulndb.importer import ImportSummary, import_path, import_paths


def _zip_counts(path: Path) -> tuple[int, int]:
    with zipfile.ZipFile(path) as zf:
        docs = [json.loads(zf.read(n)) for n in zf.namelist()]
    return len(docs), sum(1 for d in docs if "withdrawn" in d)


def test_whole_tree(full_import: tuple[Path, ImportSummary], advisories_dir: Path) -> None:
    db_path, summary = full_import
    assert summary.seconds < 60, f"import of the whole tree took {summary.seconds:.1f}s"
    feeds = summary.feeds
    for zip_path in sorted((advisories_dir / "osv").glob("*/all.zip")):
        records, withdrawn = _zip_counts(zip_path)
        feed = feeds[f"osv:{zip_path.parent.name}"]
        assert (feed.records, feed.withdrawn) == (records, withdrawn)
    for name, feed_name in (("DSA.list", "debian-dsa"), ("DLA.list", "debian-dla")):
        text = (advisories_dir / "debian" / name).read_text(encoding="utf-8")
        assert feeds[feed_name].records == len(re.findall(r"^\[", text, re.M))
    tracker = json.loads((advisories_dir / "debian" / "tracker-sample.json").read_text())
    assert feeds["debian-tracker"].records == sum(len(v) for v in tracker.values())
    yamls = sorted((advisories_dir / "alpine").rglob("*.yaml"))
    assert {f for f in feeds if f.startswith("alpine-secdb:")} == {
        f"alpine-secdb:{p.parent.name}/{p.stem}" for p in yamls if "secfixes" in p.read_text()
    }
    # everything that is not advisory data is reported as skipped, and nothing else is
    data_files = {*map(str, (advisories_dir / "osv").glob("*/all.zip")), *map(str, yamls)}
    data_files |= {str(advisories_dir / "debian" / n) for n in ("DSA.list", "DLA.list", "tracker-sample.json")}
    every = {str(p) for p in advisories_dir.rglob("*") if p.is_file()}
    assert set(summary.files) == data_files
    assert set(summary.skipped) == every - data_files
    with VulnDB.open(db_path) as db:
        st = db.status()
        assert {s.name: s.records for s in st.sources} == {k: v.records for k, v in feeds.items()}
        assert sum(s.affected for s in st.sources) == db.conn.execute("SELECT count(*) FROM affected").fetchone()[0]


def _affected_count(db_path: Path, feed_prefix: str) -> int:
    with VulnDB.open(db_path) as db:
        row = db.conn.execute("SELECT count(*) FROM affected WHERE feed LIKE ?", (feed_prefix + "%",)).fetchone()
    return int(row[0])


def test_reimport_replaces_only_its_feed(tmp_path: Path, advisories_dir: Path) -> None:
    db = tmp_path / "g.db"
    import_paths(db, [advisories_dir / "alpine", advisories_dir / "debian" / "DLA.list"])
    dla = _affected_count(db, "debian-dla")
    alpine = _affected_count(db, "alpine-secdb")
    v311 = _affected_count(db, "alpine-secdb:v3.11/main")
    again = import_paths(db, [advisories_dir / "alpine" / "v3.11" / "main.yaml"])
    assert list(again.feeds) == ["alpine-secdb:v3.11/main"]
    assert again.feeds["alpine-secdb:v3.11/main"].affected == v311
    assert _affected_count(db, "debian-dla") == dla
    assert _affected_count(db, "alpine-secdb") == alpine


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("broken.json", b'{"id": "PYSEC-1", "affected": [', id="truncated-json"),
        pytest.param("bad-osv.json", b'{"id": "PYSEC-1", "affected": {"x": 1}}', id="bad-osv"),
        pytest.param("DSA.list", b"[01 Jan 2020] DSA-1-1 x - y\n\tnonsense\n", id="bad-list"),
        pytest.param("main.yaml", b"distroversion: v3.1\npackages: {}\n", id="bad-secdb"),
    ],
)
def test_malformed_file_fails_whole_import(tmp_path: Path, advisories_dir: Path, name: str, content: bytes) -> None:
    db = tmp_path / "db" / "g.db"
    import_paths(db, [advisories_dir / "debian" / "DLA.list"])
    before = _digest(db)
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    shutil.copy(advisories_dir / "alpine" / "v3.10" / "main.yaml", tree / "a" / "good.yaml")
    (tree / "z").mkdir()
    (tree / "z" / name).write_bytes(content)
    with pytest.raises(InputError) as err:
        import_paths(db, [tree])
    assert name in str(err.value)
    assert _digest(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["g.db"]  # no temp file left behind


def test_import_path_is_one_transaction(tmp_path: Path, advisories_dir: Path) -> None:
    db = VulnDB.create(tmp_path / "g.db")
    with db:
        first = import_path(db, advisories_dir / "alpine" / "v3.9")
        count = db.conn.execute("SELECT count(*) FROM affected").fetchone()[0]
        assert count == sum(f.affected for f in first.feeds.values()) > 0
        bad = tmp_path / "bad"
        shutil.copytree(advisories_dir / "alpine" / "v3.10", bad)
        (bad / "zz.json").write_text("{not json")
        with pytest.raises(InputError, match=r"zz\.json"):
            import_path(db, bad)
        assert db.conn.execute("SELECT count(*) FROM affected").fetchone()[0] == count
        assert {r[0] for r in db.conn.execute("SELECT name FROM sources")} == set(first.feeds)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        import_paths(tmp_path / "g.db", [tmp_path / "nope"])


def test_corrupt_existing_db_is_rebuilt(tmp_path: Path, advisories_dir: Path) -> None:
    db = tmp_path / "g.db"
    db.write_bytes(b"this is not sqlite" * 100)
    summary = import_paths(db, [advisories_dir / "alpine" / "v3.4"])
    with VulnDB.open(db) as vdb:
        assert {s.name for s in vdb.status().sources} == set(summary.feeds)


def test_summary_and_status_serialise(tmp_path: Path, advisories_dir: Path) -> None:
    """What ``garrison db import`` and ``db status --format json`` print."""
    db = tmp_path / "g.db"
    summary = json.loads(json.dumps(import_paths(db, [advisories_dir / "debian"]).to_dict()))
    assert set(summary["feeds"]) == {"debian-dsa", "debian-dla", "debian-tracker"}
    assert summary["skipped"] == sorted(
        str(p) for p in (advisories_dir / "debian").iterdir() if p.name in ("SOURCE", "LICENSE.vunnel")
    )
    with VulnDB.open(db) as vdb:
        status = json.loads(json.dumps(vdb.status().to_dict()))
    assert {s["name"]: s["records"] for s in status["sources"]} == {
        k: v["records"] for k, v in summary["feeds"].items()
    }
    assert status["newest"] == max(v["newest"] for v in summary["feeds"].values() if v["newest"])


def test_sqlite_file_is_a_valid_database(osv_db: Path) -> None:
    conn = sqlite3.connect(osv_db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_gzipped_nvd_and_single_osv_record(tmp_path: Path, assets_dir: Path, advisories_dir: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    page = (assets_dir / "nvd" / "full-page.json").read_bytes()
    (tree / "nvdcve-page.json.gz").write_bytes(gzip.compress(page))
    with zipfile.ZipFile(advisories_dir / "osv" / "Go" / "all.zip") as zf:
        name = sorted(zf.namelist())[0]
        (tree / name).write_bytes(zf.read(name))
    summary = import_paths(tmp_path / "g.db", [tree])
    assert summary.feeds["nvd"].records == len(json.loads(page)["vulnerabilities"])
    assert summary.feeds["osv:Go"].records == 1
    assert summary.skipped == []
