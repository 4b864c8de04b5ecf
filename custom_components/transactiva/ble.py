"""Bluetooth LE actuator settings: address, characteristic UUID and payloads, checked.

Pure functions used by the options flow; the connection itself is in
``ble_client.py``, imported only when actuators are configured.
"""

from __future__ import annotations

import re
from typing import Final

ADDRESS_RE: Final = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){5}")
UUID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PAYLOAD_RE: Final = re.compile(r"([0-9a-f]{2}){1,64}")


def normalise_address(raw: str) -> str | None:
    """``AA:BB:CC:DD:EE:FF`` (upper case, colons), or None when ``raw`` is not one."""
    address = raw.strip().upper().replace("-", ":")
    return address if ADDRESS_RE.fullmatch(address) else None


def normalise_uuid(raw: str) -> str | None:
    """A 128-bit UUID in lower case; 16-bit short forms (``ff01``) are expanded."""
    value = raw.strip().lower()
    if re.fullmatch(r"(0x)?[0-9a-f]{4}", value):
        value = f"0000{value[-4:]}-0000-1000-8000-00805f9b34fb"
    return value if UUID_RE.fullmatch(value) else None


def parse_payload(raw: str) -> bytes | None:
    """Bytes from hex (spaces and ``0x`` allowed), 1 to 64 bytes, or None."""
    value = raw.strip().lower().replace(" ", "").removeprefix("0x")
    return bytes.fromhex(value) if PAYLOAD_RE.fullmatch(value) else None
