"""AdmissionReview parsing (with fuzzing), configuration validation, install manifests and the
vulnerability gate over a cache built from the bundled demo image scan."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.admission._payloads import DOCS_REQUEST, pod, review

from garrison.admission.certs import generate, service_names
from garrison.admission.config import config_from_dict
from garrison.admission.manifests import NAME, ManifestOptions, build_objects, render
from garrison.admission.policy import Engine
from garrison.admission.review import ReviewError, parse_review
from garrison.core.errors import ConfigError
from garrison.posture.k8s.loader import load_text
from garrison.posture.k8s.pss import evaluate_object

REPO = Path(__file__).resolve().parents[2]
DOCS_BYTES = json.dumps({**DOCS_REQUEST, "request": {**DOCS_REQUEST["request"], "object": pod()}}).encode()


def test_docs_example_parses() -> None:
    req = parse_review(DOCS_BYTES)
    assert req.uid == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert req.operation == "CREATE" and req.object_kind == "Pod" and req.namespace == "my-namespace"
    assert req.user.username == "admin" and req.user.groups == ("system:authenticated", "my-admin-group")
    assert req.user.extra == {"some-key": ("some-value1", "some-value2")}


@given(st.integers(min_value=0, max_value=len(DOCS_BYTES)), st.binary(max_size=8), st.integers(min_value=0, max_value=len(DOCS_BYTES)))
def test_fuzz_truncated_and_mutated(cut: int, junk: bytes, at: int) -> None:
    for data in (DOCS_BYTES[:cut], DOCS_BYTES[:at] + junk + DOCS_BYTES[at + len(junk):]):
        try:
            parse_review(data)
        except ReviewError as err:
            assert str(err).startswith("AdmissionReview: ") and "\n" not in str(err)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=10)


@given(st.sampled_from(["uid", "kind", "resource", "operation", "userInfo", "object", "dryRun", "namespace"]), _json)
def test_fuzz_field_values(field: str, value: Any) -> None:
    doc = copy.deepcopy(DOCS_REQUEST)
    doc["request"][field] = value
    try:
        parse_review(doc)
    except ReviewError:
        pass


@pytest.mark.parametrize("bad", [{"mode": "loud"}, {"celRules": [{"name": "x", "expression": "object.(", "message": "m"}]},
                                 {"podSecurity": {"defaults": {"enforce": "strict"}}}, {"controls": {"ids": ["NOPE-1"]}},
                                 {"vulnerabilities": {"onTimeout": "maybe"}}])
def test_bad_config_is_one_line_config_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        Engine(config_from_dict(bad))
    assert "\n" not in str(err.value)


def test_manifests_load_and_deployment_is_restricted(tmp_path: Path) -> None:
    certs = generate(service_names(NAME, "garrison"))
    image = "ghcr.io/acme/garrison@sha256:" + "ef" * 32
    text = render(build_objects(ManifestOptions(namespace="garrison", image=image), certs))
    objects = load_text(text, "manifests.yaml").objects
    kinds = [o.kind for o in objects]
    for kind in ("Namespace", "ServiceAccount", "Secret", "Deployment", "Service",
                 "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert kind in kinds
    for obj in objects:
        assert obj.api_version and obj.kind and obj.metadata.get("name")
    deploy = next(o for o in objects if o.kind == "Deployment")
    assert evaluate_object(deploy, "restricted", "latest") == []
    assert deploy.doc["spec"]["replicas"] == 2
    assert deploy.doc["spec"]["template"]["spec"]["containers"][0]["image"] == image
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        hook = next(o for o in objects if o.kind == kind).doc["webhooks"][0]
        assert hook["admissionReviewVersions"] == ["v1"] and hook["sideEffects"] == "None"
        assert hook["failurePolicy"] == "Fail" and hook["timeoutSeconds"] == 5
        expr = hook["namespaceSelector"]["matchExpressions"][0]
        assert expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn"
        assert set(expr["values"]) == {"kube-system", "garrison"}
        assert hook["clientConfig"]["caBundle"]
    with pytest.raises(ConfigError):
        build_objects(ManifestOptions(namespace="garrison", image=image, failure_policy="Sometimes"), certs)


@pytest.fixture(scope="module")
def demo_scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The bundled demo image scanned with the pipeline against a DB imported from demo/advisories."""
    from garrison.cli.main import main

    work = tmp_path_factory.mktemp("demo")
    db = work / "garrison.db"
    out = work / "scan.json"
    env = {"GARRISON_DB": str(db), "GARRISON_CACHE_DIR": str(work / "cache")}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    try:
        for argv in (["db", "import", str(REPO / "demo" / "advisories")],
                     ["scan", "image", str(REPO / "demo" / "sample-image.tar"), "--format", "json", "--output", str(out)]):
            with pytest.raises(SystemExit) as done:
                main(argv)
            assert done.value.code in (0, None)
    finally:
        mp.undo()
    return dict(json.loads(out.read_text()))


def test_vuln_gate_from_cache(tmp_path: Path, demo_scan: dict[str, Any]) -> None:
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps(demo_scan))
    engine = Engine(config_from_dict({"podSecurity": {"enabled": False},
                                      "vulnerabilities": {"cache": str(cache), "severity": "HIGH", "onMiss": "deny"}}))
    decision = engine.validate(parse_review(review(pod(image="garrison-demo/web:1.0"))))
    assert decision.allowed is False
    assert "image 'garrison-demo/web:1.0' has" in decision.message and "fixable vulnerabilities at or above HIGH" in decision.message
    assert "PYSEC-2023-192 (urllib3 1.24.1 -> 1.26.17)" in decision.message
    image_id = demo_scan["artifact"]["image_id"]
    by_digest = engine.validate(parse_review(review(pod(image=f"example.com/web@{image_id}"))))
    assert by_digest.allowed is False
    miss = engine.validate(parse_review(review(pod(image="example.com/other:1"))))
    assert miss.allowed is False and "no scan result for example.com/other:1" in miss.message
    lenient = Engine(config_from_dict({"podSecurity": {"enabled": False},
                                       "vulnerabilities": {"cache": str(cache), "severity": "CRITICAL"}}))
    assert lenient.validate(parse_review(review(pod(image="garrison-demo/web:1.0")))).allowed is True
