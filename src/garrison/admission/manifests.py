"""Kubernetes manifests that install the webhook: Namespace, ServiceAccount, TLS Secret,
Deployment (hardened, restricted Pod Security compliant), Service, and the Validating and
Mutating webhook configurations with the CA bundle."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import yaml

from garrison.admission.certs import CertBundle
from garrison.core.errors import ConfigError

NAME = "garrison-admission"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
WORKLOAD_RULES = [
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods", "pods/ephemeralcontainers"]},
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
    },
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs", "cronjobs"]},
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["namespaces", "replicationcontrollers"]},
]


@dataclass(frozen=True, slots=True)
class ManifestOptions:
    namespace: str
    image: str
    service: str = NAME
    replicas: int = 2
    failure_policy: str = "Fail"
    timeout_seconds: int = 5
    port: int = 8443


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "admission-webhook"}


def build_objects(opts: ManifestOptions, certs: CertBundle) -> list[dict[str, Any]]:
    if not _DNS_LABEL.match(opts.namespace):
        raise ConfigError(f"--namespace {opts.namespace!r} is not a valid namespace name")
    if opts.failure_policy not in ("Fail", "Ignore"):
        raise ConfigError(f"--failure-policy must be Fail or Ignore, not {opts.failure_policy!r}")
    if not 1 <= opts.timeout_seconds <= 30:
        raise ConfigError("--timeout-seconds must be between 1 and 30 (the API server's bound)")
    if not opts.image:
        raise ConfigError("--image is required")
    ns, name, labels = opts.namespace, opts.service, _labels()
    b64 = base64.b64encode
    meta = {"name": name, "namespace": ns, "labels": labels}
    probe = {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 10}
    container = {
        "name": "webhook",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "admission", "serve", "--config", "/etc/garrison/config/config.yaml",
            "--cert", "/etc/garrison/tls/tls.crt", "--key", "/etc/garrison/tls/tls.key",
            "--port", str(opts.port),
        ],
        "ports": [{"name": "https", "containerPort": opts.port, "protocol": "TCP"}],
        "readinessProbe": {**probe, "initialDelaySeconds": 2},
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "tls", "mountPath": "/etc/garrison/tls", "readOnly": True},
            {"name": "config", "mountPath": "/etc/garrison/config", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir in the pod
        ],
    }
    client = {"caBundle": b64(certs.ca_pem).decode()}
    selector = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": sorted({"kube-system", ns})}
        ]
    }

    def webhook(path: str, hook: str) -> dict[str, Any]:
        return {
            "name": f"{hook}.{name}.garrison.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": opts.failure_policy,
            "timeoutSeconds": opts.timeout_seconds,
            "matchPolicy": "Equivalent",
            "namespaceSelector": selector,
            "clientConfig": {**client, "service": {"name": name, "namespace": ns, "path": path, "port": 443}},
            "rules": [dict(r, scope="*") for r in WORKLOAD_RULES],
        }

    mutating = webhook("/mutate", "mutate")
    mutating["reinvocationPolicy"] = "IfNeeded"
    mutating["rules"] = [dict(r, scope="*") for r in WORKLOAD_RULES if "namespaces" not in r["resources"]]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {**meta, "name": f"{name}-tls"},
            "data": {
                "tls.crt": b64(certs.cert_pem).decode(),
                "tls.key": b64(certs.key_pem).decode(),
                "ca.crt": b64(certs.ca_pem).decode(),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {**meta, "name": f"{name}-config"},
            "data": {"config.yaml": yaml.safe_dump({
                "mode": "enforce",
                "podSecurity": {"defaults": {"enforce": "baseline", "warn": "restricted", "audit": "restricted"}},
                "exemptions": {"namespaces": ["kube-system", ns]},
            }, sort_keys=True)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": opts.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": name,
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "fsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [
                            {"name": "tls", "secret": {"secretName": f"{name}-tls"}},
                            {"name": "config", "configMap": {"name": f"{name}-config"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        ],
                        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                                "labelSelector": {"matchLabels": labels}}}]}},
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]},
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name, "labels": labels},
            "webhooks": [webhook("/validate", "validate")],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name, "labels": labels},
            "webhooks": [mutating],
        },
    ]


def render(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)
