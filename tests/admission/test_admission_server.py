"""The webhook served over real HTTPS: decisions, modes, exemptions, malformed bodies."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import pytest
from tests.admission._payloads import RESTRICTED_CONTAINER, pod, review

PSS_CFG: dict[str, Any] = {
    "podSecurity": {
        "defaults": {"enforce": "baseline", "warn": "restricted"},
        "namespaces": {"strict": {"pod-security.kubernetes.io/enforce": "restricted"}},
    },
    "exemptions": {"namespaces": ["kube-system"], "usernames": ["system:serviceaccount:kube-system:replicaset-controller"],
                   "runtimeClasses": ["kata"]},
    "images": {"allowedRegistries": ["registry.example.com", "ghcr.io/acme/*"], "requireDigest": True},
    "requiredLabels": {"labels": ["app", "team"], "kinds": ["Pod", "Deployment"]},
    "celRules": [
        {"name": "no-host-network", "expression": "!has(object.spec.hostNetwork) || !object.spec.hostNetwork",
         "message": "hostNetwork is not allowed", "kinds": ["Pod"]},
    ],
}

PRIVILEGED = {"securityContext": {"privileged": True}}


def _resp(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["apiVersion"] == "admission.k8s.io/v1" and doc["kind"] == "AdmissionReview"
    return doc["response"]


@pytest.fixture(scope="module")
def server(serve: Any) -> Any:
    return serve(PSS_CFG)


def test_allowed_pod_echoes_uid_with_restricted_warning(server: Any) -> None:
    body = review(pod())
    resp = _resp(server.post("/validate", body))
    assert resp["uid"] == body["request"]["uid"]
    assert resp["allowed"] is True
    # baseline passes; the warn level (restricted) warns in PSA's words
    assert any(w.startswith('would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false')
               for w in resp["warnings"]), resp["warnings"]


def test_privileged_pod_denied_with_pss_message(server: Any) -> None:
    resp = _resp(server.post("/validate", review(pod("priv", container=PRIVILEGED))))
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403
    msg = resp["status"]["message"]
    assert msg.startswith('pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "app" must not set securityContext.privileged=true)'), msg


def test_restricted_namespace_from_config_denies_unhardened_pod(server: Any) -> None:
    resp = _resp(server.post("/validate", review(pod(), namespace="strict")))
    assert resp["allowed"] is False
    assert 'violates PodSecurity "restricted:latest"' in resp["status"]["message"]
    ok = _resp(server.post("/validate", review(pod(container=RESTRICTED_CONTAINER), namespace="strict")))
    assert ok["allowed"] is True and "warnings" not in ok


def test_namespace_labels_learned_from_namespace_objects(server: Any) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "learned", "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.25"}}}
    assert _resp(server.post("/validate", review(ns, namespace="", resource="namespaces")))["allowed"] is True
    resp = _resp(server.post("/validate", review(pod(), namespace="learned")))
    assert resp["allowed"] is False
    assert 'violates PodSecurity "restricted:v1.25"' in resp["status"]["message"]
    bad = copy.deepcopy(ns)
    bad["metadata"]["name"] = "bad"
    bad["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "strictest"
    assert _resp(server.post("/validate", review(bad, namespace="")))["allowed"] is False


def test_workload_failing_enforce_level_is_warned_not_denied(server: Any) -> None:
    template = pod("web", container=PRIVILEGED)
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "my-namespace", "labels": {"app": "web", "team": "x"}},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}, "spec": template["spec"]}}}
    resp = _resp(server.post("/validate", review(deploy, group="apps")))
    assert resp["allowed"] is True
    assert any(w.startswith('would violate PodSecurity "baseline:latest": privileged') for w in resp["warnings"])


@pytest.mark.parametrize(
    ("kw", "where"),
    [
        ({"namespace": "kube-system"}, "namespace kube-system"),
        ({"user": "system:serviceaccount:kube-system:replicaset-controller"}, "user system:serviceaccount"),
    ],
)
def test_exemptions_skip_every_policy(server: Any, kw: dict[str, Any], where: str) -> None:
    body = review(pod("x", image="evil.example/x:latest", container=PRIVILEGED), **kw)
    resp = _resp(server.post("/validate", body))
    assert resp["allowed"] is True
    event = next(e for e in server.events() if e["uid"] == body["request"]["uid"])
    assert event["decision"] == "exempt" and event["exempt"].startswith(where)


def test_runtime_class_exemption(server: Any) -> None:
    resp = _resp(server.post("/validate", review(pod("k", container=PRIVILEGED, runtimeClassName="kata"))))
    assert resp["allowed"] is True


def test_registry_allow_list_and_digest_pinning(server: Any) -> None:
    resp = _resp(server.post("/validate", review(pod(image="docker.io/library/nginx:1.25"))))
    assert resp["allowed"] is False
    msg = resp["status"]["message"]
    assert "image 'docker.io/library/nginx:1.25' is not from an allowed registry" in msg
    assert "is not pinned by digest" in msg
    assert _resp(server.post("/validate", review(pod(image=f"ghcr.io/acme/api@{DIGEST_}"))))["allowed"] is True
    # a prefix must end at a path boundary
    assert _resp(server.post("/validate", review(pod(image=f"registry.example.com.evil/x@{DIGEST_}"))))["allowed"] is False
    tagged = _resp(server.post("/validate", review(pod(image="registry.example.com/app:1.0"))))
    assert tagged["allowed"] is False and "not pinned by digest" in tagged["status"]["message"]


DIGEST_ = "sha256:" + "cd" * 32


def test_required_labels(server: Any) -> None:
    obj = pod()
    del obj["metadata"]["labels"]["team"]
    resp = _resp(server.post("/validate", review(obj)))
    assert resp["allowed"] is False
    assert "missing required labels: team" in resp["status"]["message"]


def test_cel_rule(server: Any) -> None:
    resp = _resp(server.post("/validate", review(pod(hostNetwork=True))))
    assert resp["allowed"] is False
    assert "no-host-network: hostNetwork is not allowed" in resp["status"]["message"]
    assert _resp(server.post("/validate", review(pod(hostNetwork=False))))["allowed"] is True


def test_decision_log_line(server: Any) -> None:
    body = review(pod("logged", container=PRIVILEGED))
    _resp(server.post("/validate", body))
    event = next(e for e in server.events() if e["uid"] == body["request"]["uid"])
    assert event["decision"] == "denied"
    assert event["namespace"] == "my-namespace" and event["kind"] == "Pod" and event["name"] == "logged"
    assert event["operation"] == "CREATE" and event["user"] == "admin"
    assert "pss" in event["policies_failed"]
    assert isinstance(event["duration_ms"], float) and event["duration_ms"] >= 0
    assert "time" in event


def test_delete_is_allowed_without_evaluation(server: Any) -> None:
    resp = _resp(server.post("/validate", review(None, operation="DELETE", old=pod(container=PRIVILEGED), kind="Pod")))
    assert resp["allowed"] is True


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"this is not json", "body is not JSON"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}).encode(), "apiVersion must be admission.k8s.io/v1"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}}).encode(), "request.uid is required"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
def test_malformed_bodies_answered_400_quickly(server: Any, body: bytes, needle: str) -> None:
    t = time.perf_counter()
    r = server.client.post(server.base + "/validate", content=body, headers={"content-type": "application/json"})
    assert time.perf_counter() - t < 2
    assert r.status_code == 400
    assert needle in r.text


def test_bad_operation_with_uid_gets_admission_review_answer(server: Any) -> None:
    body = review(pod())
    body["request"]["operation"] = "PATCH"
    r = server.post("/validate", body)
    assert r.status_code == 400
    resp = r.json()["response"]
    assert resp["uid"] == body["request"]["uid"] and resp["allowed"] is False
    assert "request.operation must be one of" in resp["status"]["message"]


def test_huge_body_rejected_413(server: Any) -> None:
    t = time.perf_counter()
    r = server.client.post(server.base + "/validate", content=b"{" + b" " * (5 * 1024 * 1024) + b"}",
                           headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "body larger than" in r.json()["error"]
    assert time.perf_counter() - t < 5


def test_healthz_and_metrics(server: Any) -> None:
    assert server.client.get(server.base + "/healthz").text == "ok\n"
    _resp(server.post("/validate", review(pod())))
    text = server.client.get(server.base + "/metrics").text
    assert 'garrison_admission_requests_total{endpoint="validate",decision="allowed"}' in text
    assert "# TYPE garrison_admission_request_duration_seconds histogram" in text
    count = next(line for line in text.splitlines() if line.startswith("garrison_admission_request_duration_seconds_count"))
    assert int(count.split()[1]) >= 1


@pytest.mark.parametrize(("mode", "allowed", "decision"), [("warn", True, "allowed"), ("audit", True, "allowed"),
                                                           ("dry-run", True, "dry-run-denied"), ("enforce", False, "denied")])
def test_modes(serve: Any, mode: str, allowed: bool, decision: str) -> None:
    srv = serve({"mode": mode, "podSecurity": {"enabled": False}, "requiredLabels": {"labels": ["owner"]}})
    body = review(pod())
    resp = _resp(srv.post("/validate", body))
    assert resp["allowed"] is allowed
    warned = any("missing required labels: owner" in w for w in resp.get("warnings", []))
    assert warned is (mode == "warn")
    event = next(e for e in srv.events() if e["uid"] == body["request"]["uid"])
    assert event["decision"] == decision
    assert event["policies_failed"] == ["required-labels"]
    assert event["dry_run"] is (mode == "dry-run")


def test_fail_open_and_closed_on_internal_error(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from garrison.admission import policy

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("exploded")

    for fail_open in (True, False):
        srv = serve({"failOpen": fail_open})
        monkeypatch.setattr(policy.Engine, "_pss", boom)
        body = review(pod())
        resp = _resp(srv.post("/validate", body))
        monkeypatch.undo()
        assert resp["uid"] == body["request"]["uid"]
        assert resp["allowed"] is fail_open
        assert "internal error: RuntimeError: exploded" in resp["status"]["message"]


def _apply(doc: Any, patch: list[dict[str, Any]]) -> Any:
    """A minimal RFC 6902 applier for add/replace."""
    doc = copy.deepcopy(doc)
    for op in patch:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        last = parts[-1]
        assert op["op"] in ("add", "replace")
        if isinstance(cur, list):
            if last == "-":
                cur.append(op["value"])
            else:
                cur.insert(int(last), op["value"])
        else:
            cur[last] = op["value"]
    return doc


def test_mutation_patch_gives_restricted_pod(serve: Any) -> None:
    from garrison.posture.k8s.objects import K8sObject
    from garrison.posture.k8s.pss import evaluate_object
    from garrison.posture.model import Location

    srv = serve({"mutation": {"runAsNonRoot": True, "seccompProfile": "RuntimeDefault",
                              "allowPrivilegeEscalation": False, "dropAllCapabilities": True}})
    obj = pod(initContainers=[{"name": "init", "image": "registry.example.com/i@" + DIGEST_,
                               "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}])
    assert evaluate_object(K8sObject(obj, Location()), "restricted", "latest")
    resp = _resp(srv.post("/mutate", review(obj)))
    assert resp["allowed"] is True and resp["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(resp["patch"]))
    mutated = _apply(obj, patch)
    assert evaluate_object(K8sObject(mutated, Location()), "restricted", "latest") == []
    assert mutated["spec"]["initContainers"][0]["securityContext"]["capabilities"]["drop"] == ["NET_RAW", "ALL"]
    # explicit values are kept
    explicit = pod(securityContext={"runAsNonRoot": False})
    patch2 = json.loads(base64.b64decode(_resp(srv.post("/mutate", review(explicit)))["patch"]))
    assert _apply(explicit, patch2)["spec"]["securityContext"]["runAsNonRoot"] is False
