"""A Dockerfile parser that follows BuildKit's ``frontend/dockerfile/parser`` and ``instructions``.

It is hand-written because no maintained Python library implements the current grammar:
``dockerfile-parse`` predates heredocs, ``# check=`` and comments inside continuations, and
BuildKit itself is Go. Behaviour mirrors upstream:

* Parser directives (``# syntax=``, ``# escape=``, ``# check=``) are read only from the leading
  comment block; the first blank line, other comment or instruction ends it. A repeated
  directive or an ``escape`` other than ``\\`` or a backtick is an error.
* A line ending with the escape character (optionally followed by blanks) continues on the next
  line; comment lines and blank lines inside a continuation are dropped; the parts are joined
  without a separator, as BuildKit does.
* ``RUN``, ``COPY`` and ``ADD`` may carry heredocs (``<<EOF``, ``<<-EOF`` strips leading tabs
  from the body and terminator, ``<<'EOF'``/``<<"EOF"`` disable expansion); a missing
  terminator is an error.
* Instruction names are case-insensitive; leading ``--flag[=value]`` words are builder flags
  (repeatable, such as ``--mount``); ``RUN``/``CMD``/``ENTRYPOINT``/``SHELL``/``COPY``/``ADD``/
  ``VOLUME`` accept the JSON (exec) form when the arguments are a JSON array of strings.
* ``ARG`` before the first ``FROM`` declares build-wide defaults used to expand ``FROM``;
  every instruction records the ``ARG``/``ENV`` values in scope so checks can expand
  ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:+alt}`` and
  ``${VAR+alt}`` like BuildKit's shell lexer (unset variables expand to nothing).

Hard errors (not UTF-8, empty, unterminated heredoc, bad directive) raise :class:`InputError`
naming ``file:line``; recoverable problems (unknown instruction, instruction before ``FROM``,
``ONBUILD`` of a forbidden instruction) become warnings and the instruction is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from garrison.core.errors import InputError, NotFoundError

#: every instruction BuildKit's ``instructions.Parse`` knows
INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
JSON_INSTRUCTIONS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
NOT_IN_ONBUILD = frozenset({"ONBUILD", "FROM", "MAINTAINER"})
DIRECTIVES = frozenset({"syntax", "escape", "check"})
MAX_BYTES = 8 * 1024 * 1024

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)(.*)$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Heredoc:
    name: str
    content: str
    expand: bool = True  # False when the delimiter was quoted
    chomp: bool = False  # ``<<-``: leading tabs stripped
    fd: int | None = None


@dataclass(slots=True)
class Instruction:
    """One instruction. ``value`` is the text after the flags (continuations joined);
    ``args`` the JSON array for the exec form, else the words BuildKit would split for the
    instruction (one element with the whole command for shell-form ``RUN``/``CMD``/...)."""

    cmd: str  # upper case: RUN, COPY, ...
    original: str  # the logical line as written (continuations joined, heredocs excluded)
    value: str
    args: tuple[str, ...]
    start_line: int
    end_line: int
    json_form: bool = False
    flags: dict[str, list[str]] = field(default_factory=dict)
    heredocs: tuple[Heredoc, ...] = ()
    pairs: tuple[tuple[str, str | None], ...] = ()  # ENV / ARG / LABEL name=value pairs
    comments: tuple[tuple[int, str], ...] = ()  # (line, text) of the comment block just before
    stage: int = -1  # index of the stage; -1 before the first FROM
    env: dict[str, str] = field(default_factory=dict)  # ARG/ENV values in scope (before this one)
    sub: Instruction | None = None  # the instruction an ONBUILD wraps

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None

    def expand(self, text: str) -> str:
        return expand(text, self.env)

    @property
    def shell_text(self) -> str:
        """What a shell-form ``RUN`` executes: the command plus heredoc bodies that the shell reads
        as its script (``RUN <<EOF`` or ``RUN bash <<EOF``)."""
        if self.json_form:
            return " ".join(self.args)
        text = self.value
        words = self.value.split()
        for doc in self.heredocs:
            if not words or words[0].startswith("<<") or words[0] in ("sh", "bash", "/bin/sh", "/bin/bash", "ash"):
                text += "\n" + doc.content
        return text


@dataclass(slots=True)
class Stage:
    index: int
    name: str  # the ``AS`` alias as written ("" when none)
    base: str  # the base image with build args expanded
    base_raw: str
    platform: str | None
    from_instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name or f"stage {self.index}"


@dataclass(slots=True)
class Dockerfile:
    path: str
    instructions: list[Instruction]
    stages: list[Stage]
    directives: dict[str, str]
    escape: str
    meta_args: dict[str, str | None]
    lines: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def final_stage(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def stage_by_name(self, name: str) -> Stage | None:
        for st in self.stages:
            if st.name and st.name.lower() == name.lower():
                return st
        return None


# --- words, quotes and expansion ------------------------------------------------------------


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes in the words (BuildKit's
    ``parseWords`` for ``ENV``/``LABEL`` and heredoc detection). Unterminated quotes run to the end."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            cur.append(ch)
            if ch == escape and quote == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in " \t\r\n":
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
            if ch in "\"'":
                quote = ch
            elif ch == escape and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
        i += 1
    if cur:
        words.append("".join(cur))
    return words


def unquote(word: str, escape: str = "\\") -> str:
    """Remove shell quotes and escapes from one word (no expansion)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(word):
        ch = word[i]
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                out.append(ch)
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch == escape and i + 1 < len(word) and word[i + 1] in ('"', escape, "$"):
                out.append(word[i + 1])
                i += 1
            else:
                out.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch == escape and i + 1 < len(word):
            out.append(word[i + 1])
            i += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand ``$VAR`` and ``${VAR...}`` forms outside single quotes; quotes are kept."""
    out: list[str] = []
    i = 0
    in_single = False
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            in_single = not in_single
            out.append(ch)
        elif ch == escape and i + 1 < n and not in_single:
            out.append(ch + text[i + 1])
            i += 1
        elif ch == "$" and not in_single and i + 1 < n:
            if text[i + 1] == "{":
                close = _matching_brace(text, i + 1)
                if close < 0:
                    out.append(text[i:])
                    break
                out.append(_expand_braced(text[i + 2 : close], env, escape))
                i = close
            else:
                m = _NAME.match(text, i + 1)
                if m:
                    out.append(env.get(m.group(0), ""))
                    i = m.end() - 1
                else:
                    out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _matching_brace(text: str, open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _expand_braced(inner: str, env: Mapping[str, str], escape: str) -> str:
    m = _NAME.match(inner)
    if not m:
        return "${" + inner + "}"
    name, rest = m.group(0), inner[m.end() :]
    value = env.get(name)
    if not rest:
        return value or ""
    for op in (":-", ":+", ":?", "-", "+", "?"):
        if rest.startswith(op):
            word = expand(rest[len(op) :], env, escape)
            colon = op.startswith(":")
            is_set = value is not None and (value != "" or not colon)
            if op.endswith("-"):
                return value if is_set and value is not None else word
            if op.endswith("+"):
                return word if is_set else ""
            return value or ""
    return value or ""  # pattern forms (#, %, /) are not evaluated


# --- the parser -----------------------------------------------------------------------------


def parse_file(path: str | Path) -> Dockerfile:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"Dockerfile larger than {MAX_BYTES} bytes", input_name=str(p))
        data = p.read_bytes()
    except FileNotFoundError:
        raise NotFoundError("no such file", input_name=str(p)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a Dockerfile", input_name=str(p)) from None
    except OSError as err:
        raise InputError(f"cannot read: {err.strerror or err}", input_name=str(p)) from None
    return parse(data, str(p))


def parse(source: str | bytes, name: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile. Raises :class:`InputError` for input BuildKit would reject outright."""
    if isinstance(source, bytes):
        if len(source) > MAX_BYTES:
            raise InputError(f"Dockerfile larger than {MAX_BYTES} bytes", input_name=name)
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as err:
            line = source[: err.start].count(b"\n") + 1
            raise InputError("not UTF-8 text", input_name=f"{name}:{line}") from None
    else:
        text = source
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError("NUL byte in Dockerfile (binary file?)", input_name=f"{name}:{line}")
    return _Parser(text, name).run()


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
        self.escape = "\\"
        self.directives: dict[str, str] = {}
        self.warnings: list[str] = []
        self.directives_done = False
        self.cont: re.Pattern[str] = re.compile(r"\\[ \t]*$")

    def _where(self, line: int) -> str:
        return f"{self.name}:{line}"

    def _directive(self, line: str, lineno: int) -> None:
        if self.directives_done:
            return
        m = _DIRECTIVE.match(line)
        if not m or m.group(1).lower() not in DIRECTIVES:
            self.directives_done = True
            return
        key, value = m.group(1).lower(), m.group(2)
        if key in self.directives:
            raise InputError(f"only one {key} parser directive can be used", input_name=self._where(lineno))
        if key == "escape":
            if value not in ("\\", "`"):
                raise InputError(f"invalid escape token {value!r} does not validate", input_name=self._where(lineno))
            self.escape = value
            self.cont = re.compile(re.escape(value) + r"[ \t]*$")
        self.directives[key] = value

    def _trim_cont(self, line: str) -> tuple[str, bool]:
        m = self.cont.search(line)
        if m:
            return line[: m.start()], False
        return line, True

    def run(self) -> Dockerfile:
        lines = self.lines
        n = len(lines)
        i = 0
        comments: list[tuple[int, str]] = []
        instructions: list[Instruction] = []
        while i < n:
            raw = lines[i]
            lineno = i + 1
            i += 1
            stripped = raw.lstrip(" \t")
            self._directive(stripped.rstrip(), lineno)
            if stripped.startswith("#"):
                comment = stripped[1:].strip()
                comments = [*comments, (lineno, comment)] if comment else []
                continue
            if not stripped.strip():
                continue
            body, ended = self._trim_cont(stripped)
            parts = [body]
            while not ended and i < n:
                nxt = lines[i]
                i += 1
                if nxt.lstrip(" \t").startswith("#") or not nxt.strip():
                    continue
                body, ended = self._trim_cont(nxt)
                parts.append(body)
            logical = "".join(parts)
            if not logical.strip():
                continue
            end = i
            ins = self._instruction(logical, lineno, end, tuple(comments))
            comments = []
            if ins is None:
                continue
            if ins.cmd in HEREDOC_INSTRUCTIONS and "<<" in ins.value and not ins.json_form:
                i = self._heredocs(ins, i)
            instructions.append(ins)
        if not instructions:
            raise InputError("file with no instructions", input_name=self.name)
        return self._stages(instructions)

    def _instruction(
        self, logical: str, start: int, end: int, comments: tuple[tuple[int, str], ...], *, onbuild: bool = False
    ) -> Instruction | None:
        text = logical.strip()
        head, _, rest = text.partition(" ")
        if "\t" in head:
            head, _, more = head.partition("\t")
            rest = more + " " + rest
        cmd = head.upper()
        rest = rest.strip()
        if cmd not in INSTRUCTIONS:
            self.warnings.append(f"{self._where(start)}: unknown instruction {head[:40]!r}; ignored")
            return None
        flags, value = _extract_flags(rest, self.escape)
        ins = Instruction(
            cmd=cmd, original=text, value=value, args=(), start_line=start, end_line=end, flags=flags, comments=comments
        )
        if cmd in JSON_INSTRUCTIONS and value.startswith("["):
            try:
                arr = json.loads(value)
            except ValueError:
                arr = None
            if isinstance(arr, list) and all(isinstance(a, str) for a in arr):
                ins.json_form = True
                ins.args = tuple(arr)
        if not ins.json_form:
            if cmd in ("ENV", "LABEL", "ARG"):
                ins.pairs = _pairs(cmd, value, self.escape)
                ins.args = tuple(k if v is None else f"{k}={v}" for k, v in ins.pairs)
            elif cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "ONBUILD", "MAINTAINER", "HEALTHCHECK"):
                ins.args = (value,) if value else ()
            else:
                ins.args = tuple(split_words(value, self.escape))
        if cmd == "ONBUILD":
            if onbuild:
                self.warnings.append(f"{self._where(start)}: chaining ONBUILD via ONBUILD ONBUILD isn't allowed")
                return None
            sub = self._instruction(value, start, end, (), onbuild=True)
            if sub is not None and sub.cmd in NOT_IN_ONBUILD:
                self.warnings.append(f"{self._where(start)}: {sub.cmd} isn't allowed as an ONBUILD trigger")
                sub = None
            ins.sub = sub
        if cmd in ("FROM", "USER", "WORKDIR", "EXPOSE", "STOPSIGNAL", "MAINTAINER") and not value:
            self.warnings.append(f"{self._where(start)}: {cmd} requires at least one argument")
        return ins

    def _heredocs(self, ins: Instruction, i: int) -> int:
        docs: list[Heredoc] = []
        for word in split_words(ins.value, self.escape):
            m = _HEREDOC.match(word)
            if not m or not m.group(3):
                continue
            raw_name = m.group(3)
            name = unquote(raw_name, self.escape)
            if not name or any(c in name for c in " \t<>|&;"):
                continue
            chomp = m.group(2) == "-"
            body: list[str] = []
            terminated = False
            while i < len(self.lines):
                line = self.lines[i]
                i += 1
                candidate = line.lstrip("\t") if chomp else line
                if candidate == name:
                    terminated = True
                    break
                body.append(line.lstrip("\t") if chomp else line)
            if not terminated:
                raise InputError(f"unterminated heredoc {name!r}", input_name=self._where(ins.start_line))
            docs.append(
                Heredoc(
                    name=name,
                    content="".join(b + "\n" for b in body),
                    expand=raw_name == name,
                    chomp=chomp,
                    fd=int(m.group(1)) if m.group(1) else None,
                )
            )
        ins.heredocs = tuple(docs)
        ins.end_line = i
        return i

    def _stages(self, instructions: list[Instruction]) -> Dockerfile:
        meta: dict[str, str | None] = {}
        stages: list[Stage] = []
        env: dict[str, str] = {}
        kept: list[Instruction] = []
        for ins in instructions:
            if ins.cmd == "FROM":
                meta_env = {k: v for k, v in meta.items() if v is not None}
                words = list(ins.args)
                raw = words[0] if words else ""
                alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
                if len(words) not in (1, 3) or (len(words) == 3 and not alias):
                    self.warnings.append(f"{self._where(ins.start_line)}: FROM requires either one or three arguments")
                platform = ins.flag("platform")
                base = expand(raw, meta_env, self.escape)
                parent = next((s for s in stages if s.name and s.name.lower() == base.lower()), None)
                env = dict(parent.instructions[-1].env) if parent and parent.instructions else {}
                if parent and parent.instructions:
                    _apply(parent.instructions[-1], env, meta)
                ins.env = dict(meta_env)
                ins.stage = len(stages)
                stages.append(Stage(len(stages), alias, base, raw, platform, ins, [ins]))
                kept.append(ins)
                continue
            if not stages:
                if ins.cmd == "ARG":
                    ins.env = {k: v for k, v in meta.items() if v is not None}
                    for k, v in ins.pairs:
                        meta[k] = None if v is None else unquote(expand(v, ins.env, self.escape), self.escape)
                    kept.append(ins)
                else:
                    self.warnings.append(
                        f"{self._where(ins.start_line)}: {ins.cmd} before the first FROM (no build stage); ignored"
                    )
                continue
            ins.stage = len(stages) - 1
            ins.env = dict(env)
            _apply(ins, env, meta)
            stages[-1].instructions.append(ins)
            kept.append(ins)
        return Dockerfile(
            path=self.name,
            instructions=kept,
            stages=stages,
            directives=self.directives,
            escape=self.escape,
            meta_args=meta,
            lines=self.lines,
            warnings=self.warnings,
        )


def _apply(ins: Instruction, env: dict[str, str], meta: Mapping[str, str | None]) -> None:
    """Update the in-scope variables after ``ins`` (ENV sets; ARG sets its default or the global one)."""
    if ins.cmd == "ENV":
        for k, v in ins.pairs:
            env[k] = unquote(expand(v or "", ins.env))
    elif ins.cmd == "ARG":
        for k, v in ins.pairs:
            if v is not None:
                env[k] = unquote(expand(v, ins.env))
            elif meta.get(k) is not None:
                env[k] = str(meta[k])


def _extract_flags(rest: str, escape: str) -> tuple[dict[str, list[str]], str]:
    flags: dict[str, list[str]] = {}
    text = rest
    while text.startswith("--"):
        words = split_words(text, escape)
        if not words:
            break
        word = words[0]
        if word == "--":
            text = text[2:].lstrip()
            break
        key, eq, val = word[2:].partition("=")
        if not key or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", key):
            break
        flags.setdefault(key.lower(), []).append(unquote(val, escape) if eq else "true")
        text = text[_word_end(text, escape) :].lstrip()
    return flags, text


def _word_end(text: str, escape: str) -> int:
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote == '"':
                i += 1
        elif ch in " \t":
            return i
        elif ch in "\"'":
            quote = ch
        elif ch == escape:
            i += 1
        i += 1
    return len(text)


def _pairs(cmd: str, value: str, escape: str) -> tuple[tuple[str, str | None], ...]:
    words = split_words(value, escape)
    if not words:
        return ()
    if cmd == "ARG":
        out: list[tuple[str, str | None]] = []
        for w in words:
            k, eq, v = w.partition("=")
            out.append((k, v if eq else None))
        # ``ARG NAME value`` is not valid BuildKit syntax but occurs in the wild; keep the name
        if len(words) == 2 and "=" not in words[0] and "=" not in words[1]:
            return ((words[0], words[1]),)
        return tuple(out)
    if "=" not in words[0]:
        # legacy ``ENV key value with spaces``: the rest of the line is the value
        key = words[0]
        return ((key, value[len(key) :].strip()),)
    out2: list[tuple[str, str | None]] = []
    for w in words:
        k, _, v = w.partition("=")
        out2.append((k, v))
    return tuple(out2)
