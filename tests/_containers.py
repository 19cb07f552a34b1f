"""Real podman containers for the runtime tests, from the images tests/assets/runtime/build.sh builds.

Containers run as root with runc and the cgroupfs manager (no systemd on the test machines) and
the ulimits podman needs on this kernel. Every container a test starts is removed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "tests" / "assets" / "runtime" / "build.sh"
ATTACKS = REPO / "tests" / "assets" / "runtime" / "attacks"
PODMAN = ["podman", "--cgroup-manager=cgroupfs", "--events-backend=file", "--runtime", "/usr/sbin/runc"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def runtime_images_dir() -> Path:
    return Path(os.environ.get("GARRISON_TEST_IMAGES", "/var/tmp/garrison-test-images")) / "runtime"


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, check=check, timeout=timeout)


@cache
def runtime_images() -> dict[str, str]:
    """Key (``busybox``, ``debian``) -> podman image name; builds and loads them when missing."""
    index = runtime_images_dir() / "runtime.json"
    missing = not index.is_file() or any(
        podman("image", "exists", meta["name"], check=False).returncode != 0
        for meta in json.loads(index.read_text())["images"].values()
    )
    if missing:
        subprocess.run(["bash", str(BUILD)], check=True)
    data = json.loads(index.read_text())
    return {key: meta["name"] for key, meta in data["images"].items()}


@dataclass
class RunningContainer:
    id: str
    name: str
    image: str
    pid: int = 0  # host pid of the container's first process, read once at start

    def inspect(self) -> dict[str, object]:
        data: list[dict[str, object]] = json.loads(podman("inspect", "--type", "container", self.id).stdout)
        return data[0]

    def state_pid(self) -> int:
        state = self.inspect()["State"]
        assert isinstance(state, dict)
        return int(state["Pid"])

    @property
    def ip(self) -> str:
        settings = self.inspect()["NetworkSettings"]
        assert isinstance(settings, dict)
        return str(settings["IPAddress"])

    def exec(self, *argv: str, check: bool = True, detach: bool = False, timeout: float = 60) -> str:
        extra = ["-d"] if detach else []
        return podman("exec", *extra, self.id, *argv, check=check, timeout=timeout).stdout

    def pids(self) -> list[int]:
        """Host pids of every process in the container."""
        out = podman("top", self.id, "hpid").stdout.split()
        return [int(p) for p in out[1:] if p.isdigit()]


class Containers:
    """Starts containers and removes them all at the end of the test."""

    def __init__(self) -> None:
        self.started: list[RunningContainer] = []

    def run(
        self,
        image_key: str,
        *argv: str,
        labels: dict[str, str] | None = None,
        privileged: bool = False,
        volumes: list[str] | None = None,
        extra: list[str] | None = None,
    ) -> RunningContainer:
        image = runtime_images()[image_key]
        name = f"garrison-test-{uuid.uuid4().hex[:10]}"
        args = ["run", "-d", "--name", name, *ULIMITS]
        for k, v in (labels or {}).items():
            args += ["--label", f"{k}={v}"]
        if privileged:
            args.append("--privileged")
        for vol in volumes or []:
            args += ["-v", vol]
        args += extra or []
        cid = podman(*args, image, *argv).stdout.strip()
        container = RunningContainer(cid, name, image)
        self.started.append(container)
        deadline = time.monotonic() + 30
        while container.pid == 0:
            assert time.monotonic() < deadline, f"container {name} did not start"
            container.pid = container.state_pid()
            if container.pid == 0:
                time.sleep(0.1)
        return container

    def cleanup(self) -> None:
        for c in self.started:
            podman("rm", "-f", "-t", "0", c.id, check=False)


def running_containers() -> Iterator[Containers]:
    """Body of a ``containers`` fixture: builds the images if needed, removes the containers after."""
    runtime_images()
    c = Containers()
    try:
        yield c
    finally:
        c.cleanup()
