"""Hypothesis strategies that mutate real advisory documents (shared by the ingest fuzz tests)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8), st.just([]), st.just({}), st.just("0")
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:6]):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return None
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return doc


@st.composite
def mutated_json(draw: st.DrawFn, docs: list[Any]) -> Any:
    """A real document with one to three values replaced by junk or deleted."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if path and draw(st.booleans()):
            doc = _delete(doc, path)
        else:
            doc = _set(doc, path, draw(JSON_LEAVES))
        if not isinstance(doc, dict | list):
            break
    return doc


@st.composite
def mutated_bytes(draw: st.DrawFn, blobs: list[bytes]) -> bytes:
    """A real file truncated, with bytes flipped, or with a slice duplicated."""
    data = bytearray(draw(st.sampled_from(blobs)))
    how = draw(st.sampled_from(["truncate", "flip", "dup", "insert"]))
    if not data:
        return bytes(data)
    pos = draw(st.integers(0, len(data) - 1))
    if how == "truncate":
        return bytes(data[:pos])
    if how == "flip":
        data[pos] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "dup":
        end = min(len(data), pos + draw(st.integers(1, 200)))
        return bytes(data[:end] + data[pos:])
    junk = draw(st.binary(min_size=1, max_size=16))
    return bytes(data[:pos] + junk + data[pos:])
