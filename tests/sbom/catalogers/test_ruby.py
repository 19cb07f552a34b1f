"""ruby cataloger: gem specifications Debian's ruby packages install (RubyGems itself, via
``ruby``, is the oracle) and a Gemfile.lock written by Bundler (tests/assets/lang/ruby)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.ruby import RubyCataloger
from garrison.sbom.registry import default_registry

SYSTEM_SPEC_DIRS = [
    Path("/usr/lib/ruby/gems/3.1.0/specifications"),
    Path("/usr/lib/ruby/gems/3.1.0/specifications/default"),
    Path("/usr/share/rubygems-integration/all/specifications"),
]
RUBY_ORACLE = (
    "require 'json'; out = ARGV.map { |f| s = Gem::Specification.load(f); "
    "{file: f, name: s.name, version: s.version.to_s, licenses: s.licenses} }; puts JSON.dump(out)"
)


def _catalog(data: bytes, path: str, mode: str = "image") -> list[Package]:
    return RubyCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode=mode))


@pytest.fixture(scope="session")
def ruby_assets(assets_dir: Path) -> Path:
    return assets_dir / "lang" / "ruby"


def test_registered() -> None:
    assert default_registry().get("ruby").modes == frozenset({"image", "fs"})


def _rubygems_reading(files: list[Path]) -> list[dict[str, object]]:
    out = subprocess.run(["ruby", "-e", RUBY_ORACLE, *map(str, files)], capture_output=True, text=True, check=True)
    result: list[dict[str, object]] = json.loads(out.stdout)
    return result


def test_gemspecs_match_rubygems(ruby_assets: Path) -> None:
    files = sorted((ruby_assets / "specifications").glob("*.gemspec"))
    files += [f for d in SYSTEM_SPEC_DIRS for f in sorted(d.glob("*.gemspec"))]
    assert len(files) > 40, "Debian's ruby package provides the installed gem specifications"
    for want in _rubygems_reading(files):
        path = Path(str(want["file"]))
        rel = f"usr/lib/ruby/gems/3.1.0/{path.parent.name}/{path.name}"
        if path.parent.name == "default":
            rel = f"usr/lib/ruby/gems/3.1.0/specifications/default/{path.name}"
        assert RubyCataloger().required(rel, FileInfo(rel, path.stat().st_size)), rel
        (pkg,) = _catalog(path.read_bytes(), rel)
        assert (pkg.name, pkg.version, list(pkg.licenses)) == (want["name"], want["version"], want["licenses"]), path
        assert pkg.type == "gem"


def test_gemspec_licenses(ruby_assets: Path) -> None:
    (pkg,) = _catalog(
        (ruby_assets / "specifications" / "open-uri-0.2.0.gemspec").read_bytes(), "specifications/x.gemspec"
    )
    assert pkg.licenses == ("Ruby", "BSD-2-Clause")


def test_gemspec_older_syntax_and_platform() -> None:
    text = b"""# -*- encoding: utf-8 -*-
# stub: nokogiri 1.13.10 x86_64-linux lib

Gem::Specification.new do |s|
  s.name = %q{nokogiri}
  s.version = "1.13.10"
  s.platform = "x86_64-linux"
  s.required_rubygems_version = Gem::Requirement.new(">= 0") if s.respond_to? :required_rubygems_version=
  s.license = 'MIT'
end
"""
    (pkg,) = _catalog(text, "var/lib/gems/3.1.0/specifications/nokogiri-1.13.10-x86_64-linux.gemspec")
    assert (pkg.name, pkg.version, pkg.licenses, pkg.metadata["platform"]) == (
        "nokogiri",
        "1.13.10",
        ("MIT",),
        "x86_64-linux",
    )


def test_gemspec_stub_only() -> None:
    (pkg,) = _catalog(b"# stub: tiny 0.1.0 ruby lib\n", "specifications/tiny-0.1.0.gemspec")
    assert (pkg.name, pkg.version, pkg.metadata) == ("tiny", "0.1.0", {})


def test_gemspec_never_evaluated() -> None:
    text = b'Gem::Specification.new do |s|\n  s.name = "evil"\n  s.version = `id`\n  system("touch /tmp/x")\nend\n'
    with pytest.raises(CatalogError, match="no name or version"):
        _catalog(text, "specifications/evil.gemspec")


def test_gemfile_lock_from_bundler(ruby_assets: Path) -> None:
    pkgs = _catalog((ruby_assets / "Gemfile.lock").read_bytes(), "app/Gemfile.lock", mode="fs")
    assert {(p.name, p.version) for p in pkgs} == {
        ("minitest", "5.15.0"),
        ("power_assert", "2.0.1"),
        ("rack", "2.2.22"),
        ("rake", "13.0.6"),
        ("test-unit", "3.5.3"),
        ("webrick", "1.8.1"),
    }
    by_name = {p.name: p for p in pkgs}
    assert by_name["rack"].metadata == {"source": "gem", "remote": "https://rubygems.org/", "direct": True}
    assert "direct" not in by_name["power_assert"].metadata


def test_gemfile_lock_not_in_images(ruby_assets: Path) -> None:
    assert _catalog((ruby_assets / "Gemfile.lock").read_bytes(), "app/Gemfile.lock", mode="image") == []


def test_gemfile_lock_sources_and_platforms() -> None:
    text = b"""GIT
  remote: https://github.com/rails/rails.git
  revision: 0123456789abcdef
  branch: main
  specs:
    rails (7.2.0.alpha)
      actionpack (= 7.2.0.alpha)

PATH
  remote: .
  specs:
    myapp (0.1.0)

GEM
  remote: https://rubygems.org/
  specs:
    nokogiri (1.16.0-x86_64-linux)
      racc (~> 1.4)
    nokogiri (1.16.0-arm64-darwin)
      racc (~> 1.4)
    racc (1.7.3)

PLATFORMS
  arm64-darwin
  x86_64-linux

DEPENDENCIES
  myapp!
  nokogiri (~> 1.16)
  rails!

BUNDLED WITH
   2.5.3
"""
    pkgs = _catalog(text, "Gemfile.lock", mode="fs")
    got = {(p.name, p.version, p.metadata.get("platform"), p.metadata["source"]) for p in pkgs}
    assert got == {
        ("rails", "7.2.0.alpha", None, "git"),
        ("nokogiri", "1.16.0", "x86_64-linux", "gem"),
        ("nokogiri", "1.16.0", "arm64-darwin", "gem"),
        ("racc", "1.7.3", None, "gem"),
    }
    assert all(p.metadata.get("direct") for p in pkgs if p.name in ("rails", "nokogiri"))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("GEM\n  specs:\n    broken line\n", id="bad-spec"),
        pytest.param("    rack (1.0)\n", id="no-section"),
        pytest.param("GEM\n  specs:\n    rack (-linux)\n", id="empty-version"),
    ],
)
def test_gemfile_lock_malformed(text: str) -> None:
    with pytest.raises(CatalogError, match=r"^Gemfile\.lock: "):
        _catalog(text.encode(), "Gemfile.lock", mode="fs")


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("Gemfile.lock", True),
        ("usr/local/bundle/specifications/rack-3.0.0.gemspec", True),
        ("usr/local/lib/ruby/gems/3.3.0/specifications/default/json-2.7.1.gemspec", True),
        ("src/mygem/mygem.gemspec", False),
        ("Gemfile", False),
    ],
)
def test_required(path: str, want: bool) -> None:
    assert RubyCataloger().required(path, FileInfo(path, 10)) is want
