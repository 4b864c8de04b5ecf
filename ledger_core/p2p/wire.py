"""What travels between peers: addresses, handshake messages and envelopes.

Every decoder here reads untrusted bytes from the network. Each one is
strict (one encoding per value, no unknown fields), bounded (a size limit is
checked before any parsing) and raises :class:`WireError` with a message that
says what is wrong and where; nothing else escapes, whatever the input.

Handshake messages are canonical JSON (:mod:`ledger_core.codec`) in binary
WebSocket frames of at most :data:`HANDSHAKE_MAX_BYTES`::

    {"type": "hello", "protocol": 2, "chain_id": "...", "genesis_hash": "<64 hex>",
     "node_key": "<64 hex>", "listen": "host:port" | ":port" | "", "challenge": "<64 hex>"}
    {"type": "auth", "signature": "<128 hex>"}
    {"type": "refuse", "reason": "chain_id", "message": "...", "peers": ["tv…@host:port", ...]}

After the handshake every frame is one binary envelope::

    offset  size  field
    0       1     kind: 1 message, 2 request, 3 response, 4 error, 5 ping, 6 pong
    1       1     n, the length of the channel name (0 for ping and pong, else 1..32)
    2       n     channel name, ASCII [a-z][a-z0-9_-]*
    2+n     8     id, unsigned big-endian: request id (request, response, error),
                  nonce (ping, pong), sender's counter (message; informational)
    10+n    rest  payload (empty for ping and pong; UTF-8 text for error, at most 1 KiB)

A peer address is ``host:port`` or ``id@host:port`` where ``id`` is the node's
address (``tv`` + 40 hex digits); the host is an IPv4 address, a bracketed IPv6
address or a DNS name.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from ledger_core.types import codec
from ledger_core.types.crypto import ADDRESS_RE, PUBLIC_KEY_RE, SIGNATURE_RE, address_of
from ledger_core.types.tx import CHAIN_ID_RE

PROTOCOL_VERSION: Final = 2
"""2 since the state root's buckets became 16-way trees: a node computing the other root
could not follow the chain, so it is refused at the handshake."""
PATH: Final = "/p2p"
HANDSHAKE_MAX_BYTES: Final = 4096
MAX_ADDRESS_CHARS: Final = 300
MAX_REFUSE_MESSAGE: Final = 200
MAX_REFUSE_PEERS: Final = 32
MAX_PEX_ADDRESSES: Final = 64
MAX_PEX_BYTES: Final = 64 * MAX_ADDRESS_CHARS
MAX_ERROR_BYTES: Final = 1024
HEADER_BYTES: Final = 10
MAX_CHANNEL_CHARS: Final = 32
CHANNEL_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
REASON_RE: Final = re.compile(r"[a-z][a-z_]{0,31}")
HEX64_RE: Final = re.compile(r"[0-9a-f]{64}")
AUTH_DOMAIN: Final = b"transactiva/p2p/auth/v1\x00"
_U64: Final = struct.Struct(">Q")
_PORT_RE: Final = re.compile(r"[1-9][0-9]{0,4}")
_LABEL_RE: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class WireError(ValueError):
    """Bytes or text from a peer that are not a valid message; the text says why."""


class TooLargeError(WireError):
    """A well-formed envelope whose payload exceeds its channel's limit."""


# -- addresses ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """Where a peer listens, and optionally which node must answer there."""

    host: str
    port: int
    id: str | None = None

    @property
    def hostport(self) -> str:
        """``host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The WebSocket URL of the peer's P2P endpoint."""
        return f"ws://{self.hostport}{PATH}"

    def with_id(self, peer_id: str | None) -> PeerAddress:
        """The same place with ``peer_id`` as the expected node."""
        return PeerAddress(self.host, self.port, peer_id)

    def __str__(self) -> str:
        return f"{self.id}@{self.hostport}" if self.id else self.hostport


def _host(text: str, where: str) -> str:
    if text.startswith("["):
        if not text.endswith("]"):
            raise WireError(f"{where}: an IPv6 host is written [address]")
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise WireError(f"{where}: {text} is not an IPv6 address") from None
    if not text or len(text) > 253:
        raise WireError(f"{where}: the host must have 1 to 253 characters")
    if re.fullmatch(r"[0-9.]+", text):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise WireError(f"{where}: {text} is not an IPv4 address") from None
    if not all(_LABEL_RE.fullmatch(label) for label in text.split(".")):
        raise WireError(f"{where}: {text!r} is not a host name")
    return text.lower()


def _port(text: str, where: str) -> int:
    if not _PORT_RE.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise WireError(f"{where}: the port must be 1 to 65535 without leading zeros")
    return int(text)


def parse_address(text: str, where: str = "address") -> PeerAddress:
    """``[id@]host:port`` as a :class:`PeerAddress`; WireError naming ``where``."""
    if not 0 < len(text) <= MAX_ADDRESS_CHARS:
        raise WireError(f"{where}: an address is a string of 1 to {MAX_ADDRESS_CHARS} characters")
    peer_id: str | None = None
    rest = text
    if "@" in text:
        peer_id, _, rest = text.partition("@")
        if not ADDRESS_RE.fullmatch(peer_id):
            raise WireError(f"{where}: the node id before '@' must be tv + 40 hex digits")
    host, sep, port = rest.rpartition(":")
    if not sep:
        raise WireError(f"{where}: expected host:port, got {rest!r}")
    return PeerAddress(_host(host, where), _port(port, where), peer_id)


def parse_listen(text: str, where: str = "listen") -> tuple[str | None, int] | None:
    """A hello's ``listen`` field: None (not listening), or (host or None, port)."""
    if text == "":
        return None
    if text.startswith(":"):
        return None, _port(text[1:], where)
    address = parse_address(text, where)
    if address.id is not None:
        raise WireError(f"{where}: a listen address carries no node id")
    return address.host, address.port


# -- handshake messages -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """The first message of each side: who it is, which chain, and a fresh challenge."""

    protocol: int
    chain_id: str
    genesis_hash: str
    node_key: bytes
    listen: str
    challenge: bytes

    @property
    def peer_id(self) -> str:
        """The sender's node address, its peer id."""
        return address_of(self.node_key)

    def encode(self) -> bytes:
        return codec.encode(
            {
                "type": "hello",
                "protocol": self.protocol,
                "chain_id": self.chain_id,
                "genesis_hash": self.genesis_hash,
                "node_key": self.node_key.hex(),
                "listen": self.listen,
                "challenge": self.challenge.hex(),
            }
        )


@dataclass(frozen=True, slots=True)
class Auth:
    """The second message: the sender's signature over the other side's challenge."""

    signature: bytes

    def encode(self) -> bytes:
        return codec.encode({"type": "auth", "signature": self.signature.hex()})


@dataclass(frozen=True, slots=True)
class Refuse:
    """Why a side ends the handshake, with addresses the other side may try instead."""

    reason: str
    message: str
    peers: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return codec.encode(
            {
                "type": "refuse",
                "reason": self.reason,
                "message": self.message[:MAX_REFUSE_MESSAGE],
                "peers": list(self.peers[:MAX_REFUSE_PEERS]),
            }
        )


def auth_transcript(
    chain_id: str, genesis_hash: str, challenge: bytes, signer: bytes, verifier: bytes
) -> bytes:
    """What a side signs: the other side's challenge, both node keys and the chain.

    ``signer`` is the signing side's public key and ``verifier`` the other's,
    so a signature made for one peer, one connection or one chain verifies
    nowhere else (and cannot be reflected back to its author).
    """
    return AUTH_DOMAIN + codec.encode(
        {
            "chain_id": chain_id,
            "genesis_hash": genesis_hash,
            "protocol": PROTOCOL_VERSION,
            "challenge": challenge.hex(),
            "signer": signer.hex(),
            "verifier": verifier.hex(),
        }
    )


def _fields(obj: dict[str, codec.Value], kind: str, names: set[str]) -> None:
    missing = sorted(names - set(obj))
    extra = sorted(set(obj) - names)
    if missing:
        raise WireError(f"{kind}: missing field {missing[0]!r}")
    if extra:
        raise WireError(f"{kind}: unknown field {extra[0]!r}")


def _text(value: codec.Value, where: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise WireError(f"{where}: must be a string")
    if pattern is not None and not pattern.fullmatch(value):
        raise WireError(f"{where}: does not match {pattern.pattern}")
    return value


def decode_handshake(data: bytes) -> Hello | Auth | Refuse:
    """One handshake message; WireError says what is wrong."""
    if len(data) > HANDSHAKE_MAX_BYTES:
        raise WireError(f"handshake message of {len(data)} bytes; the limit is 4096")
    try:
        value = codec.decode(data, HANDSHAKE_MAX_BYTES)
    except codec.DecodeError as err:
        raise WireError(f"handshake message: {err}") from None
    if not isinstance(value, dict):
        raise WireError("handshake message: must be a JSON object")
    kind = value.get("type")
    if kind == "hello":
        names = {"type", "protocol", "chain_id", "genesis_hash", "node_key", "listen"}
        _fields(value, "hello", names | {"challenge"})
        protocol = value["protocol"]
        if type(protocol) is not int or not 0 <= protocol < 2**31:
            raise WireError("hello.protocol: must be an integer 0 to 2^31-1")
        listen = _text(value["listen"], "hello.listen")
        if len(listen) > MAX_ADDRESS_CHARS:
            raise WireError("hello.listen: too long")
        parse_listen(listen, "hello.listen")
        return Hello(
            protocol=protocol,
            chain_id=_text(value["chain_id"], "hello.chain_id", CHAIN_ID_RE),
            genesis_hash=_text(value["genesis_hash"], "hello.genesis_hash", HEX64_RE),
            node_key=bytes.fromhex(_text(value["node_key"], "hello.node_key", PUBLIC_KEY_RE)),
            listen=listen,
            challenge=bytes.fromhex(_text(value["challenge"], "hello.challenge", HEX64_RE)),
        )
    if kind == "auth":
        _fields(value, "auth", {"type", "signature"})
        signature = _text(value["signature"], "auth.signature", SIGNATURE_RE)
        return Auth(bytes.fromhex(signature))
    if kind == "refuse":
        _fields(value, "refuse", {"type", "reason", "message", "peers"})
        reason = _text(value["reason"], "refuse.reason", REASON_RE)
        message = _text(value["message"], "refuse.message")
        if len(message) > MAX_REFUSE_MESSAGE:
            raise WireError(f"refuse.message: at most {MAX_REFUSE_MESSAGE} characters")
        peers = value["peers"]
        if not isinstance(peers, list) or len(peers) > MAX_REFUSE_PEERS:
            raise WireError(f"refuse.peers: a list of at most {MAX_REFUSE_PEERS} addresses")
        for i, item in enumerate(peers):
            parse_address(_text(item, f"refuse.peers[{i}]"), f"refuse.peers[{i}]")
        return Refuse(reason, message, tuple(str(p) for p in peers))
    raise WireError("handshake message: type must be hello, auth or refuse")


# -- envelopes ------------------------------------------------------------------------


class Kind(IntEnum):
    """What an envelope is."""

    MESSAGE = 1
    REQUEST = 2
    RESPONSE = 3
    ERROR = 4
    PING = 5
    PONG = 6


_CONTROL: Final = (Kind.PING, Kind.PONG)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One frame after the handshake."""

    kind: Kind
    channel: str
    id: int
    payload: bytes


def encode_envelope(kind: Kind, channel: str, ident: int, payload: bytes = b"") -> bytes:
    """The frame of an envelope (the caller checks the channel name and the size)."""
    name = channel.encode("ascii")
    return bytes((kind, len(name))) + name + _U64.pack(ident) + payload


def decode_envelope(frame: bytes, max_payload: Callable[[str], int]) -> Envelope:
    """One envelope; ``max_payload(channel)`` bounds messages, requests and responses."""
    if len(frame) < HEADER_BYTES:
        raise WireError(f"a frame of {len(frame)} bytes is shorter than an envelope header")
    try:
        kind = Kind(frame[0])
    except ValueError:
        raise WireError(f"unknown envelope kind {frame[0]}") from None
    size = frame[1]
    if kind in _CONTROL:
        if size != 0:
            raise WireError(f"{kind.name.lower()} carries no channel")
    elif not 1 <= size <= MAX_CHANNEL_CHARS:
        raise WireError(f"channel name of {size} bytes; 1 to {MAX_CHANNEL_CHARS} expected")
    if len(frame) < HEADER_BYTES + size:
        raise WireError("the frame ends inside the envelope header")
    raw = frame[2 : 2 + size]
    channel = raw.decode("ascii", errors="replace")
    if size and not CHANNEL_RE.fullmatch(channel):
        raise WireError(f"channel name {channel!r} is not [a-z][a-z0-9_-]*")
    (ident,) = _U64.unpack_from(frame, 2 + size)
    payload = frame[HEADER_BYTES + size :]
    if kind in _CONTROL:
        if payload:
            raise WireError(f"{kind.name.lower()} carries no payload")
    elif kind is Kind.ERROR:
        if len(payload) > MAX_ERROR_BYTES:
            raise TooLargeError(
                f"error text of {len(payload)} bytes; the limit is {MAX_ERROR_BYTES}"
            )
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("error text is not UTF-8") from None
    else:
        limit = max_payload(channel)
        if len(payload) > limit:
            raise TooLargeError(
                f"{kind.name.lower()} of {len(payload)} bytes on channel {channel!r};"
                f" the limit is {limit}"
            )
    return Envelope(kind, channel, ident, payload)


# -- peer exchange --------------------------------------------------------------------


def encode_pex(addresses: list[PeerAddress]) -> bytes:
    """A peer-exchange answer."""
    return codec.encode({"peers": [str(a) for a in addresses[:MAX_PEX_ADDRESSES]]})


def decode_pex(data: bytes) -> list[PeerAddress]:
    """The addresses of a peer-exchange answer; WireError otherwise."""
    try:
        value = codec.decode(data, MAX_PEX_BYTES)
    except codec.DecodeError as err:
        raise WireError(f"pex: {err}") from None
    if not isinstance(value, dict):
        raise WireError("pex: must be a JSON object")
    _fields(value, "pex", {"peers"})
    peers = value["peers"]
    if not isinstance(peers, list) or len(peers) > MAX_PEX_ADDRESSES:
        raise WireError(f"pex.peers: a list of at most {MAX_PEX_ADDRESSES} addresses")
    return [
        parse_address(_text(item, f"pex.peers[{i}]"), f"pex.peers[{i}]")
        for i, item in enumerate(peers)
    ]
