"""Rule output: Falco's ``%field`` substitution, compiled once per rule.

Tokens are ``%field``, ``%field[arg]`` and ``%(field)``, as in libsinsp's formatter. A field
without a value renders ``<NA>``; booleans render ``true``/``false``. ``%container.info`` expands
to ``container_id=%container.id container_name=%container.name``, what Falco printed before its
container plugin started suggesting these fields itself. Fields known to Falco but not to our
event model are allowed in outputs and render ``<NA>`` (a rule is never disabled for its output).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from garrison.model.runtime import Event
from garrison.runtime.rules.compiler import CompileError, Unsupported, field_getter, field_token

CONTAINER_INFO = "container_id=%container.id container_name=%container.name"
_TOKEN = re.compile(r"%(\()?([a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+)(?:\[([^\]]*)\])?(?(1)\))")

#: Context every alert carries in ``fields`` besides its output's own fields (Falco's "suggested
#: output fields"), so JSON alerts always say which process, container and pod raised them.
CONTEXT_FIELDS: tuple[str, ...] = (
    "evt.type",
    "proc.name",
    "proc.pid",
    "proc.exepath",
    "proc.cmdline",
    "proc.pname",
    "user.name",
    "user.uid",
    "container.id",
    "container.name",
    "container.image.repository",
    "container.image.tag",
    "k8s.ns.name",
    "k8s.pod.name",
)


def render(value: Any) -> str:
    if value is None:
        return "<NA>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, tuple | list):
        return ",".join(render(v) for v in value) if value else "<NA>"
    return str(value)


_GETTERS: dict[str, Callable[[Event], Any] | None] = {}


def getter_for(name: str, arg: str | None) -> Callable[[Event], Any] | None:
    """Compiled getter for a field, or ``None`` for a Falco field our model cannot supply."""
    key = field_token(name, arg)
    if key not in _GETTERS:
        try:
            _GETTERS[key] = field_getter(name, arg)[0]
        except Unsupported as u:
            if u.unknown:
                raise CompileError(
                    f"invalid formatting token %{key}: nonexistent field", "LOAD_ERR_COMPILE_OUTPUT"
                ) from None
            _GETTERS[key] = None
    return _GETTERS[key]


@dataclass(slots=True)
class Formatter:
    parts: list[str | tuple[str, Callable[[Event], Any] | None]]
    fields: list[tuple[str, Callable[[Event], Any] | None]]

    @classmethod
    def compile(cls, fmt: str, *, context: tuple[str, ...] = CONTEXT_FIELDS) -> Formatter:
        fmt = fmt.replace("%container.info", CONTAINER_INFO)
        parts: list[str | tuple[str, Callable[[Event], Any] | None]] = []
        seen: dict[str, Callable[[Event], Any] | None] = {}
        pos = 0
        for m in _TOKEN.finditer(fmt):
            if m.start() > pos:
                parts.append(fmt[pos : m.start()])
            name, arg = m.group(2), m.group(3)
            token = field_token(name, arg)
            g = getter_for(name, arg)
            parts.append((token, g))
            seen.setdefault(token, g)
            pos = m.end()
        if pos < len(fmt):
            parts.append(fmt[pos:])
        for c in context:
            if c not in seen:
                seen[c] = getter_for(c, None)
        return cls(parts, list(seen.items()))

    def format(self, e: Event) -> tuple[str, dict[str, Any]]:
        values: dict[str, Any] = {}
        for token, g in self.fields:
            try:
                values[token] = g(e) if g is not None else None
            except (AttributeError, IndexError, TypeError, ValueError):
                values[token] = None
        out: list[str] = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                out.append(render(values.get(p[0])))
        return "".join(out), {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
