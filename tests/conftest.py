"""Shared fixtures: where the shared conformance suites and advisory snapshots live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"


def _shared() -> Path:
    env = os.environ.get("GARRISON_SHARED")
    if env:
        return Path(env)
    return REPO.parent / "shared"


SHARED = _shared()
CONFORMANCE = SHARED / "conformance"
ADVISORIES = SHARED / "data" / "advisories"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"shared data not found at {SHARED} (set GARRISON_SHARED)"
    return SHARED


@pytest.fixture(scope="session")
def conformance_dir(shared_dir: Path) -> Path:
    return shared_dir / "conformance"


@pytest.fixture(scope="session")
def advisories_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "advisories"


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    return ASSETS


# Fuzz tests run derandomized by default so the suite's verdict is reproducible; set
# GARRISON_FUZZ=explore to draw fresh random examples (what a fuzzing job should do).
from hypothesis import settings as _hyp_settings  # noqa: E402

_hyp_settings.register_profile("reproducible", derandomize=True, deadline=None)
_hyp_settings.register_profile("explore", deadline=None)
_hyp_settings.load_profile("explore" if os.environ.get("GARRISON_FUZZ") == "explore" else "reproducible")
