"""Which distribution an image or root file system is built on.

:data:`OS_FILES` names the files worth collecting; :func:`detect_os` turns their merged contents
into an :class:`~garrison.model.OperatingSystem`. ``os-release`` (``etc/`` first, then
``usr/lib/``) is authoritative and parsed per the freedesktop.org specification: ``KEY=value``
lines, ``#`` comments, values optionally single- or double-quoted with backslash escapes (the
shell quoting subset the spec allows; :mod:`shlex` does not unescape dollar signs and
backticks inside double quotes, hence the small :func:`_unquote`). Without it, the distribution-specific
release files are used: ``alpine-release``, ``redhat-release`` and relatives, ``SuSE-release``,
``lsb-release`` and, for distroless Debian images, ``debian_version``.

``family`` is the normalised ``ID`` (``mariner`` and ``azurelinux`` stay distinct; SUSE's old
``opensuse`` id becomes ``opensuse-leap``; ``sles_sap`` becomes ``sles``). ``version`` is
``VERSION_ID``; for Debian its major number, from ``debian_version`` when os-release has none
(testing/unstable write ``trixie/sid``: the codename's release number when known, else the
codename). ``eol`` comes from a deliberately short table of releases whose (standard) support
has ended for certain.
"""

from __future__ import annotations

import re
from pathlib import Path

from garrison.model import OperatingSystem

OS_FILES = frozenset(
    {
        "etc/os-release",
        "usr/lib/os-release",
        "etc/debian_version",
        "etc/alpine-release",
        "etc/redhat-release",
        "etc/centos-release",
        "etc/fedora-release",
        "etc/almalinux-release",
        "etc/rocky-release",
        "etc/oracle-release",
        "etc/system-release",
        "etc/lsb-release",
        "etc/SuSE-release",
        "etc/photon-release",
        "etc/mariner-release",
    }
)

_FAMILY_ALIASES = {
    "opensuse": "opensuse-leap",
    "sles_sap": "sles",
    "redhat": "rhel",
    "amazon": "amzn",
    "oracle": "ol",
}

DEBIAN_CODENAMES = {
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
}

# Ubuntu LTS releases (even year, April); every other release is interim.
_UBUNTU_LTS_MINOR = "04"


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY -> value`` of an os-release file; malformed lines are ignored, as systemd does."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            continue
        out[key] = _unquote(value.strip())
    return out


def _unquote(value: str) -> str:
    """Shell-style unquoting as the spec allows it: ``"..."`` with ``\\$ \\" \\\\ \\` ``
    escapes, ``'...'`` literal, a backslash escaping the next character outside quotes. An
    unterminated quote runs to the end of the line."""
    out: list[str] = []
    i, n = 0, len(value)
    quote = ""
    while i < n:
        c = value[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                out.append(c)
        elif quote == '"':
            if c == '"':
                quote = ""
            elif c == "\\" and i + 1 < n and value[i + 1] in '$"\\`':
                out.append(value[i + 1])
                i += 1
            else:
                out.append(c)
        elif c in "'\"":
            quote = c
        elif c == "\\" and i + 1 < n:
            out.append(value[i + 1])
            i += 1
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def _version_tuple(version: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in version.split("."):
        m = re.match(r"\d+", part)
        if m is None:
            break
        out.append(int(m.group()))
    return tuple(out)


def is_eol(family: str, version: str) -> bool:
    """Whether the release is past its end of (standard) support, for releases known for sure."""
    v = _version_tuple(version)
    if not v:
        return False
    if family == "debian":
        return v[0] <= 10
    if family == "ubuntu":
        if len(v) < 2:
            return False
        lts = v[0] % 2 == 0 and v[1] == 4
        return v <= (18, 4) if lts else v <= (23, 10)
    if family == "alpine":
        return len(v) >= 2 and v[:2] < (3, 18)
    if family == "centos":
        return v[0] <= 8
    if family == "fedora":
        return v[0] <= 39
    if family == "amzn":
        return re.fullmatch(r"20\d\d\.\d\d", version) is not None  # Amazon Linux 1: 2018.03 and older
    return False


def _normalise_family(os_id: str) -> str:
    family = os_id.strip().lower()
    return _FAMILY_ALIASES.get(family, family)


def _debian_version(files: dict[str, bytes]) -> tuple[str, str]:
    """(version, codename) from ``etc/debian_version``; ("", "") if absent or unreadable."""
    raw = files.get("etc/debian_version")
    if raw is None:
        return "", ""
    text = raw.decode("utf-8", "replace").strip().splitlines()
    value = text[0].strip() if text else ""
    if not value:
        return "", ""
    if value[0].isdigit():
        return _major(value), ""
    codename = value.split("/", 1)[0].strip().lower()
    return DEBIAN_CODENAMES.get(codename, codename), codename


def _from_os_release(data: dict[str, str], files: dict[str, bytes]) -> OperatingSystem | None:
    os_id = data.get("ID", "")
    if not os_id:
        return None
    family = _normalise_family(os_id)
    version = data.get("VERSION_ID", "")
    codename = data.get("VERSION_CODENAME", "")
    name = data.get("PRETTY_NAME") or data.get("NAME", "")
    if family == "debian":
        if version:
            version = _major(version)
        else:
            version, dv_codename = _debian_version(files)
            codename = codename or dv_codename
            if not version and codename:
                version = DEBIAN_CODENAMES.get(codename, codename)
    elif family == "ubuntu" and not codename:
        codename = data.get("UBUNTU_CODENAME", "")
    return OperatingSystem(family, version, name, codename, is_eol(family, version))


_RELEASE_RE = re.compile(r"^(?P<name>.+?)\s+release\s+(?P<version>\S+)(?:\s+\((?P<codename>[^)]*)\))?")
_RELEASE_FAMILIES = (
    ("red hat enterprise linux", "rhel"),
    ("centos", "centos"),
    ("almalinux", "almalinux"),
    ("rocky linux", "rocky"),
    ("fedora", "fedora"),
    ("amazon linux", "amzn"),
    ("oracle linux", "ol"),
    ("cbl-mariner", "mariner"),
    ("vmware photon", "photon"),
)
_RELEASE_FILES = (
    "etc/almalinux-release",
    "etc/rocky-release",
    "etc/centos-release",
    "etc/fedora-release",
    "etc/oracle-release",
    "etc/redhat-release",
    "etc/system-release",
)


def _from_release_file(text: str) -> OperatingSystem | None:
    line = text.strip().splitlines()[0] if text.strip() else ""
    m = _RELEASE_RE.match(line)
    if m is None:
        return None
    lowered = m.group("name").lower()
    family = next((fam for prefix, fam in _RELEASE_FAMILIES if lowered.startswith(prefix)), None)
    if family is None:
        return None
    version = m.group("version")
    if family == "centos":
        version = _major(version)  # os-release says "7" where centos-release says "7.9.2009"
    return OperatingSystem(family, version, line, "", is_eol(family, version))


def _from_suse_release(text: str) -> OperatingSystem | None:
    lines = text.strip().splitlines()
    if not lines:
        return None
    values: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().upper()] = value.strip()
    version = values.get("VERSION", "")
    if not version:
        return None
    if values.get("PATCHLEVEL", "0") not in ("", "0"):
        version = f"{version}.{values['PATCHLEVEL']}"
    family = "opensuse-leap" if lines[0].lower().startswith("opensuse") else "sles"
    return OperatingSystem(family, version, lines[0].strip(), values.get("CODENAME", ""))


def _from_lsb_release(text: str) -> OperatingSystem | None:
    data = parse_os_release(text)
    os_id = data.get("DISTRIB_ID", "")
    version = data.get("DISTRIB_RELEASE", "")
    if not os_id or not version:
        return None
    family = _normalise_family(os_id)
    return OperatingSystem(
        family, version, data.get("DISTRIB_DESCRIPTION", ""), data.get("DISTRIB_CODENAME", ""), is_eol(family, version)
    )


def detect_os(files: dict[str, bytes]) -> OperatingSystem | None:
    """The distribution described by ``files`` (relative path -> content, from :data:`OS_FILES`)."""
    for path in ("etc/os-release", "usr/lib/os-release"):
        raw = files.get(path)
        if raw is not None:
            found = _from_os_release(parse_os_release(raw.decode("utf-8", "replace")), files)
            if found is not None:
                return found
    raw = files.get("etc/alpine-release")
    if raw is not None:
        version = raw.decode("utf-8", "replace").strip()
        if version:
            return OperatingSystem("alpine", version, f"Alpine Linux v{version}", "", is_eol("alpine", version))
    for path in _RELEASE_FILES:
        raw = files.get(path)
        if raw is not None:
            found = _from_release_file(raw.decode("utf-8", "replace"))
            if found is not None:
                return found
    raw = files.get("etc/SuSE-release")
    if raw is not None:
        found = _from_suse_release(raw.decode("utf-8", "replace"))
        if found is not None:
            return found
    raw = files.get("etc/lsb-release")
    if raw is not None:
        found = _from_lsb_release(raw.decode("utf-8", "replace"))
        if found is not None:
            return found
    version, codename = _debian_version(files)
    if version:
        name = f"Debian GNU/Linux {version}" + (f" ({codename})" if codename else "")
        return OperatingSystem("debian", version, name, codename, is_eol("debian", version))
    return None


def _read_in_root(root: Path, rel: str, hops: int = 8) -> bytes | None:
    """Content of ``rel`` inside ``root``, resolving symlinks against ``root``, never the host."""
    parts = [p for p in rel.split("/") if p and p != "."]
    current: list[str] = []
    while parts:
        part = parts.pop(0)
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        if candidate.is_symlink():
            if hops == 0:
                return None
            hops -= 1
            target = str(candidate.readlink())
            if target.startswith("/"):
                current = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        current.append(part)
    path = root.joinpath(*current)
    if not path.is_file():
        return None
    with path.open("rb") as f:
        return f.read(65536)


def os_from_rootfs(path: str | Path) -> OperatingSystem | None:
    """:func:`detect_os` over an unpacked root file system."""
    root = Path(path)
    files: dict[str, bytes] = {}
    for rel in OS_FILES:
        data = _read_in_root(root, rel)
        if data is not None:
            files[rel] = data
    return detect_os(files)
