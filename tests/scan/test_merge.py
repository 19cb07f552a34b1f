"""Layer squashing: whiteouts, opaque directories and per-layer attribution of packages."""

from __future__ import annotations

import pytest

from garrison.model import Package
from garrison.scan.analyze import LayerAnalysis, merge_layers


def pkg(name: str, version: str, path: str, layer: str, type_: str = "deb") -> Package:
    return Package(name=name, version=version, type=type_, path=path, layer=layer, cataloger="test")


def names(view_packages: list[Package]) -> dict[str, tuple[str, str | None]]:
    return {p.name: (p.version, p.layer) for p in view_packages}


def test_status_rewritten_by_each_layer_keeps_the_installing_layer() -> None:
    status = "var/lib/dpkg/status"
    l1 = LayerAnalysis("sha256:1", files={status: [pkg("libc6", "2.36", status, "sha256:1")]})
    l2 = LayerAnalysis(
        "sha256:2", files={status: [pkg("libc6", "2.36", status, "sha256:2"), pkg("curl", "7.88", status, "sha256:2")]}
    )
    l3 = LayerAnalysis(
        "sha256:3",
        files={
            status: [
                pkg("libc6", "2.36", status, "sha256:3"),
                pkg("curl", "7.88.1", status, "sha256:3"),  # upgraded: belongs to layer 3
                pkg("jq", "1.6", status, "sha256:3"),
            ]
        },
    )
    view = merge_layers([l1, l2, l3])
    assert names(view.packages) == {
        "libc6": ("2.36", "sha256:1"),
        "curl": ("7.88.1", "sha256:3"),
        "jq": ("1.6", "sha256:3"),
    }


def test_whiteout_removes_a_lower_file_and_everything_below_a_directory() -> None:
    a = "usr/lib/python3/site-packages/a-1.0.dist-info/METADATA"
    b = "srv/app/node_modules/b/package.json"
    lower = LayerAnalysis(
        "sha256:1",
        files={a: [pkg("a", "1.0", a, "sha256:1", "pypi")], b: [pkg("b", "2.0", b, "sha256:1", "npm")]},
    )
    upper = LayerAnalysis("sha256:2", whiteouts=["usr/lib/python3/site-packages/a-1.0.dist-info", "srv/app/node_modules"])
    assert merge_layers([lower, upper]).packages == []


def test_whiteout_of_a_sibling_prefix_does_not_remove() -> None:
    path = "opt/app2/package.json"
    lower = LayerAnalysis("sha256:1", files={path: [pkg("app2", "1", path, "sha256:1", "npm")]})
    upper = LayerAnalysis("sha256:2", whiteouts=["opt/app"])
    assert [p.name for p in merge_layers([lower, upper]).packages] == ["app2"]


def test_opaque_directory_hides_lower_content_but_keeps_its_own() -> None:
    old = "opt/venv/lib/old-1.0.dist-info/METADATA"
    new = "opt/venv/lib/new-2.0.dist-info/METADATA"
    lower = LayerAnalysis("sha256:1", files={old: [pkg("old", "1.0", old, "sha256:1", "pypi")]})
    upper = LayerAnalysis(
        "sha256:2", opaques=["opt/venv"], files={new: [pkg("new", "2.0", new, "sha256:2", "pypi")]}
    )
    assert names(merge_layers([lower, upper]).packages) == {"new": ("2.0", "sha256:2")}


def test_file_deleted_then_readded_belongs_to_the_later_layer() -> None:
    path = "app/package.json"
    l1 = LayerAnalysis("sha256:1", files={path: [pkg("app", "1", path, "sha256:1", "npm")]})
    l2 = LayerAnalysis("sha256:2", whiteouts=[path])
    l3 = LayerAnalysis("sha256:3", files={path: [pkg("app", "1", path, "sha256:3", "npm")]})
    assert names(merge_layers([l1, l2, l3]).packages) == {"app": ("1", "sha256:3")}


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param({"usr/lib/os-release": b'ID=debian\nVERSION_ID="12"\n'}, ("debian", "12"), id="os-release"),
        pytest.param({}, None, id="none"),
    ],
)
def test_os_detected_from_the_topmost_files(files: dict[str, bytes], expected: tuple[str, str] | None) -> None:
    view = merge_layers([LayerAnalysis("sha256:1", os_files=files)])
    assert (None if view.os is None else (view.os.family, view.os.version)) == expected


def test_layer_analysis_round_trips_through_the_cache_format() -> None:
    path = "var/lib/dpkg/status"
    la = LayerAnalysis(
        "sha256:1",
        files={path: [Package("libc6", "2.36-9", "deb", cataloger="dpkg", path=path, layer="sha256:1", arch="amd64")]},
        os_files={"etc/os-release": b"ID=debian\n"},
        whiteouts=["x"],
        opaques=["y"],
        warnings=["w"],
    )
    again = LayerAnalysis.from_dict(la.to_dict())
    assert again.to_dict() == la.to_dict()
