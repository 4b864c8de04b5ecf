"""Invitation codes: what a new home needs to join a chain, signed by the chain's operator.

An operator invites a home with ``transactiva operator invite NAME``; the code it prints
carries, in a compact binary form written in base32 groups:

=================  ==========================================================
chain id           the chain the home joins (the P2P handshake needs it)
genesis hash       SHA-256 of the genesis: the home fetches the genesis from the
                   concentrator and keeps it only if it has this hash
seeds              where the concentrator's node listens for peers (``host:port``)
name, role         the display name and role the home is granted
approval           automatic, or held for the operator (``--approve manual``)
expiry             Unix seconds after which the code is refused
nonce              4 random bytes, so two invitations never share an id
signature          Ed25519 by the operator key over all of the above
check              a short checksum of the text, so a mistyped code is told
                   apart from a forged one
=================  ==========================================================

``TV1-AEAAB-...``: ``TV1`` names the format; the rest is RFC 4648 base32 of the bytes
(whose length is a multiple of 5, so there is no padding), in groups of five. Letters may
be typed in either case; ``0``, ``1`` and ``8`` are read as ``O``, ``I`` and ``B``, which
base32 does not use, and hyphens and spaces are ignored.

The admission messages a joining home and the operator's node exchange over P2P (the
``admission`` request channel) are here too, so that both sides read them the same way.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import struct
from dataclasses import dataclass
from typing import Final

from ledger_core.types import codec
from ledger_core.types.crypto import PUBLIC_KEY_RE, SIGNATURE_RE, SigningKey, verify
from ledger_core.types.names import name_problem
from ledger_core.types.tx import CHAIN_ID_RE, Role

PREFIX: Final = "TV1"
VERSION: Final = 1
GROUP: Final = 5
ROLES: Final = (
    Role.PROSUMER,
    Role.CONSUMER,
    Role.SUPPLIER,
    Role.DSO,
    Role.RETAILER,
    Role.AGGREGATOR,
)
MANUAL: Final = 0x80
MAX_SEEDS: Final = 4
HOST_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?")
_SIGNED: Final = b"transactiva-invitation\x00"
_CHECKED: Final = b"transactiva-invitation-check\x00"
_TYPO: Final = str.maketrans({"0": "O", "1": "I", "8": "B"})
CHANNEL: Final = "admission"
"""The P2P request channel the operator's node answers admission requests on."""
_ADMISSION: Final = b"transactiva-admission\x00"


class InvitationError(ValueError):
    """A code that is not a well-formed invitation; ``reason`` is a stable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Invitation:
    """A decoded invitation (its signature not yet checked against the operator's key)."""

    chain_id: str
    genesis_hash: str
    seeds: tuple[str, ...]
    name: str
    role: str
    manual: bool
    expires: int
    nonce: bytes
    signature: bytes = b""

    def payload(self) -> bytes:
        """The signed bytes."""
        out = bytearray([VERSION])
        chain = self.chain_id.encode("ascii")
        out += bytes([len(chain)]) + chain
        out += bytes.fromhex(self.genesis_hash)
        out.append(len(self.seeds))
        for seed in self.seeds:
            out += _encode_seed(seed)
        name = self.name.encode("ascii")
        out += bytes([len(name)]) + name
        out.append(ROLES.index(Role(self.role)) | (MANUAL if self.manual else 0))
        out += struct.pack(">I", self.expires)
        out += self.nonce
        return bytes(out)

    @property
    def id(self) -> str:
        """The invitation's id: SHA-256 of the signed bytes, hex (what the operator keeps)."""
        return hashlib.sha256(self.payload()).hexdigest()

    @property
    def approval(self) -> str:
        """``auto`` or ``manual``."""
        return "manual" if self.manual else "auto"

    def signed_by(self, public_key: bytes) -> bool:
        """Whether the signature is ``public_key``'s."""
        return verify(public_key, self.signature, _SIGNED + self.payload())

    def signed(self, key: SigningKey) -> Invitation:
        """This invitation with ``key``'s signature."""
        return Invitation(
            self.chain_id,
            self.genesis_hash,
            self.seeds,
            self.name,
            self.role,
            self.manual,
            self.expires,
            self.nonce,
            key.sign(_SIGNED + self.payload()),
        )

    @property
    def code(self) -> str:
        """The code people type or scan."""
        if len(self.signature) != 64:
            raise ValueError("sign the invitation first")
        body = self.payload() + self.signature
        length = next(n for n in range(2, 2 + GROUP) if (len(body) + n) % GROUP == 0)
        raw = body + hashlib.sha256(_CHECKED + body).digest()[:length]
        text = base64.b32encode(raw).decode("ascii")
        groups = [text[i : i + GROUP] for i in range(0, len(text), GROUP)]
        return "-".join([PREFIX, *groups])

    def describe(self) -> dict[str, codec.Value]:
        """What the code grants, as JSON."""
        return {
            "id": self.id,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "seeds": list(self.seeds),
            "name": self.name,
            "role": self.role,
            "approve": self.approval,
            "expires": self.expires,
        }


def _encode_seed(seed: str) -> bytes:
    host, port = split_seed(seed)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raw = host.encode("ascii")
        return bytes([0, len(raw)]) + raw + struct.pack(">H", port)
    kind = 4 if address.version == 4 else 6
    return bytes([kind]) + address.packed + struct.pack(">H", port)


def split_seed(seed: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as its parts; ValueError otherwise."""
    host, sep, port_text = seed.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{seed!r} is not host:port")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOST_RE.fullmatch(host):
            raise ValueError(f"{seed!r}: {host!r} is not a host name or address") from None
    return host, int(port_text)


def join_seed(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int, what: str) -> bytes:
        if self.at + count > len(self.data):
            raise InvitationError("malformed", f"the code ends inside the {what}")
        piece = self.data[self.at : self.at + count]
        self.at += count
        return piece

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]


def _read_seed(reader: _Reader) -> str:
    kind = reader.byte("seed")
    if kind == 4:
        host = str(ipaddress.IPv4Address(reader.take(4, "seed")))
    elif kind == 6:
        host = str(ipaddress.IPv6Address(reader.take(16, "seed")))
    elif kind == 0:
        raw = reader.take(reader.byte("seed"), "seed")
        host = raw.decode("ascii", "replace")
        if not HOST_RE.fullmatch(host):
            raise InvitationError("malformed", "the code's seed is not a host name")
    else:
        raise InvitationError("malformed", "the code's seed is of an unknown kind")
    (port,) = struct.unpack(">H", reader.take(2, "seed"))
    if port == 0:
        raise InvitationError("malformed", "the code's seed has port 0")
    return join_seed(host, port)


def parse_code(text: str) -> Invitation:
    """The invitation a code carries; :class:`InvitationError` for anything else."""
    compact = "".join(text.split()).replace("-", "").upper()
    if not compact.startswith(PREFIX):
        raise InvitationError(
            "malformed", f"an invitation code starts with {PREFIX}- (this one does not)"
        )
    letters = compact[len(PREFIX) :].translate(_TYPO)
    if len(letters) % 8 or not re.fullmatch(r"[A-Z2-7]*", letters):
        raise InvitationError(
            "mistyped",
            "the code has a character missing, extra or not of the code's alphabet; "
            "copy it again, or type it group by group",
        )
    raw = base64.b32decode(letters)
    body = next(
        (
            raw[:-length]
            for length in range(2, 2 + GROUP)
            if hashlib.sha256(_CHECKED + raw[:-length]).digest()[:length] == raw[-length:]
        ),
        None,
    )
    if body is None:
        raise InvitationError(
            "mistyped", "the code's checksum does not match: a character is mistyped"
        )
    reader = _Reader(body)
    version = reader.byte("version")
    if version != VERSION:
        raise InvitationError(
            "version", f"the code is of format {version}; this program reads {VERSION}"
        )
    chain_id = reader.take(reader.byte("chain id"), "chain id").decode("ascii", "replace")
    if not CHAIN_ID_RE.fullmatch(chain_id):
        raise InvitationError("malformed", "the code's chain id is not a chain id")
    genesis_hash = reader.take(32, "genesis hash").hex()
    count = reader.byte("seeds")
    if not 1 <= count <= MAX_SEEDS:
        raise InvitationError("malformed", f"the code names {count} seeds")
    seeds = tuple(_read_seed(reader) for _ in range(count))
    name = reader.take(reader.byte("name"), "name").decode("ascii", "replace")
    if name_problem(name) is not None:
        raise InvitationError("malformed", "the code's name is not a participant name")
    flags = reader.byte("role")
    if flags & 0x7F >= len(ROLES):
        raise InvitationError("malformed", "the code's role is unknown")
    (expires,) = struct.unpack(">I", reader.take(4, "expiry"))
    nonce = reader.take(4, "nonce")
    signature = reader.take(64, "signature")
    if reader.at != len(body):
        raise InvitationError("malformed", "the code has bytes after its signature")
    return Invitation(
        chain_id,
        genesis_hash,
        seeds,
        name,
        str(ROLES[flags & 0x7F]),
        bool(flags & MANUAL),
        expires,
        nonce,
        signature,
    )


# -- admission messages ----------------------------------------------------------------------


def admission_bytes(
    chain_id: str, invitation_id: str, participant_key: str, meter_key: str
) -> bytes:
    """What a joining home signs with its participant key when it asks for admission: the
    invitation it uses and the keys it wants registered (so the request cannot be replayed
    with other keys)."""
    return _ADMISSION + codec.encode(
        {
            "chain_id": chain_id,
            "invitation": invitation_id,
            "meter_key": meter_key,
            "participant_key": participant_key,
        }
    )


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """``{"op": "admit", ...}``: a home asks to be admitted with an invitation."""

    code: str
    participant_key: str
    meter_key: str
    signature: str

    @classmethod
    def make(
        cls, invitation: Invitation, participant: SigningKey, meter_key: bytes
    ) -> AdmissionRequest:
        """A request signed by ``participant``."""
        signed = admission_bytes(
            invitation.chain_id, invitation.id, participant.public_key.hex(), meter_key.hex()
        )
        return cls(
            invitation.code,
            participant.public_key.hex(),
            meter_key.hex(),
            participant.sign(signed).hex(),
        )

    def encode(self) -> bytes:
        """The request's bytes on the channel."""
        return codec.encode(
            {
                "code": self.code,
                "meter_key": self.meter_key,
                "op": "admit",
                "participant_key": self.participant_key,
                "signature": self.signature,
            }
        )

    def valid_for(self, invitation: Invitation) -> bool:
        """Whether the signature is the participant key's over this invitation and keys."""
        signed = admission_bytes(
            invitation.chain_id, invitation.id, self.participant_key, self.meter_key
        )
        return verify(bytes.fromhex(self.participant_key), bytes.fromhex(self.signature), signed)


def decode_request(data: bytes) -> tuple[str, dict[str, codec.Value]]:
    """``(op, message)`` of a request on the admission channel; ValueError if malformed."""
    try:
        value = codec.decode(data, 8192)
    except codec.DecodeError as err:
        raise ValueError(f"not canonical JSON: {err}") from None
    if not isinstance(value, dict) or not isinstance(value.get("op"), str):
        raise ValueError("a request is an object with an op")  # noqa: TRY004 - bad input
    op = str(value["op"])
    if op == "genesis":
        return op, value
    if not isinstance(value.get("code"), str) or len(str(value["code"])) > 1024:
        raise ValueError("the request needs the invitation code")
    if op == "check":
        return op, value
    if op != "admit":
        raise ValueError(f"unknown op {op!r}")
    for name, pattern in (
        ("participant_key", PUBLIC_KEY_RE),
        ("meter_key", PUBLIC_KEY_RE),
        ("signature", SIGNATURE_RE),
    ):
        item = value.get(name)
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise ValueError(f"{name} is missing or malformed")
    return op, value
