"""gomod cataloger against real go.mod files, with Go's own parser (`go mod edit -json`) as the oracle."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.model import FileInfo
from garrison.sbom.catalogers.gobinary import split_module_path
from garrison.sbom.catalogers.gomod import GoModCataloger, parse_gomod
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.registry import default_registry

FIXTURES = [
    "kubernetes.mod",
    "go-1.19-cmd.mod",
    "golang-x-text-0.7.0.mod",
    "trivy-go116.mod",
    "trivy-replaced.mod",
    "trivy-replaced-with-version-mismatch.mod",
    "trivy-replaced-with-local-path-and-version.mod",
]


@pytest.fixture(scope="session")
def gomod_dir(assets_dir: Path) -> Path:
    return assets_dir / "bin" / "go" / "gomod"


def go_mod_json(path: Path) -> dict[str, Any]:
    out = subprocess.run(["go", "mod", "edit", "-json", str(path)], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _catalog(text: str, name: str = "go.mod") -> list[Any]:
    data = text.encode()
    return GoModCataloger().catalog(CatalogInput(FileInfo(name, len(data)), data=data, mode="fs"))


def _expected(o: dict[str, Any]) -> set[tuple[str | None, str, str, bool]]:
    """The documented rule applied to Go's reading: replacements with a version win, local ones
    keep the required module."""
    want = set()
    for req in o.get("Require") or []:
        path, version = req["Path"], req["Version"]
        for rep in o.get("Replace") or []:
            old, new = rep["Old"], rep["New"]
            if (
                old["Path"] == req["Path"]
                and old.get("Version", req["Version"]) == req["Version"]
                and new.get("Version")
            ):
                path, version = new["Path"], new["Version"]
        want.add((*split_module_path(path), version, bool(req.get("Indirect"))))
    return want


def _got(pkgs: list[Any]) -> set[tuple[str | None, str, str, bool]]:
    return {(p.namespace, p.name, p.version, bool(p.metadata.get("indirect"))) for p in pkgs}


def test_registered_for_fs_only() -> None:
    cat = default_registry().get("gomod")
    assert isinstance(cat, GoModCataloger)
    assert cat.modes == frozenset({"fs"})


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_go_mod_edit(name: str, gomod_dir: Path) -> None:
    path = gomod_dir / name
    o = go_mod_json(path)
    text = path.read_text()
    mod = parse_gomod(text)
    assert mod.module == o["Module"]["Path"]
    assert mod.go == o.get("Go", "")
    assert mod.requires is not None and mod.replaces is not None
    assert [(r.path, r.version, r.indirect) for r in mod.requires] == [
        (r["Path"], r["Version"], bool(r.get("Indirect"))) for r in o.get("Require") or []
    ]
    assert [(r.old_path, r.old_version, r.new_path, r.new_version) for r in mod.replaces] == [
        (r["Old"]["Path"], r["Old"].get("Version", ""), r["New"]["Path"], r["New"].get("Version", ""))
        for r in o.get("Replace") or []
    ]
    assert _got(_catalog(text)) == _expected(o)


def test_newer_directives_skipped(gomod_dir: Path, tmp_path: Path) -> None:
    """`toolchain` and three-part `go` lines postdate Debian's Go 1.19: Go reads a copy without them."""
    text = (gomod_dir / "trivy-normal.mod").read_text()
    older = tmp_path / "go.mod"
    older.write_text(text.replace("go 1.22.0\n", "go 1.19\n").replace("toolchain go1.22.5\n", ""))
    pkgs = _catalog(text)
    assert _got(pkgs) == _expected(go_mod_json(older))
    assert parse_gomod(text).go == "1.22.0"


def test_kubernetes_local_replacements(gomod_dir: Path) -> None:
    pkgs = {(p.namespace, p.name): p for p in _catalog((gomod_dir / "kubernetes.mod").read_text())}
    api = pkgs[("k8s.io", "api")]
    assert api.version == "v0.0.0"
    assert api.metadata["replacement"] == {"path": "./staging/src/k8s.io/api", "version": ""}


@pytest.fixture(scope="session")
def edited_gomod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A go.mod written by `go mod edit` itself: quoted paths, exclude and retract lines."""
    d = tmp_path_factory.mktemp("gomodedit")
    (d / "go.mod").write_text("module example.com/edited\n\ngo 1.19\n")
    for args in (
        ["-require=golang.org/x/net@v0.7.0", "-require=github.com/pkg/errors@v0.9.1"],
        ["-replace=golang.org/x/net@v0.7.0=./forks/net with space"],
        ["-replace=github.com/pkg/errors=github.com/pkg/errors@v0.9.2-0.20201214064552-5dd12d0cfe7f"],
        ["-exclude=golang.org/x/net@v0.1.0", "-retract=v0.0.1", "-retract=[v0.1.0,v0.1.5]"],
        ["-require=example.com/in/direct@v1.0.0"],
    ):
        subprocess.run(["go", "mod", "edit", *args], cwd=d, check=True)
    text = (
        (d / "go.mod")
        .read_text()
        .replace("example.com/in/direct v1.0.0", "example.com/in/direct v1.0.0 // indirect; kept by hand")
    )
    (d / "go.mod").write_text(text)
    return d / "go.mod"


def test_go_written_file(edited_gomod: Path) -> None:
    text = edited_gomod.read_text()
    assert '"./forks/net with space"' in text  # Go quoted it
    o = go_mod_json(edited_gomod)
    pkgs = _catalog(text)
    assert _got(pkgs) == _expected(o)
    direct = [p for p in pkgs if p.name == "direct"]
    assert direct[0].metadata == {"indirect": True}
    net = next(p for p in pkgs if p.name == "net")
    assert net.metadata["replacement"]["path"] == "./forks/net with space"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("module a\nrequire (\n\tb v1.0.0\n", id="unterminated-block"),
        pytest.param("module a\n)\n", id="stray-close"),
        pytest.param("module a\nrequire b\n", id="require-one-field"),
        pytest.param("module a\nrequire b v1 extra\n", id="require-three-fields"),
        pytest.param("module a\nreplace b v1.0.0\n", id="replace-without-arrow"),
        pytest.param("module a\nreplace b => \n", id="replace-without-target"),
        pytest.param('module "a\n', id="unterminated-quote"),
        pytest.param("module a b\n", id="module-two-fields"),
        pytest.param("require ( b v1 ) c\n", id="paren-mid-line"),
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(CatalogError, match=r"^go\.mod: malformed go\.mod"):
        _catalog(text)


def test_not_utf8() -> None:
    with pytest.raises(CatalogError, match="not UTF-8"):
        GoModCataloger().catalog(CatalogInput(FileInfo("go.mod", 3), data=b"\xff\xfe\x00", mode="fs"))


@pytest.mark.parametrize(
    ("path", "want"),
    [
        pytest.param("go.mod", True, id="root"),
        pytest.param("src/app/go.mod", True, id="nested"),
        pytest.param("src/app/go.sum", False, id="go-sum"),
        pytest.param("src/app/go.mod.bak", False, id="backup"),
    ],
)
def test_required(path: str, want: bool) -> None:
    assert GoModCataloger().required(path, FileInfo(path, 100)) is want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, 14000),
    edits=st.lists(st.tuples(st.integers(0, 13403), st.sampled_from(list('()"`/ \t\n=>vx'))), max_size=6),
)
def test_fuzz_mutated_real_gomod(gomod_dir: Path, cut: int, edits: list[tuple[int, str]]) -> None:
    text = list((gomod_dir / "kubernetes.mod").read_text())
    for pos, ch in edits:
        if pos < len(text):
            text[pos] = ch
    try:
        result = _catalog("".join(text)[:cut])
    except CatalogError as err:
        assert str(err).startswith("go.mod: ")
        return
    assert all(p.type == "golang" for p in result)
