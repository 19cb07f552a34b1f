"""AdmissionReview payloads in the shape of the Kubernetes documentation's example request
(Dynamic Admission Control, "Request" section), with Pods and workloads as objects."""

from __future__ import annotations

import copy
import uuid
from typing import Any

# the example AdmissionReview request from the Kubernetes documentation, with a Pod as object
DOCS_REQUEST: dict[str, Any] = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "my-pod",
        "namespace": "my-namespace",
        "operation": "CREATE",
        "userInfo": {
            "username": "admin",
            "uid": "014fbff9a07c",
            "groups": ["system:authenticated", "my-admin-group"],
            "extra": {"some-key": ["some-value1", "some-value2"]},
        },
        "object": None,
        "oldObject": None,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        "dryRun": False,
    },
}

DIGEST = "sha256:" + "ab" * 32


def pod(name: str = "my-pod", image: str = f"registry.example.com/app@{DIGEST}", **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    container.update(spec.pop("container", {}))
    body: dict[str, Any] = {"containers": [container]}
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "my-namespace", "labels": {"app": name, "team": "core"}},
        "spec": body,
    }


RESTRICTED_CONTAINER = {
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
}


def review(obj: dict[str, Any] | None, *, namespace: str = "my-namespace", operation: str = "CREATE",
           user: str = "admin", old: dict[str, Any] | None = None, kind: str | None = None,
           resource: str | None = None, group: str = "") -> dict[str, Any]:
    doc = copy.deepcopy(DOCS_REQUEST)
    req = doc["request"]
    req["uid"] = str(uuid.uuid4())
    req["namespace"] = namespace
    req["operation"] = operation
    req["userInfo"]["username"] = user
    req["object"] = obj
    req["oldObject"] = old
    k = kind or (obj or old or {}).get("kind", "Pod")
    req["kind"] = req["requestKind"] = {"group": group, "version": "v1", "kind": k}
    res = resource or k.lower() + "s"
    req["resource"] = req["requestResource"] = {"group": group, "version": "v1", "resource": res}
    req["name"] = ((obj or old or {}).get("metadata") or {}).get("name", "")
    return doc


