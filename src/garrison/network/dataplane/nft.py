"""A thin binding of libnftables (the library behind the ``nft`` command), bound to one network namespace.

Why not spawn ``nft -f``: a process start costs several milliseconds, which alone would eat the
10 ms budget of a set-member change; libnftables takes a command buffer and sends it as one netlink
batch, which the kernel commits atomically (all or nothing). Why not Debian's ``python3-nftables``:
it is installed for the system interpreter, not for our virtualenv, and it is itself only this same
ctypes shim. Why not hand-built netlink (pyroute2) for everything: we would re-implement nft's rule
compiler; only the small vocabulary of policy-chain rules is encoded by hand
(:mod:`garrison.network.dataplane.nlbatch`, :meth:`Nft.rewrite_chains`), for the latency of a
policy change.

Set-member changes skip libnftables: before running any command it loads a cache of the ruleset
(sets, their elements, chains), which costs ~0.5 s once a table holds thousands of objects. For
``add element``/``delete element`` on a plain address set, :meth:`Nft.set_elements` sends the
nf_tables batch (BATCH_BEGIN, NEWSETELEM/DELSETELEM, BATCH_END) itself: a few dozen bytes of
netlink, constant time whatever the ruleset size, and just as atomic.

A netlink socket belongs to the namespace of the thread that created it, and libnftables opens its
socket inside the context, so every :class:`Nft` owns one worker thread that entered the target
namespace once and runs all calls there.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import json
import os
import socket
import struct
import threading
from collections.abc import Iterable
from typing import Any

from garrison.core.errors import GarrisonError
from garrison.network.dataplane import netns, nlbatch

_OUTPUT_HANDLE = 1 << 3
_OUTPUT_JSON = 1 << 4
_OUTPUT_TERSE = 1 << 11


_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_NFTABLES = 10
_NFNL_MSG_BATCH_BEGIN, _NFNL_MSG_BATCH_END = 0x10, 0x11
_NFT_MSG_NEWSETELEM, _NFT_MSG_DELSETELEM = 12, 14
_NFTA_SET_ELEM_LIST_TABLE, _NFTA_SET_ELEM_LIST_SET, _NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
_NFTA_LIST_ELEM = 1
_NFTA_SET_ELEM_KEY, _NFTA_SET_ELEM_TIMEOUT = 1, 4
_NFTA_DATA_VALUE = 1
_NLA_F_NESTED = 0x8000
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_CREATE = 0x1, 0x4, 0x400
_NLMSG_ERROR = 2
_NFPROTO_INET = 1


def _nla(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _msg(kind: int, flags: int, seq: int, family: int, res_id: int, attrs: bytes) -> bytes:
    body = struct.pack("!BBH", family, 0, res_id) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


class NftError(GarrisonError):
    """nftables rejected a command buffer (the kernel state is unchanged: a batch is all or nothing)."""


def _load() -> ctypes.CDLL:
    path = ctypes.util.find_library("nftables") or "libnftables.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise NftError("libnftables not found: install the Debian package 'nftables'") from e
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    return lib


_LIB: ctypes.CDLL | None = None
_LIB_LOCK = threading.Lock()


def _lib() -> ctypes.CDLL:
    global _LIB
    with _LIB_LOCK:
        if _LIB is None:
            _LIB = _load()
        return _LIB


class Nft:
    """Run nft command buffers inside network namespace ``ns`` (``None``: the caller's namespace)."""

    def __init__(self, ns: str | None = None) -> None:
        self.ns = ns
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nft")
        self._ctx: int | None = None
        self._json_ctx: int | None = None
        self._nl: socket.socket | None = None
        self._nl_lock = threading.Lock()
        self._seq = 0
        self._pool.submit(self._init).result()

    def _init(self) -> None:
        if self.ns is not None:
            fd = os.open(netns.ns_path(self.ns), os.O_RDONLY)
            try:
                netns.setns(fd)  # this worker thread stays in the namespace for its whole life
            finally:
                os.close(fd)
        lib = _lib()
        self._ctx = self._new_ctx(lib, _OUTPUT_HANDLE)
        self._json_ctx = self._new_ctx(lib, _OUTPUT_JSON | _OUTPUT_HANDLE)

    @staticmethod
    def _new_ctx(lib: ctypes.CDLL, flags: int) -> int:
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise NftError("nft_ctx_new failed")
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        lib.nft_ctx_output_set_flags(ctx, flags)
        return int(ctx)

    def _run(self, text: str, as_json: bool) -> str:
        lib = _lib()
        ctx = self._json_ctx if as_json else self._ctx
        rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        if rc != 0:
            lines = [ln for ln in err.splitlines() if ln.strip() and not ln.lstrip().startswith("^")]
            first = next((ln for ln in lines if "Error" in ln), lines[0] if lines else "unknown error")
            raise NftError(f"nftables rejected the ruleset: {first.strip()}")
        return out

    def run(self, text: str) -> str:
        """Run a command buffer as one atomic transaction; raise :class:`NftError` if rejected."""
        return self._pool.submit(self._run, text, False).result()

    def list_json(self, what: str) -> dict[str, Any]:
        """``nft -j list <what>`` parsed; an absent object yields ``{"nftables": []}``."""
        try:
            out = self._pool.submit(self._run, f"list {what}", True).result()
        except NftError as e:
            if "No such file" in str(e) or "does not exist" in str(e):
                return {"nftables": []}
            raise
        data: dict[str, Any] = json.loads(out) if out.strip() else {"nftables": []}
        return data

    def set_elements(
        self, verb: str, table: str, set_name: str, addrs: Iterable[str], timeout_ms: int | None = None
    ) -> None:
        """``add``/``delete`` address elements (IPv4 or IPv6, as the set's type) of a non-interval set, one batch."""
        if self._nl is None:
            self._nl = netns.socket_in(self.ns, socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
            self._nl.bind((0, 0))
        elems = b""
        for a in addrs:
            raw = socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)
            key = _nla(_NFTA_DATA_VALUE, raw)
            body = _nla(_NFTA_SET_ELEM_KEY | _NLA_F_NESTED, key)
            if timeout_ms is not None and verb == "add":
                body += _nla(_NFTA_SET_ELEM_TIMEOUT, struct.pack("!Q", timeout_ms))
            elems += _nla(_NFTA_LIST_ELEM | _NLA_F_NESTED, body)
        if not elems:
            return
        attrs = (
            _nla(_NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0")
            + _nla(_NFTA_SET_ELEM_LIST_SET, set_name.encode() + b"\0")
            + _nla(_NFTA_SET_ELEM_LIST_ELEMENTS | _NLA_F_NESTED, elems)
        )
        kind = _NFT_MSG_NEWSETELEM if verb == "add" else _NFT_MSG_DELSETELEM
        flags = _NLM_F_REQUEST | _NLM_F_ACK | (_NLM_F_CREATE if verb == "add" else 0)
        with self._nl_lock:
            self._seq += 3
            seq = self._seq
            batch = (
                _msg(_NFNL_MSG_BATCH_BEGIN, _NLM_F_REQUEST, seq - 2, socket.AF_UNSPEC, _NFNL_SUBSYS_NFTABLES, b"")
                + _msg((_NFNL_SUBSYS_NFTABLES << 8) | kind, flags, seq - 1, _NFPROTO_INET, 0, attrs)
                + _msg(_NFNL_MSG_BATCH_END, _NLM_F_REQUEST, seq, socket.AF_UNSPEC, _NFNL_SUBSYS_NFTABLES, b"")
            )
            self._nl.send(batch)
            while True:  # the ack (or error) of our element message
                data = self._nl.recv(65536)
                off = 0
                while off + 16 <= len(data):
                    length, mtype, _, mseq, _ = struct.unpack_from("=IHHII", data, off)
                    if mtype == _NLMSG_ERROR and mseq == seq - 1:
                        (err,) = struct.unpack_from("=i", data, off + 16)
                        if err:
                            raise NftError(f"nftables rejected {verb} element in set {set_name}: {os.strerror(-err)}")
                        return
                    off += (length + 3) & ~3

    def rewrite_chains(self, table: str, chains: dict[str, list[str]]) -> None:
        """Flush and refill chains of ``inet`` table ``table`` in one transaction, straight over netlink.

        Raises :class:`nlbatch.Unsupported` (before sending anything) when a rule is outside the
        encoder's vocabulary, :class:`NftError` when the kernel rejects the batch (nothing changed).
        """
        with self._nl_lock:
            batch, last = nlbatch.chain_batch(table, chains, self._seq + 1)
            self._seq = last + 1
            self._exchange(batch, last, "rewriting chains")

    def _exchange(self, batch: bytes, last: int, what: str) -> None:
        """Send one batch and read acks until the one for sequence ``last``; raise the first error."""
        if self._nl is None:
            self._nl = netns.socket_in(self.ns, socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
            self._nl.bind((0, 0))
        self._nl.settimeout(10.0)
        self._nl.send(batch)
        first_err = 0
        while True:
            try:
                data = self._nl.recv(1 << 20)
            except TimeoutError as e:
                reason = os.strerror(-first_err) if first_err else "no answer from the kernel"
                raise NftError(f"nftables rejected {what}: {reason}") from e
            off = 0
            while off + 16 <= len(data):
                length, mtype, _, mseq, _ = struct.unpack_from("=IHHII", data, off)
                if mtype == _NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, off + 16)
                    first_err = first_err or err
                    if mseq == last:
                        if first_err:
                            raise NftError(f"nftables rejected {what}: {os.strerror(-first_err)}")
                        return
                off += (length + 3) & ~3

    def close(self) -> None:
        if self._nl is not None:
            self._nl.close()
            self._nl = None

        def free() -> None:
            lib = _lib()
            for ctx in (self._ctx, self._json_ctx):
                if ctx:
                    lib.nft_ctx_free(ctx)
            self._ctx = self._json_ctx = None

        self._pool.submit(free).result()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Nft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
