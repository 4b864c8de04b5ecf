"""The runtime pieces: simulated time and the queued adapter to an asynchronous network."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ledger_core.consensus.runtime import QueuedOutbound, VirtualScheduler


def test_simulated_time_fires_timers_in_order_and_can_be_cancelled() -> None:
    scheduler = VirtualScheduler(100.0)
    fired: list[str] = []
    scheduler.call_later(2, fired.append, "b")
    scheduler.call_later(1, fired.append, "a")
    cancelled = scheduler.call_later(1.5, fired.append, "never")
    cancelled.cancel()
    scheduler.call_later(2, fired.append, "c")
    assert not scheduler.run(lambda: False, 10)
    assert fired == ["a", "b", "c"]
    assert scheduler.time() == 110.0
    assert scheduler.run(lambda: True, 10)

    def again() -> None:
        scheduler.call_later(0, again)

    again()
    with pytest.raises(RuntimeError, match="events"):
        scheduler.run(lambda: False, 10, max_events=50)


class Network:
    """An asynchronous network that records, and fails on demand."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str | None, str, bytes]] = []
        self.failing = False

    async def broadcast(self, channel: str, payload: bytes) -> None:
        await asyncio.sleep(0)
        if self.failing:
            raise ConnectionError("peer gone")
        self.delivered.append((None, channel, payload))

    async def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        await asyncio.sleep(0)
        self.delivered.append((peer_id, channel, payload))

    def peers(self) -> list[str]:
        return ["b", "a"]


async def test_the_queued_adapter_sends_in_order_and_survives_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    network = Network()
    outbound = QueuedOutbound(network, limit=3)
    assert outbound.peers() == ["a", "b"]
    outbound.broadcast("consensus", b"1")
    outbound.send("a", "blocks", b"2")
    outbound.broadcast("tx", b"3")
    with caplog.at_level(logging.WARNING):
        outbound.broadcast("tx", b"4")
    assert "queue full" in caplog.text
    outbound.start()
    for _ in range(100):
        if len(network.delivered) == 3:
            break
        await asyncio.sleep(0)
    assert network.delivered == [(None, "consensus", b"1"), ("a", "blocks", b"2"),
                                 (None, "tx", b"3")]  # fmt: skip
    network.failing = True
    with caplog.at_level(logging.INFO):
        outbound.broadcast("consensus", b"5")
        outbound.send("a", "blocks", b"6")
        for _ in range(100):
            if len(network.delivered) == 4:
                break
            await asyncio.sleep(0)
    assert network.delivered[-1] == ("a", "blocks", b"6"), "a failure does not stop the queue"
    assert "failed" in caplog.text
    await outbound.close()
    await outbound.close()
