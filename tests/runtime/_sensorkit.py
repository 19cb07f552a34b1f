"""Helpers shared by the sensor tests: an event collector and a real-kernel precondition check."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

import pytest

from garrison.model.runtime import Event

AUDIT_LOCK_WAIT = 300.0  # seconds a test waits for another worker's audit sensor to finish


def cgroup_v2_id(pid: int | str = "self") -> int:
    """The id of a process's cgroup on the unified hierarchy (its directory's inode): what BPF's
    cgroup id and perf's ``PERF_SAMPLE_CGROUP`` report."""
    from garrison.runtime.containers import cgroup2_mount

    mount = cgroup2_mount()
    assert mount is not None, "no unified cgroup hierarchy"
    rel = next(x[3:] for x in open(f"/proc/{pid}/cgroup").read().splitlines() if x.startswith("0::"))
    return os.stat(str(mount) + (rel if rel != "/" else "")).st_ino


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("sensor tests need root (they drive the real kernel)")


class Collector:
    """Thread-safe event sink with ``wait_for``."""

    def __init__(self, keep: Callable[[Event], bool] | None = None) -> None:
        self.events: list[Event] = []
        self.keep = keep
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        if self.keep is not None and not self.keep(event):
            return
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 5.0, count: int = 1) -> list[Event]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events if pred(e)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return found
                self._cond.wait(left)

    def snapshot(self) -> list[Event]:
        with self._cond:
            return list(self.events)


STORM_C = r"""
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: storm RATE COUNT MARKER PROGRAM\n"); return 2; }
    double rate = atof(argv[1]); long count = atol(argv[2]); char *marker = argv[3], *prog = argv[4];
    char num[32]; char *args[] = {prog, marker, num, NULL};
    double start = now();
    for (long i = 0; i < count; i++) {
        double due = start + i / rate, n = now();
        if (due > n) { double d = due - n; struct timespec s = {(time_t)d, (long)((d - (time_t)d) * 1e9)}; nanosleep(&s, NULL); }
        snprintf(num, sizeof num, "%ld", i);
        pid_t pid;
        if (posix_spawn(&pid, prog, NULL, NULL, args, environ) != 0) { perror("posix_spawn"); return 1; }
        printf("%d\n", pid);
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    double elapsed = now() - start;
    while (waitpid(-1, NULL, 0) > 0) {}
    printf("elapsed %f\n", elapsed);
    return 0;
}
"""
# a static program that only calls exit(0): the exec costs what the kernel and the sensors add, not libc start-up
TINY_C = r"""
void _start(void) { __asm__ volatile("mov $60, %eax\n xor %edi, %edi\n syscall"); }
"""


def storm_tools() -> tuple[str, str]:
    """Build (once per source version) the exec-storm generator and the tiny target; ``(storm, tiny)``."""
    import hashlib
    import platform
    import shutil
    import subprocess
    from pathlib import Path

    if platform.machine() != "x86_64":
        pytest.fail("the exec-storm target is x86_64 assembly")
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the exec-storm generator (apt-get install gcc)")
    digest = hashlib.sha256((STORM_C + TINY_C).encode()).hexdigest()[:12]
    root = Path(f"/tmp/garrison-storm-{digest}")
    storm, tiny = root / "storm", root / "tiny"
    if not (storm.exists() and tiny.exists()):
        work = Path(f"{root}.{os.getpid()}")
        work.mkdir(parents=True, exist_ok=True)
        (work / "storm.c").write_text(STORM_C)
        (work / "tiny.c").write_text(TINY_C)
        subprocess.run(["gcc", "-O2", "-o", str(work / "storm"), str(work / "storm.c")], check=True)
        subprocess.run(
            ["gcc", "-O2", "-static", "-nostdlib", "-o", str(work / "tiny"), str(work / "tiny.c")], check=True
        )
        try:
            work.rename(root)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)  # another worker built it first
    return str(storm), str(tiny)


def exec_storm(rate: float, count: int, marker: str, program: str | None = None) -> tuple[list[int], float]:
    """``count`` execs at ``rate``/s (of the tiny static program unless ``program``); ``(pids, achieved rate)``."""
    import subprocess

    storm, tiny = storm_tools()
    out = subprocess.run(
        [storm, str(rate), str(count), marker, program or tiny], check=True, capture_output=True, text=True
    )
    lines = out.stdout.split()
    elapsed = float(lines[-1])
    pids = [int(x) for x in lines[:-2]]
    return pids, count / max(elapsed, 1e-9)


def http_answers(ip: str, port: int, timeout: float = 1.5) -> bool:
    """Whether a TCP connection to ``ip:port`` opens and answers an HTTP request (quarantine tests)."""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return bool(s.recv(16))
    except OSError:
        return False
