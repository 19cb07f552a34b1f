"""Ruby gems: ``Gemfile.lock`` in source trees and installed ``specifications/*.gemspec`` files.

``Gemfile.lock`` is Bundler's own line format (no library outside Ruby reads it): top-level
section names (``GEM``, ``GIT``, ``PATH``, ``PLATFORMS``, ``DEPENDENCIES``, ...), and under a
source section's ``specs:`` the resolved gems as 4-space indented ``name (version)`` lines, with
their requirements indented by six spaces. A platform-specific gem carries the platform after
the version (``nokogiri (1.16.0-x86_64-linux)``): it is split off into the metadata. Gems
from ``GEM`` (a registry) and ``GIT`` sources are reported; ``PATH`` sources are the project
itself or local folders and are skipped. Gems named under ``DEPENDENCIES`` are marked
``direct``. Lock files are read in source-tree scans only.

Installed gems (images and source trees) are described by the Ruby files RubyGems writes to
``specifications/`` (``Gem::Specification#to_ruby``): ``s.name = "rake".freeze``,
``s.version = "13.0.6"``, ``s.licenses = ["MIT".freeze]``. They are Ruby code and are never
evaluated: name, version, licences and platform are extracted with anchored regular
expressions for the string literal forms RubyGems has written over the years (``"..."``,
``'...'``, ``%q{...}``, with or without ``.freeze``), falling back to the ``# stub:`` line.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._lockutil import read_text
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

_MAX_SIZE = 16 * 1024 * 1024

# -- gemspec --------------------------------------------------------------------------------

_STR = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|%q\{([^}]*)\}|%q<([^>]*)>|%q\(([^)]*)\)|%Q\{([^}]*)\})"""
_STR_RE = re.compile(_STR)


def _attr(attr: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*\w+\.{attr}[ \t]*=[ \t]*(?:Gem::Version\.new\([ \t]*)?{_STR}", re.MULTILINE)


_NAME = _attr("name")
_VERSION = _attr("version")
_LICENSE = _attr("license")
_PLATFORM = _attr("platform")
_LICENSES = re.compile(r"^[ \t]*\w+\.licenses[ \t]*=[ \t]*\[([^\]\n]*)\]", re.MULTILINE)
_STUB = re.compile(r"^# stub: (\S+) (\S+) (\S+)", re.MULTILINE)


def _literal(m: re.Match[str]) -> str:
    value = next((g for g in m.groups() if g is not None), "")
    return value.replace('\\"', '"').replace("\\'", "'").replace("\\\\", "\\")


def _find(pattern: re.Pattern[str], text: str) -> str:
    m = pattern.search(text)
    return _literal(m) if m else ""


def parse_gemspec(text: str, path: str) -> Package:
    name = _find(_NAME, text)
    version = _find(_VERSION, text)
    platform = _find(_PLATFORM, text)
    stub = _STUB.search(text)
    if stub is not None:
        name = name or stub.group(1)
        version = version or stub.group(2)
        platform = platform or stub.group(3)
    if not name or not version:
        raise CatalogError("gemspec has no name or version", input_name=path)
    if any(c.isspace() for c in name + version):
        raise CatalogError(f"malformed gem name/version {name!r} {version!r}", input_name=path)
    licenses: list[str] = []
    m = _LICENSES.search(text)
    if m is not None:
        licenses = [_literal(s) for s in _STR_RE.finditer(m.group(1))]
    else:
        single = _find(_LICENSE, text)
        if single:
            licenses = [single]
    meta: dict[str, Any] = {}
    if platform and platform != "ruby":
        meta["platform"] = platform
    return Package(
        name=name, version=version, type="gem", licenses=tuple(lic for lic in licenses if lic), metadata=meta
    )


def is_gemspec_path(path: str) -> bool:
    if not path.endswith(".gemspec"):
        return False
    parent = posixpath.dirname(path)
    return posixpath.basename(parent) == "specifications" or parent.endswith("specifications/default")


# -- Gemfile.lock ---------------------------------------------------------------------------

_SPEC = re.compile(r"^    ([^\s(]+) \(([^)\s]+)\)$")
_DEP = re.compile(r"^  ([^\s(!]+)!?(?: \(.*\))?$")
_SOURCES = {"GEM", "GIT", "PATH", "PLUGIN SOURCE"}


def parse_gemfile_lock(text: str, path: str) -> list[Package]:
    out: list[Package] = []
    seen: set[tuple[str, str, str]] = set()
    section = ""
    in_specs = False
    sections_seen = 0
    remote = ""
    direct: set[str] = set()
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if not line.startswith(" "):
            section = line.strip()
            sections_seen += 1
            in_specs = False
            remote = ""
            continue
        if section in _SOURCES:
            if line.startswith("  remote: "):
                remote = line[len("  remote: ") :].strip()
            elif line == "  specs:":
                in_specs = True
            elif line.startswith("      ") or not in_specs or not line.startswith("    "):
                continue  # a spec's own requirements, or source options (revision, branch)
            else:
                m = _SPEC.match(line)
                if m is None:
                    raise CatalogError(f"line {line_no}: malformed spec line {line.strip()!r}", input_name=path)
                if section not in ("GEM", "GIT"):
                    continue
                name, full = m.groups()
                version, _, platform = full.partition("-")
                if not version:
                    raise CatalogError(f"line {line_no}: empty version", input_name=path)
                if (name, version, platform) in seen:
                    continue
                seen.add((name, version, platform))
                meta: dict[str, Any] = {"source": section.lower()}
                if remote:
                    meta["remote"] = remote
                if platform:
                    meta["platform"] = platform
                out.append(Package(name=name, version=version, type="gem", metadata=meta))
        elif section == "DEPENDENCIES":
            m = _DEP.match(line)
            if m is not None:
                direct.add(m.group(1))
    if sections_seen == 0 and text.strip():
        raise CatalogError("not a Gemfile.lock: no sections", input_name=path)
    for pkg in out:
        if pkg.name in direct:
            pkg.metadata["direct"] = True
    return out


@cataloger
class RubyCataloger(Cataloger):
    """Installed gem specifications, and ``Gemfile.lock`` in source trees."""

    name = "ruby"
    version = 1
    modes = frozenset({"image", "fs"})
    max_size = _MAX_SIZE
    suffixes = ("/gemfile.lock", ".gemspec")

    def required(self, path: str, info: FileInfo) -> bool:
        if info.size > self.max_size:
            return False
        return posixpath.basename(path) == "Gemfile.lock" or is_gemspec_path(path)

    def catalog(self, inp: CatalogInput) -> list[Package]:
        if posixpath.basename(inp.path) == "Gemfile.lock":
            if inp.mode != "fs":
                return []  # a lock file in an image is not an install record
            return parse_gemfile_lock(read_text(inp, "Gemfile.lock"), inp.path)
        return [parse_gemspec(read_text(inp, "gemspec"), inp.path)]
