"""Content digests: validation of ``algorithm:hex`` strings and readers that verify a blob's
digest (and size) while it streams, so no blob is ever trusted or buffered whole."""

from __future__ import annotations

import hashlib
import io
import re
from typing import BinaryIO, cast

from garrison.core.errors import InputError

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]+)$")


def parse_digest(value: object, *, input_name: str) -> tuple[str, str]:
    """Split ``sha256:<hex>`` into algorithm and hex, rejecting anything else (blob paths are
    built from the hex, so a malformed digest must never reach the filesystem)."""
    if not isinstance(value, str):
        raise InputError(f"digest is not a string: {value!r}"[:200], input_name=input_name)
    match = _DIGEST.match(value)
    if match is None or len(match.group(2)) != _HEX_LEN[match.group(1)]:
        raise InputError(f"malformed or unsupported digest {value!r}"[:200], input_name=input_name)
    return match.group(1), match.group(2)


def check_digest(value: object, *, input_name: str) -> str:
    parse_digest(value, input_name=input_name)
    return cast(str, value)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_bytes(data: bytes, digest: str, *, input_name: str) -> bytes:
    """Return ``data`` if it hashes to ``digest``; raise :class:`InputError` otherwise."""
    algorithm, _ = parse_digest(digest, input_name=input_name)
    actual = digest_bytes(data, algorithm)
    if actual != digest:
        raise InputError(f"digest mismatch: expected {digest}, got {actual}", input_name=input_name)
    return data


class _VerifyingRaw(io.RawIOBase):
    def __init__(self, inner: BinaryIO, digest: str, size: int | None, input_name: str) -> None:
        algorithm, _ = parse_digest(digest, input_name=input_name)
        self._inner = inner
        self._digest = digest
        self._hash = hashlib.new(algorithm)
        self._size = size if size is not None and size >= 0 else None
        self._read = 0
        self._done = False
        self._name = input_name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._done:
            return 0
        want = len(buffer)
        if self._size is not None:
            # one byte beyond the declared size is enough to notice an oversized blob
            want = min(want, self._size - self._read + 1)
        view = memoryview(buffer)[:want]
        n = 0
        if want > 0:
            readinto = getattr(self._inner, "readinto", None)
            if readinto is not None:
                n = readinto(view) or 0  # straight into the caller's buffer: no copy
            else:
                chunk = self._inner.read(want)
                n = len(chunk)
                view[:n] = chunk
        if not n:
            self._finish()
            return 0
        self._read += n
        if self._size is not None and self._read > self._size:
            raise InputError(f"blob {self._digest} is larger than its declared {self._size} bytes", input_name=self._name)
        self._hash.update(view[:n])
        return int(n)

    def _finish(self) -> None:
        self._done = True
        if self._size is not None and self._read != self._size:
            raise InputError(
                f"blob {self._digest} is truncated: {self._read} of {self._size} bytes", input_name=self._name
            )
        actual = f"{self._hash.name}:{self._hash.hexdigest()}"
        if actual != self._digest:
            raise InputError(f"digest mismatch: expected {self._digest}, got {actual}", input_name=self._name)

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                super().close()


def verifying_reader(inner: BinaryIO, digest: str, *, size: int | None = None, input_name: str) -> BinaryIO:
    """Wrap ``inner`` so that reading it to the end checks ``digest`` (and ``size`` if known).

    A mismatch raises :class:`InputError` from the read that reaches the end. Closing the wrapper
    closes ``inner``.
    """
    raw = _VerifyingRaw(inner, digest, size, input_name)
    return cast(BinaryIO, io.BufferedReader(raw, buffer_size=1 << 16))


def read_bounded(stream: BinaryIO, limit: int, *, input_name: str, what: str = "document") -> bytes:
    """Read a small document (manifest, config) refusing anything over ``limit`` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{what} is larger than {limit} bytes", input_name=input_name)
    return data
