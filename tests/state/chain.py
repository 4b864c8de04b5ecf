"""A small chain for tests: deterministic keys, a genesis, and a block runner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ledger_core.state.machine import StateMachine
from ledger_core.types import codec
from ledger_core.types.abci import BlockContext, TxResult
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from ledger_core.types.metering import Opening
from ledger_core.types.tx import Tx, TxType, sign

CHAIN_ID = "transactiva-test-1"
# 2026-03-10 12:00:00 in Mexico's central zone (UTC-6), a Tuesday.
START = 1773165600


def key(name: str) -> SigningKey:
    """A deterministic key per name."""
    return SigningKey.from_seed(hashlib.sha256(name.encode()).digest())


@dataclass
class Chain:
    """An application with helpers to sign and commit blocks."""

    iso: SigningKey = field(default_factory=lambda: key("iso"))
    dso: SigningKey = field(default_factory=lambda: key("dso"))
    validator: SigningKey = field(default_factory=lambda: key("validator"))
    time: int = START
    nonces: dict[str, int] = field(default_factory=dict)
    # The readings behind the reports signed here, as the home and the concentrator keep them.
    openings: dict[tuple[str, int], Opening] = field(default_factory=dict)
    app: StateMachine = field(init=False)
    genesis: Genesis = field(init=False)

    def __post_init__(self) -> None:
        self.genesis = Genesis(
            chain_id=CHAIN_ID,
            genesis_time=START - 3600,
            operators=(
                Operator(self.iso.public_key, ("ISO", "SUPPLIER")),
                Operator(self.dso.public_key, ("DSO",)),
            ),
            validators=(Validator(self.validator.public_key, 10),),
            params=Params(),
        )
        self.app = StateMachine(self.genesis)

    def tx(self, signer: SigningKey, tx_type: TxType, **body: codec.Value) -> Tx:
        """Sign with the signer's next nonce."""
        nonce = self.nonces.get(signer.address, 0) + 1
        self.nonces[signer.address] = nonce
        return sign(signer, CHAIN_ID, tx_type, nonce, dict(body))

    def block(self, *txs: Tx, advance: int = 5) -> list[TxResult]:
        """Execute and commit one block ``advance`` seconds after the last."""
        self.time += advance
        self.app.begin_block(BlockContext(self.app.height + 1, self.time))
        results = [self.app.deliver_tx(tx) for tx in txs]
        self.app.end_block()
        self.app.commit()
        return results

    def ok(self, *txs: Tx, advance: int = 5) -> list[TxResult]:
        """A block whose every transaction must succeed."""
        results = self.block(*txs, advance=advance)
        for tx, result in zip(txs, results, strict=True):
            assert result.ok, (tx.type, result.code, result.message)
        return results

    def report(self, meter: SigningKey, interval_start: int, import_wh: int, export_wh: int) -> Tx:
        """A meter's report of an interval: its commitment, signed; the opening is kept in
        :attr:`openings`. The salt is derived from the meter and the interval, so a replay
        of the same reports gives the same chain."""
        salt = hashlib.sha256(f"salt/{meter.address}/{interval_start}".encode()).digest()
        opening = Opening(meter.address, interval_start, import_wh, export_wh, salt)
        self.openings[meter.address, interval_start] = opening
        return self.tx(
            meter,
            TxType.REPORT,
            interval_start=interval_start,
            commitment=opening.commitment(CHAIN_ID),
        )

    def register(self, name: str, role: str = "prosumer") -> SigningKey:
        """Register a participant signed by the ISO."""
        participant = key(name)
        self.ok(
            self.tx(self.iso, TxType.REGISTER, public_key=participant.public_key.hex(), role=role)
        )
        return participant

    def bind_meter(self, owner: SigningKey, name: str) -> SigningKey:
        """Register and bind a meter to ``owner``."""
        meter = key(name)
        self.ok(
            self.tx(
                self.iso,
                TxType.BIND_METER,
                meter_public_key=meter.public_key.hex(),
                participant=owner.address,
            )
        )
        return meter

    def fund(self, participant: SigningKey, amount: int) -> None:
        """Deposit ``amount`` centavos for ``participant`` (request and confirm)."""
        request = self.tx(participant, TxType.DEPOSIT_REQUEST, amount=amount, reference="spei")
        self.ok(request)
        self.ok(self.tx(self.iso, TxType.DEPOSIT_CONFIRM, request=request.id))

    def balance(self, who: SigningKey) -> int:
        value = self.app.state.get(f"bal/{who.address}", 0)
        assert isinstance(value, int)
        return value
