"""The handshake on real sockets: success, every refusal reason, replays and spoofing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import aiohttp
import pytest

from ledger_core.demo.chain import free_port
from ledger_core.p2p import Network
from ledger_core.p2p.wire import (
    PROTOCOL_VERSION,
    Auth,
    Hello,
    Kind,
    Refuse,
    auth_transcript,
    decode_handshake,
)
from tests.p2p.netkit import (
    CHAIN,
    GENESIS,
    addr,
    bare_peer,
    close_reason,
    connected,
    eventually,
    key,
    limits,
    net,
    running,
)

type Step = bytes | Callable[[Hello], bytes]


async def converse(port: int, steps: list[Step]) -> tuple[Hello, list[Auth | Refuse], str]:
    """Speak the handshake by hand: read the node's hello, send ``steps``, read the answers.

    Returns the node's hello, its answers and how the connection ended: its close
    reason, or "open" when the node went on to its first envelope (a ping).
    """
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            f"ws://127.0.0.1:{port}/p2p", timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
        )
        async with asyncio.timeout(5):
            first = await ws.receive()
            theirs = decode_handshake(first.data)
            assert isinstance(theirs, Hello)
            for step in steps:
                await ws.send_bytes(step if isinstance(step, bytes) else step(theirs))
            replies: list[Auth | Refuse] = []
            while True:
                message = await ws.receive()
                if message.type is not aiohttp.WSMsgType.BINARY:
                    reason = f"{ws.close_code} {message.extra or ''}"
                    await ws.close()
                    return theirs, replies, reason
                if replies and isinstance(replies[-1], Auth) and message.data[0] == Kind.PING:
                    await ws.close()  # accepted: the node's first envelope is a ping
                    return theirs, replies, "open"
                reply = decode_handshake(message.data)
                assert not isinstance(reply, Hello)
                replies.append(reply)


def hello_of(i: int, challenge: bytes, **changes: object) -> Hello:
    fields: dict[str, object] = {
        "protocol": PROTOCOL_VERSION,
        "chain_id": CHAIN,
        "genesis_hash": GENESIS,
        "node_key": key(i).public_key,
        "listen": "",
        "challenge": challenge,
    }
    fields.update(changes)
    return Hello(**fields)  # type: ignore[arg-type]


def auth_of(i: int, chain: str = CHAIN) -> Callable[[Hello], bytes]:
    """Node ``i``'s correct auth for the node it talks to."""

    def make(theirs: Hello) -> bytes:
        transcript = auth_transcript(
            chain, GENESIS, theirs.challenge, key(i).public_key, theirs.node_key
        )
        return Auth(key(i).sign(transcript)).encode()

    return make


def refusal(replies: list[Auth | Refuse]) -> Refuse:
    found = [r for r in replies if isinstance(r, Refuse)]
    assert len(found) == 1, replies
    return found[0]


async def test_two_nodes_authenticate_each_other_and_report_peer_details() -> None:
    a = net(1)
    async with running(a):
        b = net(2, persistent=[addr(a)])
        async with running(b):
            await eventually(lambda: connected(a, b), what="a and b connected")
            await eventually(lambda: all(p.rtt is not None for p in a.peers() + b.peers()))
            (seen_by_a,) = a.peers()
            (seen_by_b,) = b.peers()
            assert seen_by_a.id == key(2).address
            assert seen_by_a.public_key == key(2).public_key.hex()
            assert seen_by_a.direction == "inbound"
            assert seen_by_a.listen_address == addr(b)
            assert seen_by_b.id == key(1).address
            assert seen_by_b.direction == "outbound"
            assert seen_by_b.address == f"127.0.0.1:{a.listen_port}"
            assert seen_by_b.messages_out >= 1
            assert seen_by_b.bytes_out >= 10
            assert seen_by_b.rtt is not None
            assert 0 < seen_by_b.rtt < 1
            assert a.listen_address == addr(a)


async def test_a_peer_on_another_chain_is_refused_with_the_reason() -> None:
    a = net(1)
    async with running(a):
        b = net(2, persistent=[addr(a)], chain="otra-cadena")
        async with running(b):
            await eventually(lambda: any("chain_id" in d.reason for d in a.recent_disconnects()))
            await eventually(lambda: b.addresses()[0].failures >= 1)
            (entry,) = b.addresses()
            assert entry.last_error is not None
            assert "chain_id" in entry.last_error
            assert "'otra-cadena'" in entry.last_error
            assert a.peers() == []
            assert b.peers() == []


async def test_a_peer_with_another_genesis_is_refused() -> None:
    a = net(1)
    async with running(a):
        _, replies, reason = await converse(
            a.listen_port, [hello_of(2, os.urandom(32), genesis_hash="cd" * 32).encode()]
        )
        assert refusal(replies).reason == "genesis_hash"
        assert reason.startswith("1008 genesis_hash: chain 'prueba-p2p' has genesis")


async def test_another_protocol_version_is_refused() -> None:
    a = net(1)
    async with running(a):
        _, replies, _ = await converse(
            a.listen_port, [hello_of(2, os.urandom(32), protocol=1).encode()]
        )
        found = refusal(replies)
        assert found.reason == "protocol_version"
        assert found.message == "this node speaks protocol 2, the peer 1"


async def test_the_allow_list_admits_only_listed_nodes() -> None:
    a = net(1, allow=[key(2).address])
    async with running(a):
        _, replies, _ = await converse(a.listen_port, [hello_of(3, os.urandom(32)).encode()])
        found = refusal(replies)
        assert found.reason == "not_allowed"
        assert key(3).address in found.message
        _, replies, reason = await converse(
            a.listen_port, [hello_of(2, os.urandom(32)).encode(), auth_of(2)]
        )
        assert [type(r) for r in replies] == [Auth]
        assert reason == "open"


async def test_dialling_oneself_is_detected_and_not_retried() -> None:
    port = free_port()
    a = net(1, port=port, persistent=[f"127.0.0.1:{port}"])
    async with running(a):
        await eventually(
            lambda: any(
                d.reason.endswith("self: this address is the node itself")
                for d in a.recent_disconnects()
            )
        )
        await asyncio.sleep(0.3)
        assert a.addresses() == []  # known to be itself: never dialled again
        assert len(a.recent_disconnects()) == 2  # one refusal on each end, once


async def test_a_pinned_node_id_must_answer_at_its_address() -> None:
    a = net(1)
    async with running(a):
        wrong = key(9).address
        b = net(2, persistent=[f"{wrong}@127.0.0.1:{a.listen_port}"])
        async with running(b):
            await eventually(lambda: b.addresses()[0].failures >= 1)
            error = b.addresses()[0].last_error
            assert error is not None
            assert "unexpected_peer" in error
            assert f"expected node {wrong}, this is {a.address}" in error


async def test_a_full_node_refuses_and_points_to_its_peers() -> None:
    a = net(1, max_peers=1)
    async with running(a):
        b = net(2, persistent=[addr(a)])
        async with running(b):
            await eventually(lambda: connected(a, b))
            _, replies, _ = await converse(a.listen_port, [hello_of(3, os.urandom(32)).encode()])
            found = refusal(replies)
            assert found.reason == "too_many_peers"
            assert found.peers == (addr(b),)


async def test_a_forged_auth_is_refused() -> None:
    a = net(1)
    async with running(a):
        # Claims to be node 2 but signs with node 3's key.
        def forged(theirs: Hello) -> bytes:
            transcript = auth_transcript(
                CHAIN, GENESIS, theirs.challenge, key(2).public_key, theirs.node_key
            )
            return Auth(key(3).sign(transcript)).encode()

        _, replies, reason = await converse(
            a.listen_port, [hello_of(2, os.urandom(32)).encode(), forged]
        )
        assert refusal(replies).reason == "bad_signature"
        assert "bad_signature" in reason
        await eventually(lambda: any("bad_signature" in d.reason for d in a.recent_disconnects()))
        assert a.peers() == []


async def test_a_recorded_handshake_cannot_be_replayed() -> None:
    a, other_peer = net(1), net(4)
    other_chain = net(5, chain="otra-cadena")
    async with running(a, other_peer, other_chain):
        recorded_hello = hello_of(2, os.urandom(32)).encode()
        sent: list[bytes] = []

        def record(theirs: Hello) -> bytes:
            sent.append(auth_of(2)(theirs))
            return sent[0]

        _, replies, _ = await converse(a.listen_port, [recorded_hello, record])
        assert [type(r) for r in replies] == [Auth]  # the original handshake succeeded
        # The same bytes again, to the same node: its challenge is new.
        _, replies, _ = await converse(a.listen_port, [recorded_hello, sent[0]])
        assert refusal(replies).reason == "bad_signature"
        # To another node of the chain: the signature names the first node's key.
        _, replies, _ = await converse(other_peer.listen_port, [recorded_hello, sent[0]])
        assert refusal(replies).reason == "bad_signature"
        # To a node of another chain: refused before any signature is looked at.
        _, replies, _ = await converse(other_chain.listen_port, [recorded_hello, sent[0]])
        assert refusal(replies).reason == "chain_id"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([b"not json"], "handshake message: not JSON"),
        ([Auth(b"\x00" * 64).encode()], "expected hello, got auth"),
        (
            [hello_of(2, b"\x01" * 32).encode(), hello_of(2, b"\x01" * 32).encode()],
            "expected auth, got hello",
        ),
    ],
)
async def test_malformed_handshakes_are_refused_with_the_reason(
    steps: list[Step], message: str
) -> None:
    a = net(1)
    async with running(a):
        _, replies, _ = await converse(a.listen_port, steps)
        found = refusal(replies)
        assert found.reason == "malformed"
        assert message in found.message


async def test_text_frames_and_silence_are_refused() -> None:
    a = net(1, lim=limits(handshake_timeout=0.3))
    async with running(a), aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{a.listen_port}/p2p")
        await ws.send_str("hola")
        assert "malformed: handshake messages are binary frames" in await close_reason(ws)
        ws = await session.ws_connect(f"ws://127.0.0.1:{a.listen_port}/p2p")
        assert "timeout: no complete handshake within 0.3 s" in await close_reason(ws)
        response = await session.get(f"http://127.0.0.1:{a.listen_port}/p2p")
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "not_websocket"


async def test_a_bare_peer_completes_the_handshake() -> None:
    a = net(1)
    async with running(a), aiohttp.ClientSession() as session:
        ws, theirs = await bare_peer(session, a.listen_port, key(2))
        try:
            assert theirs.peer_id == a.address
            await eventually(lambda: [p.id for p in a.peers()] == [key(2).address])
        finally:
            await ws.close()
        await eventually(lambda: a.peers() == [])


def test_networks_refuse_bad_settings() -> None:
    k = key(1)
    with pytest.raises(ValueError, match="is not a chain id"):
        Network(k, "Bad", GENESIS, "127.0.0.1", 0, [], [])
    with pytest.raises(ValueError, match="genesis_hash"):
        Network(k, CHAIN, "x", "127.0.0.1", 0, [], [])
    with pytest.raises(ValueError, match=r"seeds\[0\]: expected host:port"):
        Network(k, CHAIN, GENESIS, "127.0.0.1", 0, ["nowhere"], [])
    with pytest.raises(ValueError, match="allow"):
        Network(k, CHAIN, GENESIS, "127.0.0.1", 0, [], [], allow=["x"])
    with pytest.raises(ValueError, match="max_peers"):
        Network(k, CHAIN, GENESIS, "127.0.0.1", 0, [], [], max_peers=0)
    with pytest.raises(ValueError, match="port"):
        Network(k, CHAIN, GENESIS, "127.0.0.1", 70000, [], [])
