"""Alpine secdb (``v3.N/main.yaml`` or the JSON secdb.alpinelinux.org serves) -> Advisories.

``{distroversion: v3.18, reponame: main, packages: [{pkg: {name, secfixes: {<fixed version>:
[CVE-..., "CVE-... XSA-..."]}}}]}``. Packages are origin (source) packages; the ecosystem is
``Alpine:v3.N``; a fixed version of ``0`` means the release was never affected. YAML is read with
the base loader so every scalar stays the exact string the file holds (``1.10`` is not a float).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import InputError
from garrison.vulndb.ingest._common import as_dict, as_list, load_json, read_bytes
from garrison.vulndb.records import NOT_AFFECTED, Advisory, Affected, Range

logger = logging.getLogger(__name__)

SOURCE = "alpine-secdb"
VULN_URL = "https://security.alpinelinux.org/vuln/"
SECDB_URL = "https://secdb.alpinelinux.org/"

_Loader: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


def looks_like_secdb(doc: Any) -> bool:
    return isinstance(doc, dict) and "packages" in doc and ("distroversion" in doc or "reponame" in doc)


def load_document(data: bytes, name: str) -> Any:
    """Decode a secdb file: JSON when it looks like JSON, YAML otherwise."""
    if data.lstrip()[:1] in (b"{", b"["):
        return load_json(data, name)
    try:
        return yaml.load(data, Loader=_Loader)  # noqa: S506 - the base loader builds only str/list/dict
    except yaml.YAMLError as exc:
        raise InputError(
            f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", input_name=name
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"invalid YAML: {exc}", input_name=name) from None


def _ids(entry: Any, where: str, name: str) -> tuple[str, list[str]] | None:
    if not isinstance(entry, str):
        raise InputError(f"{where} must hold id strings, not {type(entry).__name__}", input_name=name)
    tokens = entry.split()
    if not tokens:
        return None
    primary = next((t for t in tokens if t.startswith("CVE-")), tokens[0])
    return primary, [t for t in tokens if t != primary]


def parse_secdb(doc: Any, name: str, release_hint: str = "") -> Iterator[Advisory]:
    doc = as_dict(doc, "secdb", name)
    release = doc.get("distroversion") or release_hint
    if not isinstance(release, str) or not release:
        raise InputError("no distroversion", input_name=name)
    release = release if release.startswith("v") or release == "edge" else f"v{release}"
    repo = doc.get("reponame") or ""
    if not isinstance(repo, str):
        raise InputError("reponame must be a string", input_name=name)
    feed = f"{SOURCE}:{release}/{repo}" if repo else f"{SOURCE}:{release}"
    ecosystem = f"Alpine:{release}"
    packages = doc.get("packages")
    if packages in ("", None):  # an empty repository ("packages:" with nothing under it)
        packages = []
    for i, item in enumerate(as_list(packages, "packages", name)):
        item = as_dict(item, f"packages[{i}]", name)
        pkg = as_dict(item.get("pkg"), f"packages[{i}].pkg", name)
        pname = pkg.get("name")
        if not isinstance(pname, str) or not pname:
            raise InputError(f"packages[{i}].pkg.name must be a non-empty string", input_name=name)
        secfixes = pkg.get("secfixes")
        if secfixes in ("", None):
            continue
        secfixes = as_dict(secfixes, f"{pname}.secfixes", name)
        by_id: dict[str, Advisory] = {}
        for version, ids in secfixes.items():
            where = f"{pname}.secfixes[{version}]"
            if not version:
                raise InputError(f"{where}: empty version", input_name=name)
            if ids in ("", None):
                continue
            for entry in as_list(ids, where, name):
                parsed = _ids(entry, where, name)
                if parsed is None:
                    continue
                vid, aliases = parsed
                adv = by_id.get(vid)
                if adv is None:
                    adv = by_id[vid] = Advisory(id=vid, source=SOURCE, feed=feed, url=VULN_URL + vid)
                adv.aliases.extend(a for a in aliases if a not in adv.aliases)
                never = version == "0"
                adv.affected.append(
                    Affected(
                        ecosystem=ecosystem,
                        package=pname.lower(),
                        ranges=[] if never else [Range("ECOSYSTEM", [("introduced", "0"), ("fixed", version)])],
                        status=NOT_AFFECTED if never else "fixed",
                        advisory=vid,
                        advisory_url=VULN_URL + vid,
                    )
                )
        yield from by_id.values()


def secdb_url(path: Path, doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("distroversion"), str) and isinstance(doc.get("reponame"), str):
        return f"{SECDB_URL}{doc['distroversion']}/{doc['reponame']}.json"
    return ""


def read_secdb(path: Path) -> Iterator[Advisory]:
    name = str(path)
    yield from parse_secdb(load_document(read_bytes(path), name), name, path.parent.name)
