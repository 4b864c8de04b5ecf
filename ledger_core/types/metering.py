"""Meter data off the chain: commitments to interval readings, their openings, and the
energies settlement needs from them.

A meter's interval report carries a *commitment* instead of its reading: the
SHA-256 of the canonical JSON of the reading, the meter, the chain and a
32-byte random *salt* (:func:`commitment`). The reading with its salt is an
:class:`Opening`; the home keeps it, the concentrator receives it, and anyone
shown it checks it against the commitment on chain. A :class:`Proof` is a set
of openings, as a home hands them over in a dispute.

The rest is the arithmetic the concentrator does on the readings it holds and
that anyone repeats to check it (docs/privacy.md, docs/market.md): the energy a
seller delivered in an interval (:func:`delivered`), the energy a participant
bought from or sold to the supplier in an interval (:func:`backstop_energy`),
and a day's bill lines, one per pair of prices (:func:`bill_lines`).

Pure: integers only; the salt is drawn by the caller (:func:`new_salt`, for the
meter), never by the state machine.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ledger_core.types import codec
from ledger_core.types.crypto import ADDRESS_RE
from ledger_core.types.fields import (
    FieldError,
    expect_int,
    expect_keys,
    expect_object,
    expect_str,
)

DOMAIN: Final = "transactiva/report/1"
"""Separates report commitments from every other hash of the project."""
SALT_BYTES: Final = 32
COMMITMENT_RE: Final = re.compile(r"[0-9a-f]{64}")
SALT_RE: Final = re.compile(r"[0-9a-f]{64}")
CHAIN_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9\-]{0,47}")
MAX_ENERGY_WH: Final = 10**12
MAX_PRICE: Final = 10**9
MAX_TIME: Final = 2**40
MAX_OPENINGS: Final = 10_000
"""Openings in one proof: a month of 15-minute intervals for three meters."""


def new_salt() -> bytes:
    """A fresh salt (the meter draws one per report)."""
    return secrets.token_bytes(SALT_BYTES)


def commitment(
    chain_id: str, meter: str, interval_start: int, *, import_wh: int, export_wh: int, salt: bytes
) -> str:
    """The commitment to a meter's reading of one interval: 64 lowercase hex digits."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt is {SALT_BYTES} bytes, not {len(salt)}")
    preimage = codec.encode(
        {
            "chain_id": chain_id,
            "domain": DOMAIN,
            "export_wh": export_wh,
            "import_wh": import_wh,
            "interval_start": interval_start,
            "meter": meter,
            "salt": salt.hex(),
        }
    )
    return hashlib.sha256(preimage).hexdigest()


@dataclass(frozen=True, slots=True)
class Opening:
    """A reading and its salt: what opens a report's commitment."""

    meter: str
    interval_start: int
    import_wh: int
    export_wh: int
    salt: bytes

    def commitment(self, chain_id: str) -> str:
        """The commitment this opening opens on chain ``chain_id``."""
        return commitment(
            chain_id,
            self.meter,
            self.interval_start,
            import_wh=self.import_wh,
            export_wh=self.export_wh,
            salt=self.salt,
        )

    def opens(self, chain_id: str, committed: str) -> bool:
        """Whether this opening opens ``committed`` (constant time)."""
        return secrets.compare_digest(self.commitment(chain_id), committed)

    def to_json(self) -> dict[str, codec.Value]:
        """``{"meter", "interval_start", "import_wh", "export_wh", "salt"}``."""
        return {
            "meter": self.meter,
            "interval_start": self.interval_start,
            "import_wh": self.import_wh,
            "export_wh": self.export_wh,
            "salt": self.salt.hex(),
        }

    @classmethod
    def from_json(cls, value: object, field: str = "opening") -> Opening:
        """An opening from untrusted JSON; FieldError names the field."""
        obj = expect_object(value, field)
        names = {"meter", "interval_start", "import_wh", "export_wh", "salt"}
        expect_keys(obj, field, names, set())
        return cls(
            meter=expect_str(obj["meter"], f"{field}.meter", ADDRESS_RE),
            interval_start=expect_int(
                obj["interval_start"], f"{field}.interval_start", 0, MAX_TIME
            ),
            import_wh=expect_int(obj["import_wh"], f"{field}.import_wh", 0, MAX_ENERGY_WH),
            export_wh=expect_int(obj["export_wh"], f"{field}.export_wh", 0, MAX_ENERGY_WH),
            salt=bytes.fromhex(expect_str(obj["salt"], f"{field}.salt", SALT_RE)),
        )


@dataclass(frozen=True, slots=True)
class Proof:
    """Openings a home hands over: checked against the commitments of chain ``chain_id``."""

    chain_id: str
    openings: tuple[Opening, ...]

    def to_json(self) -> dict[str, codec.Value]:
        """``{"chain_id", "openings": [...]}``."""
        return {"chain_id": self.chain_id, "openings": [o.to_json() for o in self.openings]}

    @classmethod
    def from_json(cls, value: object, field: str = "proof") -> Proof:
        """A proof from untrusted JSON (each report opened at most once)."""
        obj = expect_object(value, field)
        expect_keys(obj, field, {"chain_id", "openings"}, set())
        chain_id = expect_str(obj["chain_id"], f"{field}.chain_id", CHAIN_ID_RE)
        raw = obj["openings"]
        if not isinstance(raw, list) or not raw:
            raise FieldError(f"{field}.openings", "must be a non-empty list")
        if len(raw) > MAX_OPENINGS:
            raise FieldError(f"{field}.openings", f"lists more than {MAX_OPENINGS} openings")
        openings = tuple(
            Opening.from_json(item, f"{field}.openings[{i}]") for i, item in enumerate(raw)
        )
        seen: set[tuple[str, int]] = set()
        for i, opening in enumerate(openings):
            report = (opening.meter, opening.interval_start)
            if report in seen:
                raise FieldError(f"{field}.openings[{i}]", "opens a report already opened above")
            seen.add(report)
        return cls(chain_id, openings)


# -- what settlement needs from the readings ---------------------------------------------------


def delivered(export_wh: int, sold_wh: int) -> int:
    """The energy a seller delivered of what it sold: its export, up to what it sold."""
    return min(export_wh, sold_wh)


@dataclass(frozen=True, slots=True)
class BackstopEnergy:
    """A participant's energy with the supplier in one interval (Wh)."""

    import_wh: int  # imported beyond what it bought: bought from the supplier
    unused_wh: int  # bought and not imported: sold back to the supplier
    export_wh: int  # exported beyond what it sold: sold to the supplier


def backstop_energy(import_wh: int, export_wh: int, bought_wh: int, sold_wh: int) -> BackstopEnergy:
    """What the supplier settles with a participant in an interval, given its metered
    energy and its trades (docs/market.md, "Settlement")."""
    return BackstopEnergy(
        import_wh=max(import_wh - bought_wh, 0),
        unused_wh=max(bought_wh - import_wh, 0),
        export_wh=max(export_wh - sold_wh, 0),
    )


@dataclass(frozen=True, slots=True)
class IntervalUse:
    """One interval of a participant's day: its metered energy (all its meters), its
    trades, and the interval's final backstop prices (10^-4 MXN/kWh)."""

    interval_start: int
    import_wh: int
    export_wh: int
    bought_wh: int
    sold_wh: int
    import_price: int
    export_price: int


@dataclass(frozen=True, slots=True)
class BillLine:
    """A day's energy with the supplier at one pair of prices."""

    import_price: int
    export_price: int
    import_wh: int
    unused_wh: int
    export_wh: int

    @property
    def prices(self) -> tuple[int, int]:
        """``(import_price, export_price)``: what orders the lines of a bill."""
        return (self.import_price, self.export_price)

    def to_json(self) -> dict[str, codec.Value]:
        """The line as a ``bill`` transaction carries it."""
        return {
            "import_price": self.import_price,
            "export_price": self.export_price,
            "import_wh": self.import_wh,
            "unused_wh": self.unused_wh,
            "export_wh": self.export_wh,
        }

    @classmethod
    def from_json(cls, value: object, field: str) -> BillLine:
        """A line from untrusted JSON; FieldError names the field."""
        obj = expect_object(value, field)
        prices = {"import_price", "export_price"}
        energies = {"import_wh", "unused_wh", "export_wh"}
        expect_keys(obj, field, prices | energies, set())
        return cls(
            **{name: expect_int(obj[name], f"{field}.{name}", -MAX_PRICE, MAX_PRICE)
               for name in sorted(prices)},
            **{name: expect_int(obj[name], f"{field}.{name}", 0, MAX_ENERGY_WH)
               for name in sorted(energies)},
        )  # fmt: skip


def bill_lines(intervals: Iterable[IntervalUse]) -> tuple[BillLine, ...]:
    """A day's bill: each interval's energy with the supplier, summed per pair of prices,
    in price order. Lines with no energy are left out."""
    totals: dict[tuple[int, int], list[int]] = {}
    for use in intervals:
        energy = backstop_energy(use.import_wh, use.export_wh, use.bought_wh, use.sold_wh)
        line = totals.setdefault((use.import_price, use.export_price), [0, 0, 0])
        line[0] += energy.import_wh
        line[1] += energy.unused_wh
        line[2] += energy.export_wh
    return tuple(
        BillLine(imp, exp, *energies)
        for (imp, exp), energies in sorted(totals.items())
        if any(energies)
    )


def metered(
    openings: Iterable[Opening], owners: Mapping[str, str]
) -> dict[tuple[str, int], tuple[int, int]]:
    """``(participant, interval start) -> (import_wh, export_wh)``: openings summed over
    each participant's meters (``owners``: meter -> participant; others are skipped)."""
    found: dict[tuple[str, int], tuple[int, int]] = {}
    for opening in openings:
        owner = owners.get(opening.meter)
        if owner is None:
            continue
        key = (owner, opening.interval_start)
        imp, exp = found.get(key, (0, 0))
        found[key] = (imp + opening.import_wh, exp + opening.export_wh)
    return found
