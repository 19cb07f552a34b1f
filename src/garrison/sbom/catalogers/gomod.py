"""Go modules declared in ``go.mod`` (source trees only, like Trivy's ``gomod`` analyzer).

Hand-written because the format's only reference parser is Go's ``golang.org/x/mod/modfile``;
this one follows its lexical rules (``//`` comments, quoted tokens, ``verb ( ... )`` blocks)
for the directives that matter here: ``require`` (``// indirect`` marks indirect ones) and
``replace``. Other directives are skipped. Since Go 1.17, ``go.mod`` lists every module the
build needs, so ``go.sum`` is not read.

Replacements are applied as for Go binaries: a replacement module with a version is reported
under its own path and version; a local-directory replacement keeps the required module and
version and is recorded in the metadata. The main module itself has no version and is not
reported.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.gobinary import go_unquote, split_module_path
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

logger = logging.getLogger(__name__)

_MAX_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Require:
    path: str
    version: str
    indirect: bool


@dataclass(frozen=True, slots=True)
class Replace:
    old_path: str
    old_version: str  # "" applies to every version
    new_path: str
    new_version: str  # "" for a local directory


@dataclass(slots=True)
class GoMod:
    module: str = ""
    go: str = ""
    requires: list[Require] | None = None
    replaces: list[Replace] | None = None


def _tokens(text: str, line_no: int) -> list[str]:
    """Split a go.mod line (comment already removed) into tokens, unquoting quoted ones."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r":
            i += 1
            continue
        if c in '"`':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if c == '"' and text[j] == "\\" else 1
            if j >= n:
                raise ValueError(f"line {line_no}: unterminated quoted string")
            out.append(go_unquote(text[i : j + 1]))
            i = j + 1
            continue
        if c in "()":
            out.append(c)
            i += 1
            continue
        j = i
        while j < n and text[j] not in ' \t\r"`()':
            j += 1
        out.append(text[i:j])
        i = j
    return out


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment text) of one line; ``//`` inside a quoted token is not a comment."""
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in '"`':
            quote = c
        elif line.startswith("//", i):
            return line[:i], line[i + 2 :].strip()
        i += 1
    return line, ""


def _is_indirect(comment: str) -> bool:
    return comment == "indirect" or comment.startswith("indirect;")


def _directive(mod: GoMod, verb: str, args: list[str], comment: str, line_no: int) -> None:
    assert mod.requires is not None and mod.replaces is not None
    if verb == "module":
        if len(args) != 1:
            raise ValueError(f"line {line_no}: usage: module module/path")
        mod.module = args[0]
    elif verb == "go":
        if len(args) != 1:
            raise ValueError(f"line {line_no}: usage: go 1.23")
        mod.go = args[0]
    elif verb == "require":
        if len(args) != 2:
            raise ValueError(f"line {line_no}: usage: require module/path v1.2.3")
        mod.requires.append(Require(args[0], args[1], _is_indirect(comment)))
    elif verb == "replace":
        if "=>" not in args:
            raise ValueError(f"line {line_no}: replace without =>")
        arrow = args.index("=>")
        old, new = args[:arrow], args[arrow + 1 :]
        if len(old) not in (1, 2) or len(new) not in (1, 2):
            raise ValueError(f"line {line_no}: usage: replace module/path [v1.2.3] => other/module v1.4")
        new_version = new[1] if len(new) == 2 else ""
        mod.replaces.append(Replace(old[0], old[1] if len(old) == 2 else "", new[0], new_version))
    else:
        logger.debug("go.mod line %d: %s directive skipped", line_no, verb)


def parse_gomod(text: str) -> GoMod:
    """Parse go.mod text; raises ``ValueError`` naming the line on malformed input."""
    mod = GoMod(requires=[], replaces=[])
    block: str | None = None
    for line_no, raw in enumerate(text.split("\n"), start=1):
        code, comment = _split_comment(raw)
        toks = _tokens(code, line_no)
        if not toks:
            continue
        if block is not None:
            if toks == [")"]:
                block = None
                continue
            if "(" in toks or ")" in toks:
                raise ValueError(f"line {line_no}: unexpected parenthesis in {block} block")
            _directive(mod, block, toks, comment, line_no)
            continue
        verb, args = toks[0], toks[1:]
        if verb in ("(", ")"):
            raise ValueError(f"line {line_no}: unexpected {verb!r}")
        if args == ["("]:
            block = verb
            continue
        if args[-1:] == ["("] or ")" in args or "(" in args:
            raise ValueError(f"line {line_no}: unexpected parenthesis")
        _directive(mod, verb, args, comment, line_no)
    if block is not None:
        raise ValueError(f"unterminated {block} block")
    return mod


def _is_local(path: str) -> bool:
    return path.startswith(("./", "../", "/")) or path in (".", "..") or posixpath.isabs(path)


def packages_from_gomod(mod: GoMod) -> list[Package]:
    assert mod.requires is not None and mod.replaces is not None
    out: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for req in mod.requires:
        path, version = req.path, req.version
        meta: dict[str, Any] = {"indirect": True} if req.indirect else {}
        for rep in mod.replaces:
            if rep.old_path != req.path or (rep.old_version and rep.old_version != req.version):
                continue
            meta["replacement"] = {"path": rep.new_path, "version": rep.new_version}
            if rep.new_version and not _is_local(rep.new_path):
                meta["replaced"] = {"path": req.path, "version": req.version}
                path, version = rep.new_path, rep.new_version
        if (path, version) in seen:
            continue
        seen.add((path, version))
        namespace, name = split_module_path(path)
        out.append(Package(name=name, version=version, type="golang", namespace=namespace, metadata=meta))
    return out


@cataloger
class GoModCataloger(Cataloger):
    """``go.mod`` requirements in source trees."""

    name = "gomod"
    version = 1
    modes = frozenset({"fs"})
    max_size = _MAX_SIZE
    suffixes = ("/go.mod",)

    def required(self, path: str, info: FileInfo) -> bool:
        return posixpath.basename(path) == "go.mod" and info.size <= self.max_size

    def catalog(self, inp: CatalogInput) -> list[Package]:
        try:
            text = inp.read().decode("utf-8")
        except UnicodeDecodeError:
            raise CatalogError("go.mod is not UTF-8", input_name=inp.path) from None
        try:
            mod = parse_gomod(text)
        except ValueError as err:
            raise CatalogError(f"malformed go.mod: {err}", input_name=inp.path) from None
        return packages_from_gomod(mod)
