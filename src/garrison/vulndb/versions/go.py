"""Go module and toolchain versions, ordered as ``golang.org/x/mod/semver`` orders them.

Module versions are SemVer with a ``v`` (``v1.2.3``, pseudo-versions such as
``v0.0.0-20191109021931-daa7c04131f5`` or ``v1.2.4-0.20191109021931-daa7c04131f5``, which are
ordinary prereleases, and ``+incompatible``, which is build metadata and ignored). OSV Go ranges
drop the ``v``, so it is optional; the shorthands ``v1`` and ``v1.2`` mean ``v1.0.0`` and
``v1.2.0`` as in x/mod. Toolchain versions (``go1.21rc2``, ``go1.20``, ``1.21.0``) are mapped
the way the Go vulnerability database maps them: ``go1.21rc2`` is ``1.21.0-rc.2`` and
``go1.20`` is ``1.20.0``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions._semver import SEMVER_RE, SemverKey, make_key
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_SEMVER = SEMVER_RE.fullmatch
_SHORT = re.compile(r"(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:(alpha|beta|rc)(0|[1-9]\d*))?").fullmatch


def go_key(version: str) -> SemverKey:
    text = version.strip()
    toolchain = text.startswith("go")
    if toolchain:
        text = text[2:]
    elif text.startswith("v"):
        text = text[1:]
    if not toolchain:
        m = _SEMVER(text)
        if m is not None:
            major, minor, patch, pre, _build = m.groups()
            return make_key(int(major), int(minor), int(patch), pre)
    s = _SHORT(text)
    if s is None or (not toolchain and s.group(4) is not None and s.group(3) is not None):
        raise InvalidVersion(f"invalid go version {version!r}")
    major, minor, patch, kind, num = s.groups()
    pre = f"{kind}.{num}" if kind else None
    return make_key(int(major), int(minor or 0), int(patch or 0), pre)


@register
class GoScheme(VersionScheme):
    name: ClassVar[str] = "go"

    def key(self, version: str) -> SemverKey:
        return go_key(version)
