"""Whether the node can be reached, told once each way.

The integration follows a node over three WebSockets (the ledger's events, the
meter's readings, the home's contract actions) and polls its forecast. When the
node goes away all of them fail within moments of each other; the log gets one
warning, from whichever notices first, and one line when every stream that
failed is connected again. Each stream reports here instead of logging (what the
others say meanwhile is at debug level), and coordinators mark their entities
unavailable without the error that Home Assistant's coordinator would log for
each of them (:func:`set_unavailable`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

LOGGER = logging.getLogger(__package__)

# The connections to a node, as the debug log names them.
LEDGER: Final = "the ledger's event stream"
METER: Final = "the meter's stream"
ACTIONS: Final = "the contract actions' stream"
FORECAST: Final = "the forecast"

type Listener = Callable[[str, bool], None]


class NodeAvailability:
    """Which of one node's connections are down, and the two log lines."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._down: dict[str, str] = {}  # connection -> what went wrong
        self._listeners: list[Listener] = []

    @property
    def down(self) -> bool:
        """Whether any connection to the node is down now."""
        return bool(self._down)

    def is_down(self, connection: str) -> bool:
        """Whether ``connection`` is down now."""
        return connection in self._down

    @callback
    def lost(self, connection: str, error: str) -> None:
        """``connection`` failed; the first to fail says so (a warning)."""
        if connection in self._down:
            return
        first = not self._down
        self._down[connection] = error
        if first:
            LOGGER.warning("Transactiva node at %s is unavailable: %s", self.url, error)
        else:
            LOGGER.debug("Transactiva node at %s: %s is down too: %s", self.url, connection, error)
        self._tell(connection, up=False)

    @callback
    def back(self, connection: str) -> None:
        """``connection`` works again; when it was the last one down, say so (info)."""
        if self._down.pop(connection, None) is None:
            return
        if self._down:
            LOGGER.debug(
                "Transactiva node at %s: %s is back; still down: %s",
                self.url,
                connection,
                ", ".join(sorted(self._down)),
            )
        else:
            LOGGER.info("Transactiva node at %s is available again", self.url)
        self._tell(connection, up=True)

    def _tell(self, connection: str, *, up: bool) -> None:
        for listener in list(self._listeners):
            listener(connection, up)

    @callback
    def listen(self, listener: Listener) -> CALLBACK_TYPE:
        """Call ``listener(connection, up)`` whenever a connection goes or comes back; the
        remover."""
        self._listeners.append(listener)

        @callback
        def remove() -> None:
            self._listeners.remove(listener)

        return remove


@callback
def set_unavailable(coordinator: DataUpdateCoordinator[Any], err: Exception) -> None:
    """Mark ``coordinator``'s entities unavailable after ``err``, without a log line of its
    own (:meth:`DataUpdateCoordinator.async_set_update_error` logs an error every time the
    node goes; :class:`NodeAvailability` has said it once already)."""
    coordinator.last_exception = err
    if coordinator.last_update_success:
        coordinator.last_update_success = False
        coordinator.async_update_listeners()
