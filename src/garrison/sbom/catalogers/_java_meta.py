"""Readers for the metadata files inside Java archives: ``MANIFEST.MF`` main attributes,
``pom.properties`` and the ``artifact-1.2.3.jar`` file-name convention.

Hand-written: the formats are defined by the JDK (``java.util.jar.Manifest`` and
``java.util.Properties``), not by any Python library. The manifest reader unfolds continuation
lines and stops at the end of the main section, as ``Manifest.read`` does; the properties reader
follows ``Properties.load`` (logical lines with backslash continuation, ``#``/``!`` comments,
``=``/``:``/white-space separators, backslash and ``\\uXXXX`` escapes, ISO-8859-1 text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ARCHIVE_NAME = re.compile(r"^([a-zA-Z0-9._-]*[^-*])-(\d\S*(?:-SNAPSHOT)?)\.(?:jar|war|ear|par|sar|jpi|hpi)$", re.I)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_PROP_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_WS = " \t\f"


@dataclass(frozen=True, slots=True)
class Coordinates:
    """What identifies an artifact: Maven group, artifact and version (group may be empty)."""

    group: str
    artifact: str
    version: str

    @property
    def complete(self) -> bool:
        return bool(self.group and self.artifact and self.version)


def parse_file_name(name: str) -> tuple[str, str] | None:
    """(artifact, version) from ``spring-core-5.3.4-SNAPSHOT.jar``, the pattern Trivy uses."""
    m = _ARCHIVE_NAME.match(name.rsplit("/", 1)[-1])
    return (m.group(1), m.group(2)) if m else None


def parse_manifest(data: bytes) -> dict[str, str]:
    """The main-section attributes of a ``MANIFEST.MF`` (continuation lines unfolded)."""
    text = data.decode("utf-8", "replace")
    attrs: dict[str, str] = {}
    current: list[str] = []

    def flush() -> None:
        line = "".join(current)
        name, sep, value = line.partition(":")
        if sep and name and " " not in name:
            attrs[name] = value[1:] if value.startswith(" ") else value  # a repeated name: last wins

    for line in _LINE_BREAK.split(text):
        if line == "":
            break  # end of the main section
        if line.startswith(" "):
            current.append(line[1:])
            continue
        if current:
            flush()
        current = [line]
    if current:
        flush()
    return attrs


def _unescape(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\" or i + 1 >= len(s):
            if c != "\\":
                out.append(c)
            i += 1
            continue
        e = s[i + 1]
        if e == "u":
            digits = s[i + 2 : i + 6]
            if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("malformed \\uxxxx escape")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(_PROP_ESCAPES.get(e, e))
        i += 2
    return "".join(out)


def _logical_lines(text: str) -> list[str]:
    """Natural lines joined into logical lines as ``Properties.LineReader`` does: leading white
    space dropped, blank and comment lines skipped, an odd number of trailing backslashes
    continuing the line onto the next one."""
    lines: list[str] = []
    pending: str | None = None
    for raw in _LINE_BREAK.split(text):
        line = raw.lstrip(_WS)
        if pending is None and (not line or line[0] in "#!"):
            continue
        joined = (pending or "") + line
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = joined[:-1]
            continue
        lines.append(joined)
        pending = None
    if pending is not None and pending:
        lines.append(pending)
    return lines


def _split_key(line: str) -> tuple[str, str]:
    """(raw key, raw value) of one logical line, following ``Properties.load0``."""
    n = len(line)
    key_len, value_start, has_sep, backslash = 0, n, False, False
    while key_len < n:
        c = line[key_len]
        if c in "=:" and not backslash:
            value_start, has_sep = key_len + 1, True
            break
        if c in _WS and not backslash:
            value_start = key_len + 1
            break
        backslash = not backslash if c == "\\" else False
        key_len += 1
    while value_start < n:
        c = line[value_start]
        if c not in _WS:
            if not has_sep and c in "=:":
                has_sep = True
            else:
                break
        value_start += 1
    return line[:key_len], line[value_start:]


def parse_properties(data: bytes) -> dict[str, str]:
    """A ``.properties`` file as ``java.util.Properties.load(InputStream)`` reads it; raises
    ``ValueError`` on a malformed ``\\uxxxx`` escape, as Java does."""
    props: dict[str, str] = {}
    for line in _logical_lines(data.decode("latin-1")):
        key, value = _split_key(line)
        props[_unescape(key)] = _unescape(value)
    return props


def coordinates_from_pom_properties(props: dict[str, str]) -> Coordinates:
    return Coordinates(
        props.get("groupId", "").strip(), props.get("artifactId", "").strip(), props.get("version", "").strip()
    )


def coordinates_from_manifest(attrs: dict[str, str]) -> Coordinates:
    """Group, artifact and version from manifest attributes, in Trivy's order of preference.

    Values that are unexpanded build variables (``%bundleName``) are ignored.
    """

    folded = {k.lower(): v for k, v in attrs.items()}  # attribute names are case-insensitive

    def get(name: str) -> str:
        value = folded.get(name.lower(), "").strip()
        return "" if value.startswith("%") else value

    group = get("Implementation-Vendor-Id")
    if not group and get("Bundle-SymbolicName"):
        symbolic = get("Bundle-SymbolicName").split(";", 1)[0].strip()
        group = symbolic.rsplit(".", 1)[0] if "." in symbolic else symbolic
    group = group or get("Implementation-Vendor") or get("Specification-Vendor")
    artifact = get("Implementation-Title") or get("Specification-Title") or get("Bundle-Name")
    version = get("Implementation-Version") or get("Specification-Version") or get("Bundle-Version")
    return Coordinates(group, artifact, version)
