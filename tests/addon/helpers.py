"""Small helpers shared by the app's tests."""

from __future__ import annotations

from ledger_core.cli.ha_app import AppOptions, OptionsError, parse_options


def parse_or_error(raw: object) -> AppOptions | OptionsError:
    """The parsed options, or the error that refused them (so tests assert outside ``except``)."""
    try:
        return parse_options(raw)
    except OptionsError as err:
        return err
