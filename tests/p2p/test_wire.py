"""Decoders of everything a peer sends: strict, bounded, and never crashing (hypothesis)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.p2p.limits import Limits, SeenSet, TokenBucket
from ledger_core.p2p.wire import (
    HANDSHAKE_MAX_BYTES,
    HEADER_BYTES,
    Auth,
    Hello,
    Kind,
    PeerAddress,
    Refuse,
    TooLargeError,
    WireError,
    auth_transcript,
    decode_envelope,
    decode_handshake,
    decode_pex,
    encode_envelope,
    encode_pex,
    parse_address,
    parse_listen,
)
from ledger_core.types import codec
from ledger_core.types.crypto import verify
from tests.p2p.netkit import CHAIN, GENESIS, key

LIMITS = Limits(channel_bytes={"tx": 100, "consensus": 1000}, default_channel_bytes=50)
NODE = key(1).address


def hello(**changes: object) -> dict[str, codec.Value]:
    value: dict[str, codec.Value] = {
        "type": "hello",
        "protocol": 1,
        "chain_id": CHAIN,
        "genesis_hash": GENESIS,
        "node_key": key(1).public_key.hex(),
        "listen": "127.0.0.1:26656",
        "challenge": "00" * 32,
    }
    value.update(changes)  # type: ignore[arg-type]
    return value


# -- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:26656", PeerAddress("127.0.0.1", 26656)),
        (f"{NODE}@10.0.0.7:1", PeerAddress("10.0.0.7", 1, NODE)),
        ("Concentrador.local:65535", PeerAddress("concentrador.local", 65535)),
        ("[::1]:8000", PeerAddress("::1", 8000)),
    ],
)
def test_addresses_parse_and_print_back(text: str, expected: PeerAddress) -> None:
    address = parse_address(text)
    assert address == expected
    assert parse_address(str(address)) == address
    assert address.url == f"ws://{address.hostport}/p2p"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1", "expected host:port"),
        ("127.0.0.1:0", "the port must be 1 to 65535"),
        ("127.0.0.1:065", "without leading zeros"),
        ("127.0.0.1:70000", "the port must be 1 to 65535"),
        ("300.1.1.1:80", "is not an IPv4 address"),
        ("[::1:80", "an IPv6 host is written [address]"),
        ("[zz]:80", "is not an IPv6 address"),
        ("bad_host:80", "is not a host name"),
        (":80", "the host must have 1 to 253 characters"),
        ("tvXYZ@127.0.0.1:80", "the node id before '@'"),
        ("", "1 to 300 characters"),
    ],
)
def test_bad_addresses_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(WireError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_address(text, "seeds[0]")


def test_listen_fields_allow_an_unknown_host_or_none() -> None:
    assert parse_listen("") is None
    assert parse_listen(":26656") == (None, 26656)
    assert parse_listen("10.0.0.1:5") == ("10.0.0.1", 5)
    with pytest.raises(WireError, match="carries no node id"):
        parse_listen(f"{NODE}@10.0.0.1:5")


@given(st.text(max_size=400))
def test_address_parser_never_crashes(text: str) -> None:
    try:
        address = parse_address(text)
    except WireError:
        return
    assert parse_address(str(address)) == address


# -- handshake messages -----------------------------------------------------------------


def test_handshake_messages_round_trip() -> None:
    message = Hello(1, CHAIN, GENESIS, key(2).public_key, ":9", b"\x07" * 32)
    assert decode_handshake(message.encode()) == message
    assert message.peer_id == key(2).address
    auth = Auth(b"\x01" * 64)
    assert decode_handshake(auth.encode()) == auth
    refusal = Refuse("too_many_peers", "full", (f"{NODE}@127.0.0.1:5",))
    assert decode_handshake(refusal.encode()) == refusal


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must be a JSON object"),
        ({"type": "bye"}, "type must be hello, auth or refuse"),
        (hello(extra=1), "unknown field 'extra'"),
        ({k: v for k, v in hello().items() if k != "challenge"}, "missing field 'challenge'"),
        (hello(protocol=-1), "hello.protocol"),
        (hello(protocol="1"), "hello.protocol"),
        (hello(chain_id="Bad Chain"), "hello.chain_id"),
        (hello(genesis_hash="AB" * 32), "hello.genesis_hash"),
        (hello(node_key="00"), "hello.node_key"),
        (hello(challenge="zz" * 32), "hello.challenge"),
        (hello(listen="nowhere"), "hello.listen"),
        (hello(listen=5), "hello.listen: must be a string"),
        ({"type": "auth", "signature": "00" * 10}, "auth.signature"),
        ({"type": "refuse", "reason": "X", "message": "", "peers": []}, "refuse.reason"),
        ({"type": "refuse", "reason": "x", "message": "m" * 201, "peers": []}, "refuse.message"),
        ({"type": "refuse", "reason": "x", "message": "", "peers": ["a"]}, r"refuse.peers\[0\]"),
        ({"type": "refuse", "reason": "x", "message": "", "peers": "a"}, "refuse.peers"),
    ],
)
def test_bad_handshake_messages_name_the_field(value: codec.Value, message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode_handshake(codec.encode(value))


def test_handshake_messages_are_bounded_and_canonical() -> None:
    with pytest.raises(WireError, match="the limit is 4096"):
        decode_handshake(b" " * (HANDSHAKE_MAX_BYTES + 1))
    with pytest.raises(WireError, match="canonical"):
        decode_handshake(b'{"type": "auth"}')


@given(st.binary(max_size=600))
def test_handshake_decoder_never_crashes_on_bytes(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_handshake(data)


@given(
    st.dictionaries(
        st.sampled_from(["type", "protocol", "chain_id", "genesis_hash", "node_key", "listen"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=80)),
    )
)
def test_handshake_decoder_never_crashes_on_near_misses(fields: dict[str, codec.Value]) -> None:
    value = hello()
    value.update(fields)
    try:
        decoded = decode_handshake(codec.encode(value))
    except WireError:
        return
    assert isinstance(decoded, Hello)


def test_the_signed_transcript_binds_challenge_keys_and_chain() -> None:
    a, b = key(1), key(2)
    base = auth_transcript(CHAIN, GENESIS, b"\x01" * 32, a.public_key, b.public_key)
    signature = a.sign(base)
    assert verify(a.public_key, signature, base)
    for other in (
        auth_transcript("otra-cadena", GENESIS, b"\x01" * 32, a.public_key, b.public_key),
        auth_transcript(CHAIN, "cd" * 32, b"\x01" * 32, a.public_key, b.public_key),
        auth_transcript(CHAIN, GENESIS, b"\x02" * 32, a.public_key, b.public_key),
        auth_transcript(CHAIN, GENESIS, b"\x01" * 32, a.public_key, key(3).public_key),
        auth_transcript(CHAIN, GENESIS, b"\x01" * 32, b.public_key, a.public_key),
    ):
        assert not verify(a.public_key, signature, other)


# -- envelopes ------------------------------------------------------------------------


def test_envelopes_round_trip_for_every_kind() -> None:
    for kind, channel, payload in (
        (Kind.MESSAGE, "tx", b"x" * 100),
        (Kind.REQUEST, "sync", b""),
        (Kind.RESPONSE, "consensus", b"y" * 1000),
        (Kind.ERROR, "sync", "no está".encode()),
        (Kind.PING, "", b""),
        (Kind.PONG, "", b""),
    ):
        frame = encode_envelope(kind, channel, 2**64 - 1, payload)
        envelope = decode_envelope(frame, LIMITS.max_bytes)
        assert (envelope.kind, envelope.channel, envelope.id, envelope.payload) == (
            kind,
            channel,
            2**64 - 1,
            payload,
        )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x01\x02tx", "shorter than an envelope header"),
        (b"\x09\x02tx" + bytes(8), "unknown envelope kind 9"),
        (b"\x01\x00" + bytes(8), "channel name of 0 bytes"),
        (b"\x01\x21" + b"a" * 33 + bytes(8), "channel name of 33 bytes"),
        (b"\x05\x02tx" + bytes(8), "ping carries no channel"),
        (b"\x06\x00" + bytes(8) + b"x", "pong carries no payload"),
        (b"\x01\x02TX" + bytes(8), "is not"),
        (b"\x01\x02\xff\xfe" + bytes(8), "is not"),
        (b"\x01\x05tx" + bytes(8), "ends inside the envelope header"),
        (b"\x04\x02tx" + bytes(8) + b"\xff", "error text is not UTF-8"),
    ],
)
def test_bad_envelopes_say_why(frame: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode_envelope(frame, LIMITS.max_bytes)


def test_channel_limits_apply_per_channel() -> None:
    assert decode_envelope(encode_envelope(Kind.MESSAGE, "tx", 1, b"x" * 100), LIMITS.max_bytes)
    with pytest.raises(
        TooLargeError, match="message of 101 bytes on channel 'tx'; the limit is 100"
    ):
        decode_envelope(encode_envelope(Kind.MESSAGE, "tx", 1, b"x" * 101), LIMITS.max_bytes)
    with pytest.raises(TooLargeError, match="the limit is 50"):
        decode_envelope(encode_envelope(Kind.REQUEST, "other", 1, b"x" * 51), LIMITS.max_bytes)
    with pytest.raises(TooLargeError, match="error text of 1025 bytes"):
        decode_envelope(encode_envelope(Kind.ERROR, "tx", 1, b"x" * 1025), LIMITS.max_bytes)
    assert LIMITS.max_frame == HANDSHAKE_MAX_BYTES  # the handshake must always fit
    assert Limits().max_frame == 64 * 1024 * 1024 + HEADER_BYTES + 32  # the blocks channel


@given(st.binary(max_size=300))
def test_envelope_decoder_never_crashes(frame: bytes) -> None:
    try:
        envelope = decode_envelope(frame, LIMITS.max_bytes)
    except WireError:
        return
    assert encode_envelope(envelope.kind, envelope.channel, envelope.id, envelope.payload) == frame


@given(
    st.sampled_from(list(Kind)),
    st.from_regex(r"[a-z][a-z0-9_-]{0,31}", fullmatch=True),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=120),
)
def test_valid_envelopes_decode_to_themselves(
    kind: Kind, channel: str, ident: int, payload: bytes
) -> None:
    if kind in (Kind.PING, Kind.PONG):
        channel, payload = "", b""
    frame = encode_envelope(kind, channel, ident, payload)
    try:
        envelope = decode_envelope(frame, LIMITS.max_bytes)
    except TooLargeError:
        assert len(payload) > LIMITS.max_bytes(channel)
        return
    except WireError:
        assert kind is Kind.ERROR  # arbitrary bytes are not always UTF-8
        return
    assert (envelope.kind, envelope.channel, envelope.id, envelope.payload) == (
        kind,
        channel,
        ident,
        payload,
    )


# -- peer exchange ----------------------------------------------------------------------


def test_pex_answers_round_trip_and_are_strict() -> None:
    addresses = [parse_address(f"{NODE}@127.0.0.1:7"), parse_address("10.0.0.1:8")]
    assert decode_pex(encode_pex(addresses)) == addresses
    for bad, message in (
        (b"[]", "must be a JSON object"),
        (b'{"peers":[],"x":1}', "unknown field"),
        (b'{"peers":["nope"]}', r"pex.peers\[0\]"),
        (b'{"peers":[1]}', r"pex.peers\[0\]: must be a string"),
        (codec.encode({"peers": ["1.2.3.4:5"] * 65}), "at most 64"),
        (b"{", "pex: not JSON"),
    ):
        with pytest.raises(WireError, match=message):
            decode_pex(bad)


@given(st.binary(max_size=300))
def test_pex_decoder_never_crashes(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_pex(data)


# -- limits -------------------------------------------------------------------------


@given(
    st.floats(1, 1000),
    st.floats(1, 1000),
    st.lists(st.tuples(st.floats(0, 0.5), st.integers(1, 50)), max_size=200),
)
def test_a_token_bucket_admits_at_most_burst_plus_rate_times_time(
    rate: float, burst: float, arrivals: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate, burst, 0.0)
    now = 0.0
    admitted = 0
    for gap, amount in arrivals:
        now += gap
        if bucket.take(amount, now):
            admitted += amount
    assert admitted <= burst + rate * now + (50 if burst < 50 else 0) + 1e-6


def test_a_token_bucket_refills_with_time() -> None:
    bucket = TokenBucket(rate=2, burst=2, now=0.0)
    assert bucket.take(1, 0.0)
    assert bucket.take(1, 0.0)
    assert not bucket.take(1, 0.0)
    assert not bucket.take(1, 0.4)
    assert bucket.take(1, 0.6)
    assert not bucket.take(1, 0.6)
    assert bucket.take(5, 2.0)  # larger than the burst: passes from a full bucket, into debt
    assert not bucket.take(1, 3.0)
    assert bucket.take(1, 4.0)


def test_the_seen_set_forgets_the_oldest_first() -> None:
    seen = SeenSet(3)
    assert all(seen.add(bytes([i])) for i in range(3))
    assert not seen.add(b"\x00")  # refreshed: now the newest
    assert seen.add(b"\x03")  # forgets b"\x01"
    assert b"\x01" not in seen
    assert b"\x00" in seen
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channel_bytes": {"Bad": 1}}, "is not a channel name"),
        ({"channel_bytes": {"tx": 0}}, "1 byte to 64 MiB"),
        ({"gossip_channels": frozenset({"TX"})}, "is not a channel name"),
        ({"slow_peer": "ignore"}, "'drop' or 'disconnect'"),
        ({"dial_timeout": 0}, "dial_timeout: must be positive"),
        ({"reconnect_base": 5.0, "reconnect_max": 1.0}, "reconnect_max"),
        ({"ping_interval": 5.0, "ping_timeout": 1.0}, "ping_timeout"),
    ],
)
def test_limits_refuse_nonsense(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Limits(**changes)  # type: ignore[arg-type]
