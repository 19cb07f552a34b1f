"""``garrison db update``: download the public advisory sources, then import them.

Sources (``--source`` names): ``osv`` (osv.dev per-ecosystem ``all.zip``; ``osv:<Ecosystem>``
for one), ``debian-tracker`` (tracker JSON), ``debian-dsa`` / ``debian-dla`` (advisory lists from
the tracker repository), ``alpine`` (secdb JSON per release and repository), ``nvd`` (CVE API 2.0,
paged; ``$NVD_API_KEY`` raises the rate limit). Every source's base URL can be overridden (mirrors,
tests). Downloads are cached under ``<db dir>/downloads`` with their validators, so an update
sends conditional requests and a failed run resumes where it stopped: sources already fetched are
not fetched again, a half-downloaded file continues with a Range request, NVD continues from the
last complete page. The import that follows is atomic (see :mod:`garrison.vulndb.importer`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from garrison import __version__
from garrison.core.errors import ConfigError, GarrisonError, RegistryError
from garrison.vulndb.download import Fetched, fetch
from garrison.vulndb.importer import ImportSummary, import_paths
from garrison.vulndb.ingest._common import load_json, read_bytes
from garrison.vulndb.sources import ALPINE_BASE, DEBIAN_LISTS_BASE, NVD_API, OSV_BASE

logger = logging.getLogger(__name__)

DEFAULT_OSV_ECOSYSTEMS = (
    "PyPI", "npm", "Go", "crates.io", "Maven", "RubyGems", "Packagist", "NuGet", "AlmaLinux", "Rocky Linux",
)  # fmt: skip
DEFAULT_ALPINE_RELEASES = (*(f"v3.{n}" for n in range(12, 23)), "edge")
ALPINE_REPOS = ("main", "community")
SOURCE_NAMES = ("osv", "debian-tracker", "debian-dsa", "debian-dla", "alpine", "nvd")

DEFAULT_BASES = {
    "osv": OSV_BASE,
    "debian-tracker": "https://security-tracker.debian.org",
    "debian-dsa": DEBIAN_LISTS_BASE,
    "debian-dla": DEBIAN_LISTS_BASE,
    "alpine": ALPINE_BASE,
    "nvd": NVD_API,
}

NVD_PAGE = 2000
#: Seconds between NVD API requests: 5 requests / 30 s without a key, 50 / 30 s with one.
NVD_DELAY = 6.0
NVD_DELAY_WITH_KEY = 0.6


@dataclass(slots=True)
class UpdateSummary:
    downloads: dict[str, list[Fetched]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    imported: ImportSummary | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "downloads": {k: [f.to_dict() for f in v] for k, v in sorted(self.downloads.items())},
            "failed": dict(sorted(self.failed.items())),
            "import": self.imported.to_dict() if self.imported else None,
        }


@dataclass(slots=True)
class _Ctx:
    client: httpx.Client
    cache: Path
    bases: dict[str, str]
    osv_ecosystems: tuple[str, ...]
    alpine_releases: tuple[str, ...]
    nvd_key: str
    nvd_delay: float
    sleep: Callable[[float], None]


def _selected(sources: Iterable[str] | None, ecosystems: tuple[str, ...]) -> tuple[list[str], tuple[str, ...]]:
    if not sources:
        return list(SOURCE_NAMES), ecosystems
    names: list[str] = []
    chosen_ecos: list[str] = []
    for src in sources:
        if src.startswith("osv:"):
            chosen_ecos.append(src[4:])
            src = "osv"
        elif src == "debian":
            names.extend(n for n in ("debian-tracker", "debian-dsa", "debian-dla") if n not in names)
            continue
        if src not in SOURCE_NAMES:
            raise ConfigError(f"unknown source {src!r}; known: {', '.join(SOURCE_NAMES)}, osv:<Ecosystem>, debian")
        if src not in names:
            names.append(src)
    return names, tuple(chosen_ecos) or ecosystems


def _osv(ctx: _Ctx) -> list[Fetched]:
    base = ctx.bases["osv"].rstrip("/")
    return [
        fetch(ctx.client, f"{base}/{eco}/all.zip", ctx.cache / "osv" / eco / "all.zip") for eco in ctx.osv_ecosystems
    ]


def _debian_tracker(ctx: _Ctx) -> list[Fetched]:
    url = ctx.bases["debian-tracker"].rstrip("/") + "/tracker/data/json"
    return [fetch(ctx.client, url, ctx.cache / "debian" / "tracker.json")]


def _debian_list(kind: str) -> Callable[[_Ctx], list[Fetched]]:
    def run(ctx: _Ctx) -> list[Fetched]:
        base = ctx.bases[f"debian-{kind.lower()}"].rstrip("/")
        return [fetch(ctx.client, f"{base}/data/{kind}/list", ctx.cache / "debian" / f"{kind}.list")]

    return run


def _alpine(ctx: _Ctx) -> list[Fetched]:
    base = ctx.bases["alpine"].rstrip("/")
    out = []
    for release in ctx.alpine_releases:
        for repo in ALPINE_REPOS:
            got = fetch(
                ctx.client,
                f"{base}/{release}/{repo}.json",
                ctx.cache / "alpine" / release / f"{repo}.json",
                missing_ok=True,
            )
            out.append(got)
    if not any(f.status != "missing" for f in out):
        raise RegistryError("no secdb file found for any release", input_name=base)
    return out


def _nvd(ctx: _Ctx) -> list[Fetched]:
    """Page through the CVE API; complete pages are kept, so a failed run resumes."""
    url = ctx.bases["nvd"]
    folder = ctx.cache / "nvd"
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder / "state.json"
    state: dict[str, Any] = {}
    if state_file.is_file():
        try:
            state = json.loads(state_file.read_text())
        except ValueError:
            state = {}
    if state.get("url") != url or state.get("complete") or not isinstance(state.get("next"), int):
        for old in folder.glob("page-*.json*"):
            old.unlink()
        state = {"url": url, "pages": 0, "next": 0, "total": None, "complete": False}
    headers = {"apiKey": ctx.nvd_key} if ctx.nvd_key else {}
    out = [Fetched(url, folder / f"page-{n:05d}.json", "cached") for n in range(state["pages"])]
    first = True
    while state["total"] is None or state["next"] < state["total"]:
        if not first:
            ctx.sleep(ctx.nvd_delay)
        first = False
        dest = folder / f"page-{state['pages']:05d}.json"
        params = {"startIndex": str(state["next"]), "resultsPerPage": str(NVD_PAGE)}
        got = fetch(ctx.client, url, dest, params=params, headers=headers, conditional=False)
        doc = load_json(read_bytes(dest), str(dest))
        total = doc.get("totalResults") if isinstance(doc, dict) else None
        per_page = doc.get("resultsPerPage") if isinstance(doc, dict) else None
        if not isinstance(total, int) or not isinstance(per_page, int) or per_page < 0:
            dest.unlink()
            raise RegistryError("response without totalResults/resultsPerPage", input_name=url)
        out.append(got)
        state["total"] = total
        state["pages"] += 1
        state["next"] += per_page
        state_file.write_text(json.dumps(state))
        if per_page == 0:
            break
    state["complete"] = True
    state_file.write_text(json.dumps(state))
    return out


_RUNNERS: dict[str, Callable[[_Ctx], list[Fetched]]] = {
    "osv": _osv,
    "debian-tracker": _debian_tracker,
    "debian-dsa": _debian_list("DSA"),
    "debian-dla": _debian_list("DLA"),
    "alpine": _alpine,
    "nvd": _nvd,
}


def _cached_files(name: str, cache: Path) -> list[Path]:
    """Files a source left in the cache by earlier runs (used when today's download fails)."""
    folder = {"osv": "osv", "alpine": "alpine", "nvd": "nvd"}.get(name)
    if folder is not None:
        root = cache / folder
        if name == "nvd":
            state = root / "state.json"
            try:
                complete = json.loads(state.read_text()).get("complete") is True
            except (OSError, ValueError, AttributeError):
                complete = False
            pages = sorted(p for p in root.glob("page-*.json") if not p.name.endswith(".meta.json"))
            return pages if complete else []
        suffix = "*.zip" if name == "osv" else "*.json"
        return sorted(p for p in root.rglob(suffix) if not p.name.endswith(".meta.json"))
    single = {
        "debian-tracker": cache / "debian" / "tracker.json",
        "debian-dsa": cache / "debian" / "DSA.list",
        "debian-dla": cache / "debian" / "DLA.list",
    }[name]
    return [single] if single.is_file() else []


def update(
    db_path: Path | str,
    sources: Iterable[str] | None = None,
    base_urls: dict[str, str] | None = None,
    *,
    osv_ecosystems: Iterable[str] = DEFAULT_OSV_ECOSYSTEMS,
    alpine_releases: Iterable[str] = DEFAULT_ALPINE_RELEASES,
    nvd_api_key: str | None = None,
    nvd_delay: float | None = None,
    cache_dir: Path | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> UpdateSummary:
    """Download the selected sources and import them into ``db_path``; raises RegistryError
    naming the sources that could not be fetched (after importing the others)."""
    db_path = Path(db_path)
    names, ecos = _selected(sources, tuple(osv_ecosystems))
    bases = dict(DEFAULT_BASES)
    for key, value in (base_urls or {}).items():
        if key not in bases:
            raise ConfigError(f"unknown source {key!r} for a base URL; known: {', '.join(sorted(bases))}")
        bases[key] = value
    key = nvd_api_key if nvd_api_key is not None else os.environ.get("NVD_API_KEY", "")
    cache = cache_dir or db_path.parent / "downloads"
    own_client = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(60.0, connect=15.0),
        follow_redirects=True,
        headers={"User-Agent": f"garrison/{__version__}"},
    )
    ctx = _Ctx(
        client=http,
        cache=cache,
        bases=bases,
        osv_ecosystems=ecos,
        alpine_releases=tuple(alpine_releases),
        nvd_key=key,
        nvd_delay=nvd_delay if nvd_delay is not None else (NVD_DELAY_WITH_KEY if key else NVD_DELAY),
        sleep=sleep,
    )
    summary = UpdateSummary()
    files: list[Path] = []
    try:
        for name in names:
            try:
                got = _RUNNERS[name](ctx)
            except GarrisonError as exc:
                logger.warning("update of %s failed: %s", name, exc)
                summary.failed[name] = str(exc)
                files.extend(_cached_files(name, cache))
                continue
            summary.downloads[name] = got
            files.extend(f.path for f in got if f.status != "missing")
    finally:
        if own_client:
            http.close()
    if files:
        summary.imported = import_paths(db_path, files)
    if summary.failed:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(summary.failed.items()))
        raise RegistryError(
            f"could not update {', '.join(sorted(summary.failed))} ({detail}); run the update again to resume"
        )
    return summary
