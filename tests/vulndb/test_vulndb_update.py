"""``db update`` against a real HTTP server on loopback serving the shared advisory snapshots
under the official URL layouts (ETag / If-None-Match and Range supported, as the real hosts do)."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from garrison.core.errors import ConfigError, RegistryError
from garrison.vulndb.db import VulnDB
from garrison.vulndb.update import update

NVD_PATH = "/nvd/rest/json/cves/2.0"


@dataclass
class ServerState:
    root: Path
    nvd_doc: dict[str, Any]
    nvd_page: int = 10
    log: list[dict[str, Any]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)  # paths answered with 500
    truncate_once: set[str] = field(default_factory=set)  # paths whose next body is cut in half


def _handler(state: ServerState) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(state.root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, etag: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            entry = {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers)}
            state.log.append(entry)
            if url.path in state.fail:
                entry["status"] = 500
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR)
                return
            if url.path == NVD_PATH:
                start = int(parse_qs(url.query).get("startIndex", ["0"])[0])
                vulns = state.nvd_doc["vulnerabilities"]
                page = dict(state.nvd_doc, startIndex=start, totalResults=len(vulns),
                            vulnerabilities=vulns[start : start + state.nvd_page])  # fmt: skip
                page["resultsPerPage"] = len(page["vulnerabilities"])
                body = json.dumps(page).encode()
                entry["status"] = 200
                self._send(200, body, '"nvd"')
                return
            file = state.root / url.path.lstrip("/")
            if not file.is_file():
                entry["status"] = 404
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            body = file.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                entry["status"] = 304
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and self.headers.get("If-Range") == etag:
                offset = int(rng[6:].rstrip("-"))
                entry["status"] = 206
                extra = {"Content-Range": f"bytes {offset}-{len(body) - 1}/{len(body)}"}
                self._send(206, body[offset:], etag, extra)
                return
            if url.path in state.truncate_once:
                state.truncate_once.discard(url.path)
                entry["status"] = "cut"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            entry["status"] = 200
            self._send(200, body, etag)

    return Handler


@pytest.fixture(scope="module")
def server_root(tmp_path_factory: pytest.TempPathFactory, advisories_dir: Path) -> Path:
    """The shared files laid out under the official URL paths (secdb YAML served in its JSON form)."""
    root = tmp_path_factory.mktemp("www")
    for eco in ("crates.io",):
        (root / "osv" / eco).mkdir(parents=True)
        shutil.copy(advisories_dir / "osv" / eco / "all.zip", root / "osv" / eco / "all.zip")
    (root / "tracker" / "data").mkdir(parents=True)
    shutil.copy(advisories_dir / "debian" / "tracker-sample.json", root / "tracker" / "data" / "json")
    for kind in ("DSA", "DLA"):
        (root / "salsa" / "data" / kind).mkdir(parents=True)
        shutil.copy(advisories_dir / "debian" / f"{kind}.list", root / "salsa" / "data" / kind / "list")
    for release in ("v3.10", "v3.11"):
        (root / "alpine" / release).mkdir(parents=True)
        for repo in ("main", "community"):
            src = advisories_dir / "alpine" / release / f"{repo}.yaml"
            doc = yaml.load(src.read_bytes(), Loader=yaml.BaseLoader)
            (root / "alpine" / release / f"{repo}.json").write_text(json.dumps(doc))
    return root


@pytest.fixture
def server(server_root: Path, assets_dir: Path) -> Iterator[tuple[str, ServerState]]:
    state = ServerState(server_root, json.loads((assets_dir / "nvd" / "full-page.json").read_text()))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _bases(url: str) -> dict[str, str]:
    return {
        "osv": f"{url}/osv",
        "debian-tracker": url,
        "debian-dsa": f"{url}/salsa",
        "debian-dla": f"{url}/salsa",
        "alpine": f"{url}/alpine",
        "nvd": url + NVD_PATH,
    }


def _run(db: Path, url: str, sources: list[str] | None = None, **kw: Any) -> Any:
    return update(
        db,
        sources=sources,
        base_urls=_bases(url),
        osv_ecosystems=("crates.io",),
        alpine_releases=("v3.10", "v3.11", "v3.99"),
        nvd_delay=0.0,
        **kw,
    )


def _feeds(db: Path) -> dict[str, int]:
    with VulnDB.open(db) as vdb:
        return {s.name: s.records for s in vdb.status().sources}


def test_update_all_then_conditional(tmp_path: Path, server: tuple[str, ServerState], advisories_dir: Path) -> None:
    url, state = server
    db = tmp_path / "db" / "garrison.db"
    first = _run(db, url, nvd_api_key="k3y")
    statuses = {f.url: f.status for fs in first.downloads.values() for f in fs}
    assert statuses[f"{url}/alpine/v3.99/main.json"] == "missing"
    assert {s for u, s in statuses.items() if "v3.99" not in u} == {"downloaded"}
    feeds = _feeds(db)
    with zipfile.ZipFile(advisories_dir / "osv" / "crates.io" / "all.zip") as zf:
        assert feeds["osv:crates.io"] == len(zf.namelist())
    assert {"debian-tracker", "debian-dsa", "debian-dla", "nvd", "alpine-secdb:v3.11/main"} <= set(feeds)
    assert feeds["nvd"] == len(state.nvd_doc["vulnerabilities"])
    nvd_requests = [e for e in state.log if e["path"] == NVD_PATH]
    assert [int(e["query"]["startIndex"][0]) for e in nvd_requests] == list(range(0, 38, 10))
    assert all(e["headers"].get("apiKey") == "k3y" for e in nvd_requests)

    state.log.clear()
    second = _run(db, url)
    again = {f.url: f.status for fs in second.downloads.values() for f in fs}
    for u, s in again.items():
        if NVD_PATH in u:
            assert s == "downloaded"
        elif "v3.99" not in u:
            assert s == "not-modified", u
    conditional = [e for e in state.log if e["status"] == 304]
    assert conditional and all("If-None-Match" in e["headers"] for e in conditional)
    assert _feeds(db) == feeds


def test_failed_source_is_reported_and_others_imported(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    db = tmp_path / "garrison.db"
    state.fail.add("/salsa/data/DLA/list")
    with pytest.raises(RegistryError, match="debian-dla") as err:
        _run(db, url, sources=["debian-tracker", "debian-dla"])
    assert "resume" in str(err.value) and "\n" not in str(err.value)
    assert set(_feeds(db)) == {"debian-tracker"}
    state.fail.clear()
    state.log.clear()
    _run(db, url, sources=["debian-tracker", "debian-dla"])
    assert set(_feeds(db)) == {"debian-tracker", "debian-dla"}
    assert {e["path"]: e["status"] for e in state.log}["/tracker/data/json"] == 304


def test_interrupted_download_resumes_with_range(
    tmp_path: Path, server: tuple[str, ServerState], advisories_dir: Path
) -> None:
    url, state = server
    db = tmp_path / "garrison.db"
    state.truncate_once.add("/osv/crates.io/all.zip")
    with pytest.raises(RegistryError, match="osv"):
        _run(db, url, sources=["osv:crates.io"])
    part = tmp_path / "downloads" / "osv" / "crates.io" / "all.zip.part"
    assert part.is_file() and part.stat().st_size > 0
    size = part.stat().st_size
    state.log.clear()
    summary = _run(db, url, sources=["osv:crates.io"])
    assert [f.status for f in summary.downloads["osv"]] == ["resumed"]
    ranged = [e for e in state.log if e["status"] == 206]
    assert [e["headers"]["Range"] for e in ranged] == [f"bytes={size}-"]
    got = tmp_path / "downloads" / "osv" / "crates.io" / "all.zip"
    assert got.read_bytes() == (advisories_dir / "osv" / "crates.io" / "all.zip").read_bytes()
    assert not part.exists()
    assert "osv:crates.io" in _feeds(db)


def test_nvd_resumes_from_last_complete_page(tmp_path: Path, server: tuple[str, ServerState]) -> None:
    url, state = server
    db = tmp_path / "garrison.db"
    sleeps: list[float] = []
    calls = {"n": 0}

    def sleep(seconds: float) -> None:  # called between pages: make the third page fail
        sleeps.append(seconds)
        calls["n"] += 1
        if calls["n"] == 2:
            state.fail.add(NVD_PATH)

    with pytest.raises(RegistryError, match="nvd"):
        update(db, sources=["nvd"], base_urls=_bases(url), nvd_delay=1.5, sleep=sleep)
    assert sleeps == [1.5, 1.5]
    state.fail.clear()
    state.log.clear()
    update(db, sources=["nvd"], base_urls=_bases(url), nvd_delay=0.0, sleep=lambda s: None)
    starts = [int(e["query"]["startIndex"][0]) for e in state.log if e["path"] == NVD_PATH]
    assert starts == [20, 30]
    assert _feeds(db)["nvd"] == len(state.nvd_doc["vulnerabilities"])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"sources": ["gentoo"]}, "unknown source 'gentoo'", id="source"),
        pytest.param({"base_urls": {"gentoo": "http://x"}}, "unknown source 'gentoo'", id="mirror"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        update(tmp_path / "g.db", **kwargs)


def test_unreachable_host(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="debian-tracker"):
        update(tmp_path / "g.db", sources=["debian-tracker"], base_urls={"debian-tracker": "http://127.0.0.1:9"})
    assert not (tmp_path / "g.db").exists()
