"""Property tests for the restricted volume check: admission sees pods after API-server
defaulting, so a volume that names no source is an ``emptyDir`` and allowed, while any
restricted source is reported with its type, whatever else the volume carries."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from garrison.posture.k8s.pss import checks as c

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
#: keys that are not VolumeSource members (the API server drops unknown fields)
NOISE = st.dictionaries(st.sampled_from(["name", "x-extra", "annotations"]), st.text(max_size=5), max_size=2)


def _spec(volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"containers": [{"name": "c"}], "volumes": volumes}


@given(name=NAMES, noise=NOISE)
def test_sourceless_volume_is_defaulted_emptydir(name: str, noise: dict[str, str]) -> None:
    volume = {**noise, "name": name}
    assert c.restricted_volumes_1_0({}, _spec([volume]), c.Options()) is None


@given(name=NAMES, kind=st.sampled_from(c.VOLUMES_RESTRICTED), noise=NOISE)
def test_restricted_source_is_reported(name: str, kind: str, noise: dict[str, str]) -> None:
    volume = {**noise, "name": name, kind: {}}
    res = c.restricted_volumes_1_0({}, _spec([volume]), c.Options())
    assert res is not None
    assert res.reason == "restricted volume types"
    assert res.detail == f'volume "{name}" uses restricted volume type "{kind}"'
    assert res.paths == (f"spec.volumes[0].{kind}",)


@given(name=NAMES, kind=st.sampled_from(c.VOLUMES_ALLOWED))
def test_allowed_source_passes(name: str, kind: str) -> None:
    assert c.restricted_volumes_1_0({}, _spec([{"name": name, kind: {}}]), c.Options()) is None


def test_unknown_but_present_source_is_unknown_type() -> None:
    # image volumes are a VolumeSource member outside the allowed list
    res = c.restricted_volumes_1_0({}, _spec([{"name": "img", "image": {"reference": "x"}}]), c.Options())
    assert res is not None and res.detail == 'volume "img" uses restricted volume type "unknown"'
