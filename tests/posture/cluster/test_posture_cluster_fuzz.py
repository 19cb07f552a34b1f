"""Property tests for the parts that read server answers: list items of any shape become objects
(or are ignored) without crashing, discovery documents of any shape give a set of group/versions
or a one-line error, and retry delays stay within bounds."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from garrison.posture.k8s import cluster as cl

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
_meta_keys = st.sampled_from(["name", "namespace", "ownerReferences", "labels", "continue"])
_item = st.dictionaries(
    st.sampled_from(["metadata", "spec", "data", "kind", "apiVersion"]),
    st.one_of(_json, st.dictionaries(_meta_keys, _json, max_size=3)),
    max_size=4,
)


@given(_item, st.sampled_from(cl.KINDS))
def test_to_object_never_crashes(item: dict[str, Any], rk: cl.ResourceKind) -> None:
    obj = cl.to_object(item, rk, rk.versions[0], "ctx")
    assert obj.kind == rk.kind and obj.api_version == rk.versions[0]
    assert obj.location.file.startswith("cluster:ctx/") and obj.location.line == 0
    if rk.metadata_only:
        assert set(obj.doc) == {"apiVersion", "kind", "metadata"}
    cl._skip(obj)  # owner references of any shape


class _Answers:
    def __init__(self, api: Any, apis: Any) -> None:
        self.config = cl.kc.ClusterConfig(context="c", server="https://s")
        self.answers = {"/api": api, "/apis": apis}

    def get(self, path: str, params: Any = None, accept: str = cl.JSON) -> cl.Response:
        return cl.Response(200, self.answers[path], {})


@given(_json, _json)
def test_discovery_of_any_shape(api: Any, apis: Any) -> None:
    try:
        served = cl.served_versions(_Answers(api, apis))  # type: ignore[arg-type]
    except cl.ClusterError as err:
        assert "\n" not in str(err)
    else:
        assert all(isinstance(v, str) for v in served)


@given(_json)
def test_pages_of_any_shape(body: Any) -> None:
    client = _Answers(None, None)
    first = cl.Response(200, body, {})
    client.get = lambda *_a, **_k: cl.Response(200, {"items": []}, {})  # type: ignore[method-assign]
    items = list(cl.ApiClient._pages(client, "/api/v1/pods", first, 10, cl.JSON))  # type: ignore[arg-type]
    assert all(isinstance(i, dict) for i in items)


@given(st.one_of(st.none(), st.text(max_size=12)), st.integers(min_value=0, max_value=20))
def test_retry_delay_bounded(header: str | None, attempt: int) -> None:
    delay = cl._retry_delay(header, attempt)
    assert 0 <= delay <= cl.MAX_RETRY_AFTER and not math.isnan(delay)
