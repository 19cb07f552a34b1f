"""Configuration object controls (``GK-S-02x``): ConfigMaps and Secrets committed with
credentials, ServiceAccount token automounting, PodDisruptionBudgets and admission webhooks.

ConfigMap values are scanned with :class:`garrison.secrets.SecretScanner` (the same rules as the
secret scanner), and keys named like credentials with a non-trivial value are reported too.
The PodDisruptionBudget control is cross-object: a multi-replica workload is covered when a PDB
*among the manifests scanned together* selects its pods, so results depend on the set of
manifests given.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from garrison.posture.k8s.controls import Context, Failure, k8s_control
from garrison.posture.k8s.controls.network import selector_matches
from garrison.posture.k8s.objects import K8sObject, join_path
from garrison.secrets.scanner import SecretScanner

FAMILY = "config_objects"
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
#: Secret types whose data are credentials by definition
CREDENTIAL_TYPES = (
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/dockercfg",
    "kubernetes.io/tls",
)
_CREDENTIAL_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_.-]?key|private[_.-]?key|credential|auth[_.-]?key)", re.IGNORECASE
)
_TRIVIAL = re.compile(r"^(true|false|yes|no|null|none|\d+[smhd]?|\$\{.*\}|\$\(.*\))$", re.IGNORECASE)


@cache
def _scanner() -> SecretScanner:
    return SecretScanner()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@k8s_control("GK-S-020", family=FAMILY, kinds=("ConfigMap",))
def configmap_credentials(obj: K8sObject, ctx: Context) -> list[Failure]:
    failures = []
    for key, value in _dict(obj.doc.get("data")).items():
        if not isinstance(value, str) or not value.strip():
            continue
        path = join_path("data", key)
        # a neutral name: the manifest's own path must not matter (the scanner's path allow rules
        # skip files under test/ or example/ directories, which would hide committed credentials)
        matches = _scanner().scan("ConfigMap", f"{key}: {value}\n".encode())
        if matches:
            rules = ", ".join(sorted({m.rule_id for m in matches}))
            failures.append(Failure(f"ConfigMap key {key} holds a secret ({rules})", (path,)))
        elif _CREDENTIAL_KEY.search(str(key)) and len(value.strip()) >= 6 and not _TRIVIAL.match(value.strip()):
            failures.append(Failure(f"ConfigMap key {key} is named like a credential", (path,)))
    return failures


def _secret_payload(obj: K8sObject) -> list[str]:
    return [k for k in ("data", "stringData") if _dict(obj.doc.get(k))]


@k8s_control("GK-S-021", family=FAMILY, kinds=("Secret",))
def committed_opaque_secret(obj: K8sObject, ctx: Context) -> list[Failure]:
    kind = obj.doc.get("type", "Opaque")
    if kind not in ("Opaque", None):
        return []
    return [Failure(f"Opaque Secret committed with values in {key}", (key,)) for key in _secret_payload(obj)]


@k8s_control("GK-S-022", family=FAMILY, kinds=("Secret",))
def committed_credential_secret(obj: K8sObject, ctx: Context) -> list[Failure]:
    if obj.doc.get("type") not in CREDENTIAL_TYPES:
        return []
    return [Failure(f"{obj.doc['type']} Secret committed with values in {key}", (key,)) for key in _secret_payload(obj)]


@k8s_control("GK-S-023", family=FAMILY, kinds=("Secret",))
def legacy_sa_token(obj: K8sObject, ctx: Context) -> list[Failure]:
    if obj.doc.get("type") == "kubernetes.io/service-account-token":
        return [Failure("long-lived ServiceAccount token Secret (never expires)", ("type",))]
    return []


@k8s_control("GK-S-024", family=FAMILY, kinds=("ServiceAccount",))
def sa_automount(obj: K8sObject, ctx: Context) -> list[Failure]:
    if obj.doc.get("automountServiceAccountToken") is False:
        return []
    path = "automountServiceAccountToken" if "automountServiceAccountToken" in obj.doc else "metadata.name"
    return [Failure("ServiceAccount token is mounted into pods by default", (path,))]


@k8s_control("GK-S-025", family=FAMILY, kinds=("ServiceAccount",))
def default_sa_automount(obj: K8sObject, ctx: Context) -> list[Failure]:
    if obj.name != "default" or obj.doc.get("automountServiceAccountToken") is False:
        return []
    path = "automountServiceAccountToken" if "automountServiceAccountToken" in obj.doc else "metadata.name"
    return [Failure("default ServiceAccount does not set automountServiceAccountToken: false", (path,))]


@k8s_control("GK-S-026", family=FAMILY, kinds=("Deployment", "StatefulSet"))
def missing_pdb(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    spec = _dict(obj.doc.get("spec"))
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 2:
        return None
    labels = _dict(_dict(_dict(spec.get("template")).get("metadata")).get("labels"))
    namespace = obj.namespace or "default"
    for pdb in ctx.of_kind("PodDisruptionBudget"):
        if (pdb.namespace or "default") == namespace and selector_matches(
            _dict(pdb.doc.get("spec")).get("selector"), labels
        ):
            return []
    return [Failure(f"{replicas} replicas and no PodDisruptionBudget selects them", ("spec.replicas",))]


@k8s_control("GK-S-027", family=FAMILY, kinds=("PodDisruptionBudget",))
def pdb_blocks_eviction(obj: K8sObject, ctx: Context) -> list[Failure]:
    spec = _dict(obj.doc.get("spec"))
    if spec.get("maxUnavailable") in (0, "0", "0%"):
        return [Failure("maxUnavailable 0 blocks every voluntary eviction (node drains)", ("spec.maxUnavailable",))]
    if spec.get("minAvailable") == "100%":
        return [Failure("minAvailable 100% blocks every voluntary eviction (node drains)", ("spec.minAvailable",))]
    return []


def _webhooks(obj: K8sObject) -> list[tuple[int, dict[str, Any]]]:
    hooks = obj.doc.get("webhooks")
    return [(i, h) for i, h in enumerate(hooks) if isinstance(h, dict)] if isinstance(hooks, list) else []


@k8s_control("GK-S-028", family=FAMILY, kinds=WEBHOOK_KINDS)
def webhook_fail_open(obj: K8sObject, ctx: Context) -> list[Failure]:
    return [
        Failure(f"webhook {hook.get('name', i)} fails open (failurePolicy: Ignore)", (f"webhooks[{i}].failurePolicy",))
        for i, hook in _webhooks(obj)
        if hook.get("failurePolicy") == "Ignore"
    ]


@k8s_control("GK-S-029", family=FAMILY, kinds=WEBHOOK_KINDS)
def webhook_plain_url(obj: K8sObject, ctx: Context) -> list[Failure]:
    failures = []
    for i, hook in _webhooks(obj):
        client = _dict(hook.get("clientConfig"))
        url = client.get("url")
        if isinstance(url, str) and not client.get("caBundle"):
            failures.append(
                Failure(
                    f"webhook {hook.get('name', i)} calls an external URL without a caBundle",
                    (f"webhooks[{i}].clientConfig.url",),
                )
            )
    return failures
