"""The Dockerfile control family (``GD-001``...): one function per control, metadata in
``controls.yaml``.

Each check yields :class:`Hit` objects (the failing instruction, or ``None`` for a finding about
the whole file, and a one-line message). :func:`check_dockerfile` turns them into
:class:`~garrison.posture.model.ControlResult` values: one ``fail`` per hit, or a single
``pass`` when a control has none. A hit is turned into ``skip`` when the comment block right
before its instruction (for whole-file hits: any comment) says ``# garrison:ignore=GD-001 reason``
or ``# checkov:skip=CKV_DOCKER_3:reason`` for a checkov id mapped to the control.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import ConfigError
from garrison.model import Severity
from garrison.posture.dockerfile.parser import Dockerfile, Instruction, Stage, unquote
from garrison.posture.dockerfile.shell import Command, commands, pipelines
from garrison.posture.model import Control, ControlResult, Location, Subject, Verdict

FAMILY = "dockerfile"


@dataclass(frozen=True, slots=True)
class Hit:
    instruction: Instruction | None
    message: str


@dataclass(frozen=True, slots=True)
class Context:
    """What a check may need beyond the Dockerfile: the build context directory (for .dockerignore)."""

    context_dir: Path | None = None


CheckFn = Callable[[Dockerfile, Context], Iterator[Hit]]
_CHECKS: dict[str, CheckFn] = {}


def check(control_id: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        _CHECKS[control_id] = fn
        return fn

    return register


@cache
def load_controls() -> dict[str, Control]:
    """The controls' metadata from ``controls.yaml``, keyed by id."""
    text = resources.files(__package__).joinpath("controls.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    out: dict[str, Control] = {}
    for cid, raw in doc["controls"].items():
        out[cid] = Control(
            id=cid,
            title=raw["title"],
            severity=Severity[raw["severity"]],
            family=doc.get("family", FAMILY),
            description=raw.get("description", ""),
            rationale=raw.get("rationale", ""),
            remediation=raw.get("remediation", ""),
            frameworks={k: tuple(str(x) for x in v) for k, v in (raw.get("frameworks") or {}).items()},
            references={k: tuple(str(x) for x in v) for k, v in (raw.get("references") or {}).items()},
        )
    return out


def checkov_map() -> dict[str, tuple[str, ...]]:
    """checkov id -> our control ids with the same intent (from the ``references`` in the YAML)."""
    out: dict[str, list[str]] = {}
    for cid, ctl in load_controls().items():
        for ck in ctl.references.get("checkov", ()):
            out.setdefault(ck, []).append(cid)
    return {k: tuple(v) for k, v in out.items()}


# --- suppressions ---------------------------------------------------------------------------

_IGNORE = re.compile(r"garrison:ignore=([A-Za-z0-9_,-]+)\s*(.*)")
_CHECKOV_SKIP = re.compile(r"checkov:skip=([A-Za-z0-9_]+)(?::?\s*(.*))?")


def _suppressions(comments: tuple[tuple[int, str], ...]) -> dict[str, str]:
    """Control id -> reason for the ids the comments suppress."""
    out: dict[str, str] = {}
    ck = checkov_map()
    for _line, text in comments:
        m = _IGNORE.search(text)
        if m:
            for cid in m.group(1).split(","):
                if cid.strip():
                    out[cid.strip().upper()] = m.group(2).strip()
        m = _CHECKOV_SKIP.search(text)
        if m:
            for cid in ck.get(m.group(1).upper(), ()):
                out[cid] = (m.group(2) or "").strip()
    return out


def _all_comments(df: Dockerfile) -> tuple[tuple[int, str], ...]:
    out = []
    for i, line in enumerate(df.lines, 1):
        s = line.strip()
        if s.startswith("#"):
            out.append((i, s[1:].strip()))
    return tuple(out)


# --- running --------------------------------------------------------------------------------


def check_dockerfile(
    df: Dockerfile,
    *,
    context_dir: Path | None = None,
    only: set[str] | None = None,
    skip: set[str] | None = None,
) -> list[ControlResult]:
    """Run every control (or ``only`` those, minus ``skip``) on ``df``."""
    controls = load_controls()
    unknown = ((only or set()) | (skip or set())) - set(controls)
    if unknown:
        raise ConfigError(f"unknown Dockerfile control(s): {', '.join(sorted(unknown))}")
    ctx = Context(context_dir=context_dir)
    last = len(df.lines) - 1 if df.lines and df.lines[-1] == "" else len(df.lines)
    subject = Subject(kind="Dockerfile", name=df.path, location=Location(df.path, 1, max(last, 1)))
    file_supp = _suppressions(_all_comments(df))
    results: list[ControlResult] = []
    for cid in sorted(controls):
        if (only and cid not in only) or (skip and cid in skip):
            continue
        control = controls[cid]
        hits = list(_CHECKS[cid](df, ctx))
        if not hits:
            results.append(ControlResult(control, subject, Verdict.PASS, location=subject.location))
            continue
        for hit in hits:
            ins = hit.instruction
            loc = Location(df.path, ins.start_line, ins.end_line) if ins else subject.location
            details: dict[str, Any] = {}
            if ins is not None:
                details["instruction"] = ins.cmd
                if 0 <= ins.stage < len(df.stages):
                    details["stage"] = df.stages[ins.stage].label
            supp = _suppressions(ins.comments) if ins else file_supp
            if cid in supp:
                reason = supp[cid] or "no reason given"
                results.append(ControlResult(control, subject, Verdict.SKIP, f"suppressed: {reason}", (), loc, details))
            else:
                results.append(ControlResult(control, subject, Verdict.FAIL, hit.message, (), loc, details))
    return results


# --- helpers --------------------------------------------------------------------------------


def _runs(df: Dockerfile) -> Iterator[tuple[Instruction, list[Command]]]:
    """Every RUN (ONBUILD RUN included) with its simple commands."""
    for ins in df.instructions:
        target = ins.sub if ins.cmd == "ONBUILD" and ins.sub is not None else ins
        if target.cmd == "RUN":
            yield ins, commands(target.shell_text)


def _prog_is(cmd: Command, *names: str) -> bool:
    return cmd.prog in names


def _subcommand(cmd: Command) -> str:
    pos = cmd.positional()
    return pos[0] if pos else ""


def _is_stage_ref(df: Dockerfile, stage: Stage) -> bool:
    return any(s.name and s.name.lower() == stage.base.lower() for s in df.stages[: stage.index])


def _inherited(df: Dockerfile, stage: Stage) -> list[Instruction]:
    """The instructions of ``stage`` preceded by those of the stages it is built FROM."""
    chain: list[Instruction] = []
    seen = set()
    current: Stage | None = stage
    while current is not None and current.index not in seen:
        seen.add(current.index)
        chain = current.instructions + chain
        base = current.base.lower()
        current = next((s for s in df.stages[: current.index] if s.name and s.name.lower() == base), None)
    return chain


def _image_parts(ref: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        tag = last.rsplit(":", 1)[1]
        name = name[: len(name) - len(tag) - 1]
    return name, tag, digest


def _cache_mount(ins: Instruction, *targets: str) -> bool:
    for mount in ins.flags.get("mount", []):
        opts = dict(p.partition("=")[::2] for p in mount.split(","))
        if opts.get("type") == "cache" and any(
            opts.get("target", opts.get("dst", opts.get("destination", ""))).startswith(t) for t in targets
        ):
            return True
    return False


# --- the controls ---------------------------------------------------------------------------


@check("GD-001")
def _no_user(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    final = df.final_stage
    if final is None:
        return
    if not any(i.cmd == "USER" for i in _inherited(df, final)):
        yield Hit(None, f"the final stage ({final.label}) has no USER instruction, so it runs as root")


_ROOT = re.compile(r"^(root|0)(:.*)?$")


@check("GD-002")
def _last_user_root(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    final = df.final_stage
    if final is None:
        return
    users = [i for i in _inherited(df, final) if i.cmd == "USER"]
    if users:
        last = users[-1]
        user = unquote(last.expand(last.value.strip()))
        if _ROOT.match(user):
            yield Hit(last, f"the last USER is {user!r}")


_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst)$", re.IGNORECASE)
_REMOTE = re.compile(r"^(https?://|git@|git://|ssh://)", re.IGNORECASE)


def _sources(ins: Instruction) -> list[str]:
    args = list(ins.args)
    if ins.heredocs:
        return []
    return [unquote(a) for a in args[:-1]]


@check("GD-003")
def _add_local(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd != "ADD":
            continue
        local = [s for s in _sources(ins) if not _REMOTE.match(s) and not _ARCHIVE.search(s)]
        if local or ins.heredocs:
            yield Hit(ins, f"ADD used for local source(s) {', '.join(local) or 'heredoc'}; use COPY")


@check("GD-004")
def _add_remote(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd != "ADD" or ins.flag("checksum"):
            continue
        remote = [s for s in _sources(ins) if re.match(r"^https?://", s, re.IGNORECASE)]
        if remote:
            yield Hit(ins, f"ADD fetches {remote[0]} without --checksum")


_SHELLS = frozenset({"sh", "bash", "zsh", "ash", "dash", "ksh", "python", "python3", "perl", "ruby", "node"})


@check("GD-005")
def _curl_pipe_shell(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, _cmds in _runs(df):
        target = ins.sub or ins
        for pipe in pipelines(target.shell_text):
            progs = [c.prog for c in pipe]
            fetch = next((i for i, p in enumerate(progs) if p in ("curl", "wget")), None)
            if fetch is not None and any(p in _SHELLS for p in progs[fetch + 1 :]):
                yield Hit(
                    ins, f"{progs[fetch]} output piped into {next(p for p in progs[fetch + 1 :] if p in _SHELLS)}"
                )
                break


def _external_bases(df: Dockerfile) -> Iterator[Stage]:
    for st in df.stages:
        if st.base.lower() == "scratch" or _is_stage_ref(df, st) or not st.base or "$" in st.base:
            continue
        yield st


@check("GD-006")
def _latest(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for st in _external_bases(df):
        _name, tag, digest = _image_parts(st.base)
        if digest:
            continue
        if not tag:
            yield Hit(st.from_instruction, f"base image {st.base!r} has no tag (implies latest)")
        elif tag == "latest":
            yield Hit(st.from_instruction, f"base image {st.base!r} uses the latest tag")


@check("GD-007")
def _no_digest(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for st in _external_bases(df):
        if not _image_parts(st.base)[2]:
            yield Hit(st.from_instruction, f"base image {st.base!r} is not pinned by digest")


@check("GD-008")
def _no_healthcheck(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    final = df.final_stage
    if final is None:
        return
    checks = [i for i in _inherited(df, final) if i.cmd == "HEALTHCHECK"]
    if not checks:
        yield Hit(None, f"the final stage ({final.label}) has no HEALTHCHECK")
    elif checks[-1].value.strip().upper() == "NONE":
        yield Hit(checks[-1], "HEALTHCHECK NONE disables the health check")


def _ports(spec: str) -> range | None:
    m = re.fullmatch(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", spec.strip(), re.IGNORECASE)
    if not m:
        return None
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if m.group(3) and m.group(3).lower() != "tcp":
        return None
    return range(lo, hi + 1)


@check("GD-009")
def _expose_22(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd != "EXPOSE":
            continue
        for arg in ins.args:
            r = _ports(unquote(ins.expand(arg)))
            if r is not None and 22 in r:
                yield Hit(ins, f"EXPOSE {arg} exposes the SSH port")
                break


@check("GD-010")
def _maintainer(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd == "MAINTAINER":
            yield Hit(ins, "MAINTAINER is deprecated; use a LABEL")


_PKG_MANAGERS = frozenset({"apt-get", "apt", "apk", "yum", "dnf", "microdnf", "tdnf", "zypper"})
_UPDATE_WORDS = frozenset({"update", "makecache", "refresh", "ref"})
_INSTALL_WORDS = frozenset(
    {"install", "add", "upgrade", "dist-upgrade", "full-upgrade", "reinstall", "groupinstall", "localinstall", "in"}
)


@check("GD-011")
def _update_alone(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        pending: Command | None = None
        for cmd in cmds:
            if cmd.prog not in _PKG_MANAGERS:
                continue
            sub = _subcommand(cmd)
            if sub in _UPDATE_WORDS:
                pending = cmd
            elif sub in _INSTALL_WORDS:
                pending = None
        if pending is not None:
            yield Hit(ins, f"'{' '.join(pending.argv[:2])}' is not followed by an install in the same RUN")


def _installs(cmds: list[Command], progs: tuple[str, ...], subs: tuple[str, ...]) -> Iterator[Command]:
    for cmd in cmds:
        if cmd.prog in progs and _subcommand(cmd) in subs:
            yield cmd


_APT_OPTS_WITH_ARG = frozenset({"-o", "-c", "-t", "--option", "--config-file", "--target-release"})


def _packages(cmd: Command, opts_with_arg: frozenset[str] = _APT_OPTS_WITH_ARG) -> list[str]:
    out: list[str] = []
    words = cmd.argv[1:]
    seen_sub = False
    skip_next = False
    for w in words:
        if skip_next:
            skip_next = False
            continue
        if w.startswith("-"):
            if w in opts_with_arg:
                skip_next = True
            continue
        if not seen_sub:
            seen_sub = True
            continue
        out.append(w)
    return out


@check("GD-012")
def _no_recommends(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in _installs(cmds, ("apt-get",), ("install",)):
            if not cmd.has("--no-install-recommends") and not any(
                "Install-Recommends=false" in w or "Install-Recommends=0" in w for w in cmd.argv
            ):
                yield Hit(ins, "apt-get install without --no-install-recommends")
                break


@check("GD-013")
def _apt_unpinned(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in _installs(cmds, ("apt-get", "apt"), ("install",)):
            bad = [p for p in _packages(cmd) if "=" not in p and not p.endswith(".deb") and "/" not in p]
            if bad:
                yield Hit(ins, f"apt-get install of unpinned package(s): {', '.join(bad[:5])}")
                break


@check("GD-014")
def _interactive(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in cmds:
            sub = _subcommand(cmd)
            if cmd.prog in ("apt-get", "apt") and sub in ("install", "upgrade", "dist-upgrade", "full-upgrade"):
                if not cmd.has("-y", "--yes", "--assume-yes", "-qq") and not any(
                    "Assume-Yes=true" in w for w in cmd.argv
                ):
                    yield Hit(ins, f"{cmd.prog} {sub} without -y")
                    break
            elif cmd.prog in ("yum", "dnf", "microdnf", "tdnf") and sub in ("install", "groupinstall", "localinstall"):
                if not cmd.has("-y", "--assumeyes"):
                    yield Hit(ins, f"{cmd.prog} {sub} without -y")
                    break
            elif (
                cmd.prog == "zypper"
                and sub in ("install", "in")
                and not cmd.has("-n", "--non-interactive", "-y", "--no-confirm")
            ):
                yield Hit(ins, "zypper install without -n")
                break


@check("GD-015")
def _apt_lists(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        if not any(True for _ in _installs(cmds, ("apt-get", "apt"), ("install",))):
            continue
        if _cache_mount(ins, "/var/lib/apt"):
            continue
        cleaned = any(c.prog == "rm" and any(a.startswith("/var/lib/apt/lists") for a in c.argv[1:]) for c in cmds)
        if not cleaned:
            yield Hit(ins, "apt-get install without removing /var/lib/apt/lists/*")


@check("GD-016")
def _apt(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        if any(c.prog == "apt" for c in cmds):
            yield Hit(ins, "apt is meant for interactive use; use apt-get")


@check("GD-017")
def _apk_cache(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        if _cache_mount(ins, "/var/cache/apk", "/etc/apk/cache"):
            continue
        cleaned = any(c.prog == "rm" and any(a.startswith("/var/cache/apk") for a in c.argv[1:]) for c in cmds)
        for cmd in _installs(cmds, ("apk",), ("add",)):
            if not cmd.has("--no-cache") and not cleaned:
                yield Hit(ins, "apk add without --no-cache")
                break


_APK_OPTS_WITH_ARG = frozenset({"-t", "--virtual", "-X", "--repository", "--root", "-p", "--keys-dir", "--arch"})


@check("GD-018")
def _apk_unpinned(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in _installs(cmds, ("apk",), ("add",)):
            bad = [
                p
                for p in _packages(cmd, _APK_OPTS_WITH_ARG)
                if not re.search(r"[=<>~]", p) and not p.endswith(".apk") and not p.startswith(".")
            ]
            if bad:
                yield Hit(ins, f"apk add of unpinned package(s): {', '.join(bad[:5])}")
                break


_RPM_PMS = ("yum", "dnf", "microdnf", "tdnf", "zypper")


@check("GD-019")
def _rpm_cache(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        installs = list(_installs(cmds, _RPM_PMS, ("install", "in", "groupinstall", "localinstall")))
        if not installs or _cache_mount(ins, "/var/cache/yum", "/var/cache/dnf", "/var/cache/zypp"):
            continue
        pm = installs[0].prog
        cleaned = any(
            (c.prog in _RPM_PMS and _subcommand(c) in ("clean", "cc"))
            or (c.prog == "rm" and any(re.match(r"/var/cache/(yum|dnf|zypp)", a) for a in c.argv[1:]))
            for c in cmds
        )
        if not cleaned:
            yield Hit(ins, f"{pm} install without '{pm} clean all' in the same RUN")


@check("GD-020")
def _rpm_unpinned(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    opts = frozenset({"--setopt", "--enablerepo", "--disablerepo", "-c", "--repo", "--releasever", "--installroot"})
    for ins, cmds in _runs(df):
        for cmd in _installs(cmds, _RPM_PMS, ("install", "in")):
            bad = [
                p
                for p in _packages(cmd, opts)
                if not re.search(r"-\d|[=<>]", p) and not p.endswith(".rpm") and "/" not in p and not p.startswith("@")
            ]
            if bad:
                yield Hit(ins, f"{cmd.prog} install of unpinned package(s): {', '.join(bad[:5])}")
                break


@check("GD-021")
def _sudo(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        if any(c.sudo for c in cmds):
            yield Hit(ins, "sudo used in RUN")


_SECRET_NAME = re.compile(
    r"(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)", re.IGNORECASE
)
_SECRET_ALLOW = re.compile(r"(?:_|^)public(?:_|$)", re.IGNORECASE)


@check("GD-022")
def _secret_names(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd not in ("ARG", "ENV"):
            continue
        names = [k for k, _v in ins.pairs if _SECRET_NAME.search(k) and not _SECRET_ALLOW.search(k)]
        if names:
            yield Hit(ins, f"{ins.cmd} {names[0]} looks like a secret and is stored in the image metadata")


def _world_writable(mode: str) -> bool:
    mode = mode.strip()
    if re.fullmatch(r"[0-7]{3,4}", mode):
        return int(mode[-1]) & 2 == 2
    for clause in mode.split(","):
        m = re.fullmatch(r"([ugoa]*)([+=])([rwxXst]*)", clause)
        if m and "w" in m.group(3) and (m.group(1) == "" or "o" in m.group(1) or "a" in m.group(1)):
            return True
    return False


@check("GD-023")
def _chmod(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd in ("COPY", "ADD") and ins.flag("chmod") and _world_writable(ins.flag("chmod") or ""):
            yield Hit(ins, f"{ins.cmd} --chmod={ins.flag('chmod')} is world-writable")
    for ins, cmds in _runs(df):
        for cmd in cmds:
            if cmd.prog != "chmod":
                continue
            modes = [w for w in cmd.argv[1:] if not w.startswith("-")]
            if modes and _world_writable(modes[0]):
                yield Hit(ins, f"chmod {modes[0]} makes files world-writable")
                break


_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:[\\/]|\\\\)")


@check("GD-024")
def _workdir_relative(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd != "WORKDIR" or not ins.value.strip():
            continue
        raw = unquote(ins.value.strip(), "\x00")
        if raw.startswith("$"):
            expanded = unquote(ins.expand(ins.value.strip()))
            if not expanded or _ABSOLUTE.match(expanded):
                continue
        elif _ABSOLUTE.match(raw):
            continue
        yield Hit(ins, f"WORKDIR {ins.value.strip()} is not an absolute path")


@check("GD-025")
def _duplicate_alias(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    seen: dict[str, Stage] = {}
    for st in df.stages:
        if not st.name:
            continue
        key = st.name.lower()
        if key in seen:
            yield Hit(
                st.from_instruction,
                f"stage name {st.name!r} is already used at line {seen[key].from_instruction.start_line}",
            )
        else:
            seen[key] = st


@check("GD-026")
def _cd(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        if any(c.prog == "cd" for c in cmds):
            yield Hit(ins, "cd in RUN; use WORKDIR")


@check("GD-027")
def _multiple(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for st in df.stages:
        for name in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            found = [i for i in st.instructions if i.cmd == name]
            for extra in found[:-1]:
                yield Hit(extra, f"{name} is overridden by the one at line {found[-1].start_line} in {st.label}")


@check("GD-028")
def _shell_form(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd in ("CMD", "ENTRYPOINT") and not ins.json_form and ins.value.strip():
            yield Hit(ins, f"{ins.cmd} uses the shell form")


def _pip_installs(cmds: list[Command]) -> Iterator[Command]:
    for cmd in cmds:
        prog = cmd.prog
        if re.fullmatch(r"pip[0-9.]*", prog) and _subcommand(cmd) == "install":
            yield cmd
        elif re.fullmatch(r"python[0-9.]*", prog) and cmd.argv[1:3] == ["-m", "pip"] and "install" in cmd.argv[3:4]:
            yield Command(argv=["pip", *cmd.argv[3:]], assigns=cmd.assigns)


@check("GD-029")
def _pip_cache(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        if _cache_mount(ins, "/root/.cache", "/root/.cache/pip") or ins.env.get("PIP_NO_CACHE_DIR", "").lower() in (
            "1",
            "true",
            "on",
            "yes",
            "off",
            "0",
        ):
            continue
        for cmd in _pip_installs(cmds):
            if not cmd.has("--no-cache-dir") and not any(k == "PIP_NO_CACHE_DIR" for k, _ in cmd.assigns):
                yield Hit(ins, "pip install without --no-cache-dir")
                break


_PIP_OPTS_WITH_ARG = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url", "--extra-index-url",
     "-t", "--target", "--prefix", "--root", "-f", "--find-links", "--trusted-host", "--platform", "--python-version"}
)  # fmt: skip


@check("GD-030")
def _pip_unpinned(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in _pip_installs(cmds):
            if cmd.has("-U", "--upgrade") and _packages(cmd, _PIP_OPTS_WITH_ARG) in (["pip"], ["pip", "setuptools"]):
                continue
            bad = [
                p
                for p in _packages(cmd, _PIP_OPTS_WITH_ARG)
                if not re.search(r"==|~=|===|@|\.whl$|\.tar\.gz$|\.zip$", p)
                and not p.startswith((".", "/", "git+", "http"))
                and p not in ("pip", "setuptools", "wheel")
            ]
            if bad:
                yield Hit(ins, f"pip install of unpinned package(s): {', '.join(bad[:5])}")
                break


@check("GD-031")
def _npm_unpinned(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in cmds:
            if cmd.prog not in ("npm", "yarn", "pnpm") or _subcommand(cmd) not in ("install", "i", "add"):
                continue
            bad = [
                p
                for p in _packages(cmd, frozenset({"--prefix", "--registry", "-C"}))
                if not re.search(r"^@?[^@]+@[^@]+$", p)
                and not p.startswith((".", "/", "git", "http", "file:"))
                and not p.endswith((".tgz", ".tar.gz"))
            ]
            if bad:
                yield Hit(ins, f"{cmd.prog} {_subcommand(cmd)} of unpinned package(s): {', '.join(bad[:5])}")
                break


_SECRET_FILES = (
    "id_rsa", "id_rsa.*", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", "*.pem", "*.key", "*.p12",
    "*.pfx", "*.jks", "*.keystore", ".env", ".env.*", "*.env", ".npmrc", ".pypirc", ".netrc", "_netrc",
    ".git-credentials", ".htpasswd", "credentials", "credentials.json", "kubeconfig", ".dockercfg", "config.json",
    "*.tfstate", "*.tfvars", "secrets.yaml", "secrets.yml", "secret.yaml", "service-account*.json",
)  # fmt: skip
_SECRET_DIRS = (".ssh", ".aws", ".docker", ".kube", ".gnupg", ".azure", ".gcloud")


def _secret_source(src: str) -> bool:
    parts = [p for p in src.replace("\\", "/").split("/") if p]
    if not parts:
        return False
    if any(p in _SECRET_DIRS for p in parts):
        return True
    base = parts[-1]
    if base == "config.json":
        return len(parts) > 1 and parts[-2] == ".docker"
    if base.endswith(".env.example") or base.endswith(".env.sample") or base.endswith(".pub"):
        return False
    return any(fnmatch.fnmatch(base, pat) for pat in _SECRET_FILES if pat != "config.json")


@check("GD-032")
def _copy_secret(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd not in ("COPY", "ADD") or ins.flag("from"):
            continue
        srcs = [ins.expand(s) for s in _sources(ins)]
        bad = [s for s in srcs if not _REMOTE.match(s) and _secret_source(s)]
        if bad:
            yield Hit(ins, f"{ins.cmd} copies credential file {bad[0]!r} into the image")


@check("GD-033")
def _copy_context(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    if ctx.context_dir is None:
        return
    ignore_files = [ctx.context_dir / ".dockerignore"]
    ignore_files.append(Path(df.path).with_name(Path(df.path).name + ".dockerignore"))
    if any(p.is_file() for p in ignore_files):
        return
    for ins in df.instructions:
        if ins.cmd not in ("COPY", "ADD") or ins.flag("from"):
            continue
        whole = [s for s in _sources(ins) if posixpath.normpath(s) in (".", "*", "./*") or s in ("./", ".")]
        if whole:
            yield Hit(ins, f"{ins.cmd} {whole[0]} copies the whole build context and there is no .dockerignore")


@check("GD-034")
def _platform(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for st in df.stages:
        if st.platform and "$" not in st.platform:
            yield Hit(st.from_instruction, f"FROM --platform={st.platform} is hard-coded")


@check("GD-035")
def _useradd(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in cmds:
            if cmd.prog != "useradd" or cmd.has("-l", "--no-log-init"):
                continue
            argv = cmd.argv
            uid = ""
            for i, w in enumerate(argv):
                if w in ("-u", "--uid") and i + 1 < len(argv):
                    uid = argv[i + 1]
                elif w.startswith("--uid="):
                    uid = w.split("=", 1)[1]
            if uid.isdigit() and len(uid) > 5:
                yield Hit(ins, f"useradd -u {uid} without -l")
                break


@check("GD-036")
def _dist_upgrade(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in cmds:
            if cmd.prog in ("apt-get", "apt") and _subcommand(cmd) in ("upgrade", "dist-upgrade", "full-upgrade"):
                yield Hit(ins, f"{cmd.prog} {_subcommand(cmd)} in the build")
                break


_TLS_ENV = {
    "GIT_SSL_NO_VERIFY": lambda v: v != "",
    "NODE_TLS_REJECT_UNAUTHORIZED": lambda v: v == "0",
    "PYTHONHTTPSVERIFY": lambda v: v == "0",
    "NPM_CONFIG_STRICT_SSL": lambda v: v.lower() == "false",
    "PIP_TRUSTED_HOST": lambda v: v != "",
}


def _tls_env(name: str, value: str, *, quoted: bool = False) -> bool:
    """Whether ``name=value`` disables TLS checks; ``quoted`` when the value still has its quotes
    (ENV/ARG), not when a shell lexer already removed them (RUN)."""
    test = _TLS_ENV.get(name) or (_TLS_ENV.get(name.upper()) if name.lower() == "npm_config_strict_ssl" else None)
    return bool(test and test((unquote(value) if quoted else value).strip()))


def _tls_command(cmd: Command) -> str:
    prog, argv = cmd.prog, cmd.argv
    if any(_tls_env(k, v) for k, v in cmd.assigns):
        return next(k for k, v in cmd.assigns if _tls_env(k, v))
    if prog == "export":
        for w in argv[1:]:
            k, eq, v = w.partition("=")
            if eq and _tls_env(k, v):
                return k
    if prog == "curl" and (cmd.has("-k", "--insecure")):
        return "curl --insecure"
    if prog == "wget" and cmd.has("--no-check-certificate"):
        return "wget --no-check-certificate"
    if re.fullmatch(r"pip[0-9.]*", prog) and cmd.has("--trusted-host"):
        return "pip --trusted-host"
    if re.fullmatch(r"python[0-9.]*", prog) and "--trusted-host" in argv:
        return "pip --trusted-host"
    if prog in ("npm", "yarn", "pnpm") and "set" in argv[1:3]:
        rest = [a.lower() for a in argv[argv.index("set") + 1 :]]
        if rest[:2] == ["strict-ssl", "false"] or "strict-ssl=false" in rest:
            return f"{prog} config set strict-ssl false"
    if prog == "git":
        lowered = [a.lower() for a in argv]
        if "http.sslverify=false" in lowered or (
            "config" in lowered and "http.sslverify" in lowered and lowered[-1] in ("false", "0")
        ):
            return "git http.sslVerify=false"
    config_manager = prog in ("yum-config-manager", "dnf-config-manager") or (
        prog in ("yum", "dnf") and "config-manager" in argv
    )
    if config_manager and any(re.search(r"sslverify\s*=\s*(false|0|no)", a, re.IGNORECASE) for a in argv):
        return f"{prog} sslverify=false"
    return ""


@check("GD-037")
def _tls_disabled(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins in df.instructions:
        if ins.cmd in ("ENV", "ARG"):
            bad = [k for k, v in ins.pairs if v is not None and _tls_env(k, v, quoted=True)]
            if bad:
                yield Hit(ins, f"{ins.cmd} {bad[0]} disables TLS certificate verification")
    for ins, cmds in _runs(df):
        for cmd in cmds:
            what = _tls_command(cmd)
            if what:
                yield Hit(ins, f"{what} disables TLS certificate verification")
                break


def _unsigned(cmd: Command) -> str:
    prog = cmd.prog
    if prog in ("apt-get", "apt") and cmd.has(
        "--allow-unauthenticated", "--force-yes", "--allow-insecure-repositories"
    ):
        return f"{prog} --allow-unauthenticated/--force-yes"
    if prog in ("apt-get", "apt") and any(
        re.search(r"AllowUnauthenticated=(true|1|yes)", a, re.IGNORECASE) for a in cmd.argv
    ):
        return f"{prog} AllowUnauthenticated"
    if prog in ("yum", "dnf", "tdnf", "microdnf", "zypper") and cmd.has("--nogpgcheck", "--no-gpg-checks"):
        return f"{prog} --nogpgcheck"
    if prog in ("yum", "dnf", "tdnf") and any(re.fullmatch(r"--setopt=.*gpgcheck=(0|false|no)", a) for a in cmd.argv):
        return f"{prog} gpgcheck=0"
    if prog == "rpm" and cmd.has("--nosignature", "--nodigest", "--noverify", "--nofiledigest"):
        return "rpm --nosignature"
    if prog == "apk" and cmd.has("--allow-untrusted"):
        return "apk --allow-untrusted"
    return ""


@check("GD-038")
def _signature_disabled(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in cmds:
            what = _unsigned(cmd)
            if what:
                yield Hit(ins, f"{what} disables package signature verification")
                break


@check("GD-039")
def _chpasswd(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for ins, cmds in _runs(df):
        for cmd in cmds:
            if cmd.prog == "chpasswd" or (cmd.prog == "passwd" and cmd.has("--stdin")):
                yield Hit(ins, f"{cmd.prog} sets a password in the image history")
                break


def _has_pipefail(text: str) -> bool:
    return bool(re.search(r"set\s+(-[a-zA-Z]*o\s+pipefail|-o\s+pipefail|-[a-zA-Z]*\s+-o\s+pipefail)", text)) or (
        "pipefail" in text and "set" in text
    )


@check("GD-040")
def _pipefail(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for st in df.stages:
        shell_pipefail = False
        non_posix = False
        for ins in st.instructions:
            if ins.cmd == "SHELL":
                joined = " ".join(ins.args)
                shell_pipefail = "pipefail" in joined
                prog = ins.args[0].rsplit("/", 1)[-1] if ins.args else ""
                non_posix = prog in ("pwsh", "powershell", "cmd", "cmd.exe", "powershell.exe")
                continue
            target = ins.sub if ins.cmd == "ONBUILD" and ins.sub is not None else ins
            if target.cmd != "RUN" or target.json_form or shell_pipefail or non_posix:
                continue
            text = target.shell_text
            if any(len(p) > 1 for p in pipelines(text)) and not _has_pipefail(text):
                yield Hit(ins, "RUN uses a pipe without 'set -o pipefail'")


@check("GD-041")
def _copy_from_self(df: Dockerfile, ctx: Context) -> Iterator[Hit]:
    for st in df.stages:
        if not st.name:
            continue
        for ins in st.instructions:
            source = ins.flag("from")
            if ins.cmd == "COPY" and source and source.lower() == st.name.lower():
                yield Hit(ins, f"COPY --from={source} refers to the stage it is in")
