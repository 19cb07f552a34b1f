"""String unescaping for quoted values in conditions and lists (libsinsp ``filter/escaping.cpp``).

A quoted token keeps its quotes until here; ``unescape`` drops them and resolves ``\\\\``,
``\\"``, ``\\'``, ``\\b``, ``\\f``, ``\\n``, ``\\r``, ``\\t``. Unknown escapes are kept verbatim,
as libsinsp does for backslashes that escape nothing.
"""

from __future__ import annotations

_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def unescape(token: str) -> str:
    """Unquote a ``'...'`` or ``"..."`` token; a token without matching quotes is returned as is."""
    if len(token) < 2 or token[0] not in "'\"" or token[-1] != token[0]:
        return token
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


def unquote_item(item: str) -> str:
    """A list item as the condition parser would read it after Falco's textual list substitution."""
    s = item.strip()
    if len(s) >= 2 and s[0] in "'\"" and s[-1] == s[0]:
        return unescape(s)
    return s
