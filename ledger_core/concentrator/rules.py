"""Demand-response rules: issue events from the neighbourhood's load, with hysteresis and cooldown.

A :class:`LoadRule` reads: *when the neighbourhood's net import has been above
``above_w`` for ``for_intervals`` consecutive intervals, issue ``signal`` for
``duration`` seconds*. The load of an interval is the sum over every meter's
committed interval report of ``import_wh - export_wh``, as average watts
(``Wh * 3600 / interval``).

:class:`RuleEngine` is a deterministic state machine fed one closed interval
at a time (``step(interval_start, load_w, now)``); given the same sequence of
inputs it makes the same decisions. Per rule:

* *armed*: count consecutive intervals with ``load > above_w``; an interval
  at or below it, or without any report (``load_w`` None), resets the count.
  When the count reaches ``for_intervals`` and the cooldown is over, decide to
  issue; the event starts at the first interval boundary at or after
  ``now + lead`` and the rule is *latched*;
* *latched*: nothing is issued until the load has fallen to ``release_w`` or
  below (hysteresis: ``release_w <= above_w``), which re-arms the rule with a
  count of zero;
* *cooldown*: no decision is made before ``cooldown`` seconds after the end
  of the rule's last event, even if the rule has re-armed and reached its
  count; the count keeps going meanwhile, so the rule fires on the first
  interval after the cooldown if the load is still high.

If issuing fails (the node is down), :meth:`RuleEngine.failed` puts the rule
back to armed with its count intact, so the next interval tries again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from ledger_core.concentrator.dr import DrError, DrEvent, DrSignal
from ledger_core.concentrator.prices import INTERVAL, align_up
from ledger_core.types.tx import EVENT_ID_RE, MAX_POWER_W

MAX_RULE_INTERVALS: Final = 96


class RuleState(StrEnum):
    """Where a rule is."""

    ARMED = "armed"
    LATCHED = "latched"


@dataclass(frozen=True, slots=True)
class LoadRule:
    """Neighbourhood net import above ``above_w`` for ``for_intervals`` intervals -> an event."""

    name: str
    above_w: int
    for_intervals: int
    release_w: int
    signal: DrSignal
    duration: int
    cooldown: int = 0
    lead: int = 0
    ramp_up: int = 0
    recovery: int = 0
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = [
            (not EVENT_ID_RE.fullmatch(self.name), "name", "letters, digits, '_', '.', ':', '-'"),
            (not -MAX_POWER_W <= self.above_w <= MAX_POWER_W, "above_w", "out of range"),
            (not 1 <= self.for_intervals <= MAX_RULE_INTERVALS, "for_intervals", "1 to 96"),
            (self.release_w > self.above_w, "release_w", "must not be above above_w"),
            (self.release_w < -MAX_POWER_W, "release_w", "out of range"),
            (not 0 <= self.cooldown <= 7 * 86400, "cooldown", "0 to 7 days"),
            (not 0 <= self.lead <= 86400, "lead", "0 to 1 day"),
        ]
        for bad, field, message in problems:
            if bad:
                raise DrError(400, "malformed", message, f"rules.{self.name}.{field}")
        # The event the rule would issue must be one the ledger accepts.
        DrEvent(
            "rule-check",
            0,
            self.signal,
            0,
            self.duration,
            self.targets,
            ramp_up=self.ramp_up,
            recovery=self.recovery,
        ).check()

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> LoadRule:
        """A rule from JSON (a configuration file or the operator API); watts and seconds."""
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(value) - known)
        if extra:
            raise DrError(400, "malformed", "is not a known field", f"rules.{extra[0]}")
        missing = sorted(
            {"name", "above_w", "for_intervals", "release_w", "signal", "duration"} - set(value)
        )
        if missing:
            raise DrError(400, "malformed", "is missing", f"rules.{missing[0]}")
        fields: dict[str, Any] = dict(value)
        for key, item in fields.items():
            if key not in ("name", "signal", "targets") and (
                isinstance(item, bool) or not isinstance(item, int)
            ):
                raise DrError(400, "malformed", "must be an integer", f"rules.{key}")
        if not isinstance(fields["name"], str):
            raise DrError(400, "malformed", "must be a string", "rules.name")
        fields["signal"] = DrSignal.from_json(fields["signal"], "rules.signal")
        targets = fields.get("targets", [])
        if not isinstance(targets, list):
            raise DrError(400, "malformed", "must be a list of addresses", "rules.targets")
        fields["targets"] = tuple(targets)
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["signal"] = self.signal.to_json()
        out["targets"] = list(self.targets)
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule decided to issue an event."""

    rule: str
    interval_start: int
    load_w: int
    signal: DrSignal
    start: int
    duration: int
    ramp_up: int
    recovery: int
    targets: tuple[str, ...]


@dataclass(slots=True)
class _Track:
    state: RuleState = RuleState.ARMED
    count: int = 0
    cooldown_until: int = 0
    last_event: str | None = None
    last_decision: int | None = None


def interval_load_w(import_wh: int, export_wh: int, interval: int = INTERVAL) -> int:
    """Average net import in W over an interval from its energy in Wh (floored)."""
    return (import_wh - export_wh) * 3600 // interval


class RuleEngine:
    """Evaluates :class:`LoadRule` s on closed intervals, in order."""

    def __init__(self, rules: Iterable[LoadRule] = (), interval: int = INTERVAL) -> None:
        self.rules: dict[str, LoadRule] = {}
        self.interval = interval
        self._tracks: dict[str, _Track] = {}
        self.last_interval: int | None = None
        for rule in rules:
            self.add(rule)

    def add(self, rule: LoadRule) -> None:
        """Add (or replace) a rule; a replaced rule starts armed with a count of zero."""
        self.rules[rule.name] = rule
        self._tracks[rule.name] = _Track()

    def remove(self, name: str) -> None:
        """Forget a rule."""
        self.rules.pop(name, None)
        self._tracks.pop(name, None)

    def step(self, interval_start: int, load_w: int | None, now: int) -> list[Decision]:
        """Feed one closed interval's load (None: no reports); decisions come back in rule order.

        Intervals must come in increasing order; an interval at or before the
        last one fed is ignored.
        """
        if self.last_interval is not None and interval_start <= self.last_interval:
            return []
        self.last_interval = interval_start
        decisions: list[Decision] = []
        for name, rule in self.rules.items():
            track = self._tracks[name]
            if track.state is RuleState.LATCHED:
                if load_w is not None and load_w <= rule.release_w:
                    track.state = RuleState.ARMED
                    track.count = 0
                continue
            track.count = track.count + 1 if load_w is not None and load_w > rule.above_w else 0
            if track.count < rule.for_intervals or now < track.cooldown_until:
                continue
            start = align_up(now + rule.lead, self.interval)
            assert load_w is not None
            decisions.append(
                Decision(
                    name,
                    interval_start,
                    load_w,
                    rule.signal,
                    start,
                    rule.duration,
                    rule.ramp_up,
                    rule.recovery,
                    rule.targets,
                )
            )
            track.state = RuleState.LATCHED
            track.count = 0
            track.cooldown_until = start + rule.duration + rule.cooldown
            track.last_decision = interval_start
        return decisions

    def issued(self, decision: Decision, event_id: str) -> None:
        """The decision's event is on chain as ``event_id``."""
        track = self._tracks.get(decision.rule)
        if track is not None:
            track.last_event = event_id

    def failed(self, decision: Decision) -> None:
        """The decision's event could not be issued: re-arm with the count intact."""
        track = self._tracks.get(decision.rule)
        rule = self.rules.get(decision.rule)
        if track is None or rule is None:
            return
        track.state = RuleState.ARMED
        track.count = rule.for_intervals
        track.cooldown_until = 0

    def to_json(self) -> list[dict[str, Any]]:
        """Every rule with its state, for the operator and the web UI."""
        return [
            {
                **rule.to_json(),
                "state": str(self._tracks[name].state),
                "count": self._tracks[name].count,
                "cooldown_until": self._tracks[name].cooldown_until,
                "last_event": self._tracks[name].last_event,
                "last_decision_interval": self._tracks[name].last_decision,
            }
            for name, rule in self.rules.items()
        ]
