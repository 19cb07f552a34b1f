"""Drift detection in real podman containers: image binaries vs binaries added at runtime."""

from __future__ import annotations

import os
import tarfile
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._containers import Containers, RunningContainer, running_containers, runtime_images_dir

from garrison.core.errors import InputError
from garrison.model.runtime import Container, Event, EventKind, FileDescriptor, Process
from garrison.runtime.containers import ContainerResolver
from garrison.runtime.drift import (
    DriftGuard,
    MountTables,
    annotate,
    exe_origin,
    fd_origin,
    parse_mountinfo,
    path_origin,
)

MEMFD_EXEC = (
    "import os\n"
    "fd = os.memfd_create('payload', 0)\n"
    "os.write(fd, open('/usr/bin/sleep', 'rb').read())\n"
    "os.execv(f'/proc/self/fd/{fd}', ['payload', '300'])\n"
)


@pytest.fixture
def containers() -> Iterator[Containers]:
    yield from running_containers()


# Files the runtime bind-mounts over the image's copy at start (they are the host's, not the image's).
RUNTIME_INJECTED = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/run/.containerenv"}


def _image_executables(key: str) -> list[str]:
    """Every executable regular file in the image's root filesystem tar (what `podman import` loaded)."""
    with tarfile.open(runtime_images_dir() / f"{key}.tar") as tar:
        paths = (
            "/" + m.name.removeprefix("./")
            for m in tar.getmembers()
            if m.isfile() and m.mode & 0o111 and not m.name.startswith(("./dev/", "./proc/", "./sys/"))
        )
        return sorted(set(paths) - RUNTIME_INJECTED)


def _wait_pid(c: RunningContainer, exe_suffix: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in c.pids():
            try:
                if os.readlink(f"/proc/{pid}/exe").startswith(exe_suffix) or os.readlink(f"/proc/{pid}/exe").endswith(
                    exe_suffix
                ):
                    return pid
            except OSError:
                continue
        time.sleep(0.1)
    raise AssertionError(f"no process running {exe_suffix} in {c.name}")


@pytest.mark.parametrize("key", ["busybox", "debian"])
def test_every_image_binary_is_image(containers: Containers, key: str) -> None:
    c = containers.run(key, "sleep", "300")
    executables = _image_executables(key)
    assert len(executables) >= (1 if key == "busybox" else 100)
    tables = MountTables()
    wrong: dict[str, str] = {}
    for path in executables:
        by_path = path_origin(c.pid, path, tables=tables)
        fd = os.open(f"/proc/{c.pid}/root{path}", os.O_RDONLY | os.O_NOFOLLOW)
        try:
            by_fd = fd_origin(c.pid, fd, tables=tables)
        finally:
            os.close(fd)
        if by_path != "image" or by_fd != "image":
            wrong[path] = f"{by_path}/{by_fd}"
    assert wrong == {}
    assert exe_origin(c.pid) == "image"  # the running sleep itself


def test_busybox_applets_run_from_image(containers: Containers) -> None:
    # busybox's applets are symlinks: every one resolves to the image's /bin/busybox.
    c = containers.run("busybox", "sh", "-c", "sleep 300 & cat & exec sleep 301")
    c.exec("sh", "-c", "nohup top -b -d 60 >/dev/null 2>&1 &")
    pid = _wait_pid(c, "/bin/busybox")
    assert exe_origin(pid) == "image"
    assert all(exe_origin(p) == "image" for p in c.pids())


def test_binary_copied_at_runtime_is_upper(containers: Containers) -> None:
    c = containers.run("debian", "sleep", "300")
    c.exec("cp", "/usr/bin/sleep", "/tmp/dropped")
    c.exec("sh", "-c", "/tmp/dropped 300 >/dev/null 2>&1 &")
    pid = _wait_pid(c, "/tmp/dropped")
    assert exe_origin(pid) == "upper"
    assert path_origin(c.pid, "/tmp/dropped") == "upper"
    assert path_origin(c.pid, "/usr/bin/sleep") == "image"


def test_image_binary_modified_at_runtime_is_upper(containers: Containers) -> None:
    # Overwriting an image binary copies it up: it is no longer what the image shipped.
    c = containers.run("debian", "sleep", "300")
    c.exec("cp", "/usr/bin/sleep", "/usr/bin/yes")
    assert path_origin(c.pid, "/usr/bin/yes") == "upper"
    assert path_origin(c.pid, "/usr/bin/true") == "image"


def test_memfd_exec_is_memfd(containers: Containers) -> None:
    c = containers.run("debian", "sleep", "300")
    c.exec("sh", "-c", f'python3 -c "{MEMFD_EXEC}" >/dev/null 2>&1 &')
    pid = _wait_pid(c, "/memfd:payload")
    assert exe_origin(pid) == "memfd"
    event = Event(time=0, type="execve", kind=EventKind.PROCESS, sensor="test", proc=Process(pid=pid))
    assert annotate(event) == "memfd"
    assert event.proc.exe_from_memfd is True and event.proc.exe_upper_layer is False


def test_tmpfs_and_deleted(containers: Containers) -> None:
    c = containers.run("debian", "sleep", "300", extra=["--tmpfs", "/scratch:rw,exec"])
    c.exec("sh", "-c", "cp /usr/bin/sleep /scratch/s && /scratch/s 300 >/dev/null 2>&1 &")
    assert exe_origin(_wait_pid(c, "/scratch/s")) == "tmpfs"
    c.exec("sh", "-c", "cp /usr/bin/sleep /tmp/gone && (/tmp/gone 300 >/dev/null 2>&1 &) && sleep 0.3 && rm /tmp/gone")
    assert exe_origin(_wait_pid(c, "/tmp/gone (deleted)")) == "deleted"


def test_gone_process_is_unknown() -> None:
    assert exe_origin(2**22 + 12345) == "unknown"


def _exec_event(pid: int, path: str, container: Container, fd: int | None = None) -> Event:
    return Event(
        time=time.time(),
        type="execve",
        kind=EventKind.PROCESS,
        sensor="fanotify",
        proc=Process(pid=pid, exepath=path),
        container=container,
        fd=FileDescriptor(type="file", name=path),
        args={"fd": fd} if fd is not None else {},
    )


def test_drift_guard_decisions(containers: Containers) -> None:
    c = containers.run("debian", "sleep", "300")
    c.exec("cp", "/usr/bin/id", "/tmp/id")
    resolver = ContainerResolver()
    seen: list[tuple[str, bool]] = []
    guard = DriftGuard(container_of=resolver.resolve, on_decision=lambda e, o, v: seen.append((o, v)))
    host = Container()
    assert guard.decide(_exec_event(c.pid, "/usr/bin/id", host)) is True
    assert guard.decide(_exec_event(c.pid, "/tmp/id", host)) is False
    fd = os.open(f"/proc/{c.pid}/root/tmp/id", os.O_RDONLY)
    try:
        assert guard.decide(_exec_event(c.pid, "/tmp/id", host, fd=fd)) is False
    finally:
        os.close(fd)
    assert seen == [("image", True), ("upper", False), ("upper", False)]
    # host processes are not judged unless asked
    assert guard.decide(_exec_event(os.getpid(), "/usr/bin/id", host)) is True
    # a deny list forces a verdict even for an image binary; an allow list wins over drift
    strict = DriftGuard(container_of=resolver.resolve, deny_paths=["/usr/bin/id"], allow_paths=["/tmp/"])
    assert strict.decide(_exec_event(c.pid, "/usr/bin/id", host)) is False
    assert strict.decide(_exec_event(c.pid, "/tmp/id", host)) is True
    assert guard.stats.denied == 2 and guard.stats.errors == 0


def test_drift_guard_never_raises() -> None:
    def broken(pid: int) -> Container:
        raise RuntimeError("runtime down")

    guard = DriftGuard(container_of=broken)
    assert guard.decide(_exec_event(1, "/x", Container())) is True
    assert guard.stats.errors == 1
    with pytest.raises(InputError, match="drift deny: unknown origin"):
        DriftGuard(deny=["upper", "sideways"])  # type: ignore[list-item]


MOUNTINFO = (
    "82 54 0:41 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/SWC6,"
    "upperdir=/var/lib/containers/storage/overlay/ef5d/diff,workdir=/var/lib/containers/storage/overlay/ef5d/work\n"
    "84 82 0:45 / /dev rw,nosuid,noexec - tmpfs tmpfs rw,size=65536k,mode=755\n"
    "90 82 8:1 /var/lib/x/with\\040space /data rw - ext4 /dev/sda1 rw\n"
)


def test_parse_mountinfo() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_point for m in mounts] == ["/", "/dev", "/data"]
    assert mounts[0].upperdir == "/var/lib/containers/storage/overlay/ef5d/diff"
    assert mounts[0].lowerdirs == ["/var/lib/containers/storage/overlay/l/SWC6"]
    assert mounts[2].root == "/var/lib/x/with space" and mounts[2].dev == (8, 1)


@pytest.mark.parametrize("bad", ["garbage", "1 2 3 / / rw - overlay", "x 2 0:1 / / rw - tmpfs t rw"])
def test_parse_mountinfo_rejects(bad: str) -> None:
    with pytest.raises(InputError, match=r"^mountinfo: line 1 "):
        parse_mountinfo(bad)


@given(st.text(max_size=300))
def test_parse_mountinfo_fuzz(text: str) -> None:
    try:
        mounts = parse_mountinfo(text)
    except InputError as e:
        assert "\n" not in str(e)
        return
    assert all(isinstance(m.dev, tuple) for m in mounts)


def test_parse_mountinfo_real() -> None:
    mounts = parse_mountinfo(open("/proc/self/mountinfo").read())
    assert any(m.mount_point == "/" for m in mounts)
