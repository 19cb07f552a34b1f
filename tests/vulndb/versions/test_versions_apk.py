"""apk ordering against apk-tools' own test vectors and Alpine secdb versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from garrison.vulndb.versions import InvalidVersion, get_scheme

APK = get_scheme("apk")
DATA = Path(__file__).with_name("apk_version.data")
#: lines of version.data that use versions apk-tools itself rejects ("do string sort")
UPSTREAM_INVALID = {"1.0bc", "23_foo", "10.0.0_b2-r0", "10.0.0_b3-r0"}


def _vectors() -> list[tuple[str, str, str]]:
    out = []
    for line in DATA.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            a, op, b = line.split()
            out.append((a, op, b))
    return out


def test_apk_tools_version_data() -> None:
    checked = 0
    for a, op, b in _vectors():
        if a in UPSTREAM_INVALID or b in UPSTREAM_INVALID:
            assert not (APK.valid(a) and APK.valid(b)), (a, b)
            continue
        assert APK.compare(a, b) == {"<": -1, "=": 0, ">": 1}[op], (a, op, b)
        assert APK.compare(b, a) == -{"<": -1, "=": 0, ">": 1}[op], (b, a)
        checked += 1
    assert checked > 700


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("1.0_alpha", "1.0_beta", -1, id="alpha-beta"),
        pytest.param("1.0_beta", "1.0_pre", -1, id="beta-pre"),
        pytest.param("1.0_pre", "1.0_rc", -1, id="pre-rc"),
        pytest.param("1.1_rc1", "1.1", -1, id="rc-before-release"),
        pytest.param("1.1", "1.1_cvs", -1, id="cvs-after"),
        pytest.param("1.1_cvs", "1.1_svn", -1, id="cvs-svn"),
        pytest.param("1.1_svn", "1.1_git", -1, id="svn-git"),
        pytest.param("1.1_git", "1.1_hg", -1, id="git-hg"),
        pytest.param("1.1_hg", "1.1_p", -1, id="hg-p"),
        pytest.param("1.2", "1.2a", -1, id="letter-after"),
        pytest.param("1.2-r0", "1.2-r1", -1, id="revision"),
        pytest.param("1.2_p1", "1.2-r1", 1, id="suffix-before-revision-kind"),
        pytest.param("1.01", "1.1", -1, id="leading-zero-fraction"),
    ],
)
def test_suffix_orderings(a: str, b: str, expected: int) -> None:
    assert APK.compare(a, b) == expected


@pytest.mark.parametrize("bad", ["", "1.0_foo", "1.2a.3", "1.0-", "1.0-r1.2", "1.0!", "1.0bc", "1.0A"])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="apk version"):
        APK.key(bad)


def test_secdb_versions_parse(advisories_dir: Path) -> None:
    versions: set[str] = set()
    for path in sorted((advisories_dir / "alpine").glob("v3.1*/main.yaml")):
        doc = yaml.load(path.read_bytes(), Loader=yaml.BaseLoader)
        for item in doc["packages"]:
            versions.update((item["pkg"].get("secfixes") or {}).keys())
    versions.discard("0")
    assert len(versions) > 500
    invalid = sorted(v for v in versions if not APK.valid(v))
    assert len(invalid) <= len(versions) // 100, invalid
    ordered = sorted((v for v in versions if v not in invalid), key=APK.key)
    assert APK.compare(ordered[0], ordered[-1]) == -1
