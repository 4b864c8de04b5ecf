"""Constants of the Transactiva integration."""

from typing import Final

DOMAIN: Final = "transactiva"
