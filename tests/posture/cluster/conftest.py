"""Fixtures for ``posture cluster``: a replaying HTTPS API server and kubeconfig writers."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.posture.cluster._apiserver_replay import Replay, Running, serve

from garrison.posture.k8s import kubeconfig as kc

TOKEN = "replay-token-0123456789"


@pytest.fixture(autouse=True)
def _fresh_exec_cache() -> Iterator[None]:
    kc.clear_exec_cache()
    yield
    kc.clear_exec_cache()


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[Running]:
    with serve(tmp_path, Replay(bearer=TOKEN, client_cn="replay-admin")) as running:
        yield running


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


KubeconfigWriter = Callable[..., Path]


@pytest.fixture
def write_kubeconfig(tmp_path: Path, apiserver: Running) -> KubeconfigWriter:
    """Write a kubeconfig for the replay server with the given ``user`` stanza."""
    counter = iter(range(1000))

    def write(
        user: dict[str, Any] | None = None,
        *,
        cluster: dict[str, Any] | None = None,
        context: str = "replay",
        name: str | None = None,
    ) -> Path:
        path = tmp_path / (name or f"kubeconfig-{next(counter)}")
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [
                {
                    "name": "replay-cluster",
                    "cluster": cluster
                    or {
                        "server": apiserver.url,
                        "certificate-authority-data": b64(apiserver.server_certs.ca_pem),
                    },
                }
            ],
            "users": [{"name": "replay-user", "user": user if user is not None else {"token": TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": "replay-cluster", "user": "replay-user"}}],
        }
        path.write_text(yaml.safe_dump(doc))
        return path

    return write
