"""Audit netlink sensor against the real kernel: complete exec records, state restore, 2k exec/s zero loss."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import AUDIT_LOCK_WAIT, Collector, exec_storm, require_root

from garrison.model.runtime import Event
from garrison.runtime.sensors.audit import (
    AUDIT_LIST_RULES,
    AuditSensor,
    _Netlink,
    decode_value,
    parse_argv,
    record_header,
    rule_key,
    tty_number,
)
from garrison.runtime.sensors.proc_connector import ProcConnectorSensor


def _status() -> tuple[int, int, int]:
    nl = _Netlink()
    try:
        st_ = nl.status()
        return st_.enabled, st_.pid, st_.backlog_limit
    finally:
        nl.close()


def _garrison_rules() -> list[str]:
    nl = _Netlink()
    try:
        rules = nl.request(AUDIT_LIST_RULES, want=AUDIT_LIST_RULES, dump=True)
    finally:
        nl.close()
    return [k for r in rules if (k := rule_key(r)) and k.startswith(f"garrison-{os.getpid()}")]


def test_exec_record_is_complete_and_state_is_restored(tmp_path: Path) -> None:
    require_root()
    sensor = AuditSensor(lock_timeout=AUDIT_LOCK_WAIT)
    got = Collector(lambda e: e.type == "execve")
    marker = f"mark-{uuid.uuid4().hex[:8]}"
    long_arg = "L" * 9000  # longer than one EXECVE record: split into a%d[i] chunks
    args = [marker, "two words", 'quote"d', long_arg, "é-ünïcode", ""]
    sensor.start(got)
    try:
        before = _status()
        assert before[1] == os.getpid()  # we are the audit daemon while running
        assert len(_garrison_rules()) >= 1
        subprocess.run(["/bin/true", *args], check=True, cwd=tmp_path)
        found = got.wait_for(lambda e: e.proc.args[:1] == [marker], timeout=10)
    finally:
        sensor.stop()
    assert found, "exec record not received"
    ev = found[0]
    assert ev.proc.args == args
    assert ev.proc.exe == "/bin/true"
    assert ev.proc.exepath in ("/usr/bin/true", "/bin/true")
    assert ev.proc.name == "true"
    assert ev.proc.cwd == str(tmp_path)
    assert ev.proc.uid == 0 and ev.proc.gid == 0 and ev.proc.euid == 0
    assert ev.proc.ppid == os.getpid()
    assert ev.res == 0 and ev.args["filename"] == "/bin/true"
    own = int(Path("/proc/self/loginuid").read_text())
    assert ev.proc.loginuid == (-1 if own == 4294967295 else own)
    # stopped: our rules are gone and the daemon pid released
    assert _garrison_rules() == []
    assert _status()[1] != os.getpid()
    stats = sensor.stats()
    assert stats.lost == 0 and stats.errors == 0 and stats.received >= 1


def test_failed_exec_reports_negative_result(tmp_path: Path) -> None:
    require_root()
    script = tmp_path / "noexec.sh"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    sensor = AuditSensor(lock_timeout=AUDIT_LOCK_WAIT)
    got = Collector(lambda e: e.type == "execve" and e.res != 0)
    sensor.start(got)
    try:
        try:
            subprocess.run([str(script)], check=False)
        except OSError:
            pass
        found = got.wait_for(lambda e: e.args.get("filename") == str(script), timeout=10)
    finally:
        sensor.stop()
    assert found and found[0].res == -2  # ENOENT for the interpreter


def _storm_once(count: int) -> tuple[float, int, int, bool, bool]:
    """One 2k exec/s storm under audit + proc connector: ``(rate, audit lost, proc lost, audit complete, proc complete)``."""
    audit = AuditSensor(lock_timeout=AUDIT_LOCK_WAIT)
    proc = ProcConnectorSensor()
    marker = f"storm-{uuid.uuid4().hex[:8]}"
    audit_seen = Collector(lambda e: e.type == "execve" and e.proc.args[:1] == [marker])
    exec_pids: set[int] = set()

    def on_proc(e: Event) -> None:
        if e.type == "execve":
            exec_pids.add(e.proc.pid)

    audit.start(audit_seen)
    proc.start(on_proc)
    try:
        pids, rate = exec_storm(2100, count, marker)
        audit_seen.wait_for(lambda e: True, timeout=20, count=count)
        time.sleep(0.5)
    finally:
        proc.stop()
        audit.stop()
    seen = audit_seen.snapshot()
    audit_complete = len(seen) == count and {e.proc.pid for e in seen} == set(pids)
    return rate, audit.stats().lost, proc.stats().lost, audit_complete, set(pids) <= exec_pids


def test_two_thousand_execs_per_second_without_loss() -> None:
    """6000 execs at 2k exec/s: audit and proc connector report every one, lost stays 0.

    Other test workers share the two cores; when they keep the generator below 1900 exec/s the
    storm is repeated (every attempt must still be lossless and complete).
    """
    require_root()
    rates = []
    for _ in range(5):
        rate, audit_lost, proc_lost, audit_complete, proc_complete = _storm_once(6000)
        assert audit_lost == 0 and proc_lost == 0
        assert audit_complete and proc_complete
        rates.append(rate)
        if rate >= 1900:
            break
    assert max(rates) >= 1900, f"load generator reached only {max(rates):.0f} exec/s"


def test_audit_in_use_is_explained(tmp_path: Path) -> None:
    """While one sensor is the audit daemon, a second one says who holds it and how to fix it."""
    require_root()
    first = AuditSensor(lock_timeout=AUDIT_LOCK_WAIT)
    first.start(lambda e: None)
    try:
        second = AuditSensor(lock_timeout=0)
        from garrison.runtime.sensors.interface import SensorError

        try:
            second.start(lambda e: None)
        except SensorError as err:
            assert "audit" in str(err) and ("lock" in str(err) or "in use" in str(err))
        else:
            second.stop()
            raise AssertionError("second audit sensor started")
    finally:
        first.stop()


def test_record_parsers() -> None:
    when, serial, body = record_header('audit(1700000000.123:456): argc=2 a0="ls" a1=2D6C')
    assert (when, serial) == (1700000000.123, 456) and body.startswith("argc=2")
    assert parse_argv([body]) == ["ls", "-l"]
    split = ['argc=2 a0="x" a1_len=6 a1[0]=616263', "a1[1]=646566"]
    assert parse_argv(split) == ["x", "abcdef"]
    assert decode_value('"/usr/bin/true"') == "/usr/bin/true"
    assert decode_value("2F746D70") == "/tmp"
    assert decode_value("(null)") == ""
    assert tty_number("pts0") == 136 << 8
    assert tty_number("(none)") == 0


@given(st.text(max_size=300))
def test_record_header_fuzz(text: str) -> None:
    try:
        record_header(text)
    except ValueError:
        pass


@given(st.lists(st.text(max_size=80), max_size=4))
def test_argv_parser_fuzz(bodies: list[str]) -> None:
    try:
        out = parse_argv(bodies)
    except ValueError:
        return
    assert isinstance(out, list)


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=30), max_size=6))
def test_argv_round_trip(args: list[str]) -> None:
    """Encode as the kernel does (quoted when printable without quotes/spaces, hex otherwise) and decode."""
    parts = [f"argc={len(args)}"]
    for i, a in enumerate(args):
        raw = a.encode()
        plain = all(0x21 <= b < 0x7F and b != 0x22 for b in raw)
        parts.append(f'a{i}="{a}"' if plain and raw else f"a{i}={raw.hex().upper()}")
    assert parse_argv([" ".join(parts)]) == args


def test_killed_sensor_is_undone_by_the_next_one(tmp_path: Path) -> None:
    """SIGKILL leaves our rules and settings behind; the next sensor removes and restores them."""
    require_root()
    import signal
    import sys

    state = tmp_path / "state"
    code = (
        "import sys, time\n"
        "from garrison.runtime.sensors.audit import AuditSensor\n"
        f"s = AuditSensor(lock_timeout={AUDIT_LOCK_WAIT}, state_dir={str(state)!r})\n"
        "s.start(lambda e: None)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        nl = _Netlink()
        try:
            during = nl.status()
            keys = [rule_key(r) for r in nl.request(AUDIT_LIST_RULES, want=AUDIT_LIST_RULES, dump=True)]
        finally:
            nl.close()
        assert during.pid == child.pid and f"garrison-{child.pid}" in keys
        assert (state / f"audit-{child.pid}.json").exists()
        original = json.loads((state / f"audit-{child.pid}.json").read_text())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    sensor = AuditSensor(lock_timeout=AUDIT_LOCK_WAIT, state_dir=str(state))
    sensor.start(lambda e: None)
    sensor.stop()
    nl = _Netlink()
    try:
        after = nl.status()
        keys = [rule_key(r) for r in nl.request(AUDIT_LIST_RULES, want=AUDIT_LIST_RULES, dump=True)]
    finally:
        nl.close()
    assert f"garrison-{child.pid}" not in keys
    assert (after.enabled, after.backlog_limit, after.rate_limit) == (
        original["enabled"],
        original["backlog_limit"],
        original["rate_limit"],
    )
    assert after.pid != child.pid and list(state.iterdir()) == []
