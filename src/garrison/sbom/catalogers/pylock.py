"""Python lock files in source trees: pinned requirements files, poetry.lock, Pipfile.lock, uv.lock.

* ``requirements*.txt`` (and ``*.txt`` under a ``requirements/`` folder): pip's line format.
  Logical lines are joined at trailing backslashes, comments (``#`` at the start or after
  whitespace) dropped, options (``-r``, ``-c``, ``-e``, ``--index-url`` ...) ignored, and the
  per-requirement options (``--hash=...``) split off before the requirement itself is parsed
  with :class:`packaging.requirements.Requirement`. pip has no public parser for this file
  format, hence the small line reader here. Only exact pins (``==``/``===`` without a
  wildcard) name a version; unpinned, URL and path requirements are skipped.
* ``poetry.lock`` (TOML): ``category = "dev"`` (lock format 1.x) or ``groups`` without
  ``main`` (2.x) mark dev packages, ``optional = true`` marks extras-only ones.
* ``Pipfile.lock`` (JSON): ``default`` and ``develop`` (dev) sections; entries without a
  ``version`` (editable or VCS checkouts) are skipped.
* ``uv.lock`` (TOML): ``[[package]]`` tables. Editable, virtual and directory sources are the
  project itself or local workspace members and are skipped. uv does not flag dev packages;
  they are derived from the graph: whatever the local members' ``dependencies`` reach is a
  production package, whatever only their ``optional-dependencies`` reach is optional, the
  rest (reached through ``dev-dependencies``) is dev.
"""

from __future__ import annotations

import posixpath
import re
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._lockutil import load_json_object, load_toml, read_text, str_or_none
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

if TYPE_CHECKING:  # imported where used: source trees only, and ~10 ms off every image scan's start
    from packaging.requirements import Requirement

_MAX_SIZE = 32 * 1024 * 1024
_OPTION_SPLIT = re.compile(r"(?:^|\s+)(--?[A-Za-z])")
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_URLISH = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|\.{0,2}/|[A-Za-z]:[\\/])")


def _pypi(name: str, version: str, **kwargs: Any) -> Package:
    return Package(name=name, version=version, type="pypi", **kwargs)


# -- requirements files ---------------------------------------------------------------------


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first physical line number, line) pairs with continuations joined and comments
    removed, following pip's ``join_lines`` and ``ignore_comments``: a comment ends a
    continuation."""
    buf: list[str] = []
    start = 0
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.endswith("\\") or _COMMENT.search(line):
            if _COMMENT.search(line):
                line = " " + line
            if buf:
                buf.append(line)
                yield start, _COMMENT.sub("", "".join(buf)).strip()
                buf = []
            else:
                yield no, _COMMENT.sub("", line).strip()
        else:
            if not buf:
                start = no
            buf.append(line.strip("\\"))
    if buf:
        yield start, _COMMENT.sub("", "".join(buf)).strip()


def _split_options(line: str) -> tuple[str, list[str]]:
    """(requirement text, ``--hash`` values) of one logical line."""
    m = _OPTION_SPLIT.search(line)
    if m is None:
        return line, []
    req = line[: m.start()].strip()
    hashes = re.findall(r"--hash[=\s]+(\S+)", line[m.start() :])
    return req, hashes


def pinned_version(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or specs[0].version.endswith(".*"):
        return None
    return specs[0].version


def parse_requirements(text: str, path: str) -> list[Package]:
    from packaging.requirements import InvalidRequirement, Requirement

    out: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for line_no, line in _logical_lines(text):
        if not line or line.startswith("-"):
            continue  # -r/-c includes, -e editables, --index-url and other global options
        req_text, hashes = _split_options(line)
        if not req_text or _URLISH.match(req_text):
            continue  # a local path or a bare URL: no name and version to report
        try:
            req = Requirement(req_text)
        except InvalidRequirement as err:
            message = " ".join(str(err).split())[:200]
            raise CatalogError(f"line {line_no}: invalid requirement: {message}", input_name=path) from None
        if req.url:
            continue
        version = pinned_version(req)
        key = (_canonical(req.name), version or "")
        if version is None or key in seen:
            continue
        seen.add(key)
        meta: dict[str, Any] = {}
        if req.extras:
            meta["extras"] = sorted(req.extras)
        if req.marker is not None:
            meta["markers"] = str(req.marker)
        if hashes:
            meta["hashes"] = hashes
        out.append(_pypi(req.name, version, metadata=meta))
    return out


def is_requirements_path(path: str) -> bool:
    base = posixpath.basename(path)
    if not base.endswith(".txt"):
        return False
    if base.startswith("requirements"):
        return True
    return posixpath.basename(posixpath.dirname(path)) == "requirements"


# -- poetry.lock ----------------------------------------------------------------------------


def _entries(doc: dict[str, Any], path: str) -> list[dict[str, Any]]:
    entries = doc.get("package", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CatalogError("'package' is not an array of tables", input_name=path)
    return entries


def _name_version(entry: dict[str, Any], index: int, path: str) -> tuple[str, str]:
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, str) or not name:
        raise CatalogError(f"[[package]] #{index} has no name", input_name=path)
    if not isinstance(version, str) or not version:
        raise CatalogError(f"[[package]] #{index} ({name}) has no version", input_name=path)
    return name, version


def parse_poetry_lock(doc: dict[str, Any], path: str) -> list[Package]:
    out: list[Package] = []
    for index, entry in enumerate(_entries(doc, path)):
        name, version = _name_version(entry, index, path)
        groups = entry.get("groups")
        # lock format 2.x lists the groups; 1.x has a category
        dev = "main" not in groups if isinstance(groups, list) and groups else entry.get("category") == "dev"
        meta: dict[str, Any] = {}
        source = entry.get("source")
        if isinstance(source, dict):
            if source.get("type") in ("directory", "file") and entry.get("develop"):
                continue  # the project itself or a local path installed in develop mode
            meta["source"] = {k: v for k, v in source.items() if isinstance(v, str)}
        if isinstance(groups, list):
            meta["groups"] = [g for g in groups if isinstance(g, str)]
        out.append(_pypi(name, version, dev=dev, optional=entry.get("optional") is True, metadata=meta))
    return out


# -- Pipfile.lock ---------------------------------------------------------------------------


def parse_pipfile_lock(doc: dict[str, Any], path: str) -> list[Package]:
    out: list[Package] = []
    for section, dev in (("default", False), ("develop", True)):
        entries = doc.get(section, {})
        if not isinstance(entries, dict):
            raise CatalogError(f"'{section}' is not an object", input_name=path)
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                raise CatalogError(f"{section}.{name} is not an object", input_name=path)
            spec = entry.get("version")
            if not isinstance(spec, str):
                continue  # editable, path or VCS requirement
            version = spec.removeprefix("===").removeprefix("==").strip()
            if version == spec.strip() or not version:
                continue  # not a pin
            meta: dict[str, Any] = {}
            hashes = entry.get("hashes")
            if isinstance(hashes, list):
                meta["hashes"] = [h for h in hashes if isinstance(h, str)]
            markers = str_or_none(entry.get("markers"))
            if markers:
                meta["markers"] = markers
            out.append(_pypi(name, version, dev=dev, metadata=meta))
    return out


# -- uv.lock --------------------------------------------------------------------------------

_LOCAL_SOURCES = ("editable", "virtual", "directory")


def _dep_names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [d["name"] for d in value if isinstance(d, dict) and isinstance(d.get("name"), str)]


def _grouped_dep_names(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return []
    out: list[str] = []
    for deps in value.values():
        out.extend(_dep_names(deps))
    return out


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_uv_lock(doc: dict[str, Any], path: str) -> list[Package]:
    entries = _entries(doc, path)
    graph: dict[str, list[str]] = {}
    locals_: list[dict[str, Any]] = []
    kept: list[tuple[dict[str, Any], str, str]] = []
    for index, entry in enumerate(entries):
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise CatalogError(f"[[package]] #{index} has no name", input_name=path)
        key = _canonical(name)
        graph.setdefault(key, []).extend(_canonical(n) for n in _dep_names(entry.get("dependencies")))
        # an extra of a dependency pulls in that dependency's optional dependencies
        graph[key].extend(_canonical(n) for n in _grouped_dep_names(entry.get("optional-dependencies")))
        source = entry.get("source")
        if isinstance(source, dict) and any(k in source for k in _LOCAL_SOURCES):
            locals_.append(entry)
            continue
        version = entry.get("version")
        if not isinstance(version, str) or not version:
            raise CatalogError(f"[[package]] #{index} ({name}) has no version", input_name=path)
        kept.append((entry, name, version))

    def reach(roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        queue = deque(_canonical(r) for r in roots)
        while queue:
            n = queue.popleft()
            if n in seen:
                continue
            seen.add(n)
            queue.extend(graph.get(n, ()))
        return seen

    prod = reach(n for e in locals_ for n in _dep_names(e.get("dependencies")))
    optional = reach(n for e in locals_ for n in _grouped_dep_names(e.get("optional-dependencies")))
    has_roots = bool(locals_)
    out: list[Package] = []
    for entry, name, version in kept:
        key = _canonical(name)
        source = entry.get("source")
        meta: dict[str, Any] = {}
        if isinstance(source, dict):
            meta["source"] = {k: v for k, v in source.items() if isinstance(v, str)}
        in_prod = key in prod or not has_roots
        is_optional = not in_prod and key in optional
        out.append(_pypi(name, version, dev=not in_prod and not is_optional, optional=is_optional, metadata=meta))
    return out


# -- cataloger ------------------------------------------------------------------------------

_LOCK_NAMES = {"poetry.lock", "Pipfile.lock", "uv.lock"}


@cataloger
class PythonLockCataloger(Cataloger):
    """Pinned Python dependencies declared in a source tree."""

    name = "python-lock"
    version = 1
    modes = frozenset({"fs"})
    max_size = _MAX_SIZE
    suffixes = (".txt", *(f"/{n.lower()}" for n in sorted(_LOCK_NAMES)))

    def required(self, path: str, info: FileInfo) -> bool:
        if info.size > self.max_size:
            return False
        return posixpath.basename(path) in _LOCK_NAMES or is_requirements_path(path)

    def catalog(self, inp: CatalogInput) -> list[Package]:
        base = posixpath.basename(inp.path)
        if base == "poetry.lock":
            return parse_poetry_lock(load_toml(inp, "poetry.lock"), inp.path)
        if base == "uv.lock":
            return parse_uv_lock(load_toml(inp, "uv.lock"), inp.path)
        if base == "Pipfile.lock":
            return parse_pipfile_lock(load_json_object(inp, "Pipfile.lock"), inp.path)
        return parse_requirements(read_text(inp, "requirements file"), inp.path)
