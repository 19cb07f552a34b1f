"""RBAC controls (``GK-R-…``): what Roles and ClusterRoles grant, and who the bindings grant it to.

Role controls look at each rule of a Role or ClusterRole and fail once per rule that grants the
dangerous permission, pointing at the rule. Rules are matched the way the Kubernetes RBAC
authorizer matches a request: a verb, API group or resource of ``*`` matches everything, a
resource ``*/status`` matches that subresource of every resource, and ``pods`` does not match
``pods/exec``. Rules limited by ``resourceNames`` are not counted as broad grants (they only reach
the named objects, and never grant ``create``, ``list`` or ``watch`` on the whole collection).

Binding controls look at RoleBindings and ClusterRoleBindings. Those that check what a binding
grants resolve ``roleRef`` against the Roles and ClusterRoles *of the same run*: when the
referenced role is not among the manifests given, the control does not apply to the binding
(there is nothing to judge), so results depend on the set of manifests scanned together.
A Role reference is resolved in the binding's namespace; an object without ``metadata.namespace``
is taken to be in the namespace it will be applied to, which is the same for both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from garrison.posture.k8s.controls import Context, Failure, k8s_control
from garrison.posture.k8s.objects import K8sObject

FAMILY = "rbac"
ROLE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")
RBAC_GROUP = "rbac.authorization.k8s.io"
#: namespaces where cluster components run; a ServiceAccount elsewhere belongs to a workload
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


def strings(value: Any) -> list[str]:
    """The string items of a list (anything else: empty)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def rules_of(obj: K8sObject) -> list[tuple[int, dict[str, Any]]]:
    rules = obj.doc.get("rules")
    if not isinstance(rules, list):
        return []
    return [(i, r) for i, r in enumerate(rules) if isinstance(r, dict)]


def _resource_matches(granted: str, wanted: str) -> bool:
    if granted in ("*", wanted):
        return True
    if "/" in wanted and granted.startswith("*/"):
        return granted[2:] == wanted.split("/", 1)[1]
    return False


@dataclass(frozen=True, slots=True)
class Permission:
    """Some verbs on some resources of some API groups; a rule grants it when it matches at least
    one verb, one resource and one group."""

    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]

    def granted_by(self, rule: dict[str, Any]) -> bool:
        if strings(rule.get("resourceNames")):
            return False
        verbs = strings(rule.get("verbs"))
        groups = strings(rule.get("apiGroups"))
        resources = strings(rule.get("resources"))
        return (
            any(v == "*" or v in self.verbs for v in verbs)
            and any(g == "*" or g in self.groups for g in groups)
            and any(_resource_matches(r, w) for r in resources for w in self.resources)
        )


def perm(groups: Iterable[str], resources: Iterable[str], verbs: Iterable[str]) -> Permission:
    return Permission(frozenset(groups), frozenset(resources), frozenset(verbs))


def granting_rules(obj: K8sObject, *permissions: Permission) -> list[int]:
    """Indexes of the rules of ``obj`` that grant any of ``permissions``."""
    return [i for i, rule in rules_of(obj) if any(p.granted_by(rule) for p in permissions)]


def grants_all(obj: K8sObject, *permissions: Permission) -> bool:
    """Whether the rules of ``obj`` together grant every one of ``permissions``."""
    rules = [rule for _, rule in rules_of(obj)]
    return bool(rules) and all(any(p.granted_by(rule) for rule in rules) for p in permissions)


def _rule_failures(obj: K8sObject, message: str, *permissions: Permission) -> list[Failure]:
    return [Failure(message, (f"rules[{i}]",)) for i in granting_rules(obj, *permissions)]


# -- the permissions the role controls look for -------------------------------------------------

SECRETS_READ = perm([""], ["secrets"], ["get", "list", "watch"])
PODS_CREATE = perm([""], ["pods"], ["create"])
#: exec and attach are reached with GET (websocket) as well as POST (SPDY)
PODS_EXEC = perm([""], ["pods/exec"], ["create", "get"])
PODS_ATTACH = perm([""], ["pods/attach"], ["create", "get"])
PODS_PORTFORWARD = perm([""], ["pods/portforward"], ["create", "get"])
NODES_PROXY = perm([""], ["nodes/proxy"], ["get", "create", "update", "patch", "delete"])
ESCALATE = perm([RBAC_GROUP], ["roles", "clusterroles"], ["escalate"])
BIND = perm([RBAC_GROUP], ["roles", "clusterroles"], ["bind"])
IMPERSONATE = perm(
    ["", "authentication.k8s.io"], ["users", "groups", "serviceaccounts", "uids", "userextras"], ["impersonate"]
)
CSR_APPROVAL = perm(["certificates.k8s.io"], ["certificatesigningrequests/approval"], ["update", "patch"])
SIGNER_APPROVE = perm(["certificates.k8s.io"], ["signers"], ["approve"])
SA_TOKEN = perm([""], ["serviceaccounts/token"], ["create"])
WEBHOOKS = perm(
    ["admissionregistration.k8s.io"],
    ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
    ["create", "update", "patch"],
)
PV_CREATE = perm([""], ["persistentvolumes"], ["create"])
SERVICES_STATUS = perm([""], ["services/status"], ["update", "patch"])
RBAC_WRITE = perm(
    [RBAC_GROUP], ["roles", "clusterroles", "rolebindings", "clusterrolebindings"], ["create", "update", "patch"]
)
WORKLOADS_CREATE = perm(
    ["apps", "batch"],
    ["deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs"],
    ["create", "update", "patch"],
)
NODES_WRITE = perm([""], ["nodes"], ["update", "patch", "delete"])


def _wildcards(obj: K8sObject, key: str, what: str) -> list[Failure]:
    failures = []
    for i, rule in rules_of(obj):
        values = rule.get(key)
        if not isinstance(values, list):
            continue
        for j, value in enumerate(values):
            if value == "*":
                failures.append(Failure(f"rule {i} grants every {what} ('*')", (f"rules[{i}].{key}[{j}]",)))
                break
    return failures


@k8s_control("GK-R-001", family=FAMILY, kinds=ROLE_KINDS)
def wildcard_verbs(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _wildcards(obj, "verbs", "verb")


@k8s_control("GK-R-002", family=FAMILY, kinds=ROLE_KINDS)
def wildcard_resources(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _wildcards(obj, "resources", "resource")


@k8s_control("GK-R-003", family=FAMILY, kinds=ROLE_KINDS)
def wildcard_api_groups(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _wildcards(obj, "apiGroups", "API group")


@k8s_control("GK-R-004", family=FAMILY, kinds=ROLE_KINDS)
def escalate_verb(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants 'escalate' on roles: can grant permissions it does not hold", ESCALATE)


@k8s_control("GK-R-005", family=FAMILY, kinds=ROLE_KINDS)
def bind_verb(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants 'bind' on roles: can bind roles with permissions it does not hold", BIND)


@k8s_control("GK-R-006", family=FAMILY, kinds=ROLE_KINDS)
def impersonate_verb(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants 'impersonate' on users/groups/serviceaccounts", IMPERSONATE)


@k8s_control("GK-R-007", family=FAMILY, kinds=ROLE_KINDS)
def secrets_read(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants get/list/watch on secrets", SECRETS_READ)


@k8s_control("GK-R-008", family=FAMILY, kinds=ROLE_KINDS)
def pods_create(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants create on pods", PODS_CREATE)


@k8s_control("GK-R-009", family=FAMILY, kinds=ROLE_KINDS)
def pods_exec(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants pods/exec", PODS_EXEC)


@k8s_control("GK-R-010", family=FAMILY, kinds=ROLE_KINDS)
def pods_attach(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants pods/attach", PODS_ATTACH)


@k8s_control("GK-R-011", family=FAMILY, kinds=ROLE_KINDS)
def pods_portforward(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants pods/portforward", PODS_PORTFORWARD)


@k8s_control("GK-R-012", family=FAMILY, kinds=ROLE_KINDS)
def nodes_proxy(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants nodes/proxy: direct access to the kubelet API", NODES_PROXY)


@k8s_control("GK-R-013", family=FAMILY, kinds=("ClusterRole",))
def csr_approval(obj: K8sObject, ctx: Context) -> list[Failure]:
    if not grants_all(obj, CSR_APPROVAL, SIGNER_APPROVE):
        return []
    paths = tuple(f"rules[{i}]" for i in granting_rules(obj, CSR_APPROVAL, SIGNER_APPROVE))
    return [Failure("can approve CertificateSigningRequests (approval subresource and signer approve)", paths)]


@k8s_control("GK-R-014", family=FAMILY, kinds=ROLE_KINDS)
def sa_token_create(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants create on serviceaccounts/token: can mint tokens", SA_TOKEN)


@k8s_control("GK-R-015", family=FAMILY, kinds=("ClusterRole",))
def webhook_config(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "can create or change admission webhook configurations", WEBHOOKS)


@k8s_control("GK-R-016", family=FAMILY, kinds=ROLE_KINDS)
def pv_create(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "grants create on persistentvolumes (hostPath volumes)", PV_CREATE)


@k8s_control("GK-R-017", family=FAMILY, kinds=("ClusterRole",))
def aggregated(obj: K8sObject, ctx: Context) -> list[Failure]:
    rule = obj.doc.get("aggregationRule")
    if not isinstance(rule, dict):
        return []
    return [
        Failure(
            "aggregated ClusterRole: its permissions come from every ClusterRole matching the selector",
            ("aggregationRule",),
        )
    ]


@k8s_control("GK-R-018", family=FAMILY, kinds=ROLE_KINDS)
def services_status(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "can update services/status (CVE-2020-8554 load balancer IP)", SERVICES_STATUS)


@k8s_control("GK-R-019", family=FAMILY, kinds=ROLE_KINDS)
def rbac_write(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "can create or change RBAC roles or bindings", RBAC_WRITE)


@k8s_control("GK-R-020", family=FAMILY, kinds=ROLE_KINDS)
def workloads_create(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "can create or change workload controllers (indirect pod creation)", WORKLOADS_CREATE)


@k8s_control("GK-R-021", family=FAMILY, kinds=("ClusterRole",))
def nodes_write(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _rule_failures(obj, "can update, patch or delete nodes", NODES_WRITE)


# -- bindings ----------------------------------------------------------------------------------


def subjects_of(obj: K8sObject) -> list[tuple[int, dict[str, Any]]]:
    subjects = obj.doc.get("subjects")
    if not isinstance(subjects, list):
        return []
    return [(i, s) for i, s in enumerate(subjects) if isinstance(s, dict)]


def role_ref(obj: K8sObject) -> tuple[str, str]:
    ref = obj.doc.get("roleRef")
    if not isinstance(ref, dict):
        return "", ""
    kind, name = ref.get("kind"), ref.get("name")
    return (kind if isinstance(kind, str) else ""), (name if isinstance(name, str) else "")


def resolve_role(binding: K8sObject, ctx: Context) -> K8sObject | None:
    """The Role or ClusterRole of this run that ``binding`` refers to, if any."""
    kind, name = role_ref(binding)
    for role in ctx.of_kind(kind):
        if role.name != name:
            continue
        if kind == "ClusterRole" or not role.namespace or not binding.namespace or role.namespace == binding.namespace:
            return role
    return None


@k8s_control("GK-R-030", family=FAMILY, kinds=BINDING_KINDS)
def cluster_admin_binding(obj: K8sObject, ctx: Context) -> list[Failure]:
    kind, name = role_ref(obj)
    if kind == "ClusterRole" and name == "cluster-admin":
        return [Failure(f"{obj.kind} grants cluster-admin", ("roleRef.name",))]
    return []


def _group_subjects(obj: K8sObject, groups: frozenset[str], message: str) -> list[Failure]:
    failures = []
    for i, subject in subjects_of(obj):
        name = subject.get("name")
        if subject.get("kind") in ("Group", "User") and name in groups:
            failures.append(Failure(message.format(name=name), (f"subjects[{i}].name",)))
    return failures


@k8s_control("GK-R-031", family=FAMILY, kinds=BINDING_KINDS)
def anonymous_binding(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _group_subjects(
        obj,
        frozenset({"system:anonymous", "system:unauthenticated"}),
        "binds a role to {name}: unauthenticated requests",
    )


@k8s_control("GK-R-032", family=FAMILY, kinds=BINDING_KINDS)
def authenticated_binding(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _group_subjects(
        obj, frozenset({"system:authenticated"}), "binds a role to {name}: every authenticated identity"
    )


@k8s_control("GK-R-033", family=FAMILY, kinds=BINDING_KINDS)
def default_sa_binding(obj: K8sObject, ctx: Context) -> list[Failure]:
    return [
        Failure("binds a role to the default ServiceAccount", (f"subjects[{i}].name",))
        for i, subject in subjects_of(obj)
        if subject.get("kind") == "ServiceAccount" and subject.get("name") == "default"
    ]


@k8s_control("GK-R-034", family=FAMILY, kinds=("ClusterRoleBinding",))
def workload_sa_cluster_binding(obj: K8sObject, ctx: Context) -> list[Failure]:
    failures = []
    for i, subject in subjects_of(obj):
        ns = subject.get("namespace")
        if subject.get("kind") == "ServiceAccount" and isinstance(ns, str) and ns and ns not in SYSTEM_NAMESPACES:
            failures.append(
                Failure(
                    f"grants cluster-wide permissions to ServiceAccount {ns}/{subject.get('name')} of a workload namespace",
                    (f"subjects[{i}]",),
                )
            )
    return failures


def _binding_grants(obj: K8sObject, ctx: Context, message: str, *permissions: Permission) -> list[Failure] | None:
    role = resolve_role(obj, ctx)
    if role is None or not subjects_of(obj):
        return None
    if not granting_rules(role, *permissions):
        return []
    return [Failure(f"{message} through {role.kind} {role.name}", ("roleRef",))]


@k8s_control("GK-R-040", family=FAMILY, kinds=BINDING_KINDS)
def binding_secrets_read(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    return _binding_grants(obj, ctx, "subjects can read secrets", SECRETS_READ)


@k8s_control("GK-R-041", family=FAMILY, kinds=BINDING_KINDS)
def binding_exec_or_proxy(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    return _binding_grants(obj, ctx, "subjects can exec into pods or proxy to kubelets", PODS_EXEC, NODES_PROXY)


@k8s_control("GK-R-042", family=FAMILY, kinds=BINDING_KINDS)
def binding_impersonate(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    return _binding_grants(obj, ctx, "subjects can impersonate other identities", IMPERSONATE)


@k8s_control("GK-R-043", family=FAMILY, kinds=BINDING_KINDS)
def binding_services_status(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    return _binding_grants(obj, ctx, "subjects can update services/status (CVE-2020-8554)", SERVICES_STATUS)


@k8s_control("GK-R-044", family=FAMILY, kinds=BINDING_KINDS)
def binding_bind_or_escalate(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    return _binding_grants(obj, ctx, "subjects can bind or escalate roles", BIND, ESCALATE, RBAC_WRITE)
