"""Split the shell text of a ``RUN`` into pipelines of simple commands for the checks.

Tokenising uses :mod:`shlex` (POSIX mode with punctuation characters), which handles quotes,
escapes and the ``;``/``&&``/``||``/``|`` operators; an unbalanced quote falls back to splitting
on blanks. Leading ``VAR=value`` assignments and wrappers (``sudo``, ``env``, ``nohup``, ``time``,
``exec``, ``command``) are peeled off so ``argv[0]`` is the program that runs. This is not a
shell interpreter: subshells, functions and control flow are flattened into their commands.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from garrison.posture.dockerfile.parser import unquote

_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SEPARATORS = frozenset({";", "&&", "||", "&", ";;", "(", ")", "{", "}"})
_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case", "esac", "!"})
_WRAPPERS = frozenset({"env", "nohup", "time", "exec", "command", "xargs", "nice", "stdbuf"})
_SUDO_OPTS_WITH_ARG = frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-R", "-T", "-U"})


@dataclass(slots=True)
class Command:
    argv: list[str]
    assigns: list[tuple[str, str]] = field(default_factory=list)
    sudo: bool = False
    words: list[str] = field(default_factory=list)  # every word as written, wrappers included

    @property
    def prog(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else ""

    def has(self, *options: str) -> bool:
        """Whether any of the options occurs (``-y`` also matches bundled short flags like ``-qy``)."""
        for word in self.argv[1:]:
            for opt in options:
                if word == opt or (opt.startswith("--") and word.startswith(opt + "=")):
                    return True
                short = len(opt) == 2 and opt[0] == "-" and opt[1] != "-"
                if short and re.fullmatch(r"-[A-Za-z]+", word) and opt[1] in word[1:]:
                    return True
        return False

    def positional(self, after: int = 1) -> list[str]:
        return [w for w in self.argv[after:] if not w.startswith("-")]


def _tokens(text: str) -> list[str]:
    text = re.sub(r"\\\r?\n", " ", text)
    text = text.replace("\n", " ; ")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: a shell would reject it; take the words one by one
        return [unquote(w) for w in text.split()]


def pipelines(text: str) -> list[list[Command]]:
    """The pipelines of ``text``; each is the list of its commands in order."""
    result: list[list[Command]] = []
    pipe: list[Command] = []
    words: list[str] = []
    redirect = False

    def flush_command() -> None:
        nonlocal words
        if words:
            pipe.append(_command(words))
        words = []

    def flush_pipe() -> None:
        nonlocal pipe
        flush_command()
        if pipe:
            result.append(pipe)
        pipe = []

    for tok in _tokens(text):
        if redirect:
            redirect = False
            continue
        if tok in ("|", "|&"):
            flush_command()
        elif tok in _SEPARATORS or set(tok) <= set(";&()"):
            flush_pipe()
        elif set(tok) <= set("<>&") or re.fullmatch(r"\d*[<>]+&?", tok):
            redirect = True  # the next word is the redirection target
        elif not words and tok in _KEYWORDS:
            continue
        else:
            words.append(tok)
    flush_pipe()
    return result


def commands(text: str) -> list[Command]:
    return [cmd for pipe in pipelines(text) for cmd in pipe]


def _command(words: list[str]) -> Command:
    cmd = Command(argv=[], words=list(words))
    i = 0
    while i < len(words):
        w = words[i]
        if _ASSIGN.match(w) and not cmd.argv:
            name, _, value = w.partition("=")
            cmd.assigns.append((name, value))
            i += 1
            continue
        base = w.rsplit("/", 1)[-1]
        if base == "sudo":
            cmd.sudo = True
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 2 if words[i] in _SUDO_OPTS_WITH_ARG else 1
            continue
        if base in _WRAPPERS:
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 1
            continue
        cmd.argv = words[i:]
        break
    return cmd
