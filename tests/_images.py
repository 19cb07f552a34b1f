"""The real test images built by tests/assets/images/build.sh, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "tests" / "assets" / "images" / "build.sh"


def images_dir() -> Path:
    return Path(os.environ.get("GARRISON_TEST_IMAGES", "/var/tmp/garrison-test-images"))


@cache
def _index() -> dict[str, dict[str, str]]:
    index = images_dir() / "index.json"
    if not index.is_file():
        subprocess.run(["bash", str(BUILD)], check=True)
    data = json.loads(index.read_text())
    return dict(data["images"])


def test_images() -> dict[str, Path]:
    """Name -> path of every built image variant, building them first if needed."""
    return {name: images_dir() / meta["path"] for name, meta in _index().items()}


test_images.__test__ = False  # type: ignore[attr-defined]  # not a test, despite the name


def image_meta(name: str) -> dict[str, str]:
    return _index()[name]


def require_image(name: str) -> Path:
    """The path of one image variant; building is part of the test, so failure is an error."""
    images = test_images()
    assert name in images, f"unknown test image {name!r} (known: {sorted(images)})"
    path = images[name]
    assert path.exists(), f"{path} is missing; rerun {BUILD}"
    return path


@pytest.fixture(scope="session")
def built_images() -> dict[str, Path]:
    return test_images()
