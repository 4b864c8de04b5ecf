"""The API version, its compatibility rule and the enumerations of the wire contract."""

from __future__ import annotations

from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactiva_client import protocol
from transactiva_client.errors import IncompatibleNodeError, TransactivaRequestError
from transactiva_client.protocol import (
    API_PREFIX,
    API_VERSION,
    CLIENT_API_VERSION,
    ActionKind,
    ApiVersion,
    ErrorCode,
    EventKind,
    Update,
    known,
    update_needed,
)

ENUMS = [
    value
    for value in vars(protocol).values()
    if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum
]


def test_the_version_is_major_dot_minor_and_names_the_prefix() -> None:
    version = ApiVersion.parse(API_VERSION)
    assert version == CLIENT_API_VERSION
    assert str(version) == API_VERSION
    assert f"/api/v{version.major}" == API_PREFIX


@pytest.mark.parametrize(
    "text", ["1", "1.0.0", "v1.0", "01.0", "1.01", " 1.0", "1.0 ", "", "1.-1", "1.0000000"]
)
def test_only_major_dot_minor_parses(text: str) -> None:
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR"):
        ApiVersion.parse(text)


@pytest.mark.parametrize("value", [None, 1, 1.0, ["1", "0"], {"major": 1}])
def test_a_version_is_a_string(value: object) -> None:
    with pytest.raises(ValueError, match="not an API version"):
        ApiVersion.parse(value)


@given(st.integers(0, 999_999), st.integers(0, 999_999))
def test_versions_round_trip_and_order_by_major_then_minor(major: int, minor: int) -> None:
    version = ApiVersion(major, minor)
    assert ApiVersion.parse(str(version)) == version
    assert ApiVersion(major, minor + 1) > version
    assert ApiVersion(major + 1, 0) > version


@pytest.mark.parametrize(
    ("node", "client", "update"),
    [
        ("1.0", "1.0", None),
        ("1.3", "1.0", None),  # a newer minor only adds: the old client still works
        ("1.3", "1.3", None),
        ("1.2", "1.3", Update.NODE),  # the client needs what the node does not have yet
        ("0.9", "1.0", Update.NODE),
        ("2.0", "1.4", Update.CLIENT),  # a new major broke this client
        ("1.9", "2.0", Update.NODE),
        (None, "1.0", Update.NODE),  # a node that does not say predates 1.0
    ],
)
def test_a_client_works_with_its_major_at_its_minor_or_later(
    node: str | None, client: str, update: Update | None
) -> None:
    version = None if node is None else ApiVersion.parse(node)
    assert update_needed(version, ApiVersion.parse(client)) is update


def test_the_incompatibility_says_which_side_to_update() -> None:
    old = IncompatibleNodeError(None, Update.NODE, "http://casa:8765")
    assert (old.node_version, old.client_version, old.update) == (None, API_VERSION, "node")
    assert "http://casa:8765" in str(old)
    assert "predates API 1.0" in str(old)
    assert "update the node" in str(old)
    new = IncompatibleNodeError("2.0", Update.CLIENT)
    assert "serves API 2.0" in str(new)
    assert "update transactiva-client" in str(new)


def test_open_enumerations_keep_values_they_do_not_know() -> None:
    assert known(EventKind, "price_signal") is EventKind.PRICE_SIGNAL
    assert known(EventKind, "a_future_event") == "a_future_event"
    assert type(known(EventKind, "a_future_event")) is str
    refused = TransactivaRequestError(422, "insufficient_funds", "balance 1")
    assert refused.code is ErrorCode.INSUFFICIENT_FUNDS
    assert TransactivaRequestError(422, "a_new_rule", "no").code == "a_new_rule"


@pytest.mark.parametrize("enum", ENUMS, ids=lambda enum: enum.__name__)
def test_enumerations_have_distinct_snake_or_upper_values(enum: type[StrEnum]) -> None:
    values = [member.value for member in enum]
    assert values
    assert len(set(values)) == len(values)
    for value in values:
        assert value.isidentifier()
        assert value in (value.lower(), value.upper())


def test_device_actions_are_the_switching_ones() -> None:
    assert {str(kind) for kind in protocol.DEVICE_ACTIONS} == {"turn_on", "turn_off", "restore"}
    assert "turn_on" in protocol.DEVICE_ACTIONS  # a plain string from the wire matches
    assert ActionKind.NOTIFY not in protocol.DEVICE_ACTIONS
    assert set(EventKind) >= protocol.CONTRACT_EVENTS
    assert set(EventKind) >= protocol.WALLET_EVENTS
