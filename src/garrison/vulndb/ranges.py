"""OSV range evaluation on pre-parsed version keys, exactly as the OSV schema's pseudocode says.

For each range whose ``BeforeLimits`` holds, walk the events sorted by version: ``introduced``
(``"0"`` sorts first) sets vulnerable when ``v >= introduced``, ``fixed`` clears it when
``v >= fixed``, ``last_affected`` clears it when ``v > last_affected``. A version is affected when
any range says so or it is listed in ``versions``. Ranges are compiled once per (entry, scheme):
each version string is turned into a key by the ecosystem's :class:`VersionScheme`.

:func:`form_of` turns compiled ranges into the plain tuples matching evaluates (a :data:`Form`):
``(lo, hi, hit)`` for the common one-interval ``introduced lo, fixed hi`` range and
``(events, limits)`` otherwise. A form of a scheme whose keys are tuples, ints and strings is
what :mod:`garrison.vulndb.forms` stores with ``marshal`` at import, so matching decodes keys
instead of parsing versions.
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

#: why a version is in a range, as matching carries it: (readable bounds, the fix ending the interval or ())
MatchHit = tuple[str, tuple[str, ...]]
#: ``introduced lo, fixed hi`` with ``lo < hi`` (``lo`` None for ``"0"``): (lo key, hi key, hit)
Interval = tuple[Any, Any, MatchHit]
#: any other range: (events sorted as evaluated: (kind, key or None, text), limit keys; () when
#: there is none or a ``"*"`` limit, which bounds nothing)
General = tuple[tuple[tuple[str, Any, str], ...], tuple[Any, ...]]
#: the compiled ranges of one entry, in stored order (the first range that hits decides the hit)
Form = tuple[Interval | General, ...]


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
        found = general_hit(self.events, () if self.has_star_limit else self.limits, v)
        if found is None:
            return None
        return Hit(found[0], found[1][0] if found[1] else None)


def general_hit(events: Sequence[tuple[str, Any, str]], limits: Sequence[Any], v: Any) -> MatchHit | None:
    """The hit of key ``v`` in one range given as sorted events and limit keys (none: unbounded)."""
    if limits and not any(v < lim for lim in limits):
        return None
    vulnerable = False
    since = -1
    for i, (kind, key, _text) in enumerate(events):
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
    lower = events[since][2] if since >= 0 and events[since][1] is not None else ""
    upper_kind, upper = "", ""
    for kind, _key, text in events[since + 1 :]:
        if kind in ("fixed", "last_affected"):
            upper_kind, upper = kind, text
            break
    parts = [f">={lower}"] if lower else []
    if upper_kind == "fixed":
        parts.append(f"<{upper}")
    elif upper_kind == "last_affected":
        parts.append(f"<={upper}")
    return (", ".join(parts) or "*", (upper,) if upper_kind == "fixed" and upper else ())


def form_of(compiled: Sequence[CompiledRange]) -> Form:
    """Compiled ranges as plain tuples (see :data:`Form`), in the same order."""
    out: list[Interval | General] = []
    for rng in compiled:
        if rng.simple is not None:
            lo, hi, hit = rng.simple
            out.append((lo, hi, (hit.matched_range, (hit.fixed,) if hit.fixed else ())))
        else:
            out.append((tuple(rng.events), () if rng.has_star_limit else tuple(rng.limits)))
    return tuple(out)


def form_hit(form: Form, v: Any) -> MatchHit | None:
    """The hit of key ``v`` in the first range of ``form`` that contains it."""
    for rng in form:
        if len(rng) == 3:
            lo, hi, hit = rng
            if (lo is None or v >= lo) and v < hi:
                return hit
        else:
            found = general_hit(rng[0], rng[1], v)
            if found is not None:
                return found
    return None


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
    form = form_of(compile_ranges(ranges, key, "listed versions"))
    out: list[str] = []
    for text in versions:
        try:
            k = key(text)
        except (InvalidVersion, TypeError, ValueError):
            continue
        try:
            if form_hit(form, k) is not None:
                continue
        except TypeError:  # keys that do not compare: keep it, the matcher decides
            pass
        out.append(text)
    return out
