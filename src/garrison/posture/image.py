"""Posture of a built image: its configuration and history checked with the Dockerfile controls.

An image keeps what its Dockerfile did in the config's ``history`` (``created_by`` of every
step, empty-layer steps such as ``USER`` and ``ENV`` included) and the resulting settings in
``config`` (``User``, ``ExposedPorts``, ``Env``, ``Healthcheck``). As Trivy does for
``--image-config-scanners misconfig``, the history is turned back into Dockerfile instructions
and the ``GD-*`` controls run over them; settings the history does not show (an image built by
a tool that writes no history, or edited afterwards) are appended from the config, so ``USER``,
``EXPOSE``, ``ENV`` and ``HEALTHCHECK`` are judged by what the image will really run with.

The spellings of ``created_by`` differ per builder: the classic builder writes
``/bin/sh -c #(nop)  CMD ["x"]`` for metadata and ``/bin/sh -c apt-get ...`` for RUN (with
``|2 A=1 B=2`` in front when build args were set); BuildKit writes ``RUN /bin/sh -c ... #
buildkit``, ``EXPOSE map[22/tcp:{}]`` and ``ENV A=b``; buildah and kaniko write plain
instructions. Results point at the history step (``line`` = 1-based index into ``history``).

Controls about the Dockerfile as a source file rather than the image (base-image reference and
pinning, stage aliases, ``--platform``, build context, ``ADD`` of local files — every base
image is ``ADD file:... in /``) do not apply and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from garrison.model import Artifact
from garrison.posture.model import ControlResult, Location, Subject

#: Dockerfile controls that judge the source file, not the image
NOT_APPLICABLE = frozenset({"GD-003", "GD-006", "GD-007", "GD-025", "GD-027", "GD-033", "GD-034", "GD-041"})

_INSTRUCTIONS = frozenset(
    {
        *("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL"),
        *("MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"),
    }
)
_NOP = re.compile(r"^/bin/sh -c #\(nop\)\s*")
_SHELL_RUN = re.compile(r"^(?:\|\d+(?: \S+=\S*)* )?/bin/(?:ba)?sh -c ")
_BUILDKIT_SUFFIX = re.compile(r"\s*# buildkit$")
_EXPOSE_MAP = re.compile(r"^EXPOSE map\[(.*)\]$")
_SINGLE = frozenset({"CMD", "ENTRYPOINT", "HEALTHCHECK", "USER", "SHELL", "STOPSIGNAL", "WORKDIR"})


@dataclass(frozen=True, slots=True)
class Reconstructed:
    """The Dockerfile text and, per line (0-based), the history index it came from (-1: config)."""

    text: str
    origins: list[int]


def instruction_of(created_by: str) -> str:
    """One history ``created_by`` as a Dockerfile instruction (one logical line)."""
    text = _BUILDKIT_SUFFIX.sub("", created_by.strip())
    nop = _NOP.match(text)
    if nop:
        text = text[nop.end() :].strip()
    else:
        body = text[4:] if text[:4].upper() == "RUN " else text  # BuildKit: RUN |1 V=1 /bin/sh -c ...
        run = _SHELL_RUN.match(body)
        if run:
            text = "RUN " + body[run.end() :]
    word = text.split(None, 1)[0].upper() if text else ""
    if word not in _INSTRUCTIONS:
        text = f"RUN {text}"
    elif word == "EXPOSE":
        ports = _EXPOSE_MAP.match(text)
        if ports:  # BuildKit: EXPOSE map[22/tcp:{} 8080/tcp:{}]
            text = "EXPOSE " + " ".join(p.split(":", 1)[0] for p in ports.group(1).split())
    elif word == "HEALTHCHECK" and "&{" in text:
        # the classic builder prints the Go struct: HEALTHCHECK &{["CMD-SHELL" "curl -f x"] "30s" ...}
        text = "HEALTHCHECK CMD true" if '"NONE"' not in text else "HEALTHCHECK NONE"
    # a logical line: continuation lines keep multi-line RUN scripts together
    return " \\\n".join(text.splitlines()) if "\n" in text else text


def _port(text: str) -> str:
    """``22`` and ``22/tcp`` are the same port."""
    return text.lower() if "/" in text else f"{text}/tcp"


def _config_lines(config: dict[str, Any], seen: dict[str, str]) -> list[str]:
    lines: list[str] = []
    user = config.get("User")
    if isinstance(user, str) and user and seen.get("USER") != user:
        lines.append(f"USER {user}")
    health = config.get("Healthcheck")
    if isinstance(health, dict) and "HEALTHCHECK" not in seen:
        test = health.get("Test")
        if isinstance(test, list) and test and test[0] == "NONE":
            lines.append("HEALTHCHECK NONE")
        elif isinstance(test, list) and test:
            lines.append("HEALTHCHECK CMD " + " ".join(str(t) for t in test[1:]))
    ports = config.get("ExposedPorts")
    if isinstance(ports, dict):
        declared = {_port(p) for p in seen.get("EXPOSE", "").split()}
        missing = [p for p in ports if isinstance(p, str) and _port(p) not in declared]
        if missing:
            lines.append("EXPOSE " + " ".join(sorted(missing)))
    env = config.get("Env")
    if isinstance(env, list):
        for item in env:
            if isinstance(item, str) and "=" in item:
                name = item.split("=", 1)[0]
                if f"{name}=" not in seen.get("ENV", "") and name not in ("PATH", "HOME", "HOSTNAME", "TERM"):
                    lines.append(f"ENV {item}")
    return lines


def reconstruct(artifact: Artifact) -> Reconstructed:
    """Dockerfile instructions for ``artifact``'s history plus what only its config shows."""
    steps: list[tuple[int, str]] = []
    for i, entry in enumerate(artifact.history):
        created_by = entry.get("created_by")
        if isinstance(created_by, str) and created_by.strip():
            steps.append((i, instruction_of(created_by)))
    # the engine keeps only the last CMD/ENTRYPOINT/HEALTHCHECK/USER...: so do we (a base image's
    # CMD overridden by the application's is not "two CMDs")
    last: dict[str, int] = {}
    for pos, (_, line) in enumerate(steps):
        word = line.split(None, 1)[0].upper()
        if word in _SINGLE:
            last[word] = pos
    kept = [
        (i, line)
        for pos, (i, line) in enumerate(steps)
        if (word := line.split(None, 1)[0].upper()) not in _SINGLE or last[word] == pos
    ]
    seen: dict[str, str] = {}
    for _, line in kept:
        word, _, rest = line.partition(" ")
        seen[word.upper()] = seen.get(word.upper(), "") + " " + rest if word.upper() in ("EXPOSE", "ENV") else rest
    lines = ["FROM scratch"]
    origins = [-1]
    for i, line in kept:
        lines.append(line)
        origins.extend([i] * (line.count("\n") + 1))
    extra = _config_lines(artifact.config, seen)
    lines += extra
    origins += [-1] * len(extra)
    return Reconstructed("\n".join(lines) + "\n", origins)


def check_image(
    artifact: Artifact, *, only: set[str] | None = None, skip: set[str] | None = None
) -> list[ControlResult]:
    """Run the applicable Dockerfile controls over ``artifact``'s history and config."""
    from garrison.posture.dockerfile.controls import check_dockerfile
    from garrison.posture.dockerfile.parser import parse

    rebuilt = reconstruct(artifact)
    df = parse(rebuilt.text, name=artifact.name)
    results = check_dockerfile(df, only=only, skip=(skip or set()) | (NOT_APPLICABLE - (only or set())))
    subject = Subject(kind="Image", name=artifact.name, location=Location(artifact.name, 0, 0))
    out: list[ControlResult] = []
    for r in results:
        line = r.location.line
        origin = rebuilt.origins[line - 1] if 0 < line <= len(rebuilt.origins) else -1
        details = dict(r.details)
        if origin >= 0:
            details["history_index"] = origin
            details["created_by"] = str(artifact.history[origin].get("created_by", ""))
        elif line > 1:
            details["source"] = "image config"
        where = Location(artifact.name, origin + 1, origin + 1) if origin >= 0 else subject.location
        out.append(replace(r, subject=subject, location=where, details=details))
    return out
