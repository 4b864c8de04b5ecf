"""The DR rule engine: sustained load, hysteresis, cooldown, retries, determinism."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.concentrator.dr import DrError, DrSignal
from ledger_core.concentrator.rules import Decision, LoadRule, RuleEngine, interval_load_w
from tests.concentrator.harness import mx

T0 = mx(2026, 3, 10, 18)
DELAY = 60


def rule(**changes: Any) -> LoadRule:
    base: dict[str, Any] = {
        "name": "evening-peak",
        "above_w": 10_000,
        "for_intervals": 2,
        "release_w": 6_000,
        "signal": DrSignal.simple(2),
        "duration": 1800,
        "cooldown": 3600,
    }
    base.update(changes)
    return LoadRule(**base)


def feed(engine: RuleEngine, loads: list[int | None], first: int = T0) -> list[Decision]:
    """Closed intervals one after another, each evaluated DELAY s after it ends."""
    decisions: list[Decision] = []
    for i, load in enumerate(loads):
        start = first + i * 900
        decisions += engine.step(start, load, start + 900 + DELAY)
    return decisions


def test_a_sustained_high_load_issues_one_event_starting_at_the_next_boundary() -> None:
    engine = RuleEngine([rule()])
    assert feed(engine, [12_000]) == []
    (decision,) = feed(engine, [12_000], T0 + 900)
    assert decision == Decision(
        rule="evening-peak",
        interval_start=T0 + 900,
        load_w=12_000,
        signal=DrSignal.simple(2),
        start=T0 + 2700,  # decided at T0+1800+60: the next boundary
        duration=1800,
        ramp_up=0,
        recovery=0,
        targets=(),
    )
    state = engine.to_json()[0]
    assert (state["state"], state["cooldown_until"]) == ("latched", T0 + 2700 + 1800 + 3600)
    engine.issued(decision, "dr-1")
    assert engine.to_json()[0]["last_event"] == "dr-1"


def test_a_dip_or_a_missing_interval_resets_the_count() -> None:
    engine = RuleEngine([rule(for_intervals=3)])
    assert feed(engine, [12_000, 12_000, 10_000, 12_000, 12_000, None, 12_000, 12_000]) == []
    assert engine.to_json()[0]["count"] == 2
    assert len(feed(engine, [12_000], T0 + 8 * 900)) == 1


def test_hysteresis_holds_until_the_load_falls_to_the_release_level() -> None:
    engine = RuleEngine([rule(cooldown=0, duration=900)])
    loads = [12_000, 12_000]  # fires
    loads += [12_000, 9_000, 11_000, 12_000, 6_001]  # latched: above release, no new event
    loads += [6_000]  # re-armed
    loads += [12_000, 12_000]  # fires again
    decisions = feed(engine, loads)
    assert [d.interval_start for d in decisions] == [T0 + 900, T0 + 9 * 900]


def test_no_event_during_the_cooldown_then_at_once_if_the_load_is_still_high() -> None:
    engine = RuleEngine([rule(duration=900, cooldown=2700)])
    decisions = feed(engine, [12_000, 12_000, 5_000] + [12_000] * 6)
    # The first event starts at T0+2700 and ends at T0+3600; the cooldown ends at T0+6300.
    # The rule re-arms at T0+1800 and counts from T0+2700; intervals evaluated before the
    # cooldown ends (at start+960) do not fire, the first one after does.
    assert [d.interval_start for d in decisions] == [T0 + 900, T0 + 5400]
    assert decisions[1].start == T0 + 7200


def test_a_failed_issue_is_retried_at_the_next_interval() -> None:
    engine = RuleEngine([rule()])
    (decision,) = feed(engine, [12_000, 12_000])
    engine.failed(decision)
    assert engine.to_json()[0]["state"] == "armed"
    (again,) = feed(engine, [12_000], T0 + 1800)
    assert again.interval_start == T0 + 1800
    # The count survives the failure: even one more high interval is enough.
    assert feed(engine, [None], T0 + 2700) == []
    engine.failed(again)
    assert len(feed(engine, [12_000], T0 + 3600)) == 1


def test_targets_lead_ramps_and_several_rules() -> None:
    targeted = rule(
        name="shed",
        signal=DrSignal.delta(-1000),
        lead=1800,
        ramp_up=300,
        recovery=600,
        targets=("tv" + "1" * 40,),
        for_intervals=1,
    )
    engine = RuleEngine([rule(), targeted])
    first = feed(engine, [20_000])
    assert [d.rule for d in first] == ["shed"]
    # Decided at T0+960; with a lead of 30 minutes the event starts at the boundary after T0+2760.
    assert (first[0].start, first[0].ramp_up, first[0].recovery) == (T0 + 3600, 300, 600)
    assert first[0].targets == ("tv" + "1" * 40,)
    second = feed(engine, [20_000], T0 + 900)
    assert [d.rule for d in second] == ["evening-peak"]
    # Intervals fed again, or out of order, are ignored.
    assert engine.step(T0, 50_000, T0 + 9000) == []
    engine.remove("shed")
    engine.add(rule(name="other", for_intervals=1))
    assert [d.rule for d in feed(engine, [20_000], T0 + 1800)] == ["other"]
    assert [r["name"] for r in engine.to_json()] == ["evening-peak", "other"]


def test_interval_load_is_average_watts() -> None:
    assert interval_load_w(1000, 0) == 4000
    assert interval_load_w(250, 1250) == -4000
    assert interval_load_w(1, 0) == 4
    assert interval_load_w(1, 0, 3600) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "no spaces"}, "rules.no spaces.name"),
        ({"for_intervals": 0}, "rules.evening-peak.for_intervals"),
        ({"for_intervals": 97}, "rules.evening-peak.for_intervals"),
        ({"release_w": 10_001}, "rules.evening-peak.release_w"),
        ({"release_w": -(10**10)}, "rules.evening-peak.release_w"),
        ({"above_w": 10**10, "release_w": 0}, "rules.evening-peak.above_w"),
        ({"cooldown": -1}, "rules.evening-peak.cooldown"),
        ({"lead": 86401}, "rules.evening-peak.lead"),
        ({"duration": 0}, "duration"),
        ({"ramp_up": 86401}, "ramp_up"),
        ({"targets": ("nobody",)}, "targets[0]"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DrError) as info:
        rule(**changes)
    assert (info.value.status, info.value.field) == (400, field)


def test_rules_from_json() -> None:
    value = rule(targets=("tv" + "2" * 40,)).to_json()
    assert value["signal"] == {"name": "SIMPLE", "level": 2}
    assert LoadRule.from_json(value) == rule(targets=("tv" + "2" * 40,))
    for bad, field in [
        ({**value, "colour": 1}, "rules.colour"),
        ({k: v for k, v in value.items() if k != "above_w"}, "rules.above_w"),
        ({**value, "above_w": "10"}, "rules.above_w"),
        ({**value, "cooldown": True}, "rules.cooldown"),
        ({**value, "name": 5}, "rules.name"),
        ({**value, "signal": {"name": "SIMPLE", "level": 9}}, "rules.signal.level"),
        ({**value, "targets": "all"}, "rules.targets"),
    ]:
        with pytest.raises(DrError) as info:
            LoadRule.from_json(bad)
        assert info.value.field == field


loads = st.lists(st.one_of(st.none(), st.integers(-20_000, 30_000)), max_size=60)
rules = st.builds(
    lambda above, **kw: rule(above_w=above, release_w=above - 4000, **kw),
    st.integers(0, 20_000),
    for_intervals=st.integers(1, 4),
    duration=st.integers(1, 7200),
    cooldown=st.integers(0, 7200),
    lead=st.integers(0, 1800),
)


@given(rules, loads)
def test_the_engine_is_deterministic_and_keeps_its_promises(
    chosen: LoadRule, series: list[int | None]
) -> None:
    first = feed(RuleEngine([chosen]), series)
    assert first == feed(RuleEngine([chosen]), series)
    for i, decision in enumerate(first):
        index = (decision.interval_start - T0) // 900
        decided_at = decision.interval_start + 900 + DELAY
        # Sustained: the last for_intervals intervals were all above the threshold.
        window = series[index - chosen.for_intervals + 1 : index + 1]
        assert len(window) == chosen.for_intervals
        assert all(x is not None and x > chosen.above_w for x in window)
        assert decision.start % 900 == 0
        assert decided_at + chosen.lead <= decision.start < decided_at + chosen.lead + 900
        if i:
            before = first[i - 1]
            previous = (before.interval_start - T0) // 900
            # Hysteresis: the load fell to the release level in between ...
            between = series[previous + 1 : index]
            assert any(x is not None and x <= chosen.release_w for x in between)
            # ... and the cooldown after the previous event had passed.
            assert decided_at >= before.start + before.duration + chosen.cooldown
