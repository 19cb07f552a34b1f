"""ContainerResolver against real podman containers (runc, cgroupfs driver) and the inspect parser."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._containers import Containers, podman, running_containers

from garrison.core.errors import InputError
from garrison.model.runtime import Container
from garrison.runtime.containers import (
    _LIVE,
    UNKNOWN,
    CliInspector,
    ContainerResolver,
    cgroup_dirs,
    container_from_inspect,
    live_pid,
)


@pytest.fixture
def containers() -> Iterator[Containers]:
    yield from running_containers()


CRI_LABELS = {
    "io.kubernetes.pod.name": "web-7d4b9c-x2x9q",
    "io.kubernetes.pod.namespace": "shop",
    "io.kubernetes.pod.uid": "a45947e4-314c-4694-8f05-5e1425a02de4",
    "io.kubernetes.container.name": "nginx",
}


def test_resolve_podman_container(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300", labels={"app": "shop", "tier": "web"})
    resolver = ContainerResolver()
    got = resolver.resolve(c.pid)
    meta = c.inspect()
    assert got.full_id == c.id and got.id == c.id[:12]
    assert got.runtime == "podman"
    assert got.name == c.name
    assert got.image == c.image == meta["ImageName"]
    assert got.image_id == meta["Image"]
    assert got.image_digest == meta["ImageDigest"] and got.image_digest.startswith("sha256:")
    assert (got.image_repository, got.image_tag) == ("localhost/garrison-test/runtime-busybox", "1")
    assert got.labels["app"] == "shop" and got.labels["tier"] == "web"
    assert got.privileged is False
    assert not got.is_host and got.pod_name == ""


def test_resolve_process_started_by_exec(containers: Containers) -> None:
    # A process that joins later (podman exec) resolves to the same container, from the cache.
    c = containers.run("busybox", "sleep", "300")
    resolver = ContainerResolver()
    first = resolver.resolve(c.pid)
    c.exec("sh", "-c", "sleep 300 &", detach=False)
    pids = [p for p in c.pids() if p != c.pid]
    assert pids, "the exec'd sleep is not running"
    queries = resolver.stats.runtime_queries
    assert resolver.resolve(pids[0]) is first
    assert resolver.stats.runtime_queries == queries


def test_resolve_cri_labels_and_privileged(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300", labels=CRI_LABELS, privileged=True)
    got = ContainerResolver().resolve(c.pid)
    assert got.pod_name == "web-7d4b9c-x2x9q"
    assert got.pod_namespace == "shop"
    assert got.pod_uid == "a45947e4-314c-4694-8f05-5e1425a02de4"
    assert got.name == "nginx"  # Kubernetes' container name wins over the runtime's generated one
    assert got.privileged is True


def test_host_process_and_conmon_are_host(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300")
    resolver = ContainerResolver()
    assert resolver.resolve(os.getpid()).is_host
    conmon = int(Path(c.inspect()["ConmonPidFile"]).read_text())  # type: ignore[arg-type]
    assert resolver.resolve(conmon).is_host


def test_vanished_process_is_unknown_not_an_error() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    resolver = ContainerResolver()
    assert resolver.resolve(proc.pid) is UNKNOWN
    assert resolver.stats.vanished == 1
    # an ancestor that is still alive answers instead
    assert resolver.resolve(proc.pid, fallback_pids=[os.getpid()]).is_host


def test_cache_is_fast() -> None:
    resolver = ContainerResolver()
    pid = os.getpid()
    resolver.resolve(pid)
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        resolver.resolve(pid)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 200e-6, f"cached resolve took {per_call * 1e6:.0f} µs"


def test_runtime_without_metadata_keeps_identity(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300")
    resolver = ContainerResolver(sources=[CliInspector("podman", ("podman-does-not-exist",))])
    got = resolver.resolve(c.pid)
    assert (got.full_id, got.runtime, got.image) == (c.id, "podman", "")
    assert resolver.stats.metadata_missing == 1


def test_cgroup_dirs_of_container(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300")
    dirs = cgroup_dirs(c.pid)
    assert dirs.unified is not None or dirs.freezer is not None
    for d in (dirs.unified, dirs.freezer):
        if d is not None:
            assert c.id in d.name
            assert str(c.pid) in (d / "cgroup.procs").read_text().split()


def test_inspect_parser_on_real_payload(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300", labels=CRI_LABELS)
    payload: Any = json.loads(podman("inspect", c.id).stdout)
    got = container_from_inspect(payload, "podman")
    assert got.full_id == c.id and got.pod_namespace == "shop"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param([], "expected one container, got 0", id="empty-list"),
        pytest.param("x", "expected a JSON object", id="string"),
        pytest.param({"Id": "nope"}, "is not a container ID", id="bad-id"),
        pytest.param({"Id": "a" * 64, "Config": {"Labels": []}}, "Config.Labels is list", id="labels-list"),
        pytest.param({"Id": "a" * 64, "HostConfig": {"Privileged": "yes"}}, "Privileged is not a boolean", id="priv"),
    ],
)
def test_inspect_parser_rejects(payload: Any, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        container_from_inspect(payload, "podman")
    assert str(info.value).startswith("inspect: ")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)


@given(
    st.fixed_dictionaries(
        {"Id": st.sampled_from(["a" * 64, "xyz", 5])},
        optional={"Config": _json, "HostConfig": _json, "ImageName": _json, "Image": _json, "Name": _json},
    )
)
def test_inspect_parser_fuzz(payload: dict[str, Any]) -> None:
    try:
        got = container_from_inspect(payload, "docker")
    except InputError as e:
        assert "\n" not in str(e)
        return
    assert got.full_id == "a" * 64


def test_cgroup_text_reads_the_given_proc_root(tmp_path: Path) -> None:
    text = "0::/machine.slice/libpod-" + "ab" * 32 + ".scope/container\n"
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(text)
    resolver = ContainerResolver(sources=[], proc=tmp_path)
    assert resolver.cgroup_text(4242) == text
    assert resolver.resolve(4242).full_id == "ab" * 32
    with pytest.raises(OSError):
        resolver.cgroup_text(4243)
    assert ContainerResolver(sources=[]).cgroup_text(os.getpid()) == Path("/proc/self/cgroup").read_text()


def test_live_pid_remembers_a_live_process_of_the_container(containers: Containers) -> None:
    c = containers.run("busybox", "sleep", "300")
    container = ContainerResolver(sources=[]).resolve(c.pid)
    gone = subprocess.Popen(["true"])
    gone.wait()
    inside = set(c.pids())
    found = live_pid(container, gone.pid)  # by a scan of /proc
    assert found in inside and _LIVE[container.full_id] == found
    assert live_pid(container, gone.pid) == found  # remembered
    _LIVE[container.full_id] = os.getpid()  # a remembered pid no longer in the container is not used
    assert live_pid(container, gone.pid) in inside
    assert live_pid(Container(), gone.pid) == gone.pid  # host: nothing to look for
