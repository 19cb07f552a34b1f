"""The keyword prefilter: where the rules' keywords occur in a file, in one pass if possible.

A rule's regex only runs on files that contain one of its keywords (ASCII case-insensitive, as
Trivy does), and a rule with ``scope: line`` only on the lines that contain one, so the
prefilter is what a scan of a tree of ordinary text costs. Searching ~200 keywords one
``bytes.find`` at a time costs ~200 passes over the file (about 15 MB/s); an Aho-Corasick
automaton finds them all in one pass. The automaton comes from the optional ``ahocorasick-rs``
wheel (Rust, DFA mode: several hundred MB/s); without it the per-keyword search below is used,
which gives the same answers, only slower.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "aho-corasick", "stdlib")


def _aho_corasick_module() -> Any | None:
    try:
        return importlib.import_module("ahocorasick_rs")
    except ImportError:
        return None


def available_backends() -> tuple[str, ...]:
    """Backends usable in this environment, fastest first."""
    return ("aho-corasick", "stdlib") if _aho_corasick_module() is not None else ("stdlib",)


class KeywordIndex:
    """Finds where ``keywords`` (lower-case bytes) occur in lower-cased content."""

    def __init__(self, keywords: Sequence[bytes], backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown keyword backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.keywords: tuple[bytes, ...] = tuple(keywords)
        module = _aho_corasick_module() if backend in ("auto", "aho-corasick") else None
        if backend == "aho-corasick" and module is None:
            raise ValueError("keyword backend 'aho-corasick' needs the ahocorasick-rs package")
        self._automaton: Any | None = None
        if module is not None and self.keywords:
            self._automaton = module.BytesAhoCorasick(self.keywords, implementation=module.Implementation.DFA)
        self.backend = "aho-corasick" if module is not None else "stdlib"
        logger.debug("secret keyword prefilter: %d keywords, %s backend", len(self.keywords), self.backend)

    def find(self, lowered: bytes) -> dict[int, list[int]]:
        """Start offsets of every occurrence, by keyword index (into ``keywords``); absent ones are left out."""
        found: dict[int, list[int]] = {}
        if self._automaton is not None:
            for index, start, _ in self._automaton.find_matches_as_indexes(lowered, overlapping=True):
                found.setdefault(index, []).append(start)
            return found
        for index, kw in enumerate(self.keywords):
            pos = lowered.find(kw)
            if pos == -1:
                continue
            offsets = found[index] = []
            while pos != -1:
                offsets.append(pos)
                pos = lowered.find(kw, pos + 1)
        return found
