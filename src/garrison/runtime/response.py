"""Responders: what happens after a rule fires — alert, kill, deny-exec, pause, quarantine.

A :class:`ResponsePolicy` (the ``response:`` section of a YAML file) maps alerts to actions by
rule name, tag and priority; :class:`Responder` carries them out and returns every action as an
:class:`~garrison.model.runtime.Event` of kind ``response`` (``type = "response.<action>"``,
``args`` = action, rule, target, result), including in dry-run mode, where nothing is touched and
the result reads ``dry-run``. Actions never raise: a failure is a recorded result.

* ``alert`` — nothing beyond the alert itself (recorded so the audit trail is complete).
* ``kill`` — ``SIGKILL`` through a pidfd (``pidfd_open`` + ``pidfd_send_signal``), so a pid that
  was recycled since the event can never be hit; then waits for the pidfd to report the exit.
  Never pid 1 or this process.
* ``deny-exec`` — only possible *before* the exec: :class:`ExecGate` is the fanotify exec
  permission hook that denies when :class:`~garrison.runtime.drift.DriftGuard` says the binary
  drifted, when the path is on a deny list, or when a loaded rule whose policy says
  ``deny-exec`` matches the permission event. On an alert raised after the fact the action is
  recorded as ``not-applicable``.
* ``pause`` / :meth:`Responder.unpause` — the cgroup freezer, as ``podman pause`` does it:
  ``cgroup.freeze`` on cgroup v2 (waiting for ``frozen 1`` in ``cgroup.events``), else
  ``freezer.state = FROZEN`` on v1. Only cgroups that :mod:`~garrison.runtime.containers`
  identifies as a container's are ever frozen.
* ``quarantine`` — a ``garrison_quarantine`` table *inside the container's network namespace*
  dropping everything but loopback, plus host-side drops of the container's addresses (so even a
  container that can flush its own rules stays cut off): through the network engine's
  ``garrison.network.dataplane.quarantine`` (IPv4, the node's shared quarantine set, so
  ``garrison policy`` sees and can release it) when it is importable, else — and for IPv6 —
  direct rules in the host's input/output/forward hooks. :meth:`Responder.release` undoes both,
  removing only its own addresses: the host table is shared with the dataplane. Rulesets are fed to
  ``nft -f -`` (atomic), run in the namespace with ``nsenter``; a container sharing the host's
  network namespace is refused rather than cutting off the host.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import importlib
import json
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.core.errors import ConfigError
from garrison.core.yamlfile import read_yaml_file
from garrison.model.runtime import Alert, Container, Event, EventKind, Priority, Process
from garrison.runtime.containers import ContainerResolver, cgroup_dirs, live_pid
from garrison.runtime.drift import DriftGuard, fd_origin, path_origin

logger = logging.getLogger(__name__)

QUARANTINE_TABLE = "garrison_quarantine"


class Action(enum.StrEnum):
    ALERT = "alert"
    KILL = "kill"
    DENY_EXEC = "deny-exec"
    PAUSE = "pause"
    QUARANTINE = "quarantine"


@dataclass(slots=True)
class ResponseRule:
    """One mapping: when every given criterion matches, take ``actions``.

    ``rules`` are rule names or ``fnmatch`` globs; ``tags`` match when the alert has any of them;
    ``priority`` matches alerts at least that severe.
    """

    actions: list[Action]
    rules: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    priority: Priority | None = None

    def matches(self, alert: Alert) -> bool:
        if self.rules and not any(fnmatch.fnmatchcase(alert.rule, r) for r in self.rules):
            return False
        if self.tags and not set(self.tags) & set(alert.tags):
            return False
        return self.priority is None or alert.priority.at_least(self.priority)


@dataclass(slots=True)
class ResponsePolicy:
    rules: list[ResponseRule] = field(default_factory=list)
    default: list[Action] = field(default_factory=lambda: [Action.ALERT])
    dry_run: bool = False

    def actions_for(self, alert: Alert) -> list[Action]:
        """Union of the actions of every matching mapping, in order; ``default`` when none match."""
        out: list[Action] = []
        for rule in self.rules:
            if rule.matches(alert):
                out.extend(a for a in rule.actions if a not in out)
        return out or list(self.default)


def _fail(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}", input_name=source)


def _str_list(value: Any, source: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, where, "expected a string or a list of strings")
    return list(value)


def _actions(value: Any, source: str, where: str) -> list[Action]:
    out = []
    for word in _str_list(value, source, where):
        try:
            out.append(Action(word.strip().lower()))
        except ValueError:
            known = ", ".join(a.value for a in Action)
            raise _fail(source, where, f"unknown action {word!r} (known: {known})") from None
    if not out:
        raise _fail(source, where, "needs at least one action (use [alert] to only alert)")
    return out


def policy_from_data(data: Any, source: str = "response policy") -> ResponsePolicy:
    """Validate the parsed ``response:`` document; :class:`ConfigError` names the file and the key."""
    if isinstance(data, dict) and "response" in data:
        data = data["response"]
    if data is None:
        return ResponsePolicy()
    if not isinstance(data, dict):
        raise _fail(source, "response", f"expected a mapping, got {type(data).__name__}")
    extra = set(data) - {"rules", "default", "dry_run"}
    if extra:
        raise _fail(source, "response", f"unknown key(s) {sorted(map(str, extra))}")
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise _fail(source, "response.dry_run", "expected true or false")
    default = _actions(data["default"], source, "response.default") if "default" in data else [Action.ALERT]
    items = data.get("rules") or []
    if not isinstance(items, list):
        raise _fail(source, "response.rules", "expected a list")
    rules: list[ResponseRule] = []
    for i, item in enumerate(items):
        where = f"response.rules[{i}]"
        if not isinstance(item, dict):
            raise _fail(source, where, "expected a mapping")
        extra = set(item) - {"rule", "rules", "tags", "priority", "actions"}
        if extra:
            raise _fail(source, where, f"unknown key(s) {sorted(map(str, extra))}")
        if "actions" not in item:
            raise _fail(source, where, "missing 'actions'")
        names = _str_list(item["rule"], source, f"{where}.rule") if "rule" in item else []
        names += _str_list(item["rules"], source, f"{where}.rules") if "rules" in item else []
        tags = _str_list(item["tags"], source, f"{where}.tags") if "tags" in item else []
        priority = None
        if "priority" in item:
            if not isinstance(item["priority"], str):
                raise _fail(source, f"{where}.priority", "expected a priority word")
            try:
                priority = Priority.parse(item["priority"])
            except KeyError:
                raise _fail(source, f"{where}.priority", f"unknown priority {item['priority']!r}") from None
        if not (names or tags or priority is not None):
            raise _fail(source, where, "needs at least one of rule, rules, tags, priority")
        rules.append(ResponseRule(_actions(item["actions"], source, f"{where}.actions"), names, tags, priority))
    return ResponsePolicy(rules, default, dry_run)


def load_policy(path: Path) -> ResponsePolicy:
    """Read a YAML response policy file."""
    return policy_from_data(read_yaml_file(path), str(path))


# -- actions ---------------------------------------------------------------------------------


def kill_process(pid: int, timeout: float = 2.0) -> str:
    """SIGKILL ``pid`` through a pidfd and wait until it is gone; returns the result text."""
    if pid <= 1 or pid == os.getpid():
        return f"refused: will not kill pid {pid}"
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return "gone: process had already exited"
    except OSError as e:
        return f"failed: pidfd_open: {e.strerror}"
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(int(timeout * 1000)):
            return "ok"
        return f"failed: still running {timeout}s after SIGKILL"
    except ProcessLookupError:
        return "gone: process had already exited"
    except OSError as e:
        return f"failed: {e.strerror}"
    finally:
        os.close(pidfd)


def _container_cgroups(pid: int, resolver: ContainerResolver) -> tuple[Path | None, Path | None, str]:
    """(v2 dir, v1 freezer dir, error) of the container ``pid`` runs in; refuses host cgroups."""
    try:
        match = resolver.cgroup_match(pid)
        dirs = cgroup_dirs(pid)
    except OSError:
        return None, None, "gone: process had already exited"
    if match is None:
        return None, None, "refused: process is not in a container"
    unified = dirs.unified if dirs.unified is not None and match.full_id in str(dirs.unified) else None
    freezer = dirs.freezer if dirs.freezer is not None and match.full_id in str(dirs.freezer) else None
    if unified is None and freezer is None:
        return None, None, "failed: no container cgroup with a freezer found"
    return unified, freezer, ""


def _wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def freeze(unified: Path | None, freezer: Path | None, frozen: bool, timeout: float = 5.0) -> str:
    """Freeze or thaw a cgroup (v2 ``cgroup.freeze`` preferred, v1 ``freezer.state`` otherwise)."""
    try:
        if unified is not None and (unified / "cgroup.freeze").exists():
            (unified / "cgroup.freeze").write_text("1" if frozen else "0")
            want = f"frozen {1 if frozen else 0}"
            ok = _wait_for(lambda: want in (unified / "cgroup.events").read_text().splitlines(), timeout)
            return "ok" if ok else f"failed: cgroup not {'frozen' if frozen else 'thawed'} after {timeout}s"
        if freezer is not None:
            state = "FROZEN" if frozen else "THAWED"
            (freezer / "freezer.state").write_text(state)
            ok = _wait_for(lambda: (freezer / "freezer.state").read_text().strip() == state, timeout)
            return "ok" if ok else f"failed: freezer.state not {state} after {timeout}s"
    except OSError as e:
        return f"failed: {e.strerror}"
    return "failed: no freezer"


def _netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def container_addresses(pid: int) -> list[str]:
    """IPv4/IPv6 global addresses of the network namespace ``pid`` is in (``ip -j addr`` via nsenter)."""
    proc = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-j", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if proc.returncode != 0:
        return []
    try:
        links = json.loads(proc.stdout or "[]")
    except ValueError:
        return []
    return [
        str(a["local"])
        for link in links
        if isinstance(link, dict)
        for a in link.get("addr_info", [])
        if isinstance(a, dict) and "local" in a
    ]


def _nft(script: str, netns_pid: int | None = None) -> str:
    argv = ["nft", "-f", "-"]
    if netns_pid is not None:
        argv = ["nsenter", f"--net=/proc/{netns_pid}/ns/net", *argv]
    try:
        proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"failed: {e}"
    if proc.returncode != 0:
        return "failed: nft: " + " ".join(proc.stderr.split())[:300]
    return "ok"


def _netns_script() -> str:
    t = QUARANTINE_TABLE
    return (
        f"table inet {t}\ndelete table inet {t}\n"
        f"table inet {t} {{\n"
        '  chain in { type filter hook input priority -300; policy drop; iifname "lo" accept; }\n'
        '  chain out { type filter hook output priority -300; policy drop; oifname "lo" accept; }\n'
        "}\n"
    )


def _host_script(ips: Sequence[str], add: bool) -> str:
    """Host-side drop rules for the quarantined addresses; idempotent (chains are flushed and refilled)."""
    t = QUARANTINE_TABLE
    v4 = [ip for ip in ips if ":" not in ip]
    v6 = [ip for ip in ips if ":" in ip]
    hooks = ("input", "output", "forward")
    lines = [f"table inet {t} {{", "  set q4 { type ipv4_addr; }", "  set q6 { type ipv6_addr; }"]
    lines.extend(f"  chain {hook} {{ type filter hook {hook} priority -300; }}" for hook in hooks)
    lines.append("}")
    for hook in hooks:
        lines.append(f"flush chain inet {t} {hook}")
        lines.append(
            f"add rule inet {t} {hook} ip saddr @q4 drop; add rule inet {t} {hook} ip daddr @q4 drop; "
            f"add rule inet {t} {hook} ip6 saddr @q6 drop; add rule inet {t} {hook} ip6 daddr @q6 drop"
        )
    verb = "add" if add else "delete"
    if v4:
        lines.append(f"{verb} element inet {t} q4 {{ {', '.join(v4)} }}")
    if v6:
        lines.append(f"{verb} element inet {t} q6 {{ {', '.join(v6)} }}")
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class _Dataplane:
    """The network engine's quarantine (``garrison.network.dataplane.quarantine``): IPv4 addresses in
    the node's ``inet garrison_quarantine`` set, shared with ``garrison policy`` so both see and
    release the same quarantines."""

    quarantine: Callable[[Any, str], bool]
    release: Callable[[Any, str], bool]
    nft: Callable[[], Any]


def _dataplane_quarantine() -> _Dataplane | None:
    try:
        module = importlib.import_module("garrison.network.dataplane.quarantine")
        nft = importlib.import_module("garrison.network.dataplane.nft")
    except ImportError:
        return None
    q, r, n = getattr(module, "quarantine", None), getattr(module, "release", None), getattr(nft, "Nft", None)
    if not (callable(q) and callable(r) and callable(n)):
        return None
    return _Dataplane(q, r, n)


@dataclass(slots=True)
class Quarantined:
    container: Container
    netns_pid: int
    ips: list[str]
    via: str = "nftables"  # host side through "dataplane" or direct "nftables"


class Responder:
    """Carries out a :class:`ResponsePolicy`; ``handle(alert)`` returns the actions as events."""

    def __init__(
        self,
        policy: ResponsePolicy | None = None,
        *,
        resolver: ContainerResolver | None = None,
        dry_run: bool | None = None,
        sink: Callable[[Event], None] | None = None,
        kill_timeout: float = 2.0,
    ) -> None:
        self.policy = policy or ResponsePolicy()
        self.dry_run = self.policy.dry_run if dry_run is None else dry_run
        self.resolver = resolver or ContainerResolver()
        self.sink = sink
        self.kill_timeout = kill_timeout
        self.quarantined: dict[str, Quarantined] = {}

    # -- entry points ----------------------------------------------------------------------
    def handle(self, alert: Alert) -> list[Event]:
        return [self.act(action, alert) for action in self.policy.actions_for(alert)]

    def act(self, action: Action, alert: Alert) -> Event:
        event = alert.event
        proc = event.proc if event is not None else Process(pid=0)
        container = event.container if event is not None else Container()
        if container.is_host and proc.pid > 0:
            resolved = self.resolver.resolve(proc.pid)
            if resolved.id:
                container = resolved
        target = container.id if action in (Action.PAUSE, Action.QUARANTINE) else str(proc.pid)
        result = "dry-run" if self.dry_run else self._do(action, proc, container, event)
        if action.value not in alert.actions and (result == "ok" or self.dry_run):
            alert.actions.append(action.value)
        return self._record(action, alert.rule, proc, container, target, result)

    def _record(
        self, action: Action, rule: str, proc: Process, container: Container, target: str, result: str
    ) -> Event:
        out = Event(
            time=time.time(),
            type=f"response.{action.value}",
            kind=EventKind.RESPONSE,
            sensor="responder",
            proc=proc,
            container=container,
            args={"action": action.value, "rule": rule, "target": target, "result": result, "dry_run": self.dry_run},
            res=0 if result in ("ok", "dry-run") else -1,
        )
        log = logger.info if out.res == 0 else logger.warning
        log("response %s on %s for %r: %s", action.value, target, rule, result)
        if self.sink is not None:
            try:
                self.sink(out)
            except Exception as e:
                logger.warning("response sink failed: %s", e)
        return out

    def _do(self, action: Action, proc: Process, container: Container, event: Event | None) -> str:
        try:
            if action is Action.ALERT:
                return "ok"
            if action is Action.KILL:
                if proc.pid <= 0:
                    return "failed: the alert names no process"
                return kill_process(proc.pid, self.kill_timeout)
            if action is Action.DENY_EXEC:
                if event is not None and event.args.get("perm") is True:
                    return "ok"  # answered by ExecGate at permission time
                return "not-applicable: exec already happened; deny-exec acts through the exec permission hook"
            # the offending process is often gone by now (``cat /etc/shadow``): pause and quarantine
            # act on the container, through any of its live processes
            pid = live_pid(container, proc.pid, oldest=True)
            if action is Action.PAUSE:
                return self.pause_pid(pid)
            return self.quarantine_pid(pid, container)
        except Exception as e:  # an action never takes the pipeline down
            logger.exception("response %s failed", action.value)
            return f"failed: {e}"

    # -- pause -------------------------------------------------------------------------------
    def pause_pid(self, pid: int) -> str:
        unified, freezer, err = _container_cgroups(pid, self.resolver)
        return err or freeze(unified, freezer, True)

    def unpause_pid(self, pid: int) -> str:
        unified, freezer, err = _container_cgroups(pid, self.resolver)
        return err or freeze(unified, freezer, False)

    def unpause(self, container: Container, pid: int) -> Event:
        """Thaw a paused container (``pid``: any of its processes); recorded like the other actions."""
        result = "dry-run" if self.dry_run else self.unpause_pid(pid)
        return self._record(Action.PAUSE, "unpause", Process(pid=pid), container, container.id, result)

    # -- quarantine --------------------------------------------------------------------------
    def quarantine_pid(self, pid: int, container: Container) -> str:
        if container.is_host or not container.id:
            return "refused: process is not in a container"
        try:
            # the agent runs in the host's network namespace (hostNetwork), so ours stands for it
            if _netns_inode(pid) == _netns_inode(os.getpid()):
                return "refused: container shares the host network namespace"
        except OSError:
            return "gone: process had already exited"
        ips = container_addresses(pid)
        result = _nft(_netns_script(), netns_pid=pid)  # inside the container's namespace: always ours
        if result != "ok":
            return result
        direct = list(ips)
        dataplane = _dataplane_quarantine()
        via = "nftables"
        if dataplane is not None and ips:
            v4 = [ip for ip in ips if ":" not in ip]
            try:
                nft = dataplane.nft()
                for ip in v4:
                    dataplane.quarantine(nft, ip)
                direct = [ip for ip in ips if ":" in ip]  # the dataplane's set is IPv4 only
                via = "dataplane"
            except Exception as e:  # the direct rules below still isolate the workload
                logger.warning("network dataplane quarantine failed (%s); using direct nftables", e)
        if direct:
            result = _nft(_host_script(direct, add=True))
            if result != "ok":
                return result
        self.quarantined[container.id] = Quarantined(container, pid, ips, via)
        return "ok"

    def release(self, container_id: str) -> str:
        """Undo a quarantine (both the namespace table and the host-side addresses)."""
        q = self.quarantined.pop(container_id, None)
        if q is None:
            return "failed: not quarantined"
        drop_table = f"table inet {QUARANTINE_TABLE}\ndelete table inet {QUARANTINE_TABLE}\n"  # idempotent
        results = [_nft(drop_table, netns_pid=q.netns_pid)]
        direct = list(q.ips)
        dataplane = _dataplane_quarantine() if q.via == "dataplane" else None
        if dataplane is not None:
            try:
                nft = dataplane.nft()
                for ip in (ip for ip in q.ips if ":" not in ip):
                    dataplane.release(nft, ip)
                direct = [ip for ip in q.ips if ":" in ip]
            except Exception as e:
                results.append(f"failed: dataplane release: {e}")
        if direct:
            results.append(_nft(_host_script(direct, add=False)))
        # the host table is shared with the network dataplane: only our elements are removed, never the table
        bad = [r for r in results if r != "ok"]
        return bad[0] if bad else "ok"


class ExecGate:
    """fanotify exec-permission hook: drift, deny list and ``deny-exec`` rules, in that order.

    ``ruleset`` is anything with ``evaluate(event) -> list[Alert]`` (the rule engine); an alert
    whose policy actions include ``deny-exec`` denies the exec. In dry-run mode the gate always
    allows and records what it would have denied.
    """

    def __init__(
        self,
        responder: Responder,
        *,
        drift: DriftGuard | None = None,
        deny_paths: Iterable[str] = (),
        ruleset: Any = None,
        enrich: Callable[[Event], None] | None = None,
        as_exec: bool = False,
        on_deny: Callable[[Alert, Event], None] | None = None,
    ) -> None:
        self.responder = responder
        self.drift = drift
        self.deny_paths = tuple(deny_paths)
        self.ruleset = ruleset
        self.enrich = enrich
        self.as_exec = as_exec
        self.on_deny = on_deny
        self.denied: list[Event] = []

    def __call__(self, event: Event) -> bool:
        return self.decide(event)

    def decide(self, event: Event) -> bool:
        try:
            if event.container.is_host and event.proc.pid > 0:
                event.container = self.responder.resolver.resolve(event.proc.pid)
            if self.enrich is not None:
                self.enrich(event)
            path = event.fd.name if event.fd is not None and event.fd.name else event.proc.exepath
            reason = ""
            hit: Alert | None = None
            if self.drift is not None and not self.drift.decide(event):
                reason = "drift"
            elif path and any(path.startswith(p) for p in self.deny_paths):
                reason = "deny-list"
            elif self.ruleset is not None:
                subject = self.exec_view(event, path) if self.as_exec else event
                for alert in self.ruleset.evaluate(subject):
                    if Action.DENY_EXEC in self.responder.policy.actions_for(alert):
                        reason, hit = f"rule {alert.rule!r}", alert
                        break
            if not reason:
                return True
            result = "dry-run" if self.responder.dry_run else "ok"
            record = self.responder._record(Action.DENY_EXEC, reason, event.proc, event.container, path, result)
            self.denied.append(record)
            if self.on_deny is not None:
                alert = hit or _denial_alert(event, reason, path)
                if Action.DENY_EXEC.value not in alert.actions:
                    alert.actions.append(Action.DENY_EXEC.value)
                self.on_deny(alert, record)
            return self.responder.dry_run
        except Exception as e:  # never wedge an exec
            logger.warning("exec gate failed, allowing: %s", e)
            return True

    def exec_view(self, event: Event, path: str) -> Event:
        """The exec a permission event is about, as the rules see an ``execve``: the binary being
        executed as ``proc.exe``/``proc.name`` (the caller's other context kept) and its origin
        (image, upper layer, memfd), so a rule a policy maps to ``deny-exec`` matches *before* the
        exec happens."""
        name = os.path.basename(path)[:15]
        proc = dataclasses.replace(event.proc, exe=path, exepath=path, name=name, args=[])
        if self.drift is not None:
            origin = self.drift.origin(event)
        elif event.fd is not None and event.fd.num >= 0:  # the fanotify descriptor, open until answered
            origin = fd_origin(event.proc.pid, event.fd.num)
        else:
            origin = path_origin(event.proc.pid, path)
        if origin != "unknown":
            proc.exe_upper_layer = origin == "upper"
            proc.exe_from_memfd = origin == "memfd"
        args = {**event.args, "perm": True, "filename": path}
        return Event(event.time, "execve", EventKind.PROCESS, event.sensor, proc, event.container, event.fd, args)


def _denial_alert(event: Event, reason: str, path: str) -> Alert:
    """The alert written for an exec denied by drift or the deny list (no rule fired)."""
    return Alert(
        time=event.time,
        rule="Garrison Drift Exec Blocked" if reason == "drift" else "Garrison Exec Denied by Policy",
        priority=Priority.CRITICAL,
        output=f"Blocked exec ({reason}) of {path} (container={event.container.id} image={event.container.image})",
        tags=["container", "mitre_execution", "T1059"] + (["drift"] if reason == "drift" else []),
        fields={"fd.name": path, "response.reason": reason},
        event=event,
    )
