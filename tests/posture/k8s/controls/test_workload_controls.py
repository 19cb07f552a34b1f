"""Workload controls: for every GK-W control a manifest that fails (with the failing line) and
the hardened manifest that passes; container kinds, template paths, and fuzzing."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.errors import GarrisonError
from garrison.posture.k8s.controls import registry, run_controls
from garrison.posture.k8s.controls._pods import family_data
from garrison.posture.k8s.controls.workload_images import ImageRef, configure_allowed_registries
from garrison.posture.k8s.controls.workload_resources import parse_quantity
from garrison.posture.k8s.loader import load_text
from garrison.posture.model import ControlResult, Verdict

DIGEST = "sha256:" + "a" * 64
GOOD = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: shop
spec:
  serviceAccountName: app
  automountServiceAccountToken: false
  hostUsers: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    seccompProfile: {{type: RuntimeDefault}}
  containers:
  - name: app
    image: registry.example.com/app:1.0@{DIGEST}
    imagePullPolicy: Always
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {{drop: [ALL]}}
      appArmorProfile: {{type: RuntimeDefault}}
    resources:
      requests: {{cpu: 100m, memory: 64Mi, ephemeral-storage: 1Gi}}
      limits: {{cpu: 500m, memory: 128Mi, ephemeral-storage: 2Gi}}
    livenessProbe: {{httpGet: {{path: /healthz, port: 8080}}}}
    readinessProbe: {{httpGet: {{path: /ready, port: 8080}}}}
    startupProbe: {{httpGet: {{path: /healthz, port: 8080}}, failureThreshold: 30}}
    ports: [{{containerPort: 8080}}]
"""
SPEC = "spec:\n"
CSC = "    securityContext:\n      allowPrivilegeEscalation: false\n"
CTR_SC_BLOCK = (
    "    securityContext:\n      allowPrivilegeEscalation: false\n      readOnlyRootFilesystem: true\n"
    "      capabilities: {drop: [ALL]}\n      appArmorProfile: {type: RuntimeDefault}\n"
)
POD_SC_BLOCK = (
    "  securityContext:\n    runAsNonRoot: true\n    runAsUser: 10001\n    runAsGroup: 10001\n"
    "    seccompProfile: {type: RuntimeDefault}\n"
)
CAPS = "      capabilities: {drop: [ALL]}\n"
IMAGE = f"    image: registry.example.com/app:1.0@{DIGEST}\n"


def add_cap(cap: str) -> tuple[str, str]:
    return CAPS, f"      capabilities: {{drop: [ALL], add: [{cap}]}}\n"


def host_path(path: str) -> tuple[str, str]:
    return (
        "    ports: [{containerPort: 8080}]\n",
        f"    ports: [{{containerPort: 8080}}]\n  volumes:\n  - name: h\n    hostPath: {{path: {path}}}\n",
    )


#: control -> (replacements turning GOOD into a failing manifest, the failing line's text)
CASES: dict[str, tuple[list[tuple[str, str]], str]] = {
    "GK-W-001": ([(CSC, CSC + "      privileged: true\n")], "      privileged: true"),
    "GK-W-002": ([("      allowPrivilegeEscalation: false\n", "")], "    securityContext:"),
    "GK-W-003": ([("    runAsNonRoot: true\n    runAsUser: 10001\n", "")], "    securityContext:"),
    "GK-W-004": ([("runAsUser: 10001", "runAsUser: 0")], "    runAsUser: 0"),
    "GK-W-005": ([("runAsGroup: 10001", "runAsGroup: 0")], "    runAsGroup: 0"),
    "GK-W-006": ([("runAsUser: 10001", "runAsUser: 1000"), ("  hostUsers: false\n", "")], "    runAsUser: 1000"),
    "GK-W-007": (
        [("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")],
        "      readOnlyRootFilesystem: false",
    ),
    "GK-W-008": ([("    seccompProfile: {type: RuntimeDefault}\n", "")], "    securityContext:"),
    "GK-W-009": (
        [("seccompProfile: {type: RuntimeDefault}", "seccompProfile: {type: Unconfined}")],
        "    seccompProfile: {type: Unconfined}",
    ),
    "GK-W-010": (
        [("appArmorProfile: {type: RuntimeDefault}", "appArmorProfile: {type: Unconfined}")],
        "      appArmorProfile: {type: Unconfined}",
    ),
    "GK-W-011": ([("      appArmorProfile: {type: RuntimeDefault}\n", "")], "    securityContext:"),
    "GK-W-012": ([(CSC, CSC + "      seLinuxOptions: {type: spc_t}\n")], "      seLinuxOptions: {type: spc_t}"),
    "GK-W-013": ([(CSC, CSC + "      seLinuxOptions: {role: sysadm_r}\n")], "      seLinuxOptions: {role: sysadm_r}"),
    "GK-W-014": ([(CSC, CSC + "      procMount: Unmasked\n")], "      procMount: Unmasked"),
    "GK-W-015": ([add_cap("CHOWN")], "      capabilities: {drop: [ALL], add: [CHOWN]}"),
    "GK-W-016": ([add_cap("NET_ADMIN")], "      capabilities: {drop: [ALL], add: [NET_ADMIN]}"),
    "GK-W-017": ([add_cap("CHOWN")], "      capabilities: {drop: [ALL], add: [CHOWN]}"),
    "GK-W-018": ([(CAPS, "      capabilities: {drop: [NET_RAW]}\n")], "      capabilities: {drop: [NET_RAW]}"),
    "GK-W-019": ([(CAPS, "")], "    securityContext:"),
    "GK-W-033": ([(CTR_SC_BLOCK, "")], "  - name: app"),
    "GK-W-034": ([(POD_SC_BLOCK, "")], SPEC.strip()),
    "GK-W-035": (
        [(POD_SC_BLOCK, POD_SC_BLOCK + "    sysctls: [{name: kernel.msgmax, value: '1'}]\n")],
        "    sysctls: [{name: kernel.msgmax, value: '1'}]",
    ),
    "GK-W-036": ([("  hostUsers: false\n", "")], SPEC.strip()),
    "GK-W-037": (
        [(POD_SC_BLOCK, POD_SC_BLOCK + "    windowsOptions: {hostProcess: true}\n")],
        "    windowsOptions: {hostProcess: true}",
    ),
    "GK-W-038": ([(SPEC, SPEC + "  shareProcessNamespace: true\n")], "  shareProcessNamespace: true"),
    "GK-W-039": ([("[{containerPort: 8080}]", "[{containerPort: 80}]")], "    ports: [{containerPort: 80}]"),
    "GK-W-040": (
        [("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")],
        "      allowPrivilegeEscalation: true",
    ),
    "GK-W-041": ([(SPEC, SPEC + "  hostNetwork: true\n")], "  hostNetwork: true"),
    "GK-W-042": ([(SPEC, SPEC + "  hostPID: true\n")], "  hostPID: true"),
    "GK-W-043": ([(SPEC, SPEC + "  hostIPC: true\n")], "  hostIPC: true"),
    "GK-W-044": (
        [("[{containerPort: 8080}]", "[{containerPort: 8080, hostPort: 8080}]")],
        "    ports: [{containerPort: 8080, hostPort: 8080}]",
    ),
    "GK-W-045": ([host_path("/data")], "    hostPath: {path: /data}"),
    "GK-W-046": (
        [host_path("/data"), ("    ports:", "    volumeMounts: [{name: h, mountPath: /h}]\n    ports:")],
        "    volumeMounts: [{name: h, mountPath: /h}]",
    ),
    "GK-W-060": ([("requests: {cpu: 100m, ", "requests: {")], "      requests: {memory: 64Mi, ephemeral-storage: 1Gi}"),
    "GK-W-061": ([("limits: {cpu: 500m, ", "limits: {")], "      limits: {memory: 128Mi, ephemeral-storage: 2Gi}"),
    "GK-W-062": ([("memory: 64Mi, ", "")], "      requests: {cpu: 100m, ephemeral-storage: 1Gi}"),
    "GK-W-063": ([("memory: 128Mi, ", "")], "      limits: {cpu: 500m, ephemeral-storage: 2Gi}"),
    "GK-W-064": ([(", ephemeral-storage: 1Gi}", "}")], "      requests: {cpu: 100m, memory: 64Mi}"),
    "GK-W-065": ([(", ephemeral-storage: 2Gi}", "}")], "      limits: {cpu: 500m, memory: 128Mi}"),
    "GK-W-066": ([("memory: 64Mi", "memory: 1Gi")], "      requests: {cpu: 100m, memory: 1Gi, ephemeral-storage: 1Gi}"),
    "GK-W-067": ([("    livenessProbe: {httpGet: {path: /healthz, port: 8080}}\n", "")], "  - name: app"),
    "GK-W-068": ([("    readinessProbe: {httpGet: {path: /ready, port: 8080}}\n", "")], "  - name: app"),
    "GK-W-069": (
        [("    startupProbe: {httpGet: {path: /healthz, port: 8080}, failureThreshold: 30}\n", "")],
        "  - name: app",
    ),
    "GK-W-070": (
        [("{path: /ready, port: 8080}", "{path: /healthz, port: 8080}")],
        "    livenessProbe: {httpGet: {path: /healthz, port: 8080}}",
    ),
    "GK-W-071": ([(IMAGE, "    image: nginx\n")], "    image: nginx"),
    "GK-W-072": ([(IMAGE, "    image: registry.example.com/app:1.0\n")], "    image: registry.example.com/app:1.0"),
    "GK-W-073": (
        [(IMAGE, "    image: registry.example.com/app:1.0\n"), ("Always", "IfNotPresent")],
        "    imagePullPolicy: IfNotPresent",
    ),
    "GK-W-075": (
        [(IMAGE, "    image: gcr.io/kubernetes-helm/tiller:v2.16.0\n")],
        "    image: gcr.io/kubernetes-helm/tiller:v2.16.0",
    ),
    "GK-W-076": ([(IMAGE, "    image: kubernetesui/dashboard:v2.7.0\n")], "    image: kubernetesui/dashboard:v2.7.0"),
    "GK-W-077": ([(IMAGE, "")], "  - name: app"),
    "GK-W-078": ([(IMAGE, f"    image: app:1.0@{DIGEST}\n")], f"    image: app:1.0@{DIGEST}"),
    "GK-W-079": ([("serviceAccountName: app", "serviceAccountName: default")], "  serviceAccountName: default"),
    "GK-W-080": ([("  serviceAccountName: app\n", "")], SPEC.strip()),
    "GK-W-081": (
        [("automountServiceAccountToken: false", "automountServiceAccountToken: true")],
        "  automountServiceAccountToken: true",
    ),
    "GK-W-083": (
        [("    ports:", "    envFrom: [{secretRef: {name: db}}]\n    ports:")],
        "    envFrom: [{secretRef: {name: db}}]",
    ),
    "GK-W-084": (
        [("    ports:", "    env: [{name: DB_PASSWORD, value: hunter2}]\n    ports:")],
        "    env: [{name: DB_PASSWORD, value: hunter2}]",
    ),
    "GK-W-085": ([(SPEC, SPEC + "  serviceAccount: legacy\n")], "  serviceAccount: legacy"),
}
for _cid, _cap in family_data("workload_security", "capability_controls").items():
    CASES[str(_cid)] = ([add_cap(str(_cap))], f"      capabilities: {{drop: [ALL], add: [{_cap}]}}")
for _cid, _path in {
    "GK-W-047": "/var/run/docker.sock",
    "GK-W-048": "/run/containerd/containerd.sock",
    "GK-W-049": "/var/run/crio/crio.sock",
    "GK-W-050": "/",
    "GK-W-051": "/proc/1",
    "GK-W-052": "/sys/kernel/debug",
    "GK-W-053": "/dev",
    "GK-W-054": "/etc/kubernetes/",
    "GK-W-055": "/var/lib/kubelet/pods",
    "GK-W-056": "/var/lib/docker/containers",
    "GK-W-057": "/var/log",
    "GK-W-058": "/root/.ssh",
    "GK-W-059": "/boot",
}.items():
    CASES[_cid] = ([host_path(_path)], f"    hostPath: {{path: {_path}}}")

WORKLOAD_IDS = sorted(cid for cid in registry() if cid.startswith("GK-W-"))


def run(cid: str, text: str) -> list[ControlResult]:
    return run_controls(load_text(textwrap.dedent(text), "m.yaml").objects, only={cid})


def test_control_count_and_metadata() -> None:
    assert len(WORKLOAD_IDS) >= 70
    for cid in WORKLOAD_IDS:
        control = registry()[cid].control
        assert control.title and control.description and control.rationale and control.remediation, cid


def test_every_control_has_a_case() -> None:
    special = {"GK-W-074", "GK-W-082"}  # allow-list and ServiceAccount objects: own tests below
    assert set(WORKLOAD_IDS) - special == set(CASES)


@pytest.mark.parametrize("cid", sorted(CASES))
def test_fails_on_the_right_line(cid: str) -> None:
    replacements, marker = CASES[cid]
    text = GOOD
    for old, new in replacements:
        assert old in text, (cid, old)
        text = text.replace(old, new, 1)
    line = text.splitlines().index(marker) + 1
    bad = [r for r in run(cid, text) if r.verdict is Verdict.FAIL]
    assert bad, cid
    assert line in [r.location.line for r in bad], (cid, [(r.location.line, r.paths) for r in bad])
    assert all(r.message for r in bad)
    good = run(cid, GOOD)
    assert good and all(r.verdict is Verdict.PASS for r in good), [r.message for r in good]


def test_registry_allow_list() -> None:
    try:
        configure_allowed_registries([])
        assert run("GK-W-074", GOOD) == []  # no allow-list: not applicable
        configure_allowed_registries(["registry.example.com"])
        assert [r.verdict for r in run("GK-W-074", GOOD)] == [Verdict.PASS]
        configure_allowed_registries(["mirror.example.com/team"])
        bad = run("GK-W-074", GOOD)
        assert [r.verdict for r in bad] == [Verdict.FAIL] and bad[0].location.line == 17
    finally:
        configure_allowed_registries(None)


def test_default_service_account_automount() -> None:
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: shop\n{extra}"
    bad = run("GK-W-082", sa.format(name="default", extra=""))
    assert [(r.verdict, r.location.line) for r in bad] == [(Verdict.FAIL, 4)]
    assert (
        run("GK-W-082", sa.format(name="default", extra="automountServiceAccountToken: false\n"))[0].verdict
        is Verdict.PASS
    )
    assert run("GK-W-082", sa.format(name="app", extra=""))[0].verdict is Verdict.PASS


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: shop}
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: busybox:1.36
      containers:
      - name: app
        image: nginx:1.27
        securityContext: {privileged: true}
      ephemeralContainers:
      - name: debug
        image: busybox:1.36
        securityContext: {privileged: true}
"""


def test_all_container_lists_and_template_paths() -> None:
    bad = run("GK-W-001", DEPLOYMENT)
    assert sorted(p for r in bad for p in r.paths) == [
        "spec.template.spec.containers[0].securityContext.privileged",
        "spec.template.spec.ephemeralContainers[0].securityContext.privileged",
    ]
    assert sorted(r.location.line for r in bad) == [13, 17]
    init = run("GK-W-072", DEPLOYMENT)
    assert "spec.template.spec.initContainers[0].image" in [p for r in init for p in r.paths]
    cron = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          hostPID: true\n          containers: [{name: a, image: a}]\n"
    (res,) = run("GK-W-042", cron)
    assert res.paths == ("spec.jobTemplate.spec.template.spec.hostPID",) and res.location.line == 9
    assert run("GK-W-001", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n") == []


def test_legacy_annotations() -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    {key}: {value}\nspec:\n  containers: [{{name: app, image: a}}]\n"
    seccomp = "seccomp.security.alpha.kubernetes.io/pod"
    assert run("GK-W-008", pod.format(key=seccomp, value="runtime/default"))[0].verdict is Verdict.PASS
    (bad,) = run("GK-W-009", pod.format(key=seccomp, value="unconfined"))
    assert bad.verdict is Verdict.FAIL and bad.location.line == 6
    apparmor = "container.apparmor.security.beta.kubernetes.io/app"
    (bad,) = run("GK-W-010", pod.format(key=apparmor, value="unconfined"))
    assert bad.verdict is Verdict.FAIL and bad.location.line == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ("docker.io", "library/nginx", "", "")),
        ("localhost:5000/a/b:1", ("localhost:5000", "a/b", "1", "")),
        (f"ghcr.io/o/r@{DIGEST}", ("ghcr.io", "o/r", "", DIGEST)),
        ("user/app:2.0", ("docker.io", "user/app", "2.0", "")),
    ],
)
def test_image_ref(text: str, expected: tuple[str, str, str, str]) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expected


def test_parse_quantity() -> None:
    assert parse_quantity("500m") == parse_quantity("0.5")
    assert parse_quantity("1Gi") == 2**30
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("lots") is None and parse_quantity(True) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(GOOD)), st.integers(0, 40), st.text(max_size=12))
def test_fuzz_mutated_manifest(start: int, length: int, insert: str) -> None:
    text = GOOD[:start] + insert + GOOD[start + length :]
    try:
        objects = load_text(text, "fuzz.yaml").objects
    except GarrisonError:
        return
    results = run_controls(objects, only=set(WORKLOAD_IDS))
    assert all(r.verdict in (Verdict.PASS, Verdict.FAIL) for r in results)
