"""Kubeconfig loading: kubectl's merge rules, relative paths, contexts, in-cluster config, exec
credentials and one-line errors for bad files (with a hypothesis fuzz of the parser)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from garrison.core.errors import GarrisonError
from garrison.posture.k8s import kubeconfig as kc


def _write(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def _config(
    clusters: dict[str, str],
    users: dict[str, dict[str, Any]],
    contexts: dict[str, tuple[str, str]],
    current: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def test_kubeconfig_env_merge_first_file_wins(tmp_path: Path) -> None:
    a = _write(
        tmp_path / "a", _config({"c1": "https://a.example:6443"}, {"u1": {"token": "from-a"}}, {"ctx": ("c1", "u1")})
    )
    b = _write(
        tmp_path / "b",
        _config(
            {"c1": "https://b.example:6443", "c2": "https://c2.example"},
            {"u1": {"token": "from-b"}},
            {"ctx": ("c1", "u1"), "other": ("c2", "u1")},
            current="other",
        ),
    )
    env = {"KUBECONFIG": f"{a}:{tmp_path / 'missing'}::{b}"}
    cfg = kc.load(environ=env)
    # a sets no current-context, so b's wins; the context, cluster and user names defined first win
    assert cfg.context == "other" and cfg.server == "https://c2.example" and cfg.token == "from-a"
    cfg = kc.load(context="ctx", environ=env)
    assert cfg.server == "https://a.example:6443"
    assert cfg.source == f"{a}:{b}"


def test_explicit_kubeconfig_beats_env_and_must_exist(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", _config({"c": "https://a"}, {"u": {}}, {"x": ("c", "u")}, current="x"))
    env = {"KUBECONFIG": str(tmp_path / "nope")}
    assert kc.load(a, environ=env).server == "https://a"
    with pytest.raises(GarrisonError, match="kubeconfig file not found"):
        kc.load(tmp_path / "nope", environ={})


def test_default_kubeconfig_in_home(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    _write(tmp_path / ".kube" / "config", _config({"c": "https://home"}, {"u": {}}, {"x": ("c", "u")}, current="x"))
    assert kc.load(environ={"HOME": str(tmp_path)}).server == "https://home"


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ca.pem").write_bytes(b"CA")
    (tmp_path / "sub" / "tok").write_text("tok-from-file\n")
    doc = _config({"c": "https://x"}, {"u": {"tokenFile": "tok", "token": "inline"}}, {"x": ("c", "u")}, current="x")
    doc["clusters"][0]["cluster"]["certificate-authority"] = "ca.pem"
    cfg = kc.load(_write(tmp_path / "sub" / "config", doc), environ={})
    assert cfg.ca_data == b"CA"
    assert cfg.bearer_token() == "tok-from-file"  # the file wins over the inline token


def test_data_fields_win_over_files(tmp_path: Path) -> None:
    doc = _config({"c": "https://x"}, {"u": {}}, {"x": ("c", "u")}, current="x")
    doc["clusters"][0]["cluster"].update(
        {
            "certificate-authority": "/nonexistent",
            "certificate-authority-data": base64.b64encode(b"PEM").decode(),
            "tls-server-name": "api.internal",
            "proxy-url": "http://proxy:3128",
        }
    )
    cfg = kc.load(_write(tmp_path / "k", doc), environ={})
    assert (cfg.ca_data, cfg.tls_server_name, cfg.proxy_url) == (b"PEM", "api.internal", "http://proxy:3128")


def test_context_namespace(tmp_path: Path) -> None:
    doc = _config({"c": "https://x"}, {"u": {}}, {"x": ("c", "u")}, current="x")
    doc["contexts"][0]["context"]["namespace"] = "team-a"
    assert kc.load(_write(tmp_path / "k", doc), environ={}).namespace == "team-a"


BAD = [
    pytest.param("clusters: [", "invalid YAML", id="yaml"),
    pytest.param("- a\n- b\n", "is a list, not a kubeconfig mapping", id="list"),
    pytest.param({"kind": "Pod"}, "kind: expected Config", id="kind"),
    pytest.param({"clusters": {"a": 1}}, "clusters: expected a list", id="clusters-map"),
    pytest.param({"clusters": [{"cluster": {}}]}, "clusters[0].name: expected a non-empty string", id="no-name"),
    pytest.param(
        {"contexts": [{"name": "x", "context": {"cluster": "c"}}]}, "current-context is not set", id="no-current"
    ),
    pytest.param({"current-context": "x"}, "context 'x' not found (contexts: none)", id="missing-context"),
    pytest.param(
        {"current-context": "x", "contexts": [{"name": "x", "context": {"cluster": "c"}}]},
        "contexts[x].cluster: cluster 'c' not found",
        id="missing-cluster",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c"}}],
            "clusters": [{"name": "c", "cluster": {}}],
        },
        "clusters[c].server: required",
        id="no-server",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c"}}],
            "clusters": [{"name": "c", "cluster": {"server": "ftp://x"}}],
        },
        "is not an http(s) URL",
        id="bad-server",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x", "certificate-authority-data": "%%"}}],
        },
        "clusters[c].certificate-authority-data: not valid base64",
        id="bad-base64",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x", "insecure-skip-tls-verify": "yes"}}],
        },
        "insecure-skip-tls-verify: expected true or false",
        id="bad-bool",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
        },
        "contexts[x].user: user 'u' not found",
        id="missing-user",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
            "users": [{"name": "u", "user": {"client-certificate-data": "QQ=="}}],
        },
        "client-certificate and client-key must be given together",
        id="cert-without-key",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
            "users": [{"name": "u", "user": {"exec": {"command": "x", "apiVersion": "v9"}}}],
        },
        "users[u].exec.apiVersion: v9; use one of",
        id="exec-version",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
            "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1"}}}],
        },
        "users[u].exec.command: required",
        id="exec-command",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
            "users": [
                {
                    "name": "u",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1",
                            "command": "x",
                            "interactiveMode": "Always",
                        }
                    },
                }
            ],
        },
        "users[u].exec.interactiveMode: Always needs a terminal",
        id="exec-interactive",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x"}}],
            "users": [{"name": "u", "user": {"auth-provider": {"name": "gcp"}}}],
        },
        "auth providers were removed",
        id="auth-provider",
    ),
    pytest.param(
        {
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": "https://x", "certificate-authority": "no.pem"}}],
        },
        "clusters[c].certificate-authority: cannot read",
        id="missing-ca-file",
    ),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_bad_kubeconfig_is_one_line_naming_file_and_key(tmp_path: Path, doc: Any, message: str) -> None:
    path = _write(tmp_path / "kubeconfig", doc)
    with pytest.raises(GarrisonError) as err:
        kc.load(path, environ={})
    text = str(err.value)
    assert message in text
    assert text.startswith(str(path)) and "\n" not in text


def test_no_kubeconfig_and_not_in_cluster(tmp_path: Path) -> None:
    with pytest.raises(GarrisonError, match="not running in a cluster"):
        kc.load(environ={"HOME": str(tmp_path)})
    with pytest.raises(GarrisonError, match="service account token not found"):
        kc.load(
            environ={"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
            service_account_dir=tmp_path,
        )


def test_in_cluster_ipv6_host(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t")
    (tmp_path / "ca.crt").write_text("ca")
    cfg = kc.in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
    assert cfg.server == "https://[fd00::1]:443" and cfg.token_file == tmp_path / "token"


V1 = "client.authentication.k8s.io/v1"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param("not json", "did not print a JSON ExecCredential", id="not-json"),
        pytest.param('{"kind": "Pod"}', "not an ExecCredential", id="kind"),
        pytest.param('{"kind": "ExecCredential", "apiVersion": "v0"}', "returned apiVersion 'v0'", id="version"),
        pytest.param(f'{{"kind": "ExecCredential", "apiVersion": "{V1}"}}', "has no status", id="no-status"),
        pytest.param(
            f'{{"kind": "ExecCredential", "apiVersion": "{V1}", "status": {{}}}}',
            "neither token nor clientCertificateData",
            id="empty",
        ),
        pytest.param(
            f'{{"kind": "ExecCredential", "apiVersion": "{V1}", "status": {{"clientKeyData": "k"}}}}',
            "must be given together",
            id="half-cert",
        ),
        pytest.param(
            f'{{"kind": "ExecCredential", "apiVersion": "{V1}", "status": {{"token": "t", '
            '"expirationTimestamp": "soon"}}',
            "bad status.expirationTimestamp",
            id="bad-time",
        ),
    ],
)
def test_bad_exec_credentials(payload: str, message: str) -> None:
    with pytest.raises(kc.CredentialError, match=message.replace("(", r"\(")):
        kc.parse_exec_credential(payload, V1, "plugin")


def test_exec_credential_expiry() -> None:
    result = kc.parse_exec_credential(
        f'{{"kind":"ExecCredential","apiVersion":"{V1}","status":{{"token":"t",'
        '"expirationTimestamp":"2030-01-02T03:04:05Z"}}',
        V1,
    )
    assert result.token == "t" and result.expires == 1893553445.0


@given(st.text(max_size=300))
def test_fuzz_kubeconfig_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "config"
    path.write_text(text, encoding="utf-8")
    try:
        kc.load(path, environ={})
    except GarrisonError as err:
        assert "\n" not in str(err)


_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "clusters",
        "users",
        "contexts",
        "current-context",
        "kind",
        "name",
        "cluster",
        "user",
        "server",
        "exec",
        "token",
        "certificate-authority-data",
        "client-key-data",
        "command",
    ]
)


@given(st.dictionaries(_keys, _value, max_size=5))
def test_fuzz_kubeconfig_structure(tmp_path_factory: pytest.TempPathFactory, doc: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "config"
    path.write_text(yaml.safe_dump(doc))
    try:
        kc.load(path, environ={})
    except GarrisonError as err:
        assert "\n" not in str(err)


@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda d: __import__("json").dumps(d),
            st.dictionaries(st.sampled_from(["kind", "apiVersion", "status"]), _value, max_size=3),
        ),
    )
)
def test_fuzz_exec_credential(payload: str) -> None:
    try:
        kc.parse_exec_credential(payload, V1)
    except kc.CredentialError as err:
        assert "\n" not in str(err)
