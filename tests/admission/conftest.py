"""Fixtures for the admission webhook: a real uvicorn HTTPS server on a free loopback port with
a CA and serving certificate generated per test session."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from garrison.admission.certs import CertBundle, generate
from garrison.admission.config import config_from_dict
from garrison.admission.policy import Engine
from garrison.admission.server import DecisionLog, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertBundle, dict[str, Path]]:
    bundle = generate(["localhost", "127.0.0.1"])
    return bundle, bundle.write(tmp_path_factory.mktemp("tls"))


class Running:
    def __init__(self, base: str, client: httpx.Client, log_path: Path) -> None:
        self.base = base
        self.client = client
        self.log_path = log_path

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.client.post(self.base + path, json=body, **kw)

    def events(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def serve(certs: tuple[CertBundle, dict[str, Path]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[dict[str, Any]], Running]]:
    """Start a server for a config dict; every server is stopped at module end."""
    _bundle, paths = certs
    started: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(cfg: dict[str, Any]) -> Running:
        log_path = tmp_path_factory.mktemp("log") / "decisions.jsonl"
        engine = Engine(config_from_dict(cfg))
        app = create_app(engine, DecisionLog(str(log_path)))
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                ssl_certfile=str(paths["cert"]), ssl_keyfile=str(paths["key"]))
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        client = httpx.Client(verify=ssl.create_default_context(cafile=str(paths["ca"])), timeout=10)
        started.append((server, thread, client))
        return Running(f"https://localhost:{port}", client, log_path)

    yield start
    for server, thread, client in started:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)
