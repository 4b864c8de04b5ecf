"""A Bluetooth LE relay reached through a Bluetooth proxy, inside Home Assistant's Bluetooth stack.

The paper switches its washing machine with a Bluetooth relay. No radio exists
on a test machine, so this module plays the two parts beyond Home Assistant:

- ``Relay``: the peripheral. One GATT service with one writable characteristic;
  a write of the "on" or "off" payload closes or opens the contact. It can be
  out of range (the connection fails) or refuse writes (an ATT error), and it
  keeps every payload it received, in order.
- ``LoopbackProxy``: a Bluetooth proxy, registered with Home Assistant's
  Bluetooth manager as a remote scanner the way ESPHome proxies are. It
  advertises the relays it hears, and its connector hands Home Assistant's
  ``bleak`` wrapper a GATT client (``RelayLink``) that talks to the relay.

Everything between the integration and the proxy is Home Assistant's own code:
device lookup by address, the ``bleak`` client wrapper choosing a connection
path, ``bleak-retry-connector``'s connection attempts, service resolution by
UUID and the GATT write.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from habluetooth import BaseHaRemoteScanner, HaBluetoothConnector

RELAY_SERVICE = "0000ff00-0000-1000-8000-00805f9b34fb"


@dataclass
class Relay:
    """The peripheral: a contact switched by writes to one characteristic."""

    address: str
    characteristic: str
    on_payload: bytes
    off_payload: bytes
    closed: bool = False
    in_range: bool = True
    refuses_writes: bool = False
    writes: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_links: int = 0

    def services(self) -> BleakGATTServiceCollection:
        """The GATT table a client discovers on connection."""
        service, characteristic = _gatt_entries(self.characteristic)
        collection = BleakGATTServiceCollection()
        collection.add_service(service)
        collection.add_characteristic(characteristic)
        return collection

    def write(self, characteristic: str, data: bytes) -> None:
        """A write with response, as the relay answers it."""
        if self.refuses_writes:
            raise BleakError("ATT error 0x03: write not permitted")
        if characteristic != self.characteristic:
            raise BleakError(f"ATT error 0x01: no characteristic {characteristic}")
        self.writes.append(data)
        if data == self.on_payload:
            self.closed = True
        elif data == self.off_payload:
            self.closed = False


def _gatt_entries(uuid: str) -> tuple[BleakGATTService, BleakGATTCharacteristic]:
    """The relay's service (handle 10) and its characteristic (handle 11).

    Current bleak (3.0.2 in Home Assistant 2026.10) has plain classes for both; bleak 0.22
    (Home Assistant 2025.4) had abstract ones and a pair per backend: BlueZ's, as on Linux.
    """
    if not inspect.isabstract(BleakGATTService):
        service = BleakGATTService(None, 10, RELAY_SERVICE)
        return service, BleakGATTCharacteristic(
            None, 11, uuid, ["read", "write"], lambda: 20, service
        )
    from bleak.backends.bluezdbus.characteristic import (  # noqa: PLC0415 - bleak < 1.0 only
        BleakGATTCharacteristicBlueZDBus,
    )
    from bleak.backends.bluezdbus.service import BleakGATTServiceBlueZDBus  # noqa: PLC0415

    path = "/org/bluez/hci0/dev_relay/service000a"
    old_service = BleakGATTServiceBlueZDBus({"UUID": RELAY_SERVICE}, path)
    return old_service, BleakGATTCharacteristicBlueZDBus(
        {"UUID": uuid, "Flags": ["read", "write"]},
        f"{path}/char000b",
        RELAY_SERVICE,
        old_service.handle,
        lambda: 20,
    )


def relay_link(relays: dict[str, Relay]) -> type[BaseBleakClient]:
    """The proxy's GATT client class, reaching the relays it hears."""

    class RelayLink(BaseBleakClient):
        """One GATT connection from the proxy to a relay."""

        def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
            super().__init__(address_or_ble_device, **kwargs)
            self._relay: Relay | None = None

        @property
        def mtu_size(self) -> int:
            return 23

        @property
        def is_connected(self) -> bool:
            return self._relay is not None

        async def connect(self, *args: Any, **kwargs: Any) -> bool:
            # bleak 3 passes ``pair`` positionally; 0.22 only keywords.
            relay = relays.get(self.address)
            if relay is None or not relay.in_range:
                raise BleakError(f"{self.address}: no answer from the device (out of range)")
            relay.connections += 1
            relay.open_links += 1
            self._relay = relay
            self.services = relay.services()
            return True

        async def disconnect(self) -> bool:
            if self._relay is not None:
                self._relay.open_links -= 1
            self._relay = None
            self.services = None
            return True

        async def get_services(self, **kwargs: Any) -> BleakGATTServiceCollection:
            return self._connected().services()

        async def write_gatt_char(
            self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
        ) -> None:
            if not response:
                raise BleakError("the relay acknowledges every write: use write with response")
            self._connected().write(characteristic.uuid, bytes(data))

        async def read_gatt_char(self, char_specifier: Any, **kwargs: Any) -> bytearray:
            return bytearray([1 if self._connected().closed else 0])

        async def pair(self, *args: Any, **kwargs: Any) -> bool:
            raise BleakError("the relay does not pair")

        async def unpair(self) -> bool:
            raise BleakError("the relay does not pair")

        async def read_gatt_descriptor(self, handle: int, **kwargs: Any) -> bytearray:
            raise BleakError("the relay has no descriptors")

        async def write_gatt_descriptor(self, handle: int, data: Any) -> None:
            raise BleakError("the relay has no descriptors")

        async def start_notify(self, characteristic: Any, callback: Any, **kwargs: Any) -> None:
            raise BleakError("the relay does not notify")

        async def stop_notify(self, char_specifier: Any) -> None:
            raise BleakError("the relay does not notify")

        def _connected(self) -> Relay:
            if self._relay is None:
                raise BleakError(f"{self.address}: not connected")
            return self._relay

    return RelayLink


class LoopbackProxy(BaseHaRemoteScanner):
    """A connectable Bluetooth proxy that hears the given relays."""

    def __init__(self, source: str, relays: dict[str, Relay]) -> None:
        self.relays = relays
        connector = HaBluetoothConnector(
            client=relay_link(relays), source=source, can_connect=lambda: True
        )
        super().__init__(source, "Loopback proxy", connector, connectable=True)

    def advertise(self, relay: Relay, rssi: int = -60) -> None:
        """The relay's advertisement, as the proxy hears it."""
        self._async_on_advertisement(
            relay.address,
            rssi,
            "Relevador",
            [RELAY_SERVICE],
            {},
            {},
            None,
            {"address_type": "public"},
            time.monotonic(),
        )
