"""Fuzzing: the flag parser, JSONPath over mutated config documents and the definition loader
with mutated YAML only ever return or raise GarrisonError."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.errors import GarrisonError
from garrison.posture.cis import jsonpath
from garrison.posture.cis.definitions import COMPARE_OPS as OPS_FOR_FUZZ
from garrison.posture.cis.definitions import Compare, data_dir, parse_controls
from garrison.posture.cis.definitions import TestItem as Item
from garrison.posture.cis.engine import Source, compare_op, execute_item

NODE_YAML = (data_dir() / "cis-1.12" / "node.yaml").read_text()
KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
readOnlyPort: 0
tlsCipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
featureGates: {RotateKubeletServerCertificate: true}
"""
PS_LINE = "root 123 1 0 10:00 ? 00:00:01 /usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --anonymous-auth=false --read-only-port 0 --rotate-certificates"
PATHS = [
    "{.authentication.anonymous.enabled}",
    "{.authorization.mode}",
    "{range .tlsCipherSuites[:]}{}{','}{end}",
    "{.featureGates.RotateKubeletServerCertificate}",
    "{..enabled}",
    "{.tlsCipherSuites[*]}",
    "{.tlsCipherSuites[-1:]}",
    "{.items[?(@.name=='x')].value}",
    "{.authentication}",
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mutate(text: str, data: st.DataObject) -> str:
    ops = data.draw(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, max(len(text), 1)), st.text(max_size=8)), max_size=6)
    )
    for op, pos, chunk in ops:
        if op == 0:
            text = text[:pos]
        elif op == 1:
            text = text[:pos] + chunk + text[pos:]
        elif op == 2:
            text = text[:pos] + text[pos + len(chunk) + 1 :]
        else:
            text = text[:pos] + chunk + text[pos + len(chunk) :]
    return text


@FUZZ
@given(st.data())
def test_flag_parser_on_mutated_command_lines(data: st.DataObject) -> None:
    line = _mutate(PS_LINE, data)
    flag = data.draw(
        st.sampled_from(["--anonymous-auth", "--read-only-port", "--rotate-certificates", "root:root", "permissions"])
        | st.text(max_size=6)
    )
    op = data.draw(st.sampled_from(sorted(OPS_FOR_FUZZ)) | st.just(""))
    value = data.draw(st.sampled_from(["0", "false", "600", "a,b", "^x"]) | st.text(max_size=5))
    item = Item(flag=flag, compare=Compare(op, value), set=data.draw(st.booleans()))
    out = execute_item(item, Source.COMMAND, line, multiple=data.draw(st.booleans()))
    # a missing flag never satisfies "set: true", a present one never satisfies "set: false"
    if item.set and not out.flag_found:
        assert not out.test_result
    if not item.set and out.flag_found:
        assert not out.test_result
    assert out.actual_result == line.rstrip(" \n")


@FUZZ
@given(st.data())
def test_jsonpath_on_mutated_documents(data: st.DataObject) -> None:
    doc = KUBELET_CONFIG
    if data.draw(st.booleans()):
        import yaml

        doc = json.dumps(yaml.safe_load(KUBELET_CONFIG))
    doc = _mutate(doc, data)
    path = data.draw(st.sampled_from(PATHS) | st.text(alphabet="{}.[]*?@'=,:-_ab0123", max_size=20))
    try:
        text = jsonpath.execute(path, jsonpath.unmarshal(doc))
    except GarrisonError:
        return
    assert isinstance(text, str)
    item = Item(flag="--x", path=path, compare=Compare("eq", "false"))
    assert isinstance(execute_item(item, Source.CONFIG, doc, multiple=False).test_result, bool)


@FUZZ
@given(st.data())
def test_definition_loader_on_mutated_yaml(data: st.DataObject) -> None:
    text = _mutate(NODE_YAML, data)
    try:
        controls = parse_controls(text, "node.yaml")
    except GarrisonError as err:
        assert str(err).startswith("node.yaml: ")
        assert "\n" not in str(err)
        return
    assert all(c.id for g in controls.groups for c in g.checks)


@FUZZ
@given(st.text(max_size=12), st.text(max_size=12))
def test_compare_ops_are_complementary(flag_val: str, value: str) -> None:
    assert compare_op("eq", flag_val, value, "f")[1] != compare_op("noteq", flag_val, value, "f")[1]
    assert compare_op("has", flag_val, value, "f")[1] != compare_op("nothave", flag_val, value, "f")[1]
    for op in sorted(OPS_FOR_FUZZ):
        text, _ = compare_op(op, flag_val, value, "f")
        assert text  # every known operator explains itself


def test_unmarshal_rejects_garbage_with_one_error() -> None:
    for bad in ("broken } yaml\nenabled: true", "a: [1, 2", "a: b: c"):
        try:
            jsonpath.unmarshal(bad)
        except GarrisonError as err:
            assert "failed to load YAML or JSON" in str(err)
        else:
            raise AssertionError(bad)


def test_fuzz_inputs_exist() -> None:
    assert Path(data_dir() / "cis-1.12" / "node.yaml").is_file()
