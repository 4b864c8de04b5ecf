"""A node's home folder: keys, genesis, configuration, API token and database.

::

    DIR/
      config.json          where the API listens, block pacing
      genesis.json         the chain
      keys/validator.key   the validator's key (0600)
      keys/participant.key the local participant's key, used to sign for local clients (0600)
      api-token            bearer token of the node's API (0600)
      ledger.db            blocks, transactions, events and state (SQLite)
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from ledger_core.crypto import SigningKey
from ledger_core.genesis import Genesis, Operator, Params, Validator, parse_genesis

DEFAULT_PORT: Final = 8765


class HomeError(Exception):
    """A node home that is missing, incomplete or would be overwritten."""


def default_home() -> Path:
    """The per-user data directory.

    ``$XDG_DATA_HOME/transactiva``, or ``~/.local/share/transactiva``.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "transactiva"


@dataclass(frozen=True, slots=True)
class Config:
    """Node settings kept in ``config.json``."""

    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_PORT
    block_interval: float = 0.2
    empty_block_every: float = 60.0
    # A clock that runs ``clock_speed`` times faster than real time, reading
    # ``clock_start`` at real Unix time ``clock_epoch`` (demos and tests only).
    clock_epoch: float | None = None
    clock_start: int | None = None
    clock_speed: float = 1.0

    def clock(self) -> Callable[[], float]:
        """The node's clock: real time, or the configured accelerated one."""
        return make_clock(self.clock_epoch, self.clock_start, self.clock_speed)


def make_clock(epoch: float | None, start: int | None, speed: float = 1.0) -> Callable[[], float]:
    """Unix time, or one that reads ``start`` at real time ``epoch`` and runs ``speed``x."""
    if epoch is None or start is None:
        return time.time
    if not speed > 0:
        raise HomeError(f"clock_speed must be positive, not {speed}")

    def accelerated() -> float:
        return start + (time.time() - epoch) * speed

    return accelerated


@dataclass(frozen=True, slots=True)
class Home:
    """The files of one node."""

    path: Path

    @property
    def genesis_file(self) -> Path:
        return self.path / "genesis.json"

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def token_file(self) -> Path:
        return self.path / "api-token"

    @property
    def validator_key_file(self) -> Path:
        return self.path / "keys" / "validator.key"

    @property
    def participant_key_file(self) -> Path:
        return self.path / "keys" / "participant.key"

    def genesis(self) -> Genesis:
        """The chain's genesis."""
        return parse_genesis(self._read(self.genesis_file))

    def config(self) -> Config:
        """The node's settings."""
        try:
            raw = json.loads(self._read(self.config_file))
            return Config(**raw)
        except (TypeError, ValueError) as err:
            raise HomeError(f"{self.config_file}: {err}") from None

    def token(self) -> str:
        """The API's bearer token."""
        return self._read(self.token_file).decode("ascii").strip()

    def validator_key(self) -> SigningKey:
        return SigningKey.load(self.validator_key_file)

    def participant_key(self) -> SigningKey:
        return SigningKey.load(self.participant_key_file)

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as err:
            raise HomeError(
                f"{path}: {err.strerror or err}; run 'transactiva init --dir {self.path}' first"
            ) from None


def init_home(path: Path, chain_id: str, genesis_time: int, config: Config) -> Home:
    """Create a one-validator network in ``path``: the node is the concentrator.

    The operator key (ISO, supplier and DSO roles) is the local participant's
    key; the validator has its own. Refuses to touch an existing home.
    """
    home = Home(path)
    if home.genesis_file.exists() or home.validator_key_file.exists():
        raise HomeError(f"{path} already holds a node; choose another --dir")
    (path / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
    operator = SigningKey.generate()
    validator = SigningKey.generate()
    operator.save(home.participant_key_file)
    validator.save(home.validator_key_file)
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=genesis_time,
        operators=(Operator(operator.public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator(validator.public_key, 10),),
        params=Params(),
    )
    genesis.save(home.genesis_file)
    home.config_file.write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    fd = os.open(home.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
    finally:
        os.close(fd)
    return home
