"""Workload identity and secret controls (``GK-W-079``…``GK-W-085``): which ServiceAccount a pod
runs as, whether its token is mounted, the default ServiceAccount's automount setting, and secrets
handed to containers through environment variables (references to Secrets, and literal values of
variables whose names say they hold a secret; the name patterns are in ``workload_identity.yaml``
under ``secret_env``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from garrison.posture.k8s.controls import Context, Failure, k8s_control
from garrison.posture.k8s.controls._pods import (
    Container,
    Pod,
    as_dict,
    as_list,
    container_control,
    family_data,
    pod_control,
)
from garrison.posture.k8s.objects import K8sObject

FAMILY = "workload_identity"
_SECRET_NAME = re.compile(
    "|".join(str(p) for p in as_list(family_data(FAMILY, "secret_env").get("name_patterns"))), re.IGNORECASE
)


@pod_control("GK-W-079", family=FAMILY)
def default_service_account(pod: Pod) -> Iterable[Failure]:
    for key in ("serviceAccountName", "serviceAccount"):
        if pod.spec.get(key) == "default":
            yield Failure("pod runs as the default ServiceAccount", (pod.at(key),))
            return


@pod_control("GK-W-080", family=FAMILY)
def service_account_missing(pod: Pod) -> Iterable[Failure]:
    if not pod.spec.get("serviceAccountName") and not pod.spec.get("serviceAccount"):
        yield Failure("pod names no ServiceAccount, so it runs as default", (pod.path,))


@pod_control("GK-W-081", family=FAMILY)
def token_automounted(pod: Pod) -> Iterable[Failure]:
    if pod.spec.get("automountServiceAccountToken") is not False:
        key = "automountServiceAccountToken"
        yield Failure(
            "pod does not set automountServiceAccountToken: false", (pod.at(key) if key in pod.spec else pod.path,)
        )


@k8s_control("GK-W-082", family=FAMILY, kinds=("ServiceAccount",))
def default_account_automount(obj: K8sObject, ctx: Context) -> list[Failure]:
    if obj.name != "default" or obj.doc.get("automountServiceAccountToken") is False:
        return []
    path = "automountServiceAccountToken" if "automountServiceAccountToken" in obj.doc else "metadata.name"
    return [Failure("the default ServiceAccount does not set automountServiceAccountToken: false", (path,))]


@container_control("GK-W-083", family=FAMILY)
def secrets_in_env(c: Container) -> Iterable[Failure]:
    for i, env in enumerate(as_list(c.doc.get("env"))):
        if "secretKeyRef" in as_dict(as_dict(env).get("valueFrom")):
            yield Failure(
                f"{c.label} reads a Secret into environment variable {as_dict(env).get('name')}", (c.at("env", i),)
            )
    for i, source in enumerate(as_list(c.doc.get("envFrom"))):
        if "secretRef" in as_dict(source):
            yield Failure(f"{c.label} loads a whole Secret into its environment", (c.at("envFrom", i, "secretRef"),))


@container_control("GK-W-084", family=FAMILY)
def literal_secret_env(c: Container) -> Iterable[Failure]:
    for i, env in enumerate(as_list(c.doc.get("env"))):
        env = as_dict(env)
        name, value = env.get("name"), env.get("value")
        if isinstance(name, str) and name.upper().endswith("_FILE"):
            continue  # the official images' *_FILE convention: the value is a path to the secret
        if isinstance(name, str) and _SECRET_NAME.search(name) and value not in (None, ""):
            yield Failure(f"{c.label} sets {name} to a literal value in the manifest", (c.at("env", i, "value"),))


@pod_control("GK-W-085", family=FAMILY)
def deprecated_service_account(pod: Pod) -> Iterable[Failure]:
    if "serviceAccount" in pod.spec and pod.spec.get("serviceAccount") != pod.spec.get("serviceAccountName"):
        yield Failure("pod uses the deprecated serviceAccount field", (pod.at("serviceAccount"),))
