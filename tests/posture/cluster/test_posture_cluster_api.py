"""The API client against a real HTTPS server replaying recorded API payloads: authentication
modes, discovery, pagination, 403s, retries, metadata-only secrets, owner filtering."""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from pathlib import Path

import pytest
from tests.posture.cluster._apiserver_replay import ASSETS, Running
from tests.posture.cluster.conftest import TOKEN, KubeconfigWriter, b64

from garrison.posture.k8s import kubeconfig as kc
from garrison.posture.k8s.cluster import METADATA_ONLY, ApiClient, ClusterError, scan_cluster, snapshot

EXPECTED_REFS = {
    "Namespace/kube-system",
    "Pod/default/nginx",
    "Deployment/icx/icx-db",
    "StatefulSet/default/nginx-sts",
    "CronJob/default/hello",
    "Service/default/dictionary1",
    "NetworkPolicy/default/fred",
    "ServiceAccount/default/blee",
    "Role/default/blee",
    "RoleBinding/default/blee",
    "ClusterRoleBinding/blee",
    "Secret/default/s1",
}


def _refs(snap_objects: list) -> set[str]:  # type: ignore[type-arg]
    return {"/".join(p for p in (o.kind, o.namespace, o.name) if p) for o in snap_objects}


def test_bearer_token_reads_every_recorded_object(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    snap = scan_cluster(write_kubeconfig(), environ={})
    assert _refs(snap.objects) == EXPECTED_REFS
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in apiserver.replay.requests)
    # list items carry no apiVersion/kind: both are filled from the request
    by_kind = {o.kind: o for o in snap.objects}
    assert by_kind["Deployment"].api_version == "apps/v1"
    assert by_kind["CronJob"].api_version == "batch/v1"
    assert by_kind["Pod"].doc["spec"]["containers"][0]["image"] == "nginx:alpine"
    loc = by_kind["Pod"].location
    assert (loc.file, loc.line) == ("cluster:replay/default/Pod/nginx", 0)
    assert by_kind["ClusterRoleBinding"].location.file == "cluster:replay/ClusterRoleBinding/blee"


def test_owned_replicasets_and_pods_are_left_to_their_owner(write_kubeconfig: KubeconfigWriter) -> None:
    snap = scan_cluster(write_kubeconfig(), environ={})
    refs = _refs(snap.objects)
    assert "ReplicaSet/icx/icx-db-7d4b578979" not in refs  # owned by Deployment icx-db
    assert "Pod/default/nginx-7fb78fb6d8-2w75j" not in refs  # owned by a ReplicaSet
    assert snap.skipped_owned == 2


def test_secrets_are_requested_as_metadata_only(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    snap = scan_cluster(write_kubeconfig(), environ={})
    secret_requests = [r for r in apiserver.replay.requests if r.path.endswith("/secrets")]
    assert secret_requests
    assert all(r.headers["accept"] == METADATA_ONLY for r in secret_requests)
    other = [r for r in apiserver.replay.requests if r.path.endswith("/pods")]
    assert other and all(r.headers["accept"] == "application/json" for r in other)
    secret = next(o for o in snap.objects if o.kind == "Secret")
    assert set(secret.doc) == {"apiVersion", "kind", "metadata"}
    assert "YnVtYmxlYmVldHVuYQo=" not in repr(secret.doc["metadata"].get("labels"))
    assert secret.doc["metadata"]["name"] == "s1"


def test_pagination_follows_continue(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    cfg = kc.load(write_kubeconfig(), environ={})
    with ApiClient(cfg) as client:
        snap = snapshot(client, page_size=1)
    pods = [r for r in apiserver.replay.requests if r.path == "/api/v1/pods"]
    assert len(pods) == 2
    assert "continue" not in pods[0].query
    assert pods[1].query["limit"] == ["1"] and pods[1].query["continue"]
    assert _refs(snap.objects) == EXPECTED_REFS


def test_repeated_continue_token_is_an_error(write_kubeconfig: KubeconfigWriter) -> None:
    cfg = kc.load(write_kubeconfig(), environ={})
    with ApiClient(cfg) as client:
        first = client.get("/api/v1/pods", {"limit": 1})
        assert first.body["metadata"]["continue"]
        client.get = lambda *_a, **_k: first  # type: ignore[method-assign]  # a server stuck on page one
        with pytest.raises(ClusterError, match="repeated a continue token"):
            list(client._pages("/api/v1/pods", first, 1, "application/json"))


def test_forbidden_kind_is_a_warning(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    apiserver.replay.forbidden["/api/v1/nodes"] = "status/forbidden_nodes.json"
    apiserver.replay.forbidden["/api/v1/secrets"] = "status/forbidden_nodes.json"
    snap = scan_cluster(write_kubeconfig(), environ={})
    assert any(w.startswith("secrets: forbidden (403 ") for w in snap.warnings)
    assert any("nodes" in n and "403" in n for n in snap.notes)
    assert "Secret/default/s1" not in _refs(snap.objects)
    assert "Pod/default/nginx" in _refs(snap.objects)  # the scan went on


def test_absent_api_group_is_skipped_with_a_note(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    apiserver.replay.hide_groups.add("networking.k8s.io")
    snap = scan_cluster(write_kubeconfig(), environ={})
    assert "NetworkPolicy/default/fred" not in _refs(snap.objects)
    assert any(n.startswith("networkpolicies: networking.k8s.io/v1 not served") for n in snap.notes)
    # policy/v1beta1 is not in the recorded discovery document: PodSecurityPolicies are skipped
    assert any(n.startswith("podsecuritypolicies: policy/v1beta1 not served") for n in snap.notes)
    assert not any(r.path.endswith("/networkpolicies") for r in apiserver.replay.requests)


def test_namespace_filter_and_exclusion(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    snap = scan_cluster(write_kubeconfig(), environ={}, namespaces=["icx"])
    assert {o.namespace for o in snap.objects if o.namespace} == {"icx"}
    assert "Deployment/icx/icx-db" in _refs(snap.objects)
    assert any(r.path == "/apis/apps/v1/namespaces/icx/deployments" for r in apiserver.replay.requests)
    snap = scan_cluster(write_kubeconfig(), environ={}, exclude_namespaces=["default", "kube-system"])
    assert {o.namespace for o in snap.objects if o.namespace} == {"icx"}
    assert "Namespace/kube-system" not in _refs(snap.objects)


def test_retries_429_and_503_with_retry_after(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    apiserver.replay.flaky["/api/v1/pods"] = [(429, "0"), (503, None)]
    cfg = kc.load(write_kubeconfig(), environ={})
    delays: list[float] = []
    with ApiClient(cfg, sleep=delays.append) as client:
        snap = snapshot(client)
    assert delays[0] == 0.0 and delays[1] > 0
    assert "Pod/default/nginx" in _refs(snap.objects)


def test_retries_give_up(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    apiserver.replay.flaky["/api"] = [(503, "1")] * 10
    cfg = kc.load(write_kubeconfig(), environ={})
    with ApiClient(cfg, retries=2, sleep=lambda _s: None) as client, pytest.raises(ClusterError, match="/api"):
        snapshot(client)


def test_client_certificate_auth(apiserver: Running, write_kubeconfig: KubeconfigWriter, tmp_path: Path) -> None:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    cert.write_bytes(apiserver.client.cert_pem)
    key.write_bytes(apiserver.client.key_pem)
    snap = scan_cluster(write_kubeconfig({"client-certificate": "client.crt", "client-key": "client.key"}), environ={})
    assert _refs(snap.objects) == EXPECTED_REFS
    assert {r.peer_cn for r in apiserver.replay.requests} == {"replay-admin"}
    assert not any("authorization" in r.headers for r in apiserver.replay.requests)


def test_client_certificate_data_auth(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    user = {"client-certificate-data": b64(apiserver.client.cert_pem), "client-key-data": b64(apiserver.client.key_pem)}
    snap = scan_cluster(write_kubeconfig(user), environ={})
    assert len(snap.objects) == len(EXPECTED_REFS)


def test_token_file_auth(apiserver: Running, write_kubeconfig: KubeconfigWriter, tmp_path: Path) -> None:
    (tmp_path / "tok").write_text(TOKEN + "\n")
    snap = scan_cluster(write_kubeconfig({"tokenFile": "tok", "token": "stale"}), environ={})
    assert len(snap.objects) == len(EXPECTED_REFS)


def test_basic_auth(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    apiserver.replay.basic = ("admin", "s3cret")
    snap = scan_cluster(write_kubeconfig({"username": "admin", "password": "s3cret"}), environ={})
    assert len(snap.objects) == len(EXPECTED_REFS)


def _plugin(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "credential-plugin"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("api_version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
def test_exec_plugin_token_is_cached_until_expiry(
    apiserver: Running, write_kubeconfig: KubeconfigWriter, tmp_path: Path, api_version: str
) -> None:
    calls = tmp_path / "calls"
    plugin = _plugin(
        tmp_path,
        f"""
        import json, os, sys
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        with open({str(calls)!r}, "a") as fh:
            fh.write(json.dumps({{"args": sys.argv[1:], "env": os.environ.get("REPLAY_ENV"), "info": info}}) + "\\n")
        print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                          "status": {{"token": {TOKEN!r}, "expirationTimestamp": "2999-01-01T00:00:00Z"}}}}))
    """,
    )
    user = {
        "exec": {
            "apiVersion": api_version,
            "command": str(plugin),
            "args": ["--flag", "x"],
            "env": [{"name": "REPLAY_ENV", "value": "yes"}],
            "provideClusterInfo": True,
        }
    }
    path = write_kubeconfig(user)
    assert len(scan_cluster(path, environ={}).objects) == len(EXPECTED_REFS)
    assert len(scan_cluster(path, environ={}).objects) == len(EXPECTED_REFS)
    lines = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(lines) == 1  # cached: the second scan did not run the plugin again
    assert lines[0]["args"] == ["--flag", "x"] and lines[0]["env"] == "yes"
    assert lines[0]["info"]["apiVersion"] == api_version
    assert lines[0]["info"]["spec"]["cluster"]["server"] == apiserver.url


def test_exec_plugin_expired_token_reruns(
    apiserver: Running, write_kubeconfig: KubeconfigWriter, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    plugin = _plugin(
        tmp_path,
        f"""
        import json
        with open({str(calls)!r}, "a") as fh:
            fh.write("x\\n")
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                          "status": {{"token": {TOKEN!r}, "expirationTimestamp": "2001-01-01T00:00:00Z"}}}}))
    """,
    )
    path = write_kubeconfig({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}})
    scan_cluster(path, environ={})
    scan_cluster(path, environ={})
    assert len(calls.read_text().splitlines()) >= 2


def test_exec_plugin_client_certificate(apiserver: Running, write_kubeconfig: KubeconfigWriter, tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(apiserver.client.cert_pem)
    (tmp_path / "k.pem").write_bytes(apiserver.client.key_pem)
    plugin = _plugin(
        tmp_path,
        f"""
        import json
        cert = open({str(tmp_path / "c.pem")!r}).read()
        key = open({str(tmp_path / "k.pem")!r}).read()
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                          "status": {{"clientCertificateData": cert, "clientKeyData": key}}}}))
    """,
    )
    path = write_kubeconfig({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}})
    snap = scan_cluster(path, environ={})
    assert len(snap.objects) == len(EXPECTED_REFS)
    assert {r.peer_cn for r in apiserver.replay.requests} == {"replay-admin"}


def test_exec_plugin_failure_is_one_line(write_kubeconfig: KubeconfigWriter, tmp_path: Path) -> None:
    plugin = _plugin(
        tmp_path,
        """
        import sys
        sys.stderr.write("token expired\\nplease log in again\\n")
        sys.exit(3)
    """,
    )
    path = write_kubeconfig({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}})
    with pytest.raises(kc.CredentialError) as err:
        scan_cluster(path, environ={})
    assert "please log in again" in str(err.value) and "\n" not in str(err.value)
    missing = write_kubeconfig(
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "garrison-no-such-plugin",
                "installHint": "install it",
            }
        }
    )
    with pytest.raises(kc.CredentialError, match="not found; install it"):
        scan_cluster(missing, environ={})


def test_wrong_token_is_401_error(write_kubeconfig: KubeconfigWriter) -> None:
    with pytest.raises(ClusterError, match="401 Unauthorized"):
        scan_cluster(write_kubeconfig({"token": "wrong"}), environ={})


def test_untrusted_server_certificate_fails(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    other = kc.load(write_kubeconfig(cluster={"server": apiserver.url}), environ={})  # system CAs only
    with ApiClient(other, retries=0) as client, pytest.raises(ClusterError, match="cannot reach"):
        client.get("/api")
    insecure = write_kubeconfig(cluster={"server": apiserver.url, "insecure-skip-tls-verify": True})
    assert len(scan_cluster(insecure, environ={}).objects) == len(EXPECTED_REFS)


def test_tls_server_name(apiserver: Running, write_kubeconfig: KubeconfigWriter) -> None:
    port = apiserver.url.rsplit(":", 1)[1]
    ca = b64(apiserver.server_certs.ca_pem)
    # the serving certificate names localhost and 127.0.0.1, not this address's host name
    good = write_kubeconfig(
        cluster={
            "server": f"https://127.0.0.1:{port}",
            "certificate-authority-data": ca,
            "tls-server-name": "localhost",
        }
    )
    assert len(scan_cluster(good, environ={}).objects) == len(EXPECTED_REFS)
    bad = kc.load(
        write_kubeconfig(
            cluster={
                "server": f"https://127.0.0.1:{port}",
                "certificate-authority-data": ca,
                "tls-server-name": "not-the-server.example",
            }
        ),
        environ={},
    )
    with ApiClient(bad, retries=0) as client, pytest.raises(ClusterError, match="cannot reach"):
        client.get("/api")


def test_in_cluster_config(apiserver: Running, tmp_path: Path) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(TOKEN)
    (sa / "ca.crt").write_bytes(apiserver.server_certs.ca_pem)
    (sa / "namespace").write_text("default")
    port = apiserver.url.rsplit(":", 1)[1]
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port, "HOME": str(tmp_path)}
    snap = scan_cluster(None, environ=env, service_account_dir=sa)
    assert snap.context == "in-cluster"
    assert len(snap.objects) == len(EXPECTED_REFS)


def test_timeout_is_reported(tmp_path: Path) -> None:
    import socket

    with socket.socket() as listener:  # accepts connections but never answers TLS
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cfg = kc.ClusterConfig(context="slow", server=f"https://127.0.0.1:{port}", insecure=True)
        with ApiClient(cfg, timeout=0.3, retries=1, sleep=lambda _s: None) as client:
            with pytest.raises(ClusterError, match="cannot reach the API server") as err:
                client.get("/api")
    assert "Timeout" in str(err.value)


def test_recorded_payloads_are_unchanged() -> None:
    import hashlib

    readme = (ASSETS / "README.md").read_text()
    rows = [line.split() for line in readme.splitlines() if line.startswith("    ") and line.endswith(".json")]
    listed = {row[1]: row[0] for row in rows if len(row) == 2 and len(row[0]) == 64}
    files = {str(p.relative_to(ASSETS)) for p in ASSETS.rglob("*.json")}
    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name


def test_bad_proxy_url_is_one_line(write_kubeconfig: KubeconfigWriter, apiserver: Running) -> None:
    path = write_kubeconfig(cluster={"server": apiserver.url, "proxy-url": "gopher://proxy:70"})
    with pytest.raises(kc.KubeconfigError, match="proxy-url 'gopher://proxy:70'") as err:
        scan_cluster(path, environ={})
    assert "\n" not in str(err.value)


def test_unknown_resource_path_is_a_note(
    apiserver: Running, write_kubeconfig: KubeconfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.posture.cluster import _apiserver_replay

    monkeypatch.delitem(_apiserver_replay.RECORDED, "/apis/batch/v1/cronjobs")
    snap = scan_cluster(write_kubeconfig(), environ={})
    assert "cronjobs: /apis/batch/v1/cronjobs not found; skipped" in snap.notes
    assert "CronJob/default/hello" not in _refs(snap.objects)


def test_exec_plugin_rerun_once_on_401(apiserver: Running, write_kubeconfig: KubeconfigWriter, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    plugin = _plugin(
        tmp_path,
        f"""
        import json, os
        first = not os.path.exists({str(calls)!r})
        with open({str(calls)!r}, "a") as fh:
            fh.write("x\\n")
        token = "revoked" if first else {TOKEN!r}
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                          "status": {{"token": token}}}}))
    """,
    )
    path = write_kubeconfig({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}})
    snap = scan_cluster(path, environ={})
    assert len(snap.objects) == len(EXPECTED_REFS)
    assert len(calls.read_text().splitlines()) == 2
    assert apiserver.replay.requests[0].headers["authorization"] == "Bearer revoked"
