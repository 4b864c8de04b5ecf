"""docs/meters.md says what the code does: settings, defaults, appliances, routes."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from ledger_core.meter.household import APPLIANCES, PHASE_OF
from ledger_core.meter.service import MeterConfig
from ledger_core.meter.smartpi import GUI_PAGE

DOC = (Path(__file__).resolve().parents[2] / "docs" / "meters.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_with_its_default() -> None:
    table = DOC[DOC.index("`MeterConfig` (JSON object") : DOC.index("`add_meter_routes(")]
    rows = dict(re.findall(r"^\| `([a-z_`, ]+)` \| ([^|]+) \|", table, re.MULTILINE))
    documented: dict[str, str] = {}
    for names, defaults in rows.items():
        for name, default in zip(
            names.replace("`", "").split(", "), defaults.strip().split(", "), strict=True
        ):
            documented[name] = default
    config = MeterConfig()
    for field in fields(MeterConfig):
        assert field.name in documented, field.name
        value = getattr(config, field.name)
        assert documented[field.name].strip("`") == str(value), field.name


def test_appliances_routes_and_messages_are_the_codes() -> None:
    for name in APPLIANCES:
        assert f"`{name}` (" in DOC
        assert f"phase {PHASE_OF[name]})" in DOC or f"phase {PHASE_OF[name]}," in DOC
    for route in (
        "/api/v1/local/meter",
        "/api/v1/local/meter/stream",
        "/api/v1/local/meter/readings",
    ):
        assert f"`GET {route}`" in DOC or f"`POST {route}`" in DOC
    assert GUI_PAGE in " ".join(DOC.split())
