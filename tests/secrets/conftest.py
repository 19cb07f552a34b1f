"""Fixtures for the secret-scanner tests: the scanner, the example table, the token factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from secret_tokens import TokenFactory

from garrison.secrets import SecretScanner


@pytest.fixture(scope="session")
def scanner() -> SecretScanner:
    return SecretScanner()


@pytest.fixture(scope="session")
def secrets_assets(assets_dir: Path) -> Path:
    return assets_dir / "secrets"


@pytest.fixture(scope="session")
def examples(secrets_assets: Path) -> dict[str, Any]:
    data = yaml.safe_load((secrets_assets / "examples.yaml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture()
def tokens(tmp_path: Path, request: pytest.FixtureRequest) -> TokenFactory:
    return TokenFactory(request.node.nodeid, tmp_path)
