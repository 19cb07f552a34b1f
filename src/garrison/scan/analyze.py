"""Analysis of one layer (or one directory tree) and the merge of layers into an image view.

Each file is read at most once: every cataloger says from the path alone whether it wants the
file (asked only about files that pass the catalogers' combined path hints), the secret scanner
likewise, and the OS-release reader has a fixed set of paths. A layer's
result (:class:`LayerAnalysis`) depends only on the layer's content and the analyser versions,
so it is cached by diff_id (see :mod:`garrison.scan.cache`).

The merge walks layers base-first, applies whiteouts and opaque directories to the lower
layers, and attributes each package to the lowest layer from which it was continuously present
at the same path: a dpkg status file rewritten by every ``apt-get install`` keeps each package
on the layer that installed it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Protocol

from garrison.core.errors import GarrisonError
from garrison.image.interface import Entry
from garrison.model import FileInfo, OperatingSystem, Package, SecretMatch
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput, combined_prefilter
from garrison.sbom.osrelease import OS_FILES, detect_os

logger = logging.getLogger(__name__)

#: files up to this size are read into memory; larger ones are spooled to a temp file
_IN_MEMORY = 32 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024


class SecretScannerLike(Protocol):
    def wants(self, path: str, size: int) -> bool: ...

    def scan(self, path: str, content: bytes) -> list[SecretMatch]: ...


@dataclass(slots=True)
class LayerAnalysis:
    """What one layer contributes. ``files`` maps a path to the packages found in that file."""

    diff_id: str = ""
    files: dict[str, list[Package]] = field(default_factory=dict)
    os_files: dict[str, bytes] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaques: list[str] = field(default_factory=list)
    secrets: list[SecretMatch] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    newest_mtime: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "diff_id": self.diff_id,
            "files": {p: [pkg.to_dict() for pkg in pkgs] for p, pkgs in self.files.items()},
            "os_files": {p: data.decode("utf-8", "replace") for p, data in self.os_files.items()},
            "whiteouts": self.whiteouts,
            "opaques": self.opaques,
            "secrets": [s.to_dict() for s in self.secrets],
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerAnalysis:
        return cls(
            diff_id=d["diff_id"],
            files={p: [Package.from_dict(x) for x in pkgs] for p, pkgs in d["files"].items()},
            os_files={p: text.encode() for p, text in d["os_files"].items()},
            whiteouts=list(d["whiteouts"]),
            opaques=list(d["opaques"]),
            secrets=[SecretMatch(**s) for s in d["secrets"]],
            warnings=list(d["warnings"]),
        )


class _Spooled:
    """Content of a large file copied out of the tar stream once, re-openable by catalogers."""

    def __init__(self, src: IO[bytes]) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        while chunk := src.read(_COPY_CHUNK):
            self._file.write(chunk)

    def open(self) -> BinaryIO:
        self._file.seek(0)
        return _NoClose(self._file)  # type: ignore[return-value]

    def close(self) -> None:
        self._file.close()


class _NoClose:
    """A view of the spool file whose ``close`` leaves the spool open for the next cataloger."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoClose:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def analyze_entries(
    entries: Iterable[Entry],
    catalogers: list[Cataloger],
    *,
    diff_id: str = "",
    mode: str = "image",
    secrets: SecretScannerLike | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> LayerAnalysis:
    """Run every cataloger (and the secret scanner) over the entries of one layer or tree."""
    result = LayerAnalysis(diff_id=diff_id)
    maybe = combined_prefilter(catalogers)
    for entry in entries:
        if entry.whiteout is not None:
            result.whiteouts.append(entry.whiteout)
            continue
        if entry.opaque is not None:
            result.opaques.append(entry.opaque)
            continue
        info = entry.info
        if on_bytes is not None and info.size:
            on_bytes(info.size)
        if entry.type not in ("file", "hardlink") or entry.open is None:
            continue
        path = info.path
        wanted = [c for c in catalogers if c.required(path, info)] if maybe(path, info) else []
        want_os = path in OS_FILES
        want_secrets = secrets is not None and secrets.wants(path, info.size)
        if not (wanted or want_os or want_secrets):
            continue
        _analyze_file(result, entry, info, wanted, want_os, secrets if want_secrets else None, mode)
    return result


def _analyze_file(
    result: LayerAnalysis,
    entry: Entry,
    info: FileInfo,
    wanted: list[Cataloger],
    want_os: bool,
    secrets: SecretScannerLike | None,
    mode: str,
) -> None:
    assert entry.open is not None
    path = info.path
    spool: _Spooled | None = None
    data: bytes | None = None
    with entry.open() as stream:
        if info.size <= _IN_MEMORY or want_os:
            data = stream.read()
        else:
            spool = _Spooled(stream)
    try:
        if want_os and data is not None:
            result.os_files[path] = data[:65536]
        packages: list[Package] = []
        for cat in wanted:
            if info.size > cat.max_size:
                result.warnings.append(f"{path}: {info.size} bytes, over the {cat.name} cataloger's limit; skipped")
                continue
            inp = CatalogInput(info, data=data, opener=spool.open if spool else None, mode=mode)
            try:
                found = cat.catalog(inp)
            except CatalogError as err:
                result.warnings.append(str(err))
                continue
            except GarrisonError as err:
                result.warnings.append(f"{path}: {err}")
                continue
            except Exception as err:  # a cataloger bug must not sink the scan; say so loudly
                logger.warning("cataloger %s failed on %s: %r", cat.name, path, err)
                result.warnings.append(f"{path}: {cat.name} cataloger failed: {type(err).__name__}: {err}")
                continue
            for pkg in found:
                pkg.cataloger = pkg.cataloger or cat.name
                pkg.path = pkg.path or path
                pkg.layer = result.diff_id or None
            packages.extend(found)
        if packages or path in result.files:
            result.files[path] = packages
        if secrets is not None and data is not None:
            for match in secrets.scan(path, data):
                result.secrets.append(_with_layer(match, result.diff_id))
    finally:
        if spool is not None:
            spool.close()


def _with_layer(match: SecretMatch, diff_id: str) -> SecretMatch:
    if not diff_id or match.layer:
        return match
    return SecretMatch(match.rule_id, match.category, match.title, match.path, match.line, match.redacted, diff_id)


@dataclass(slots=True)
class MergedView:
    packages: list[Package]
    os: OperatingSystem | None
    secrets: list[SecretMatch]
    warnings: list[str]


def _under(path: str, directory: str) -> bool:
    return directory == "" or path == directory or path.startswith(directory + "/")


def merge_layers(layers: list[LayerAnalysis]) -> MergedView:
    """Squash layer analyses base-first into what the final image contains."""
    state: dict[str, tuple[int, list[Package]]] = {}
    os_state: dict[str, bytes] = {}
    secrets: list[SecretMatch] = []
    warnings: list[str] = []
    for index, layer in enumerate(layers):
        for directory in layer.opaques:
            for p in [p for p, (i, _) in state.items() if i < index and _under(p, directory) and p != directory]:
                del state[p]
            for p in [p for p in os_state if _under(p, directory) and p != directory]:
                del os_state[p]
        for gone in layer.whiteouts:
            for p in [p for p in state if _under(p, gone)]:
                del state[p]
            for p in [p for p in os_state if _under(p, gone)]:
                del os_state[p]
        for path, pkgs in layer.files.items():
            previous = state.get(path)
            if previous is not None:
                earlier = {pkg.key: pkg.layer for pkg in previous[1]}
                for pkg in pkgs:
                    if pkg.key in earlier:
                        pkg.layer = earlier[pkg.key]
            state[path] = (index, pkgs)
        os_state.update(layer.os_files)
        secrets.extend(layer.secrets)
        warnings.extend(layer.warnings)
    packages: list[Package] = []
    seen: set[tuple[Any, ...]] = set()
    for path in sorted(state):
        for pkg in state[path][1]:
            ident = (*pkg.key, pkg.path, pkg.arch)
            if ident not in seen:
                seen.add(ident)
                packages.append(pkg)
    return MergedView(
        packages=packages, os=detect_os(os_state) if os_state else None, secrets=secrets, warnings=warnings
    )
