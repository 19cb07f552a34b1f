"""Walk a directory tree (an unpacked root filesystem or a project) as
:class:`~garrison.image.interface.Entry` objects with paths relative to the root.

Symbolic links are reported, never followed, so nothing outside the root is read. Sockets,
FIFOs and device nodes are skipped (opening a FIFO would block), and so are mounts of virtual
filesystems such as ``/proc`` and ``/sys`` when the root is a live system.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from garrison.core.errors import InputError, NotFoundError
from garrison.image.interface import Entry
from garrison.model import FileInfo

logger = logging.getLogger(__name__)

VIRTUAL_FS = frozenset(
    {
        "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "tracefs", "debugfs", "securityfs",
        "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs", "binfmt_misc", "efivarfs",
        "rpc_pipefs", "nsfs",
    }
)  # fmt: skip


def _virtual_mounts(mountinfo: Path = Path("/proc/self/mountinfo")) -> set[str]:
    """Mount points of virtual filesystems, from the kernel's mount table."""
    found: set[str] = set()
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right:
            continue
        if right.split()[0] in VIRTUAL_FS:
            found.add(fields[4].encode().decode("unicode_escape"))
    return found


def _opener(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as err:
        raise InputError(f"cannot read file: {err.strerror}", input_name=path) from err


def iter_directory(root: Path) -> Iterator[Entry]:
    """Yield every directory, regular file and symlink under ``root`` in sorted order."""
    if not root.exists():
        raise NotFoundError("no such directory", input_name=str(root))
    if not root.is_dir():
        raise InputError("not a directory", input_name=str(root))
    base = os.path.realpath(root)
    skip = {m for m in _virtual_mounts() if m != base and m.startswith(base.rstrip("/") + "/")}
    yield from _walk(base, "", skip)


def _walk(directory: str, rel: str, skip: set[str]) -> Iterator[Entry]:
    try:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda e: e.name)
    except OSError as err:
        logger.warning("%s: cannot list directory: %s", directory, err.strerror)
        return
    for child in children:
        path = f"{rel}/{child.name}" if rel else child.name
        try:
            st = child.stat(follow_symlinks=False)
        except OSError:
            continue
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            try:
                target = os.readlink(child.path)
            except OSError:
                target = ""
            yield Entry(FileInfo(path, 0, mode), "symlink", linkname=target)
        elif stat.S_ISDIR(mode):
            if child.path in skip:
                logger.debug("%s: skipping virtual filesystem", child.path)
                continue
            yield Entry(FileInfo(path, 0, mode), "dir")
            yield from _walk(child.path, path, skip)
        elif stat.S_ISREG(mode):
            full = child.path
            yield Entry(FileInfo(path, st.st_size, mode), "file", open=lambda full=full: _opener(full))  # type: ignore[misc]
        else:
            logger.debug("%s: skipping special file", child.path)
