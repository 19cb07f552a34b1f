"""Real-format credentials for the secret-scanner tests, built per each vendor's published format.

Randomness is seeded, so every run builds the same tokens. Where a format carries a checksum or
a signature it is computed for real:

* GitHub (``ghp_ gho_ ghu_ ghs_ ghr_``) and npm (``npm_``) tokens: 30 random base62 characters
  followed by the CRC32 of those 30 characters in base62 (``0-9A-Za-z``), left-padded to six;
* PyPI API tokens: ``pypi-`` and a base64url (unpadded) version-2 binary macaroon located at
  ``pypi.org`` whose signature is the HMAC-SHA256 chain over its identifier and caveat;
* age secret keys: Bech32 (BIP 173) of 32 random bytes with the HRP ``AGE-SECRET-KEY-``;
* JWTs: HS256 with ``hmac``, or RS256 signed by ``openssl dgst -sign`` with an openssl key.

Templates (``<<kind:arg:...>>``) in ``tests/assets/secrets/examples.yaml`` are expanded by
:meth:`TokenFactory.render`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import re
import subprocess
import uuid
from pathlib import Path

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ALPHABETS = {
    "alnum": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "lower": "abcdefghijklmnopqrstuvwxyz",
    "lowernum": "abcdefghijklmnopqrstuvwxyz0123456789",
    "uppernum": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "digits": "0123456789",
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "ah": "abcdefgh0123456789",
    "b32": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "b32l": "abcdefghijklmnopqrstuvwxyz234567",
    "b64": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "b64url": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
    "azure": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-",
}
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_TEMPLATE = re.compile(r"<<([a-z0-9-]+)(?::(.*?))?>>")


def base62(n: int, width: int = 6) -> str:
    digits = ""
    while n:
        n, r = divmod(n, 62)
        digits = BASE62[r] + digits
    return digits.rjust(width, "0")


def crc32_token_valid(token: str) -> bool:
    """GitHub/npm checksum: the last six characters are base62(CRC32(random part))."""
    prefix_len = token.index("_") + 1
    body, check = token[prefix_len:-6], token[-6:]
    return base62(binascii.crc32(body.encode())) == check


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(kind: int, data: bytes) -> bytes:
    return bytes([kind]) + _varint(len(data)) + data


def _bech32_polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32_encode(hrp: str, data: bytes) -> str:
    """BIP-173 Bech32 of ``data`` (8-bit groups regrouped to 5 bits)."""
    acc, bits, five = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            five.append((acc >> bits) & 31)
    if bits:
        five.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod([*expanded, *five, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32[d] for d in five + checksum)


def bech32_verify(text: str) -> bool:
    hrp, _, data = text.lower().rpartition("1")
    values = [BECH32.index(c) for c in data]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    return _bech32_polymod(expanded + values) == 1


class TokenFactory:
    """Deterministic generator of real-format tokens; ``workdir`` holds openssl keys."""

    def __init__(self, seed: str, workdir: Path) -> None:
        self.rng = random.Random(seed)
        self.workdir = workdir

    def rand(self, alphabet: str, n: int) -> str:
        chars = ALPHABETS.get(alphabet, alphabet)
        return "".join(self.rng.choice(chars) for _ in range(n))

    def bytes(self, n: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def github(self, prefix: str) -> str:
        body = self.rand("alnum", 30)
        return f"{prefix}_{body}{base62(binascii.crc32(body.encode()))}"

    def pypi(self, location: str = "pypi.org") -> str:
        root_key = self.bytes(32)
        identifier = str(uuid.UUID(bytes=self.bytes(16), version=4)).encode()
        caveat = json.dumps({"version": 1, "permissions": "user"}, separators=(",", ":")).encode()
        derived = hmac.new(b"macaroons-key-generator", root_key, hashlib.sha256).digest()
        sig = hmac.new(derived, identifier, hashlib.sha256).digest()
        sig = hmac.new(sig, caveat, hashlib.sha256).digest()
        blob = (
            b"\x02" + _field(1, location.encode()) + _field(2, identifier) + b"\x00"
            + _field(2, caveat) + b"\x00" + b"\x00" + _field(6, sig)
        )  # fmt: skip
        return "pypi-" + b64url(blob)

    def age(self) -> str:
        return bech32_encode("age-secret-key-", self.bytes(32)).upper()

    def jwt(self, claims: dict[str, object] | None = None) -> str:
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(claims or {"sub": self.rand("digits", 10), "name": "svc"}).encode())
        key = self.bytes(32)
        sig = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(sig)}"

    def jwt_rs256(self, claims: dict[str, object]) -> str:
        """An RS256 JWT signed with a fresh RSA key by ``openssl dgst -sha256 -sign``."""
        key = self.openssl_key("rsa")
        header = b64url(json.dumps({"alg": "RS256", "kid": self.rand("b64url", 43)}).encode())
        payload = b64url(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(key)], input=signing_input, capture_output=True, check=True
        ).stdout
        return f"{header}.{payload}.{b64url(sig)}"

    def openssl_key(self, kind: str) -> Path:
        """A fresh private key from ``openssl genpkey`` (PKCS#8 PEM)."""
        path = self.workdir / f"key-{kind}-{self.rand('hex', 8)}.pem"
        args = {
            "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "ed25519": ["-algorithm", "ED25519"],
        }[kind]
        subprocess.run(["openssl", "genpkey", *args, "-out", str(path)], check=True, capture_output=True)
        return path

    def uuid(self) -> str:
        return str(uuid.UUID(bytes=self.bytes(16), version=4))

    def render(self, template: str) -> str:
        """Expand every ``<<kind:arg...>>`` in ``template``."""
        return _TEMPLATE.sub(lambda m: self._expand(m.group(1), m.group(2) or ""), template)

    def _expand(self, kind: str, arg: str) -> str:
        if kind == "b64text":  # the argument is literal text, colons included
            return base64.b64encode(arg.encode()).decode()
        args = arg.split(":") if arg else []
        if kind == "rand":
            return self.rand(args[0], int(args[1]))
        if kind == "github":
            return self.github(args[0])
        if kind == "npm":
            return self.github("npm")
        if kind == "pypi":
            return self.pypi(args[0] if args else "pypi.org")
        if kind == "age":
            return self.age()
        if kind == "jwt":
            return self.jwt()
        if kind == "jwt-rs256":
            return self.jwt_rs256({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:default:app"})
        if kind == "uuid":
            return self.uuid()
        if kind == "b64bytes":
            return base64.b64encode(self.bytes(int(args[0]))).decode()
        if kind == "pem":
            return self.openssl_key(args[0]).read_text().rstrip("\n")
        if kind == "pem-json":
            return self.openssl_key(args[0]).read_text().replace("\n", "\\n")
        raise ValueError(f"unknown template <<{kind}>>")
