"""OS detection from os-release and the distribution release files, with real file contents."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from garrison.model import OperatingSystem
from garrison.sbom.osrelease import OS_FILES, detect_os, is_eol, os_from_rootfs, parse_os_release

DEBIAN_12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

UBUNTU_2204 = """\
PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.3 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy
"""

ALPINE_319 = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""

UBI_9 = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9"
BUG_REPORT_URL="https://bugzilla.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_BUGZILLA_PRODUCT_VERSION=9.3
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.3"
"""

ALMA_9 = """\
NAME="AlmaLinux"
VERSION="9.3 (Shamrock Pampas Cat)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.3 (Shamrock Pampas Cat)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"
HOME_URL="https://almalinux.org/"
DOCUMENTATION_URL="https://wiki.almalinux.org/"
BUG_REPORT_URL="https://bugs.almalinux.org/"
"""

AMAZON_2023 = """\
NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"
HOME_URL="https://aws.amazon.com/linux/"
BUG_REPORT_URL="https://github.com/amazonlinux/amazon-linux-2023"
SUPPORT_END="2028-03-15"
"""

DEBIAN_TESTING = """\
PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""


@pytest.mark.parametrize(
    ("files", "want"),
    [
        pytest.param(
            {"etc/os-release": DEBIAN_12, "etc/debian_version": "12.5\n"},
            OperatingSystem("debian", "12", "Debian GNU/Linux 12 (bookworm)", "bookworm", False),
            id="debian-12",
        ),
        pytest.param(
            {"usr/lib/os-release": UBUNTU_2204, "etc/debian_version": "bookworm/sid\n"},
            OperatingSystem("ubuntu", "22.04", "Ubuntu 22.04.3 LTS", "jammy", False),
            id="ubuntu-22.04",
        ),
        pytest.param(
            {"etc/os-release": ALPINE_319, "etc/alpine-release": "3.19.1\n"},
            OperatingSystem("alpine", "3.19.1", "Alpine Linux v3.19", "", False),
            id="alpine-3.19",
        ),
        pytest.param(
            {"etc/os-release": UBI_9, "etc/redhat-release": "Red Hat Enterprise Linux release 9.3 (Plow)\n"},
            OperatingSystem("rhel", "9.3", "Red Hat Enterprise Linux 9.3 (Plow)", "", False),
            id="ubi-9",
        ),
        pytest.param(
            {"etc/os-release": ALMA_9},
            OperatingSystem("almalinux", "9.3", "AlmaLinux 9.3 (Shamrock Pampas Cat)", "", False),
            id="almalinux-9",
        ),
        pytest.param(
            {"etc/os-release": AMAZON_2023, "etc/system-release": "Amazon Linux release 2023 (Amazon Linux)\n"},
            OperatingSystem("amzn", "2023", "Amazon Linux 2023", "", False),
            id="amazon-2023",
        ),
        pytest.param(
            {"etc/debian_version": "12.5\n"},
            OperatingSystem("debian", "12", "Debian GNU/Linux 12", "", False),
            id="distroless-debian-version-only",
        ),
        pytest.param(
            {"etc/os-release": DEBIAN_TESTING, "etc/debian_version": "trixie/sid\n"},
            OperatingSystem("debian", "13", "Debian GNU/Linux trixie/sid", "trixie", False),
            id="debian-testing",
        ),
        pytest.param(
            {"etc/debian_version": "trixie/sid\n"},
            OperatingSystem("debian", "13", "Debian GNU/Linux 13 (trixie)", "trixie", False),
            id="debian-testing-distroless",
        ),
        pytest.param(
            {"etc/debian_version": "10.13\n"},
            OperatingSystem("debian", "10", "Debian GNU/Linux 10", "", True),
            id="debian-10-eol",
        ),
        pytest.param(
            {"etc/centos-release": "CentOS Linux release 7.9.2009 (Core)\n"},
            OperatingSystem("centos", "7", "CentOS Linux release 7.9.2009 (Core)", "", True),
            id="centos-7-release-file",
        ),
        pytest.param(
            {"etc/alpine-release": "3.16.9\n"},
            OperatingSystem("alpine", "3.16.9", "Alpine Linux v3.16.9", "", True),
            id="alpine-3.16-release-file",
        ),
        pytest.param(
            {
                "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=23.04\nDISTRIB_CODENAME=lunar\n"
                'DISTRIB_DESCRIPTION="Ubuntu 23.04"\n'
            },
            OperatingSystem("ubuntu", "23.04", "Ubuntu 23.04", "lunar", True),
            id="ubuntu-interim-lsb",
        ),
        pytest.param(
            {"etc/SuSE-release": "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n"},
            OperatingSystem("sles", "11.4", "SUSE Linux Enterprise Server 11 (x86_64)", "", False),
            id="sles-11-suse-release",
        ),
    ],
)
def test_detect(files: dict[str, str], want: OperatingSystem) -> None:
    assert set(files) <= OS_FILES
    assert detect_os({k: v.encode() for k, v in files.items()}) == want


def test_etc_wins_over_usr_lib() -> None:
    found = detect_os({"etc/os-release": ALPINE_319.encode(), "usr/lib/os-release": DEBIAN_12.encode()})
    assert found is not None and found.family == "alpine"


def test_quoting_escapes_and_comments() -> None:
    text = (
        "# comment line\n"
        "  # indented comment\n"
        'NAME="Foo \\"Bar\\" \\$HOME \\\\ x"\n'
        "ID='single quoted'\n"
        "VERSION_ID=1.0 # not a comment per the spec, but shell-unquoted\n"
        "BROKEN LINE WITHOUT EQUALS\n"
        'UNTERMINATED="abc\n'
    )
    data = parse_os_release(text)
    assert data["NAME"] == 'Foo "Bar" $HOME \\ x'
    assert data["ID"] == "single quoted"
    assert data["UNTERMINATED"] == "abc"
    assert "BROKEN LINE WITHOUT EQUALS" not in data


@pytest.mark.parametrize(
    ("family", "version", "eol"),
    [
        ("debian", "9", True),
        ("debian", "11", False),
        ("ubuntu", "16.04", True),
        ("ubuntu", "20.04", False),
        ("ubuntu", "23.10", True),
        ("ubuntu", "24.04", False),
        ("alpine", "3.17.5", True),
        ("alpine", "3.18.0", False),
        ("centos", "8", True),
        ("fedora", "38", True),
        ("amzn", "2018.03", True),
        ("amzn", "2", False),
        ("rhel", "7.9", False),
        ("debian", "", False),
    ],
)
def test_eol_table(family: str, version: str, eol: bool) -> None:
    assert is_eol(family, version) is eol


def test_machine_os_release() -> None:
    """The machine's own os-release, read as a root file system."""
    real = parse_os_release(Path("/etc/os-release").read_text())
    found = os_from_rootfs("/")
    assert found is not None
    assert found.family == real["ID"]
    assert found.name == real["PRETTY_NAME"]
    assert found.codename == real.get("VERSION_CODENAME", "")


def test_rootfs_symlinks_stay_inside_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/os-release").write_text(ALPINE_319)
    os.symlink("/usr/lib/os-release", tmp_path / "etc/os-release")  # absolute: must resolve in root
    (tmp_path / "etc/debian_version").symlink_to("../../../../../../etc/debian_version")
    found = os_from_rootfs(tmp_path)
    assert found is not None and found.family == "alpine" and found.version == "3.19.1"


def test_nothing_known() -> None:
    assert detect_os({}) is None
    assert detect_os({"etc/os-release": b"NAME=x\n", "etc/redhat-release": b"garbage\n"}) is None
