"""The ``ebpf`` sensor: our own BPF programs, built with clang, loaded through libbpf, against the
running kernel; records parsed from the ring buffer; the kernel's filter; no wake-up per exec."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.runtime._sensorkit import Collector, cgroup_v2_id, require_root

from garrison.runtime.sensors import bpftrace as bt
from garrison.runtime.sensors import ebpf
from garrison.runtime.sensors.ebpf import EbpfSensor, build_object, parse_rec
from garrison.runtime.sensors.interface import SensorError


def _started(sensor: EbpfSensor, got: Collector) -> EbpfSensor:
    require_root()
    assert sensor.available() is None, sensor.available()
    sensor.start(got)
    return sensor


def test_exec_file_link_records_from_the_kernel(tmp_path: Path) -> None:
    got = Collector(lambda e: str(tmp_path) in (e.fd.name if e.fd else "") or str(tmp_path) in " ".join(e.proc.args))
    sensor = _started(EbpfSensor(), got)
    try:
        action = f"echo x > {tmp_path}/f; ln {tmp_path}/f {tmp_path}/hard; ln -s {tmp_path}/f {tmp_path}/soft; rm {tmp_path}/hard"
        subprocess.run(["sh", "-c", action], check=True)
        got.wait_for(lambda e: e.type == "unlinkat", timeout=3)
    finally:
        sensor.stop()
    events = got.snapshot()
    by_type = {e.type: e for e in events}
    shell = next(e for e in events if e.type == "execve" and e.proc.exepath in ("/bin/sh", "/usr/bin/sh"))
    # the argv, read in the kernel: its first STR_MAX bytes, said to be truncated when it is longer
    area = b"\0".join(a.encode() for a in ["sh", "-c", action]) + b"\0"
    assert shell.sensor == "ebpf" and shell.args["truncated"] is (len(area) > ebpf.STR_MAX)
    assert "\0".join([shell.proc.exe, *shell.proc.args]).encode() == area[: ebpf.STR_MAX].rstrip(b"\0")
    assert "origin" not in shell.args  # a host binary: no overlay, no image to drift from
    opened = by_type["openat"]
    assert opened.fd is not None and opened.fd.name == f"{tmp_path}/f" and opened.args["flags"] & 3 == 1
    assert opened.fd.num >= 0 and opened.res == opened.fd.num and opened.proc.name == "sh"
    assert opened.args["cgroup_id"] == cgroup_v2_id()
    assert by_type["linkat"].args["target"] == f"{tmp_path}/f" and by_type["linkat"].args["linkpath"] == f"{tmp_path}/hard"
    assert by_type["symlinkat"].args["linkpath"] == f"{tmp_path}/soft"
    removed = by_type["unlinkat"]
    assert removed.fd is not None and removed.fd.name == f"{tmp_path}/hard" and removed.res == 0
    assert abs(opened.time - time.time()) < 30  # kernel time, as epoch
    stats = sensor.stats()
    assert stats.errors == 0 and stats.lost == 0 and not stats.running


def test_read_opens_filtered_in_kernel(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    got = Collector(lambda e: e.type in ("openat", "open") and e.proc.name in ("cat", "head"))
    sensor = _started(EbpfSensor(event_types={"openat", "open"}), got)
    try:
        subprocess.run(["cat", "/etc/shadow", "/etc/passwd", str(plain)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["head", "-c1", "/etc/gshadow"], check=True, stdout=subprocess.DEVNULL)
        got.wait_for(lambda e: e.fd is not None and e.fd.name == "/etc/gshadow", timeout=3)
    finally:
        sensor.stop()
    names = {e.fd.name for e in got.snapshot() if e.fd is not None}
    assert {"/etc/shadow", "/etc/gshadow"} <= names
    assert not names & {"/etc/passwd", "/etc/ld.so.cache", str(plain)}, names
    # only the open programs were loaded: no exec records
    assert not [e for e in got.snapshot() if e.type == "execve"]


def test_reads_under_home_ssh_directories_leave_the_kernel() -> None:
    """``/home/<user>/.ssh/...`` (the glob of Falco's ``user_ssh_directory``; our SSH private key
    rule) is judged in the kernel too: a 64-byte read for paths under /home only."""
    home = Path("/home") / f"garrison-test-{uuid.uuid4().hex[:8]}"
    wanted = home / ".ssh" / "id_ed25519"
    decoys = [home / "x.ssh" / "a", home / ".sshx", home / "sub" / ".ssh" / "k"]
    for path in [wanted, *decoys]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("k")
    got = Collector(lambda e: e.fd is not None and e.fd.name.startswith(str(home)))
    sensor = _started(EbpfSensor(event_types={"openat"}), got)
    try:
        subprocess.run(["cat", str(wanted), *map(str, decoys)], check=True, stdout=subprocess.DEVNULL)
        got.wait_for(lambda e: True, timeout=3)
        time.sleep(0.3)
    finally:
        sensor.stop()
        shutil.rmtree(home)
    assert [e.fd.name for e in got.snapshot() if e.fd is not None] == [str(wanted)]


def test_exec_records_wait_for_the_drain_not_a_wake_up(tmp_path: Path) -> None:
    """An exec record is submitted without a wake-up: it arrives with the next drain (every
    DRAIN_MS), and a storm of execs costs the reader a few drains, not one wake-up per exec."""
    got = Collector(lambda e: e.type == "execve" and e.proc.exepath.endswith("/true"))
    sensor = _started(EbpfSensor(event_types={"execve"}), got)
    try:
        before = _wakeups(sensor)
        subprocess.run(["sh", "-c", "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done"], check=True)
        got.wait_for(lambda e: True, timeout=3, count=300)
        after = _wakeups(sensor)
    finally:
        sensor.stop()
    assert len(got.snapshot()) >= 300
    # the reader thread's voluntary context switches: a drain every DRAIN_MS ms, not 300 wake-ups
    elapsed_drains = (after[1] - before[1]) / (ebpf.DRAIN_MS / 1000)
    assert after[0] - before[0] <= elapsed_drains * 1.5 + 20, (before, after)


def test_a_quiet_ring_is_drained_less_often() -> None:
    """With nothing to read, the drain interval backs off to IDLE_DRAIN_MS: about ten wake-ups a
    second, not a hundred (only linkat loaded: a call next to nothing on a node makes)."""
    got = Collector(lambda e: False)
    sensor = _started(EbpfSensor(event_types={"linkat"}), got)
    try:
        time.sleep(0.5)  # past the back-off
        before = _wakeups(sensor)
        time.sleep(2.0)
        after = _wakeups(sensor)
    finally:
        sensor.stop()
    per_second = (after[0] - before[0]) / (after[1] - before[1])
    assert per_second < 1000 / ebpf.DRAIN_MS / 2, per_second  # well under a drain every DRAIN_MS


def _wakeups(sensor: EbpfSensor) -> tuple[int, float]:
    thread = sensor._thread
    assert thread is not None and thread.native_id is not None
    text = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(re.search(r"voluntary_ctxt_switches:\s+(\d+)", text).group(1)), time.monotonic()  # type: ignore[union-attr]


def test_the_object_is_cached_by_source_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_CACHE_DIR", str(tmp_path))
    built = build_object()
    assert built.parent == tmp_path / "garrison" / "bpf" and built.stat().st_size > 1000
    assert built.read_bytes()[:4] == b"\x7fELF"
    mtime = built.stat().st_mtime_ns
    assert build_object() == built and built.stat().st_mtime_ns == mtime  # not rebuilt
    copy = tmp_path / "garrison.bpf.c"
    copy.write_text(ebpf.SOURCE.read_text() + "\n/* changed */\n")
    monkeypatch.setattr(ebpf, "SOURCE", copy)
    assert build_object() != built  # another source, another object


def test_a_broken_source_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_CACHE_DIR", str(tmp_path))
    bad = tmp_path / "garrison.bpf.c"
    bad.write_text("int broken(void) { return undefined_thing; }\n")
    monkeypatch.setattr(ebpf, "SOURCE", bad)
    with pytest.raises(SensorError, match=r"ebpf: cannot compile garrison\.bpf\.c: .*undefined_thing"):
        build_object()
    assert not list((tmp_path / "garrison" / "bpf").glob("*.o"))


def test_without_a_compiler_the_sensor_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    monkeypatch.setenv("GARRISON_CACHE_DIR", str(tmp_path))  # nothing built yet
    monkeypatch.setattr(ebpf, "compiler", lambda: None)
    why = EbpfSensor().available()
    assert why is not None and "apt-get install clang" in why


def test_prefixes_agree_with_bpftrace() -> None:
    """The C program and the bpftrace script filter reads by the same path prefixes."""
    source = ebpf.SOURCE.read_text()
    table = re.search(r"prefixes\[NPREFIX\]\[PREFIX_MAX\] = \{(.*?)\};", source, re.S)
    assert table is not None
    assert tuple(re.findall(r'"([^"]*)"', table.group(1))) == bt.READ_PREFIXES
    assert int(re.search(r"#define NPREFIX (\d+)", source).group(1)) == len(bt.READ_PREFIXES)  # type: ignore[union-attr]
    assert int(re.search(r"#define PREFIX_MAX (\d+)", source).group(1)) > max(map(len, bt.READ_PREFIXES))  # type: ignore[union-attr]


def _rec(rtype: int, s0: bytes = b"", s1: bytes = b"", a0: int = 0, a1: int = 0, len1: int = 0, ret: int = 0) -> bytes:
    return ebpf._REC.pack(rtype, 7, 8, ret, 5_000_000_000, 99, b"cat", a0, a1, 0, len1, s0, s1)


def test_parse_records() -> None:
    argv = b"bash\0-c\0id\0"
    exe = parse_rec(_rec(ebpf.REC_EXEC, b"/usr/bin/bash", argv, a0=bt.OVERLAYFS_MAGIC, a1=1, len1=len(argv)), 100.0)
    assert exe is not None and exe.type == "execve" and exe.sensor == "ebpf" and exe.time == 105.0
    assert (exe.proc.exepath, exe.proc.exe, exe.proc.args) == ("/usr/bin/bash", "bash", ["-c", "id"])
    assert exe.args["origin"] == "upper" and exe.args["truncated"] is False
    long = parse_rec(_rec(ebpf.REC_EXEC, b"/x", b"a" * 256, len1=4000), 0.0)
    assert long is not None and long.args["truncated"] is True
    opened = parse_rec(_rec(ebpf.REC_OPENAT, b"/etc/shadow", a0=0, ret=3), 0.0)
    assert opened is not None and opened.fd is not None and (opened.fd.name, opened.fd.num) == ("/etc/shadow", 3)
    assert opened.args["cgroup_id"] == 99 and opened.proc.name == "cat"
    link = parse_rec(_rec(ebpf.REC_SYMLINKAT, b"/etc/passwd", b"/tmp/p"), 0.0)
    assert link is not None and link.args["target"] == "/etc/passwd" and link.args["linkpath"] == "/tmp/p"
    assert parse_rec(_rec(ebpf.REC_READY), 0.0) is None
    with pytest.raises(ValueError):
        parse_rec(_rec(42), 0.0)
    with pytest.raises(ValueError):
        parse_rec(b"\0" * 10, 0.0)


@given(st.binary(min_size=0, max_size=ebpf._REC.size + 8))
def test_parse_rec_fuzz(data: bytes) -> None:
    try:
        parse_rec(data, 0.0)
    except (ValueError, struct.error):
        pass



def test_programs_the_kernel_refuses_leave_auto_mode_on_bpftrace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifier's refusal is found before anything starts (a trial load): ``auto`` then runs
    bpftrace, and naming ``ebpf`` explicitly is one clear error."""
    require_root()
    from garrison.runtime.sensors import build_sensors

    monkeypatch.setenv("GARRISON_CACHE_DIR", str(tmp_path))
    source = ebpf.SOURCE.read_text()
    bounded = "bpf_probe_read_user(r->s1, len & (ARGV_MAX - 1), (void *)start);"
    assert bounded in source
    bad = tmp_path / "garrison.bpf.c"
    bad.write_text(source.replace(bounded, "bpf_probe_read_user(r->s1, len, (void *)start);"))  # unbounded size
    monkeypatch.setattr(ebpf, "SOURCE", bad)
    why = EbpfSensor(event_types={"execve"}).available()
    assert why is not None and "refused" in why
    chosen, skipped = build_sensors(None, event_types={"execve", "openat"})
    assert "refused" in skipped["ebpf"] and "bpftrace" in {s.name for s in chosen}
    with pytest.raises(SensorError, match="refused"):
        build_sensors(["proc", "ebpf"], event_types={"execve"})
