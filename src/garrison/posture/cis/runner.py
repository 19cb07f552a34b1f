"""Run a CIS benchmark on the local node, the way kube-bench does.

1. Targets (``master``, ``node``, ``controlplane``, ``etcd``, ``policies``) are chosen by the
   caller or detected from running processes: a component runs when a process whose name is the
   first word of one of its ``bins`` has a command line starting with that binary (kube-bench's
   ``ps -C`` test, read from ``/proc``).
2. Variables are substituted in the checks: ``$<component>bin`` (the running binary, else the
   component name), ``$<component>conf`` / ``svc`` / ``kubeconfig`` / ``cafile`` / ``datadir``
   (the first candidate file that exists, else the default, else the component name). The
   kubelet's config comes from the running kubelet's ``--config`` flag when it has one. With a
   root prefix, every file is looked up and substituted under that directory.
3. Each check's audit commands run with ``bash -c`` and a timeout (they come from our own package
   data); stdout and stderr are captured together, as kube-bench does. A command that exits
   non-zero makes the check fail with the command in the reason.

Paths that come from a process command line are used only when they consist of safe characters,
so a hostile process cannot inject shell syntax into an audit command.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import ConfigError, GarrisonError, NotFoundError
from garrison.model import Severity
from garrison.posture.cis.definitions import (
    Check,
    Component,
    Config,
    Controls,
    TestItem,
    Tests,
    load_benchmark,
    load_config,
)
from garrison.posture.cis.engine import CheckResult, State, run_check
from garrison.posture.model import Control, ControlResult, Subject, Verdict

FAMILY = "cis-node"
DEFAULT_TIMEOUT = 30.0
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+@:,=-]+")
#: kube-bench's file kinds: variable suffix -> (candidate list key, default key)
_FILE_KINDS = {
    "conf": ("confs", "defaultconf"),
    "svc": ("svc", "defaultsvc"),
    "kubeconfig": ("kubeconfig", "defaultkubeconfig"),
    "cafile": ("cafile", "defaultcafile"),
    "datadir": ("datadirs", "defaultdatadir"),
}
_MAX_OUTPUT = 4 * 1024 * 1024


class AuditError(GarrisonError):
    """An audit command failed or timed out."""


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    comm: str
    argv: tuple[str, ...]

    @property
    def cmd(self) -> str:
        return " ".join(self.argv)


def list_processes(proc: Path = Path("/proc")) -> list[Process]:
    """Every process whose command line can be read."""
    out = []
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            comm = (entry / "comm").read_text(encoding="utf-8", errors="replace").rstrip("\n")
        except OSError:
            continue
        argv = tuple(a.decode("utf-8", errors="replace") for a in raw.split(b"\0") if a)
        if argv:
            out.append(Process(int(entry.name), comm, argv))
    return out


def find_binary(bins: Iterable[str], processes: Sequence[Process]) -> tuple[str, Process | None]:
    """kube-bench's ``findExecutable``/``verifyBin``: the first ``bins`` entry that is running."""
    for candidate in bins:
        candidate = candidate.strip("'\"")
        words = candidate.split()
        if not words:
            continue
        first_word = re.compile(r"^(\S*/)*" + re.escape(candidate))
        for process in processes:
            # ps -C compares the process name, which the kernel truncates to 15 characters
            if process.comm == words[0][:15] and first_word.match(process.cmd):
                return candidate, process
    return "", None


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """``--flag=value`` or ``--flag value`` from an argument vector."""
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


@dataclass(slots=True)
class NodeContext:
    """What was found on the node: binaries, files and the variables to substitute."""

    root: Path
    variables: dict[str, str] = field(default_factory=dict)
    running: dict[str, Process] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _under(root: Path, path: str) -> Path:
    return root / path.lstrip("/") if str(root) != "/" else Path(path)


def _first_existing(root: Path, candidates: Iterable[str]) -> str:
    for candidate in candidates:
        if _under(root, candidate).exists():
            return candidate
    return ""


def _component_running(component: Component, processes: Sequence[Process]) -> bool:
    return find_binary(component.bins, processes)[1] is not None


def detect_targets(config: Config, processes: Sequence[Process]) -> list[str]:
    """Targets whose required (non-optional) components are all running."""
    found = []
    for target in ("master", "node", "etcd"):
        comps = [c for c in config.targets.get(target, ()) if c.bins and not c.optional]
        if comps and all(_component_running(c, processes) for c in comps):
            found.append(target)
    if "master" in found:
        found += ["controlplane", "policies"]
    return found


def build_context(
    config: Config, targets: Sequence[str], processes: Sequence[Process], root: Path = Path("/")
) -> NodeContext:
    """Resolve binaries and files for the components of ``targets`` (kube-bench's
    ``getBinaries`` and ``getFiles``). Raises :class:`NotFoundError` when a required component
    of a chosen target is not running."""
    ctx = NodeContext(root=root)
    variables: dict[str, str] = {}
    for target in targets:
        for comp in config.targets.get(target, ()):
            if comp.bins:
                binary, process = find_binary(comp.bins, processes)
                if process is None and not comp.optional:
                    raise NotFoundError(
                        f"unable to detect running programs for component {comp.name!r} of target {target!r}"
                    )
                variables.setdefault(f"{comp.name}bin", binary or comp.name)
                if process is not None:
                    ctx.running.setdefault(comp.name, process)
            for suffix, (list_key, default_key) in _FILE_KINDS.items():
                name = f"{comp.name}{suffix}"
                if name in variables:
                    continue
                chosen = _first_existing(root, comp.paths.get(list_key, ()))
                if not chosen:
                    if default_key in comp.defaults:
                        chosen = comp.defaults[default_key]
                    elif list_key not in comp.paths:
                        continue  # the component has no such file kind
                    else:
                        chosen = comp.name
                variables[name] = str(_under(root, chosen)) if chosen.startswith("/") else chosen
    kubelet = ctx.running.get("kubelet")
    if kubelet is not None:
        conf = flag_value(kubelet.argv, "--config")
        if conf is not None:
            if _SAFE_PATH.fullmatch(conf) and conf.startswith("/"):
                variables["kubeletconf"] = str(_under(root, conf))
            else:
                ctx.warnings.append(f"ignoring the kubelet --config value {conf!r}: not a plain absolute path")
    ctx.variables = variables
    return ctx


def substitute(text: str, variables: dict[str, str]) -> str:
    """Replace ``$name`` by its value, longest names first (kube-bench replaces plain text)."""
    if not variables or "$" not in text:
        return text
    names = sorted(variables, key=len, reverse=True)
    pattern = re.compile(r"\$(" + "|".join(re.escape(n) for n in names) + ")")
    return pattern.sub(lambda m: variables[m.group(1)], text)


def substitute_check(check: Check, variables: dict[str, str]) -> Check:
    def sub(text: str) -> str:
        return substitute(text, variables)

    tests = check.tests
    if tests is not None:
        items = tuple(
            TestItem(
                flag=sub(i.flag),
                path=i.path,
                env=i.env,
                set=i.set,
                compare=replace(i.compare, value=sub(i.compare.value)),
            )
            for i in tests.test_items
        )
        tests = Tests(items, tests.bin_op)
    return replace(
        check,
        audit=sub(check.audit),
        audit_config=sub(check.audit_config),
        audit_env=sub(check.audit_env),
        remediation=sub(check.remediation),
        tests=tests,
    )


def run_audit(command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run a trusted audit command with ``bash -c``; stdout and stderr together.

    ``COLUMNS`` is removed from the environment: ``ps`` would otherwise cut command lines (and
    the flags on them) to the caller's terminal width."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    try:
        proc = subprocess.run(
            ["bash", "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AuditError(f"audit command timed out after {timeout:g}s: {command!r}") from None
    except OSError as err:
        raise AuditError(f"cannot run audit command {command!r}: {err.strerror}") from None
    output = proc.stdout[:_MAX_OUTPUT].decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise AuditError(f"failed to run: {command!r}, output: {output!r}, error: exit status {proc.returncode}")
    return output


# ----------------------------------------------------------------------------------------------
# severities and results


@dataclass(frozen=True, slots=True)
class SeverityMap:
    scored: Severity
    unscored: Severity
    overrides: dict[str, Severity]

    def of(self, check: Check) -> Severity:
        if check.id in self.overrides:
            return self.overrides[check.id]
        return self.scored if check.scored else self.unscored


def load_severities() -> SeverityMap:
    raw: Any = yaml.safe_load((resources.files("garrison.posture.cis") / "data" / "severity.yaml").read_text())
    default = raw["default"]
    return SeverityMap(
        scored=Severity[default["scored"]],
        unscored=Severity[default["unscored"]],
        overrides={str(k): Severity[v] for k, v in (raw.get("overrides") or {}).items()},
    )


def _control_id(benchmark: str, check_id: str) -> str:
    return f"{benchmark.upper()}-{check_id}"


def to_control_result(
    result: CheckResult, *, benchmark: str, target: str, severities: SeverityMap, hostname: str = ""
) -> ControlResult:
    check = result.check
    control = Control(
        id=_control_id(benchmark, check.id),
        title=check.text,
        severity=severities.of(check),
        family=FAMILY,
        remediation=check.remediation.strip(),
        frameworks={f"{benchmark.replace('cis-', 'cis-k8s-')}": (check.id,)},
        references={"kube-bench": (check.id,)},
        manual=check.type == "manual",
    )
    if result.state is State.PASS:
        verdict = Verdict.PASS
    elif result.state is State.INFO or check.type == "manual":
        verdict = Verdict.SKIP
    elif result.reason and not result.expected_result:
        verdict = Verdict.ERROR
    else:
        verdict = Verdict.FAIL
    message = result.reason or result.expected_result
    return ControlResult(
        control=control,
        subject=Subject(kind="node", name=target),
        verdict=verdict,
        message=" ".join(message.split()),
        details={
            "state": str(result.state),
            "scored": check.scored,
            "expected_result": result.expected_result,
            "actual_value": result.actual_value,
            "reason": result.reason,
            "audit": check.audit,
            "audit_config": check.audit_config,
            "hostname": hostname,
        },
    )


@dataclass(slots=True)
class NodeReport:
    benchmark: str
    targets: list[str]
    results: list[ControlResult]
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts = {"PASS": 0, "FAIL": 0, "WARN": 0, "INFO": 0}
        for r in self.results:
            if "suppressed_by" in r.details:
                counts["SUPPRESSED"] = counts.get("SUPPRESSED", 0) + 1
            else:
                counts[str(r.details.get("state", "WARN"))] += 1
        return counts

    @property
    def failed(self) -> bool:
        return any(r.verdict in (Verdict.FAIL, Verdict.ERROR) for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "targets": list(self.targets),
            "summary": self.summary(),
            "results": [r.to_dict() for r in self.results],
            "warnings": list(self.warnings),
        }


def _selected(check: Check, group_id: str, wanted: frozenset[str] | None) -> bool:
    return wanted is None or check.id in wanted or group_id in wanted


def run_node(
    *,
    benchmark: str = "cis-1.12",
    targets: Sequence[str] | None = None,
    root: Path = Path("/"),
    checks: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    processes: Sequence[Process] | None = None,
) -> NodeReport:
    """Run the benchmark's checks for ``targets`` (detected when ``None``)."""
    if not root.is_dir():
        raise NotFoundError("root directory not found", input_name=str(root))
    if not _SAFE_PATH.fullmatch(str(root)):
        raise ConfigError(f"root path {str(root)!r} has characters that are unsafe in audit commands")
    config = load_config()
    controls = load_benchmark(benchmark)
    procs = list(processes) if processes is not None else list_processes()
    if targets is None:
        chosen = detect_targets(config, procs)
        if not chosen:
            raise NotFoundError("no Kubernetes components detected on this node; choose them with --targets")
    else:
        chosen = list(dict.fromkeys(targets))
        unknown = [t for t in chosen if t not in controls]
        if unknown:
            raise ConfigError(f"unknown target(s) {', '.join(unknown)}; {benchmark} has {', '.join(sorted(controls))}")
    wanted = frozenset(checks) if checks is not None else None
    ctx = build_context(config, chosen, procs, root)
    severities = load_severities()
    hostname = socket.gethostname()
    results: list[ControlResult] = []
    known_ids: set[str] = set()
    for target in chosen:
        file: Controls = controls[target]
        for group in file.groups:
            known_ids.add(group.id)
            for check in group.checks:
                known_ids.add(check.id)
                if not _selected(check, group.id, wanted):
                    continue
                concrete = substitute_check(check, ctx.variables)
                outcome = run_check(concrete, lambda cmd: run_audit(cmd, timeout), group.type)
                results.append(
                    to_control_result(
                        outcome, benchmark=benchmark, target=target, severities=severities, hostname=hostname
                    )
                )
    if wanted is not None:
        missing = sorted(wanted - known_ids)
        if missing:
            raise ConfigError(f"unknown check id(s) {', '.join(missing)} for targets {', '.join(chosen)}")
    return NodeReport(benchmark=benchmark, targets=chosen, results=results, warnings=ctx.warnings)
