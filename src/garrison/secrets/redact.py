"""Redaction of the line a secret was found on.

The policy, applied to the line reported with a finding:

* the reported secret keeps its first ``min(4, len(secret) // 4)`` characters: never more than
  four, never more than a quarter of it (a 7-character password shows one character, a secret
  shorter than four characters shows none); every other character of it becomes ``*``, one
  star per byte, so the line keeps its shape;
* every other candidate secret on the line (another finding, or a match that lost to an
  overlapping one) and any further copy of the reported secret on the line are starred in full;
* the line is stripped of surrounding white space and cut to at most ``MAX_LINE`` characters
  around the secret; bytes that are not UTF-8 show as U+FFFD.

Masking happens on bytes, before decoding, so a multi-byte character inside a secret cannot
survive half-masked.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_LINE = 200
MAX_REVEALED = 4
#: characters kept before the secret when a long line is cut
_CONTEXT_BEFORE = 60
_WHITESPACE = b" \t\r\n\x0b\x0c"


def revealed(length: int) -> int:
    """How many leading characters of a secret of ``length`` bytes a report may show."""
    return min(MAX_REVEALED, length // 4)


def redact_line(
    content: bytes,
    line_start: int,
    line_end: int,
    focus: tuple[int, int],
    others: Iterable[tuple[int, int]] = (),
) -> str:
    """The line ``content[line_start:line_end]`` with the ``focus`` secret and ``others`` masked.

    Spans are absolute offsets into ``content``; a span may start on an earlier line or run past
    this one (multi-line secrets), only the part on this line is shown, masked.
    """
    line = bytearray(content[line_start:line_end])
    f_start, f_end = focus
    secret = content[f_start:f_end]
    keep_until = f_start + revealed(f_end - f_start)
    _mask(line, line_start, keep_until, f_end)
    for start, end in others:
        _mask(line, line_start, start, end)
    if len(secret) >= 1:
        _mask_copies(line, line_start, secret, f_start)
    return _trim(bytes(line), max(0, f_start - line_start))


def _mask(line: bytearray, line_start: int, start: int, end: int) -> None:
    lo = max(start - line_start, 0)
    hi = min(end - line_start, len(line))
    if hi > lo:
        line[lo:hi] = b"*" * (hi - lo)


def _mask_copies(line: bytearray, line_start: int, secret: bytes, focus_start: int) -> None:
    """Star any other occurrence of the secret on the line (the original text, before masking)."""
    original = bytes(line)  # already masked at the focus; copies elsewhere are still clear
    pos = original.find(secret)
    while pos != -1:
        if pos != focus_start - line_start:
            line[pos : pos + len(secret)] = b"*" * len(secret)
        pos = original.find(secret, pos + 1)


def _trim(line: bytes, focus_in_line: int) -> str:
    start = len(line) - len(line.lstrip(_WHITESPACE))
    end = len(line.rstrip(_WHITESPACE))
    if end < start:
        end = start
    if end - start > MAX_LINE:
        anchor = min(max(focus_in_line, start), end)
        start = max(start, min(anchor - _CONTEXT_BEFORE, end - MAX_LINE))
        end = start + MAX_LINE
    return line[start:end].decode("utf-8", "replace")
