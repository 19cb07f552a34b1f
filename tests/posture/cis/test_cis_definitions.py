"""Loading kube-bench definitions: the packaged CIS 1.12 files and malformed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.posture.cis.definitions import (
    DefinitionError,
    available_benchmarks,
    load_benchmark,
    load_config,
    parse_controls,
)

# check counts per file from the conformance README (kube-bench a73ce378)
EXPECTED = {"controlplane": 5, "etcd": 7, "master": 60, "node": 25, "policies": 34}


def test_every_cis_1_12_file_loads() -> None:
    controls = load_benchmark("cis-1.12")
    assert set(controls) == set(EXPECTED)
    for target, count in EXPECTED.items():
        assert sum(len(g.checks) for g in controls[target].groups) == count, target
    checks = [c for file in controls.values() for g in file.groups for c in g.checks]
    assert sum(c.scored for c in checks) == 65
    assert sum(c.type == "manual" for c in checks) == 28
    items = [i for c in checks if c.tests for i in c.tests.test_items]
    assert sum(bool(i.flag) for i in items) == 127
    assert sum(bool(i.path) for i in items) == 22
    assert sum(bool(i.env) for i in items) == 11


def test_packaged_files_match_upstream_copy(conformance_dir: Path) -> None:
    upstream = conformance_dir / "posture" / "kube-bench" / "cfg"
    from garrison.posture.cis.definitions import data_dir

    for path in (upstream / "cis-1.12").glob("*.yaml"):
        assert (data_dir() / "cis-1.12" / path.name).read_bytes() == path.read_bytes()
    assert (data_dir() / "config.yaml").read_bytes() == (upstream / "config.yaml").read_bytes()
    assert (data_dir() / "LICENSE").is_file() and (data_dir() / "SOURCE").is_file()


def test_scalars_keep_their_literal_text() -> None:
    node = load_benchmark("cis-1.12")["node"]
    check = next(c for g in node.groups for c in g.checks if c.id == "4.2.1")
    assert check.tests is not None
    assert check.tests.test_items[0].compare.value == "false"
    assert check.scored is True
    ids = [c.id for g in node.groups for c in g.checks]
    assert "4.1.10" in ids  # not the float 4.1


def test_config() -> None:
    config = load_config()
    assert config.version_mapping["1.33"] == "cis-1.12"
    kubelet = next(c for c in config.targets["node"] if c.name == "kubelet")
    assert kubelet.bins == ("hyperkube kubelet", "kubelet")
    assert kubelet.defaults["defaultconf"] == "/var/lib/kubelet/config.yaml"
    assert "cis-1.12" in available_benchmarks()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("controls:\ngroups: [ {", "f.yaml: invalid YAML"),
        ("- a\n- b\n", "f.yaml: document must be a mapping"),
        ("id: 1\n", "f.yaml: not a control file"),
        ("groups:\n- id: 1\n  checks:\n  - text: no id\n", "group 1 check #0: check has no id"),
        (
            "groups:\n- id: 1\n  checks:\n  - id: 1.1.1\n    tests:\n      test_items:\n      - flag: x\n        compare: {op: similar, value: y}\n",
            "check 1.1.1: unknown compare op 'similar'",
        ),
        (
            "groups:\n- id: 1\n  checks:\n  - id: 1.1.2\n    tests:\n      bin_op: xor\n      test_items: [{flag: x}]\n",
            "check 1.1.2: unknown bin_op 'xor'",
        ),
        (
            "groups:\n- id: 1\n  checks:\n  - id: 1.1.3\n    tests:\n      test_items: [{set: true}]\n",
            "check 1.1.3: test item needs",
        ),
        (
            "groups:\n- id: 1\n  checks:\n  - id: 1.1.4\n    scored: maybe\n",
            "check 1.1.4: scored must be true or false",
        ),
        (
            "groups:\n- id: 1\n  checks:\n  - id: 1.1.5\n    tests:\n      test_items:\n      - flag: x\n        compare: {op: regex, value: '(['}\n",
            "check 1.1.5: invalid regex",
        ),
        ("groups:\n- id: 1\n  checks: {a: b}\n", "group 1: checks must be a list"),
    ],
)
def test_malformed_definitions_name_file_and_check(text: str, message: str) -> None:
    with pytest.raises(DefinitionError) as err:
        parse_controls(text, "f.yaml")
    assert str(err.value).startswith("f.yaml: ")
    assert message.removeprefix("f.yaml: ") in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="file not found"):
        load_config(tmp_path)
    with pytest.raises(DefinitionError, match="unknown benchmark"):
        load_benchmark("../etc", tmp_path)
