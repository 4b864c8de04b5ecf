"""The authenticated handshake at the start of every peer connection.

Both sides run the same steps, whoever dialled:

1. send ``hello``: protocol version, chain id, genesis hash, node public key,
   listen address and a fresh random 32-byte challenge;
2. read the other's ``hello`` and check it: same protocol, chain and genesis,
   not ourselves, and whatever the caller adds (allow-list, expected node id,
   capacity); on failure send ``refuse`` with a reason code and close;
3. send ``auth``: an Ed25519 signature by the node key over the other side's
   challenge, both public keys (signer first) and the chain
   (:func:`~ledger_core.p2p.wire.auth_transcript`);
4. read the other's ``auth`` and verify it against our own challenge.

A recorded handshake is useless elsewhere: the challenge is new on every
connection, and the signed transcript names both keys and the chain. The
whole exchange is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import WSCloseCode, WSMessage, WSMsgType

from ledger_core.p2p.wire import (
    PROTOCOL_VERSION,
    Auth,
    Hello,
    Refuse,
    WireError,
    auth_transcript,
    decode_handshake,
)
from ledger_core.types.crypto import SigningKey, verify

CLOSE_REASON_BYTES: Final = 120


class Socket(Protocol):
    """What the handshake needs of a WebSocket (client or server side of aiohttp)."""

    async def send_bytes(self, data: bytes, compress: int | None = None) -> None: ...

    async def receive(self, timeout: float | None = None) -> WSMessage: ...  # noqa: ASYNC109

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...  # noqa: ANN401


class HandshakeError(Exception):
    """The handshake failed: ``reason`` is a code, ``by_peer`` says who refused."""

    def __init__(
        self, reason: str, message: str, *, by_peer: bool, peers: tuple[str, ...] = ()
    ) -> None:
        who = "refused by the peer" if by_peer else "refused"
        super().__init__(f"{who}: {reason}: {message}")
        self.reason = reason
        self.message = message
        self.by_peer = by_peer
        self.peers = peers


@dataclass(frozen=True, slots=True)
class Identity:
    """This node in a handshake."""

    key: SigningKey
    chain_id: str
    genesis_hash: str
    listen: str


type Vet = Callable[[Hello], Refuse | None]


def close_message(text: str) -> bytes:
    """``text`` cut to fit a WebSocket close frame."""
    return text.encode("utf-8")[:CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")


def check_hello(me: Identity, theirs: Hello) -> Refuse | None:
    """The checks every node makes of every peer's hello."""
    if theirs.protocol != PROTOCOL_VERSION:
        return Refuse(
            "protocol_version",
            f"this node speaks protocol {PROTOCOL_VERSION}, the peer {theirs.protocol}",
        )
    if theirs.chain_id != me.chain_id:
        return Refuse(
            "chain_id", f"this node is on chain {me.chain_id!r}, the peer on {theirs.chain_id!r}"
        )
    if theirs.genesis_hash != me.genesis_hash:
        return Refuse(
            "genesis_hash",
            f"chain {me.chain_id!r} has genesis {me.genesis_hash[:16]}…, "
            f"the peer has {theirs.genesis_hash[:16]}…",
        )
    if theirs.node_key == me.key.public_key:
        return Refuse("self", "this address is the node itself")
    return None


async def refuse(ws: Socket, refusal: Refuse) -> None:
    """Tell the peer why, then close; errors of a dying connection are ignored."""
    with contextlib.suppress(Exception):
        await ws.send_bytes(refusal.encode())
    with contextlib.suppress(Exception):
        await ws.close(
            code=WSCloseCode.POLICY_VIOLATION,
            message=close_message(f"{refusal.reason}: {refusal.message}"),
        )


async def _receive(ws: Socket, expected: type[Hello] | type[Auth]) -> Hello | Auth:
    message = await ws.receive()
    if message.type is not WSMsgType.BINARY:
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            extra = message.extra or "no reason given"
            raise HandshakeError("closed", f"connection closed: {extra}", by_peer=True)
        if message.type is WSMsgType.ERROR:
            raise HandshakeError("closed", f"connection failed: {message.data}", by_peer=True)
        raise WireError("handshake messages are binary frames")
    decoded = decode_handshake(message.data)
    if isinstance(decoded, Refuse):
        raise HandshakeError(decoded.reason, decoded.message, by_peer=True, peers=decoded.peers)
    if not isinstance(decoded, expected):
        raise WireError(
            f"expected {expected.__name__.lower()}, got {type(decoded).__name__.lower()}"
        )
    return decoded


async def handshake(ws: Socket, me: Identity, vet: Vet, seconds: float) -> Hello:
    """Authenticate the peer at the other end of ``ws``; its verified hello, or HandshakeError."""
    challenge = os.urandom(32)
    mine = Hello(
        PROTOCOL_VERSION, me.chain_id, me.genesis_hash, me.key.public_key, me.listen, challenge
    )
    try:
        async with asyncio.timeout(seconds):
            await ws.send_bytes(mine.encode())
            theirs = await _receive(ws, Hello)
            assert isinstance(theirs, Hello)
            refusal = check_hello(me, theirs) or vet(theirs)
            if refusal is not None:
                await refuse(ws, refusal)
                raise HandshakeError(refusal.reason, refusal.message, by_peer=False)
            signed = auth_transcript(
                me.chain_id, me.genesis_hash, theirs.challenge, me.key.public_key, theirs.node_key
            )
            await ws.send_bytes(Auth(me.key.sign(signed)).encode())
            auth = await _receive(ws, Auth)
            assert isinstance(auth, Auth)
            expected = auth_transcript(
                me.chain_id, me.genesis_hash, challenge, theirs.node_key, me.key.public_key
            )
            if not verify(theirs.node_key, auth.signature, expected):
                refusal = Refuse("bad_signature", "the auth signature does not verify")
                await refuse(ws, refusal)
                raise HandshakeError(refusal.reason, refusal.message, by_peer=False)
    except WireError as err:
        await refuse(ws, Refuse("malformed", str(err)))
        raise HandshakeError("malformed", str(err), by_peer=False) from None
    except TimeoutError:
        await refuse(ws, Refuse("timeout", f"no complete handshake within {seconds:g} s"))
        raise HandshakeError(
            "timeout", f"no complete handshake within {seconds:g} s", by_peer=False
        ) from None
    except (ConnectionError, RuntimeError) as err:
        raise HandshakeError("closed", f"connection failed: {err}", by_peer=True) from None
    return theirs
