"""Container identity from cgroup paths: real paths from upstream test suites and bug reports.

Sources of the strings: falcosecurity/libs ``test/.../container_cgroup`` (containerd/CRI-O/Docker,
cgroupfs and systemd drivers), the Falco container plugin's matchers, neuvector's cgroup tests
(Debian and CentOS Docker, cgroup v1), a kubelet error log (containerd under kubelet.slice with the
unified hierarchy at /sys/fs/cgroup/unified), podman's own cgroup naming (libpod, libpod-conmon,
rootless ``/container``), and this machine's podman with the cgroupfs driver.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.runtime.containers import (
    match_cgroup_path,
    match_proc_cgroup,
    parse_proc_cgroup,
    split_image,
)

ID_A = "605439acbd4fb18c145069289094b17f17e0cfa938f78012d4960bc797305f22"
ID_B = "73bfe475650de66df8e2affdc98d440dcbe84f8df83b6f75a68a82eb7026136a"
ID_C = "17d8c9eacc629f9945f304d89e9708c0c619649a484a215b240628319548a09f"
ID_D = "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8"
ID_E = "d52db56a9c80d536a91354c0951c061187ca46249e64865a12703003d8f42366"
ID_F = "abb37780fc913b3720641a4039186adb06f5d1de0229de0e8707f12e2fde5a21"
ID_G = "b3eb4e0a3c3cdbcde7fd7fdb2ac382235353bd831b5e3b7819fe28502a8a9b27"
ID_H = "64de256b4158dbfd331e27f93bf807f141883be795fd1b2ae7f40294f32c5bfd"
ID_I = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
ID_J = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970"

PATHS = [
    pytest.param(
        f"/kubepods/besteffort/podac04f3f2-1f2c-11e9-b015-1ebee232acfa/{ID_A}",
        "containerd",
        ID_A,
        "ac04f3f2-1f2c-11e9-b015-1ebee232acfa",
        id="containerd-cgroupfs",
    ),
    pytest.param(
        f"/kubepods/besteffort/pod63b3ebfc-2890-11e9-8154-16bf8ef8d9dc/crio-{ID_B}",
        "cri-o",
        ID_B,
        "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc",
        id="crio-cgroupfs",
    ),
    pytest.param(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod63b3ebfc_2890_11e9_8154_16bf8ef8d9dc"
        f".slice/crio-{ID_C}.scope",
        "cri-o",
        ID_C,
        "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc",
        id="crio-systemd",
    ),
    pytest.param(f"/docker/{ID_D}", "docker", ID_D, "", id="docker-cgroupfs"),
    pytest.param(f"/docker.slice/docker-{ID_D}.scope", "docker", ID_D, "", id="docker-systemd"),
    pytest.param(f"/system.slice/docker-{ID_I}.scope", "docker", ID_I, "", id="docker-systemd-centos"),
    pytest.param(f"/{ID_J}", "docker", ID_J, "", id="docker-debian-v1-root"),
    pytest.param(
        f"/kubepods-burstable-podbd12dd3393227d950605a2444b13c27a.slice:cri-containerd:{ID_E}",
        "containerd",
        ID_E,
        "",
        id="containerd-no-systemd-cgroup",
    ),
    pytest.param(
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
        f"kubelet-kubepods-burstable-poda45947e4_314c_4694_8f05_5e1425a02de4.slice/cri-containerd-{ID_F}.scope",
        "containerd",
        ID_F,
        "a45947e4-314c-4694-8f05-5e1425a02de4",
        id="containerd-systemd-kubelet-slice",
    ),
    pytest.param(f"/machine.slice/libpod-{ID_H}.scope", "podman", ID_H, "", id="podman-systemd"),
    pytest.param(
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID_H}.scope/container",
        "podman",
        ID_H,
        "",
        id="podman-rootless",
    ),
    pytest.param(f"/libpod_parent/libpod-{ID_G}", "podman", ID_G, "", id="podman-cgroupfs"),
]

NOT_CONTAINERS = [
    pytest.param("/user.slice/user-1000.slice/user@1000.service/init.scope", id="systemd-user"),
    pytest.param(f"/machine.slice/libpod-conmon-{ID_H}.scope", id="podman-conmon-systemd"),
    pytest.param("/libpod_parent/conmon", id="podman-conmon-cgroupfs"),
    pytest.param(f"/system.slice/crio-conmon-{ID_B}.scope", id="crio-conmon"),
    pytest.param("/", id="root"),
    pytest.param("/default/test_container", id="containerd-native-name"),
    pytest.param(f"/docker/{ID_D[:63]}", id="short-id"),
    pytest.param(f"/docker/{ID_D}0", id="long-id"),
    pytest.param("/process_api/0ad687dbfb656a2c0551dec1c3823db6", id="32-hex-is-not-an-id"),
]


@pytest.mark.parametrize(("path", "runtime", "full_id", "pod_uid"), PATHS)
def test_cgroup_path_names_container(path: str, runtime: str, full_id: str, pod_uid: str) -> None:
    found = match_cgroup_path(path)
    assert found is not None
    assert (found.runtime, found.full_id, found.id, found.pod_uid) == (runtime, full_id, full_id[:12], pod_uid)


@pytest.mark.parametrize("path", NOT_CONTAINERS)
def test_cgroup_path_is_host(path: str) -> None:
    assert match_cgroup_path(path) is None


def test_cgroup_v1_file_every_hierarchy() -> None:
    # neuvector's CentOS sample: one line per v1 hierarchy, merged controllers, name=systemd.
    text = "".join(
        f"{n}:{c}:/system.slice/docker-{ID_I}.scope\n"
        for n, c in [(10, "devices"), (7, "freezer"), (2, "cpuacct,cpu"), (1, "name=systemd")]
    )
    found = match_proc_cgroup(text)
    assert found is not None and found.full_id == ID_I and found.runtime == "docker"


def test_cgroup_hybrid_file_from_this_machine() -> None:
    text = "".join(f"{n}:{c}:/libpod_parent/libpod-{ID_G}\n" for n, c in [(9, "name=systemd"), (6, "freezer"), (0, "")])
    found = match_proc_cgroup(text)
    assert found is not None and (found.runtime, found.id) == ("podman", ID_G[:12])


def test_cgroup_v2_only_host() -> None:
    assert match_proc_cgroup("0::/init.scope\n") is None
    assert match_proc_cgroup("0::/\n") is None


def test_cgroup_one_line_in_container_others_root() -> None:
    # A process moved into a container's memory cgroup only still counts as that container.
    text = f"4:memory:/docker/{ID_D}\n3:cpuset:/\n0::/\n"
    found = match_proc_cgroup(text)
    assert found is not None and found.full_id == ID_D


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("garbage\n", id="no-colons"),
        pytest.param("x::/\n", id="non-numeric-id"),
        pytest.param("0::relative\n", id="relative-path"),
        pytest.param("0:cpu\n", id="two-fields"),
    ],
)
def test_cgroup_file_malformed(bad: str) -> None:
    with pytest.raises(InputError, match=r"^cgroup: line 1 "):
        parse_proc_cgroup(bad)


@given(st.text(max_size=300))
def test_cgroup_parser_never_crashes(text: str) -> None:
    try:
        entries = parse_proc_cgroup(text)
    except InputError as e:
        assert "\n" not in str(e)
        return
    for hid, _, path in entries:
        assert hid.isdigit() and path.startswith("/")
    match_proc_cgroup(text)


@given(st.sampled_from([p.values[0] for p in PATHS]), st.text(alphabet="/-_.:abc0123", max_size=40))
def test_cgroup_prefix_does_not_change_identity(path: str, prefix: str) -> None:
    # Nesting (cgroup namespaces, kubelet.slice, a custom cgroup parent) never changes the ID.
    base = match_cgroup_path(path)
    assert base is not None
    nested = match_cgroup_path("/" + prefix.strip("/") + path if prefix.strip("/") else path)
    assert nested is not None and nested.full_id == base.full_id


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("localhost/garrison-test/runtime-busybox:1", ("localhost/garrison-test/runtime-busybox", "1", "")),
        ("registry:5000/app", ("registry:5000/app", "", "")),
        ("docker.io/library/nginx:1.25@sha256:abc", ("docker.io/library/nginx", "1.25", "sha256:abc")),
        ("nginx", ("nginx", "", "")),
    ],
)
def test_split_image(ref: str, expected: tuple[str, str, str]) -> None:
    assert split_image(ref) == expected


def test_cgroup_id_of_a_cgroup_created_a_moment_ago_is_found_at_once() -> None:
    """A BPF or perf event names a cgroup by id; a container started milliseconds earlier has a
    cgroup the last scan did not see, and it is looked for at once (no rate limit in between)."""
    from garrison.runtime.containers import ContainerResolver, cgroup2_mount

    root = cgroup2_mount()
    if root is None or os.geteuid() != 0:
        pytest.fail("needs root and the unified cgroup hierarchy")
    resolver = ContainerResolver()
    here = os.stat(root).st_ino
    assert resolver.resolve_cgroup_id(here) is not None  # a scan just ran
    fresh = Path(root) / f"garrison-test-{uuid.uuid4().hex[:8]}"
    fresh.mkdir()
    try:
        time.sleep(0.03)
        found = resolver.resolve_cgroup_id(os.stat(fresh).st_ino)
        assert found is not None and found.is_host
        gone = 0xFFFF_FFFF_FFF0  # no such cgroup: None, and not scanned for again right away
        assert resolver.resolve_cgroup_id(gone) is None
        before = resolver._scanned
        time.sleep(0.03)
        assert resolver.resolve_cgroup_id(gone) is None and resolver._scanned == before
    finally:
        fresh.rmdir()


def test_the_kernels_cgroup_id_outranks_a_stale_per_pid_answer() -> None:
    """An event that carries the kernel's cgroup id (BPF, perf) is attributed by it, not by what
    the pipeline remembers for the pid: that can speak for a previous owner of a recycled pid (a
    host ``cat /etc/shadow`` was once attributed to a busy container whose exec'd process had
    held the pid) or come from before a move between cgroups. Without an id the per-pid answer
    stands."""
    from tests._containers import running_containers
    from tests.runtime._sensorkit import cgroup_v2_id

    from garrison.model.runtime import Container, Event, EventKind, Process
    from garrison.runtime.containers import cgroup2_mount
    from garrison.runtime.pipeline import Pipeline

    root = cgroup2_mount()
    if root is None or os.geteuid() != 0:
        pytest.fail("needs root and the unified cgroup hierarchy")

    def event(pid: int, **args: object) -> Event:
        return Event(time.time(), "openat", EventKind.FILE, "ebpf", Process(pid=pid, tid=pid, name="cat"), args=dict(args))

    boxes = running_containers()
    containers = next(boxes)
    try:
        box = containers.run("debian", "sleep", "60")
        pipe = Pipeline([], None, annotate=False, scan=False, on_event=lambda e: None)  # no rules: every event
        pipe._containers[box.pid] = Container()  # remembered as a host process
        inside = event(box.pid, cgroup_id=cgroup_v2_id(box.pid))
        pipe.process(inside)
        assert inside.container.full_id == box.id or box.id.startswith(inside.container.id), inside.container
        me = os.getpid()
        pipe._containers[me] = inside.container  # remembered as the container's process
        host = event(me, cgroup_id=cgroup_v2_id(me))
        pipe.process(host)
        assert host.container.is_host, host.container
        remembered = event(me)
        pipe.process(remembered)
        assert remembered.container.id == inside.container.id
    finally:
        next(boxes, None)
