"""Indented, key-sorted JSON for reports, fast on large documents.

``json.dumps(indent=2)`` falls back to the pure-Python encoder (the C encoder only runs without
``indent``), which took most of the time of a 4,500-workload posture report. orjson writes the
same layout (two-space indent, ``": "`` and ``","`` separators, sorted keys) from C; the output
differs only in that non-ASCII characters are written as UTF-8 rather than ``\\uXXXX`` escapes,
which every JSON reader accepts. The standard encoder remains the fallback for values orjson
refuses (integers beyond 64 bits).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    return str(value)


def pretty(obj: Any) -> str:
    """``obj`` as indented JSON with sorted keys, without a trailing newline."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(obj, indent=2, sort_keys=True, default=str)
