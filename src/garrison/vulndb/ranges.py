"""OSV range evaluation on pre-parsed version keys, exactly as the OSV schema's pseudocode says.

For each range whose ``BeforeLimits`` holds, walk the events sorted by version: ``introduced``
(``"0"`` sorts first) sets vulnerable when ``v >= introduced``, ``fixed`` clears it when
``v >= fixed``, ``last_affected`` clears it when ``v > last_affected``. A version is affected when
any range says so or it is listed in ``versions``. Ranges are compiled once per (entry, scheme):
each version string is turned into a key by the ecosystem's :class:`VersionScheme`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from garrison.vulndb.records import MATCHABLE_RANGE_TYPES
from garrison.vulndb.versions import InvalidVersion

logger = logging.getLogger(__name__)

_KIND_ORDER = {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}

KeyFn = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class Hit:
    """Why a version is in a range: the readable bounds and the fix that ends the interval."""

    matched_range: str
    fixed: str | None


@dataclass(slots=True)
class CompiledRange:
    events: Sequence[tuple[str, Any, str]]  # (kind, key or None for introduced "0", version text)
    limits: Sequence[Any]  # keys of limit events (a "*" limit is dropped: it bounds nothing)
    has_star_limit: bool
    #: fast path for the common one-interval range ``introduced X, fixed Y``: (X key, Y key, hit)
    simple: tuple[Any, Any, Hit] | None = None

    def evaluate(self, v: Any) -> Hit | None:
        simple = self.simple
        if simple is not None:
            lo, hi, hit = simple
            return hit if (lo is None or v >= lo) and v < hi else None
        if self.limits and not self.has_star_limit and not any(v < lim for lim in self.limits):
            return None
        vulnerable = False
        since = -1
        for i, (kind, key, _text) in enumerate(self.events):
            if kind == "introduced":
                if key is None or v >= key:
                    vulnerable = True
                    since = i
            elif kind == "fixed":
                if v >= key:
                    vulnerable = False
            elif kind == "last_affected" and v > key:
                vulnerable = False
        if not vulnerable:
            return None
        lower = self.events[since][2] if since >= 0 and self.events[since][1] is not None else ""
        upper_kind, upper = "", ""
        for kind, _key, text in self.events[since + 1 :]:
            if kind in ("fixed", "last_affected"):
                upper_kind, upper = kind, text
                break
        parts = [f">={lower}"] if lower else []
        if upper_kind == "fixed":
            parts.append(f"<{upper}")
        elif upper_kind == "last_affected":
            parts.append(f"<={upper}")
        return Hit(", ".join(parts) or "*", upper if upper_kind == "fixed" else None)


def _sort_key(event: tuple[str, Any, str]) -> tuple[int, Any, int]:
    kind, key, _ = event
    return (0, 0, 0) if key is None else (1, key, _KIND_ORDER[kind])


def compile_ranges(ranges: Sequence[Sequence[Any]], key: KeyFn, where: str) -> list[CompiledRange]:
    """Compile the stored ``[[type, [[kind, version], ...], repo], ...]`` of one entry; ranges
    with a version the scheme cannot parse are skipped (and logged), GIT ranges are never kept."""
    out: list[CompiledRange] = []
    for rng in ranges:
        rtype, events = rng[0], rng[1]
        if rtype not in MATCHABLE_RANGE_TYPES:
            continue
        if len(events) == 2 and events[0][0] == "introduced" and events[1][0] == "fixed":
            # the common ``introduced X, fixed Y`` range: no sort, fast path built directly
            simple = _simple(events[0][1], events[1][1], key)
            if simple is not None:
                out.append(simple)
                continue
        compiled: list[tuple[str, Any, str]] = []
        limits: list[Any] = []
        star = False
        try:
            for kind, text in events:
                if kind == "introduced" and text == "0":
                    compiled.append((kind, None, text))
                elif kind == "limit":
                    if "*" in text:
                        star = True
                    else:
                        limits.append(key(text))
                else:
                    compiled.append((kind, key(text), text))
            compiled.sort(key=_sort_key)
        except (InvalidVersion, TypeError, ValueError) as exc:
            logger.debug("%s: skipping a range with an unparseable version: %s", where, exc)
            continue
        out.append(_with_fast_path(CompiledRange(tuple(compiled), tuple(limits), star)))
    return out


def _simple(lo_text: str, hi_text: str, key: KeyFn) -> CompiledRange | None:
    """``introduced lo_text, fixed hi_text`` compiled with its fast path, or None when the
    general path must decide (``lo >= hi``, or a version that does not parse: it logs)."""
    try:
        hi = key(hi_text)
        lo = None if lo_text == "0" else key(lo_text)
        if lo is not None and not lo < hi:
            return None
    except (InvalidVersion, TypeError, ValueError):
        return None
    rng = CompiledRange((("introduced", lo, lo_text), ("fixed", hi, hi_text)), (), False)
    text = f"<{hi_text}" if lo is None else f">={lo_text}, <{hi_text}"
    rng.simple = (lo, hi, Hit(text, hi_text))
    return rng


def _with_fast_path(rng: CompiledRange) -> CompiledRange:
    events = rng.events
    if rng.limits or len(events) != 2 or events[0][0] != "introduced" or events[1][0] != "fixed":
        return rng
    lo, hi = events[0][1], events[1][1]
    if lo is not None and not lo < hi:
        return rng
    text = f"<{events[1][2]}" if lo is None else f">={events[0][2]}, <{events[1][2]}"
    rng.simple = (lo, hi, Hit(text, events[1][2]))
    return rng


def uncovered_versions(ranges: Sequence[Sequence[Any]], versions: Sequence[str], key: KeyFn) -> list[str]:
    """The explicitly listed ``versions`` that still matter to the matcher once ``ranges`` are
    evaluated: a listed version the ranges already cover can only be hit by a version the ranges
    hit first, and one the scheme cannot parse can never be hit (an installed version that does
    not parse matches nothing). Computed at import time so matching never parses the long
    ``versions`` lists of OSV records; order is kept."""
    compiled = compile_ranges(ranges, key, "listed versions")
    out: list[str] = []
    for text in versions:
        try:
            k = key(text)
        except (InvalidVersion, TypeError, ValueError):
            continue
        try:
            if any(rng.evaluate(k) is not None for rng in compiled):
                continue
        except TypeError:  # keys that do not compare: keep it, the matcher decides
            pass
        out.append(text)
    return out

