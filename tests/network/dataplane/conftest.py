"""Fixtures for the dataplane tests: the small cluster's inventory file and a live harness for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.network.dataplane._dataplane_cluster import harness_endpoints, inventory_docs, write_yaml

from garrison.network.dataplane.harness import Harness


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "inventory.yaml", inventory_docs())


@pytest.fixture(scope="module")
def cluster() -> Iterator[Harness]:
    with Harness(harness_endpoints()) as h:
        yield h
