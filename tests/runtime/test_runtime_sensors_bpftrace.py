"""Optional bpftrace backend: string arguments of openat/linkat/symlinkat from real commands; parser fuzz."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import Collector, cgroup_v2_id, require_root

from garrison.runtime.sensors.bpftrace import SEP, BpftraceSensor, build_script, complete, parse_record


@pytest.mark.parametrize("exit_probes", [True, False], ids=["exit-probes", "entry-probes"])
def test_file_syscalls_with_paths(tmp_path: Path, exit_probes: bool) -> None:
    require_root()
    if shutil.which("bpftrace") is None:
        pytest.fail("bpftrace is not installed (apt-get install bpftrace; listed in the Makefile's DEB_PACKAGES)")
    sensor = BpftraceSensor(exit_probes=exit_probes)
    assert sensor.available() is None
    got = Collector(lambda e: str(tmp_path) in (e.fd.name if e.fd else ""))
    sensor.start(got)
    try:
        target = tmp_path / "f"
        action = f"rm -f {tmp_path}/hard {tmp_path}/soft; echo x > {target}; ln {target} {tmp_path}/hard; ln -s {target} {tmp_path}/soft"
        for _ in range(5):  # the first probe hits can trail bpftrace's attach report on a loaded machine
            subprocess.run(["sh", "-c", action], check=True)
            if got.wait_for(lambda e: e.type == "symlinkat", timeout=2):
                break
        subprocess.run(["rm", "-f", f"{tmp_path}/hard"], check=True)
        got.wait_for(lambda e: e.type == "unlinkat" and e.fd is not None and e.fd.name.endswith("/hard"), timeout=3)
    finally:
        sensor.stop()
    by_type = {e.type: e for e in got.snapshot()}
    opened = by_type["openat"]
    assert opened.fd is not None and opened.fd.name == str(tmp_path / "f") and opened.args["flags"] & 3 == 1
    assert opened.proc.name == "sh" and opened.proc.pid > 0
    assert opened.fd.num >= 0 and opened.res == opened.fd.num  # reported at exit, with the result
    removed = [e for e in got.snapshot() if e.type == "unlinkat" and e.fd is not None and e.fd.name.endswith("/hard")]
    assert removed and removed[0].args["name"] == str(tmp_path / "hard")
    linked = by_type["linkat"].args
    assert linked["target"] == str(tmp_path / "f") and linked["linkpath"] == str(tmp_path / "hard")
    assert linked["cgroup_id"] == cgroup_v2_id()  # the kernel's cgroup id, for attribution
    assert by_type["symlinkat"].args["linkpath"] == str(tmp_path / "soft")
    assert sensor.stats().errors == 0
    # the exit probes found the saved registers where the kernel config says (else they fell back)
    assert (sensor.stack_top is not None) == exit_probes


def test_exit_probes_fall_back_when_registers_are_elsewhere(tmp_path: Path) -> None:
    """A wrong register offset is caught by the readiness probe (it reads back its own pid
    argument), and the sensor runs on entry probes instead of reading garbage."""
    require_root()
    if shutil.which("bpftrace") is None:
        pytest.fail("bpftrace is not installed (apt-get install bpftrace; listed in the Makefile's DEB_PACKAGES)")
    sensor = BpftraceSensor(event_types={"openat"}, exit_probes=True)
    assert sensor.stack_top is not None
    sensor.stack_top -= 4096  # a page short of the real top: another part of the stack
    got = Collector(lambda e: e.fd is not None and e.fd.name == str(tmp_path / "w"))
    sensor.start(got)
    try:
        assert sensor.stack_top is None
        for _ in range(5):
            subprocess.run(["sh", "-c", f"echo x > {tmp_path}/w"], check=True)  # not us: our own pid is filtered
            if got.wait_for(lambda e: e.type == "openat", timeout=2):
                break
    finally:
        sensor.stop()
    opened = [e for e in got.snapshot() if e.type == "openat"]
    assert opened and opened[0].args["flags"] & 3 == 1 and opened[0].fd is not None and opened[0].fd.num >= 0


@pytest.mark.parametrize("exit_probes", [True, False], ids=["exit-probes", "entry-probes"])
def test_read_opens_filtered_in_kernel(tmp_path: Path, exit_probes: bool) -> None:
    """Reads of credential files leave the kernel; the reads every exec and daemon makes
    (``/etc/ld.so.cache``, ``/etc/passwd``) do not, nor do reads elsewhere."""
    require_root()
    if shutil.which("bpftrace") is None:
        pytest.fail("bpftrace is not installed (apt-get install bpftrace; listed in the Makefile's DEB_PACKAGES)")
    plain = tmp_path / "plain"
    plain.write_text("x")
    sensor = BpftraceSensor(event_types={"openat", "open"}, exit_probes=exit_probes)
    readers = {"cat", "head"}
    got = Collector(lambda e: e.type in ("openat", "open") and e.proc.name in readers)
    sensor.start(got)
    try:
        for _ in range(5):  # the first probe hits can trail bpftrace's attach report on a loaded machine
            subprocess.run(["cat", "/etc/shadow", "/etc/passwd", str(plain)], check=True, stdout=subprocess.DEVNULL)
            if got.wait_for(lambda e: e.fd is not None and e.fd.name == "/etc/shadow", timeout=2):
                break
        subprocess.run(["head", "-c1", "/etc/gshadow"], check=True, stdout=subprocess.DEVNULL)
        got.wait_for(lambda e: e.fd is not None and e.fd.name == "/etc/gshadow", timeout=3)
    finally:
        sensor.stop()
    names = {e.fd.name for e in got.snapshot() if e.fd is not None}
    assert {"/etc/shadow", "/etc/gshadow"} <= names
    assert not names & {"/etc/passwd", "/etc/ld.so.cache", str(plain)}, names



def test_script_only_for_needed_types() -> None:
    script = build_script(42, {"linkat"})
    assert "sys_enter_linkat" in script and "openat" not in script and "pid != 42" in script
    assert BpftraceSensor(event_types={"ptrace"}).available() is not None
    # with the register offset known, one probe per open/unlink call, at its exit
    opens = build_script(42, {"openat", "unlinkat"}, 16384)
    assert "sys_exit_openat" in opens and "sys_exit_unlinkat" in opens
    assert "sys_enter_openat" not in opens and "sys_enter_unlinkat" not in opens
    paired = build_script(42, {"openat"})
    assert "sys_enter_openat" in paired and "sys_exit_openat" in paired


def test_parse_exit_records() -> None:
    """An ``_x`` record is the whole call: arguments, cgroup id, then the result."""
    fields = ["openat_x", "7", "8", "cat", "/etc/shadow", "0", "0", "4242", "3"]
    event, _ = parse_record(json.dumps({"type": "printf", "data": SEP.join(fields) + "\n"}), 5.0)
    assert event is not None and event.type == "openat" and event.fd is not None
    assert (event.fd.name, event.fd.num, event.res, event.args["cgroup_id"]) == ("/etc/shadow", 3, 3, 4242)
    assert (event.proc.pid, event.proc.tid, event.proc.name) == (7, 8, "cat")
    failed, _ = parse_record(json.dumps({"type": "printf", "data": SEP.join([*fields[:-1], "-13"])}), 5.0)
    assert failed is not None and failed.fd is not None and failed.fd.num == -1 and failed.res == -13
    gone = ["unlinkat_x", "7", "7", "rm", "/var/log/x", "512", "4242", "0"]
    removed, _ = parse_record(json.dumps({"type": "printf", "data": SEP.join(gone)}), 5.0)
    assert removed is not None and removed.type == "unlinkat" and removed.fd is not None
    assert removed.fd.type == "directory" and removed.res == 0 and removed.args["cgroup_id"] == 4242


def test_parse_records() -> None:
    line = json.dumps({"type": "printf", "data": SEP.join(["openat", "7", "7", "cat", "/etc/shadow", "0", "0"]) + "\n"})
    event, lost = parse_record(line, 1.0)
    assert event is not None and lost == 0 and event.fd is not None and event.fd.name == "/etc/shadow"
    done, _ = parse_record(json.dumps({"type": "printf", "data": SEP.join(["openat_exit", "7", "7", "3"])}), 2.0)
    assert done is not None and done.type == "openat_exit" and done.res == 3
    joined = complete(event, done.res, done.time)
    assert joined.fd is not None and joined.fd.num == 3 and joined.res == 3 and joined.time == 2.0
    assert parse_record(json.dumps({"type": "lost_events", "data": {"events": 12}}), 1.0) == (None, 12)


@given(st.text(max_size=120))
def test_parse_record_fuzz(text: str) -> None:
    try:
        parse_record(text, 0.0)
    except (ValueError, TypeError):
        pass


@given(st.lists(st.text(max_size=10), max_size=8))
def test_parse_record_fuzz_fields(fields: list[str]) -> None:
    try:
        parse_record(json.dumps({"type": "printf", "data": SEP.join(fields)}), 0.0)
    except (ValueError, TypeError):
        pass
