"""Network-namespace plumbing: enter a namespace for one call, make sockets inside it, run ``ip`` there.

Python 3.11 has no ``os.setns`` (it arrived in 3.12), so :func:`setns` calls libc through ctypes.
``setns(CLONE_NEWNET)`` changes the namespace of the calling *thread* only, and a socket belongs for
its whole life to the namespace it was created in. That lets one ordinary thread create sockets in
many namespaces (enter, ``socket()``, go back) and then drive them all from one event loop: no
``ip netns exec`` process per probe, no thread per namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from garrison.core.errors import GarrisonError

logger = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NetnsError(GarrisonError):
    """A namespace could not be created, entered or configured."""


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(err)}")


def ns_path(name: str) -> Path:
    return NETNS_RUN_DIR / name


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the body with this thread inside namespace ``name`` (``None``: stay where we are)."""
    if name is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(ns_path(name), os.O_RDONLY)
        try:
            setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(own)
    finally:
        os.close(own)


def socket_in(name: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside namespace ``name``."""
    with entered(name):
        return socket.socket(family, kind, proto)


def write_sysctl(name: str | None, key: str, value: str) -> None:
    """Set a ``net.*`` sysctl in namespace ``name`` (``/proc/sys/net`` follows the opening thread)."""
    with entered(name), open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
        fh.write(value)


def ip_batch(commands: list[str], netns: str | None = None) -> None:
    """Run many ``ip`` commands in one process (``ip -batch -``), optionally inside ``netns``."""
    if not commands:
        return
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    proc = subprocess.run(argv, input="\n".join(commands) + "\n", capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
        raise NetnsError(f"ip -batch in {netns or 'current namespace'}: {first}")


def list_netns(prefix: str) -> list[str]:
    if not NETNS_RUN_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_RUN_DIR.iterdir() if p.name.startswith(prefix))


def delete_netns(names: list[str]) -> None:
    """Delete namespaces by name; missing ones are ignored (cleanup must never fail halfway)."""
    if not names:
        return
    proc = subprocess.run(
        ["ip", "-force", "-batch", "-"],
        input="".join(f"netns del {n}\n" for n in names),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        logger.debug("netns cleanup: %s", proc.stderr.strip())
