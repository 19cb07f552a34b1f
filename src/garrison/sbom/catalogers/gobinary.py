"""Go binaries: the modules and toolchain version the Go linker records in ``.go.buildinfo``.

A port of Go's ``debug/buildinfo`` (blob search, both the pre-1.18 pointer format and the 1.18+
inline varint format) and ``runtime/debug.ParseBuildInfo``, hand-written because no Python
library reads Go build info. Only ELF is handled; other executable formats yield nothing.

Reported: ``stdlib`` at the toolchain version (``go1.19.8`` -> ``v1.19.8``, as Trivy does), the
main module (a ``(devel)`` version is kept and flagged), and every ``dep`` with ``=>``
replacements applied: a replacement that carries a version (another module) is reported under
its own path and version; a local-directory replacement has none (``(devel)`` since Go 1.18),
so the original module and version are kept and the replacement is recorded in the metadata.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._elf import ElfFile, is_elf
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

logger = logging.getLogger(__name__)

BUILDINFO_MAGIC = b"\xff Go buildinf:"
_ALIGN = 16
_HEADER = 32
_SCAN = 64 * 1024  # Go reads this much from the start of the data section
_MAX_STRING = 4 * 1024 * 1024  # bound on the version and modinfo strings

_GO_VERSION = re.compile(r"go(\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?)")
_SEMVER = re.compile(r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_LDFLAGS_PREFIXES = ("main", "common", "version", "cmd")


@dataclass(slots=True)
class Module:
    path: str
    version: str
    sum: str = ""
    replace: Module | None = None


@dataclass(slots=True)
class BuildInfo:
    go_version: str
    path: str = ""
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)


# -- reading the raw strings out of the binary ---------------------------------------------


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """Go's ``binary.Uvarint``: (value, bytes used), bytes used <= 0 on error."""
    value = shift = 0
    for i in range(pos, min(len(data), pos + 10)):
        b = data[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i - pos + 1
        shift += 7
    return 0, 0


def _decode_string(data: bytes, pos: int) -> tuple[bytes, int]:
    n, used = _uvarint(data, pos)
    if used <= 0 or n >= len(data) - pos - used:
        return b"", -1
    start = pos + used
    return data[start : start + n], start + n


def _read_pointer_string(elf: ElfFile, ptr_size: int, bo: Literal["little", "big"], addr: int) -> bytes:
    hdr = elf.read_vaddr(addr, 2 * ptr_size)
    if hdr is None or len(hdr) < 2 * ptr_size:
        return b""
    data_addr = int.from_bytes(hdr[:ptr_size], bo)
    data_len = int.from_bytes(hdr[ptr_size:], bo)
    if data_len > _MAX_STRING:
        return b""
    data = elf.read_vaddr(data_addr, data_len)
    if data is None or len(data) < data_len:
        return b""
    return data


def _find_blob(data: bytes) -> bytes | None:
    start = 0
    while True:
        i = data.find(BUILDINFO_MAGIC, start)
        if i < 0 or len(data) - i < _HEADER:
            return None
        if i % _ALIGN == 0:
            return data[i:]
        start = i + 1


def read_raw_buildinfo(elf: ElfFile) -> tuple[str, str] | None:
    """(go version, modinfo) from the build info blob, or ``None`` if this is not a Go binary."""
    sec = elf.section(".go.buildinfo")
    if sec is not None and sec.addr:
        data_addr = sec.addr
    else:
        seg = elf.first_writable_data_segment()
        if seg is None:
            return None
        data_addr = seg.vaddr
    data = elf.read_vaddr(data_addr, _SCAN)
    if not data:
        return None
    blob = _find_blob(data)
    if blob is None:
        return None
    ptr_size, flags = blob[14], blob[15]
    if flags & 2:
        vers, pos = _decode_string(blob, _HEADER)
        mod, _ = _decode_string(blob, pos) if pos >= 0 else (b"", -1)
    else:
        if ptr_size not in (4, 8):
            return None
        bo: Literal["little", "big"] = "big" if flags else "little"
        vers = _read_pointer_string(elf, ptr_size, bo, int.from_bytes(blob[16 : 16 + ptr_size], bo))
        mod = _read_pointer_string(elf, ptr_size, bo, int.from_bytes(blob[16 + ptr_size : 16 + 2 * ptr_size], bo))
    if not vers:
        return None
    # Strip the module framing: 16-byte sentinels around the module info.
    modinfo = mod[16:-16] if len(mod) >= 33 and mod[-17] == 0x0A else b""
    return vers.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace")


# -- parsing the module info text ----------------------------------------------------------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
_QUOTE_CHARS = set(' \t\r\n"`')


def go_unquote(s: str) -> str:
    """``strconv.Unquote`` for the quoted keys and values of ``build`` lines."""
    if len(s) >= 2 and s[0] == s[-1] == "`":
        body = s[1:-1]
        if "`" in body:
            raise ValueError("backquote in raw string")
        return body.replace("\r", "")
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise ValueError("not a quoted string")
    body, out, i = s[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == '"' or c == "\n":
            raise ValueError("unescaped quote or newline")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError("trailing backslash")
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("bad hex escape")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif e in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(d in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ValueError("bad octal escape")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError(f"unknown escape \\{e}")
    return "".join(out)


def _quoted_prefix(s: str) -> str:
    """``strconv.QuotedPrefix``: the quoted string at the start of ``s``."""
    quote = s[0]
    i = 1
    while i < len(s):
        if s[i] == "\\" and quote == '"':
            i += 2
            continue
        if s[i] == quote:
            return s[: i + 1]
        i += 1
    raise ValueError("unterminated quoted string")


def _parse_setting(kv: str) -> tuple[str, str]:
    if not kv:
        raise ValueError("build line missing '='")
    if kv[0] == "=":
        raise ValueError("build line with missing key")
    if kv[0] in '`"':
        raw_key = _quoted_prefix(kv)
        if len(kv) == len(raw_key) or kv[len(raw_key)] != "=":
            raise ValueError("build line missing '=' after quoted key")
        key, raw_value = go_unquote(raw_key), kv[len(raw_key) + 1 :]
    else:
        key, sep, raw_value = kv.partition("=")
        if not sep:
            raise ValueError("build line missing '=' after key")
        if not key or any(c in _QUOTE_CHARS or c == "=" for c in key):
            raise ValueError(f"unquoted key {key!r} must be quoted")
    if raw_value and raw_value[0] in '`"':
        return key, go_unquote(raw_value)
    if any(c in _QUOTE_CHARS for c in raw_value):
        raise ValueError(f"unquoted value {raw_value!r} must be quoted")
    return key, raw_value


def _module_line(elem: list[str]) -> Module:
    if len(elem) not in (2, 3):
        raise ValueError(f"expected 2 or 3 columns; got {len(elem)}")
    return Module(elem[0], elem[1], elem[2] if len(elem) == 3 else "")


def parse_buildinfo(go_version: str, data: str) -> BuildInfo:
    """A port of ``runtime/debug.ParseBuildInfo``; raises ``ValueError`` on malformed text."""
    bi = BuildInfo(go_version)
    last: Module | None = None
    lines = data.split("\n")
    for number, line in enumerate(lines[:-1], start=1):  # text after the last newline is ignored, as in Go
        try:
            if line.startswith("path\t"):
                bi.path = line[5:]
            elif line.startswith("mod\t"):
                bi.main = last = _module_line(line[4:].split("\t"))
            elif line.startswith("dep\t"):
                last = _module_line(line[4:].split("\t"))
                bi.deps.append(last)
            elif line.startswith("=>\t"):
                elem = line[3:].split("\t")
                if len(elem) != 3:
                    raise ValueError(f"expected 3 columns for replacement; got {len(elem)}")
                if last is None:
                    raise ValueError("replacement with no module on previous line")
                last.replace = Module(elem[0], elem[1], elem[2])
                last = None
            elif line.startswith("build\t"):
                bi.settings.append(_parse_setting(line[6:]))
        except ValueError as err:
            raise ValueError(f"line {number}: {err}") from None
    return bi


# -- packages ------------------------------------------------------------------------------


def stdlib_version(go_version: str) -> str | None:
    """``go1.22.3 X:boringcrypto`` -> ``v1.22.3``; ``None`` for a devel toolchain."""
    m = _GO_VERSION.fullmatch(go_version.split(" ", 1)[0])
    return f"v{m.group(1)}" if m else None


def split_module_path(path: str) -> tuple[str | None, str]:
    """A module path as purl namespace and name: ``golang.org/x/text`` -> (``golang.org/x``, ``text``)."""
    head, sep, tail = path.rpartition("/")
    return (head, tail) if sep and head and tail else (None, path)


def ldflags_version(main_path: str, ldflags: str) -> str | None:
    """A version stamped with ``-X pkg.version=...``, chosen as Trivy does (module's ``cmd/``
    packages first, then the usual ``main``/``version``/... packages, then anything); ``None``
    when there is none or the choice is ambiguous."""
    try:
        words = shlex.split(ldflags)
    except ValueError:
        return None
    assignments: list[str] = []
    for i, word in enumerate(words):
        if word in ("-X", "--X") and i + 1 < len(words):
            assignments.append(words[i + 1])
        elif word.startswith(("-X=", "--X=")):
            assignments.append(word.split("=", 1)[1])
    found: list[list[str]] = [[], [], []]
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key, value = key.strip("'\""), value.strip("'\"")
        lowered = key.lower()
        if not sep or not lowered.endswith((".version", ".ver")) or not _SEMVER.fullmatch(value):
            continue
        prefix = key.rsplit("/", 1)[-1].split(".", 1)[0].lower()
        if key.startswith(main_path + "/cmd/"):
            found[0].append(value)
        elif prefix in _LDFLAGS_PREFIXES:
            found[1].append(value)
        else:
            found[2].append(value)
    for versions in found:
        if versions:
            return versions[0] if len(set(versions)) == 1 else None
    return None


def _package(path: str, version: str, metadata: dict[str, Any]) -> Package:
    namespace, name = split_module_path(path)
    return Package(name=name, version=version, type="golang", namespace=namespace, metadata=metadata)


def packages_from_buildinfo(bi: BuildInfo) -> list[Package]:
    settings = dict(bi.settings)
    out: list[Package] = []
    std = stdlib_version(bi.go_version)
    if std is not None:
        out.append(Package(name="stdlib", version=std, type="golang", metadata={"go_version": bi.go_version}))
    else:
        logger.debug("Go toolchain version %r has no release number; stdlib not reported", bi.go_version)
    if bi.main is not None and bi.main.path:
        meta: dict[str, Any] = {"main_module": True, "go_version": bi.go_version}
        if bi.path:
            meta["main_package"] = bi.path
        if settings:
            meta["build_settings"] = settings
        version = bi.main.version
        if version == "(devel)" or not version:
            meta["devel"] = True
            stamped = ldflags_version(bi.main.path, settings.get("-ldflags", ""))
            if stamped:
                meta["ldflags_version"] = stamped
        out.append(_package(bi.main.path, version, meta))
    for dep in bi.deps:
        if not dep.path:
            continue  # old toolchains could record an empty (devel) entry
        meta = {"sum": dep.sum} if dep.sum else {}
        path, version = dep.path, dep.version
        rep = dep.replace
        if rep is not None:
            meta["replaced"] = {"path": dep.path, "version": dep.version}
            meta["replacement"] = {"path": rep.path, "version": rep.version}
            if rep.version and rep.version != "(devel)":
                path, version = rep.path, rep.version
                meta["sum"] = rep.sum
                if not rep.sum:
                    del meta["sum"]
        out.append(_package(path, version, meta))
    return out


@cataloger
class GoBinaryCataloger(Cataloger):
    """Modules compiled into Go executables (ELF)."""

    name = "go-binary"
    version = 1
    max_size = 512 * 1024 * 1024
    executables = True

    def required(self, path: str, info: FileInfo) -> bool:
        return info.executable and 64 <= info.size <= self.max_size

    def catalog(self, inp: CatalogInput) -> list[Package]:
        with inp.open() as f:
            if not is_elf(f):
                return []
            elf = ElfFile(f, inp.path)
            raw = read_raw_buildinfo(elf)
        if raw is None:
            return []
        go_version, modinfo = raw
        try:
            bi = parse_buildinfo(go_version, modinfo)
        except ValueError as err:
            raise CatalogError(f"malformed Go build info: {err}", input_name=inp.path) from None
        return packages_from_buildinfo(bi)
