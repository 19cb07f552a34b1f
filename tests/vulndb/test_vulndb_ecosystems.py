"""Package -> (ecosystem, advisory name, compared version) mapping, per the OSV ecosystem rules."""

from __future__ import annotations

import pytest

from garrison.model import OperatingSystem, Package
from garrison.vulndb.ecosystems import (
    debian_ecosystem,
    normalise_name,
    package_ecosystems,
    package_lookup_name,
    scheme_name,
)
from garrison.vulndb.matcher import installed_version

DEB12 = OperatingSystem("debian", "12", codename="bookworm")


@pytest.mark.parametrize(
    ("pkg", "os", "ecosystems", "name"),
    [
        pytest.param(Package("libssl3", "3.0.11-1~deb12u2", "deb", source_name="openssl"), DEB12,
                     ["Debian:12"], "openssl", id="deb-source"),
        pytest.param(Package("bash", "5.2.15-2", "deb"), OperatingSystem("ubuntu", "22.04"),
                     ["Ubuntu:22.04", "Ubuntu:22.04:LTS"], "bash", id="ubuntu"),
        pytest.param(Package("libcrypto3", "3.1.4-r0", "apk", source_name="openssl"),
                     OperatingSystem("alpine", "3.18.4"), ["Alpine:v3.18"], "openssl", id="apk-origin"),
        pytest.param(Package("openssl-libs", "3.0.7-24.el9", "rpm", source_name="openssl"),
                     OperatingSystem("almalinux", "9.3"), ["AlmaLinux:9"], "openssl-libs", id="rpm-name"),
        pytest.param(Package("curl", "7.76.1-26.el9", "rpm"), OperatingSystem("rocky", "9.2"),
                     ["Rocky Linux:9", "AlmaLinux:9"], "curl", id="rocky"),
        pytest.param(Package("curl", "7.76.1", "rpm"), OperatingSystem("fedora", "39"), [], "curl", id="fedora"),
        pytest.param(Package("bash", "5.2", "deb"), OperatingSystem("alpine", "3.18"), [], "bash", id="deb-on-alpine"),
        pytest.param(Package("Django", "4.2", "pypi"), None, ["PyPI"], "Django", id="pypi"),
        pytest.param(Package("core", "7.23.2", "npm", namespace="babel"), None, ["npm"], "@babel/core", id="npm-scope"),
        pytest.param(Package("text", "v0.3.7", "golang", namespace="golang.org/x"), None, ["Go"],
                     "golang.org/x/text", id="go-module"),
        pytest.param(Package("stdlib", "v1.21.3", "golang"), None, ["Go"], "stdlib", id="go-stdlib"),
        pytest.param(Package("jackson-databind", "2.9.8", "maven", namespace="com.fasterxml.jackson.core"), None,
                     ["Maven"], "com.fasterxml.jackson.core:jackson-databind", id="maven"),
        pytest.param(Package("laravel", "8.0.0", "composer", namespace="laravel"), None, ["Packagist"],
                     "laravel/laravel", id="composer"),
        pytest.param(Package("rails", "7.0.0", "gem"), None, ["RubyGems"], "rails", id="gem"),
        pytest.param(Package("Newtonsoft.Json", "12.0.1", "nuget"), None, ["NuGet"], "Newtonsoft.Json", id="nuget"),
        pytest.param(Package("serde", "1.0.0", "cargo"), None, ["crates.io"], "serde", id="cargo"),
    ],
)  # fmt: skip
def test_package_mapping(pkg: Package, os: OperatingSystem | None, ecosystems: list[str], name: str) -> None:
    assert package_ecosystems(pkg, os) == ecosystems
    assert package_lookup_name(pkg) == name


@pytest.mark.parametrize(
    ("eco", "name", "stored"),
    [
        pytest.param("PyPI", "Zope.Interface", "zope-interface", id="pep503"),
        pytest.param("PyPI", "typing_extensions", "typing-extensions", id="pep503-underscore"),
        pytest.param("NuGet", "Newtonsoft.Json", "newtonsoft.json", id="nuget-case"),
        pytest.param("Go", "github.com/BurntSushi/toml", "github.com/BurntSushi/toml", id="go-case-kept"),
        pytest.param("Maven", "org.Foo:Bar", "org.Foo:Bar", id="maven-kept"),
    ],
)
def test_name_normalisation(eco: str, name: str, stored: str) -> None:
    assert normalise_name(eco, name) == stored


@pytest.mark.parametrize(
    ("pkg", "version"),
    [
        pytest.param(Package("libssl3", "3.0.11-1+b1", "deb", source_version="3.0.11-1"), "3.0.11-1", id="deb-source"),
        pytest.param(Package("bash", "2.1-1", "rpm", epoch=2), "2:2.1-1", id="rpm-epoch"),
        pytest.param(Package("bash", "2:2.1-1", "rpm", epoch=2), "2:2.1-1", id="rpm-epoch-in-version"),
        pytest.param(Package("x", "v1.2.3", "golang"), "1.2.3", id="go-v"),
        pytest.param(Package("x", "(devel)", "golang"), "", id="go-devel"),
    ],
)
def test_installed_version(pkg: Package, version: str) -> None:
    assert installed_version(pkg) == version


@pytest.mark.parametrize(
    ("value", "eco"),
    [
        pytest.param("bookworm", "Debian:12", id="codename"),
        pytest.param("12.5", "Debian:12", id="point-release"),
        pytest.param("sid", "Debian:sid", id="sid"),
        pytest.param("3.1", "Debian:3.1", id="sarge"),
        pytest.param("nonsense", None, id="unknown"),
    ],
)
def test_debian_releases(value: str, eco: str | None) -> None:
    assert debian_ecosystem(value) == eco


def test_every_purl_ecosystem_has_a_scheme() -> None:
    for eco in ("PyPI", "npm", "Go", "crates.io", "Maven", "RubyGems", "Packagist", "NuGet", "Debian:12",
                "Alpine:v3.18", "AlmaLinux:9", "Ubuntu:22.04:LTS"):  # fmt: skip
        assert scheme_name(eco) is not None
    assert scheme_name("Hackage") is None
