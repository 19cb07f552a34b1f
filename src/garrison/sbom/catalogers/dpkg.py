"""Installed Debian packages from dpkg's database.

Reads ``var/lib/dpkg/status`` and the per-package files distroless images keep in
``var/lib/dpkg/status.d/`` (every file there except ``*.md5sums``). A stanza counts when its
``Status`` says the package is installed (``installed``, or ``triggers-pending``/
``triggers-awaited``, which dpkg treats as installed with deferred trigger processing);
removed packages that left only configuration files are skipped. Distroless ``status.d``
stanzas carry no ``Status`` and count as installed.

Reported: ``name``, full ``version`` (epoch included), ``arch``, ``source_name``/
``source_version`` from ``Source: name (version)`` (each defaulting to the binary's), metadata
``maintainer``, ``installed_size`` (KiB), ``multi_arch`` and ``status``.

The control-file (RFC 822 style) parser is hand-written rather than using python-debian, which
is not a dependency and is several times slower on a full status file: it handles continuation
lines, comments, case-insensitive field names, CRLF line ends and ``name:arch`` package names.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

STATUS_PATH = "var/lib/dpkg/status"
STATUS_DIR = "var/lib/dpkg/status.d/"
_INSTALLED = frozenset({"installed", "triggers-pending", "triggers-awaited"})
_SOURCE_RE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?\s*$")
_MAX_SIZE = 256 * 1024 * 1024

Stanza = dict[str, str]
_CANONICAL = {
    n.lower(): n
    for n in ("Package", "Status", "Version", "Architecture", "Source", "Maintainer", "Installed-Size", "Multi-Arch")
}
# Every pattern starts with a literal newline so the regex engine can skip from line to line.
_FIELD_RE = re.compile(r"\n([^\s:#][^\s:]*):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)")
# a line that is neither a field, a continuation, a comment nor blank; or a continuation
# line right after a blank line (so outside any field)
_BAD_LINE_RE = re.compile(r"\n(?:(?![ \t#\n]|[^\s:#][^\s:]*:|\Z)|[ \t]*\n[ \t]+\S)")
_SEPARATOR_RE = re.compile(r"\n(?:[ \t]*\n)+")


def _bad_line(text: str) -> str:
    """Error text naming the first line that is not a field, continuation, comment or blank."""
    in_field = False
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            in_field = False
            continue
        if line[0] in " \t":
            if not in_field:
                return f"line {number}: continuation line outside a field"
            continue
        if line.startswith("#"):
            continue
        name, sep, _ = line.partition(":")
        if not sep or not name or any(c.isspace() for c in name):
            return f"line {number}: expected 'Field: value'"
        in_field = True
    return "malformed"


def parse_control(text: str) -> list[tuple[int, Stanza]]:
    """Split deb822 text into stanzas of ``field -> value`` (first line number, fields).

    Field names are case-insensitive in deb822: the ones read here are stored in their
    conventional case whatever the input's case. ``#`` lines are comments; continuation lines
    (leading space or tab) stay in the value, joined with newlines; blank or whitespace-only
    lines separate stanzas. Raises ``ValueError`` naming the line for anything else. The work
    is done by compiled regular expressions that jump from newline to newline (one validating
    pass over the text, one extracting pass per stanza): a 1000-package status file takes a
    few milliseconds.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    text = "\n" + text
    if _BAD_LINE_RE.search("\n" + text) is not None:
        raise ValueError(_bad_line(text[1:]))
    stanzas: list[tuple[int, Stanza]] = []
    pos = 0
    line = 1
    for sep in _SEPARATOR_RE.finditer(text):
        _add_stanza(stanzas, text, pos, sep.start(), line)
        line += text.count("\n", pos, sep.end() - 1)
        pos = sep.end() - 1
    _add_stanza(stanzas, text, pos, len(text), line)
    return stanzas


def _add_stanza(stanzas: list[tuple[int, Stanza]], text: str, start: int, end: int, line: int) -> None:
    fields = _FIELD_RE.findall(text, start, end)
    if not fields:
        return  # nothing but comments
    stanza: Stanza = {}
    for name, value in fields:
        name = _CANONICAL.get(name.lower(), name)
        if name in stanza:
            raise ValueError(f"stanza at line {line}: duplicate field {name}")
        stanza[name] = value.rstrip()
    stanzas.append((line, stanza))


def _field(stanza: Stanza, name: str) -> str | None:
    return stanza.get(name)


def package_from_stanza(stanza: Stanza, *, require_status: bool, line: int) -> Package | None:
    """The installed package a stanza describes, or None when it is not installed."""
    status = _field(stanza, "Status")
    if status is None:
        if require_status:
            return None
    else:
        words = status.split()
        if len(words) != 3 or words[2] not in _INSTALLED:
            return None
    name = _field(stanza, "Package")
    version = _field(stanza, "Version")
    if not name:
        raise ValueError(f"stanza at line {line}: no Package field")
    if not version:
        return None  # dpkg keeps records of versionless, never-installed packages
    arch = _field(stanza, "Architecture") or None
    if ":" in name:  # binary:Package form written by some tools
        name, _, qualifier = name.partition(":")
        arch = arch or qualifier or None
        if not name:
            raise ValueError(f"stanza at line {line}: bad Package field {_field(stanza, 'Package')!r}")
    source_name, source_version = name, version
    source = _field(stanza, "Source")
    if source:
        m = _SOURCE_RE.match(source)
        if m is None:
            raise ValueError(f"stanza at line {line}: bad Source field {source!r}")
        source_name = m.group(1)
        source_version = m.group(2) or version
    meta: dict[str, Any] = {}
    maintainer = _field(stanza, "Maintainer")
    if maintainer:
        meta["maintainer"] = maintainer
    size = _field(stanza, "Installed-Size")
    if size and size.isdigit():
        meta["installed_size"] = int(size)
    multi_arch = _field(stanza, "Multi-Arch")
    if multi_arch:
        meta["multi_arch"] = multi_arch
    if status is not None:
        meta["status"] = status
    return Package(
        name=name,
        version=version,
        type="deb",
        arch=arch,
        source_name=source_name,
        source_version=source_version,
        metadata=meta,
    )


def parse_status(text: str, *, require_status: bool = True) -> list[Package]:
    """Installed packages of a dpkg status file (``ValueError`` on malformed content)."""
    out: list[Package] = []
    for line, stanza in parse_control(text):
        pkg = package_from_stanza(stanza, require_status=require_status, line=line)
        if pkg is not None:
            out.append(pkg)
    return out


def is_status_path(path: str) -> bool:
    if path == STATUS_PATH:
        return True
    if path.startswith(STATUS_DIR):
        base = path[len(STATUS_DIR) :]
        return bool(base) and "/" not in base and not base.endswith(".md5sums") and not base.startswith(".")
    return False


@cataloger
class DpkgCataloger(Cataloger):
    """dpkg's status database (Debian, Ubuntu and derivatives, distroless)."""

    name = "dpkg"
    version = 1
    modes = frozenset({"image"})
    max_size = _MAX_SIZE
    suffixes = ("/var/lib/dpkg/status",)
    prefixes = (STATUS_DIR,)

    def required(self, path: str, info: FileInfo) -> bool:
        return is_status_path(path)

    def catalog(self, inp: CatalogInput) -> list[Package]:
        text = inp.read().decode("utf-8", "replace")
        try:
            packages = parse_status(text, require_status=inp.path == STATUS_PATH)
        except ValueError as err:
            raise CatalogError(f"malformed dpkg status: {err}", input_name=inp.path) from None
        if inp.path != STATUS_PATH:
            for pkg in packages:
                pkg.metadata.setdefault("status_file", posixpath.basename(inp.path))
        return packages
