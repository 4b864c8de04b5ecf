"""Bluetooth LE actuators (the paper's washing-machine relay): one GATT write per command.

A command connects through ``bleak-retry-connector`` (which Home Assistant's
Bluetooth stack uses for reliable connections), writes the payload with a
response, and disconnects. The device itself is looked up through Home
Assistant's Bluetooth integration by the caller (``switch.py``), so local
adapters and Bluetooth proxies are all used.

The client class is read from ``bleak_retry_connector`` at each command, not
imported once: Home Assistant's Bluetooth integration replaces it with its own
wrapper when it starts, and only that wrapper can reach a device through a
Bluetooth proxy.
"""

from __future__ import annotations

from typing import Final

import bleak_retry_connector
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

MAX_ATTEMPTS: Final = 3


class BleWriteError(Exception):
    """The actuator could not be reached or refused the write."""


async def write_payload(device: BLEDevice, name: str, characteristic: str, payload: bytes) -> None:
    """Connect to ``device``, write ``payload`` to ``characteristic`` and disconnect."""
    try:
        client = await bleak_retry_connector.establish_connection(
            bleak_retry_connector.BleakClientWithServiceCache,
            device,
            name,
            max_attempts=MAX_ATTEMPTS,
        )
    except (BleakError, TimeoutError, OSError) as err:
        raise BleWriteError(f"cannot connect to {device.address}: {err}") from err
    try:
        await client.write_gatt_char(characteristic, payload, response=True)
    except (BleakError, TimeoutError, OSError) as err:
        raise BleWriteError(f"cannot write to {device.address}: {err}") from err
    finally:
        await client.disconnect()
