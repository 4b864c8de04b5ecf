"""``transactiva operator``: invitations and participants, tariffs, price signals,
demand-response events, and the meters' readings the concentrator holds (``readings
erase``, docs/privacy.md).

``invite NAME`` prints a single-use invitation code as its last line; ``participants``
lists members (``--json``: a list of objects with name, address, role, status, meter);
``admit NAME`` approves a home invited with ``--approve manual``; ``revoke NAME`` revokes
a member and its meter (or cancels an unused invitation); ``rename NAME NEW``;
``refusals`` lists every refused code and request.

Commands that talk to a node (``prices publish``, ``prices set``, ``dr ...``,
``readings erase``)
use the node's home (``--dir``) for its address and API token, as every node
command does; the node signs with its local participant key, which is the
operator's in a home made by ``transactiva init``. ``tariff check`` and
``prices show`` need no node.

Exit status: 0 done, 1 refused (an invalid tariff, a ledger refusal), 2 a
file or the node could not be reached (or the command line is wrong).

Times are local to ``--timezone`` (default: the tariff's, else
America/Mexico_City): ``YYYY-MM-DD HH:MM``, ``now`` or ``+30m``. Durations:
``900``, ``900s``, ``30m``, ``2h``, ``1h30m``. Prices: MXN/kWh with at most 4
decimals. Power: kW with at most 3 decimals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp

from ledger_core.cli.node import add_dir
from ledger_core.client import ApiError, NodeClient
from ledger_core.clock import SystemClock
from ledger_core.concentrator.dr import DrError, DrEvent, DrManager, DrSignal
from ledger_core.concentrator.ledger import HttpLedger
from ledger_core.concentrator.prices import PricePublisher, PriceSchedule, PublishReport
from ledger_core.concentrator.tariff import (
    DEFAULT_TIMEZONE,
    PathError,
    Tariff,
    TariffError,
    format_price,
    load_tariff,
    price_units,
)
from ledger_core.node.home import Home, HomeError, default_home
from ledger_core.types.crypto import ADDRESS_RE
from ledger_core.types.invitation import ROLES as INVITED_ROLES
from ledger_core.types.tx import MAX_PRICE

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 2
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


# -- argument types ----------------------------------------------------------------------


def _seconds(text: str, pattern: re.Pattern[str], units: tuple[int, ...], example: str) -> int:
    """Whole seconds, or a duration of ``pattern``'s units (their sizes in ``units``)."""
    if text.isdigit():
        return int(text)
    match = pattern.fullmatch(text)
    if match is None or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as {example}")
    return sum(int(g) * unit for g, unit in zip(match.groups(), units, strict=True) if g)


def duration(text: str) -> int:
    """``"1h30m"`` as 5400 seconds."""
    seconds = _seconds(text, _DURATION, (3600, 60, 1), "30m or 1h30m")
    if seconds > 7 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than 7 days")
    return seconds


def kilowatts(text: str) -> int:
    """``"1.5"`` kW as 1500 W; more than 3 decimals is an error."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of kW") from None
    watts = value * 1000
    if not value.is_finite() or watts != watts.to_integral_value() or abs(watts) > 10**9:
        raise argparse.ArgumentTypeError(f"{text!r}: kW with at most 3 decimals, up to 1 GW")
    return int(watts)


def mxn_price(text: str) -> int:
    """MXN/kWh as 10^-4 MXN/kWh, exactly."""
    try:
        return price_units(text, "price", low=-MAX_PRICE)
    except PathError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err.message}") from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IANA time zone") from None


def moment(text: str, zone: ZoneInfo, now: float) -> int:
    """``now``, ``+30m`` or a local ``YYYY-MM-DD HH:MM`` as Unix seconds."""
    if text == "now":
        return int(now)
    if text.startswith("+"):
        return int(now) + duration(text[1:])
    try:
        local = datetime.strptime(text, "%Y-%m-%d %H:%M")  # noqa: DTZ007 - zone added below
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: 'YYYY-MM-DD HH:MM' (local), 'now' or '+30m'"
        ) from None
    return int(local.replace(tzinfo=zone).timestamp())


# -- plumbing ------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> NodeClient:
    home = Home(args.dir if args.dir is not None else default_home())
    config = home.config()
    return NodeClient(f"http://{config.api_host}:{config.api_port}", home.token())


def _with_node[T](
    args: argparse.Namespace, work: Callable[[HttpLedger], Coroutine[Any, Any, T]], err: TextIO
) -> tuple[int, T | None]:
    try:
        ledger = HttpLedger(_client(args))
        return EXIT_OK, asyncio.run(work(ledger))
    except HomeError as error:
        err.write(f"{error}\n")
        return EXIT_UNAVAILABLE, None
    except DrError as error:
        err.write(f"refused: {error}\n")
        return (EXIT_UNAVAILABLE if error.status >= 500 else EXIT_REFUSED), None
    except ApiError as error:
        err.write(f"refused: {error}\n")
        return EXIT_REFUSED, None
    except (OSError, aiohttp.ClientError) as error:
        err.write(f"cannot reach the node: {error}; is 'transactiva node' running?\n")
        return EXIT_UNAVAILABLE, None
    except ValueError as error:  # a request the command line should not have let through
        err.write(f"{error}\n")
        return EXIT_UNAVAILABLE, None


def _tariff(path: str, err: TextIO) -> Tariff | int:
    try:
        return load_tariff(path)
    except TariffError as error:
        err.write(f"{error}\n")
        return EXIT_UNAVAILABLE if error.message.startswith("cannot read") else EXIT_REFUSED


def _local(when: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(when, zone).strftime("%Y-%m-%d %H:%M")


def _zone_of(args: argparse.Namespace) -> ZoneInfo:
    zone: ZoneInfo | None = args.timezone
    return zone if zone is not None else ZoneInfo(DEFAULT_TIMEZONE)


# -- tariff --------------------------------------------------------------------------------


def run_tariff_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator tariff check FILE``: check a tariff and summarise it."""
    tariff = _tariff(args.file, err)
    if isinstance(tariff, int):
        return tariff
    out.write(
        f"{args.file}: ok: {tariff.kind} tariff {tariff.name!r} ({tariff.timezone}); "
        f"export {format_price(tariff.export_price)}, "
        f"network fee {format_price(tariff.network_fee)} MXN/kWh\n"
    )
    for season in tariff.seasons:
        months = ", ".join(str(m) for m in season.months)
        if tariff.kind == "block":
            blocks = ", ".join(
                f"{b.name} {'up to ' + str(b.up_to_kwh) + ' kWh' if b.up_to_kwh else 'beyond'}"
                f" at {format_price(b.import_price)}"
                for b in tariff.blocks[season.name]
            )
            marginal = tariff.marginal_block(season).name
            out.write(
                f"  {season.name} (months {months}): {blocks}; "
                f"signals use {marginal} (reference {season.reference_kwh} kWh)\n"
            )
        else:
            out.write(f"  {season.name} (months {months})\n")
    for name, prices in sorted(tariff.periods.items()):
        out.write(f"  period {name}: import {format_price(prices.import_price)} MXN/kWh\n")
    return EXIT_OK


# -- prices --------------------------------------------------------------------------------


def _today(tariff: Tariff) -> date:
    return tariff.local(int(time.time())).date()


def run_prices_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator prices show --tariff FILE [--day D]``: a day's schedule, in runs."""
    tariff = _tariff(args.tariff, err)
    if isinstance(tariff, int):
        return tariff
    day = args.day or _today(tariff)
    schedule = PriceSchedule(tariff)
    prices = schedule.between(*tariff.day_bounds(day))
    out.write(f"{day.isoformat()} ({tariff.timezone}), MXN/kWh: import / export / network fee\n")
    begin = 0
    for i in range(1, len(prices) + 1):
        if i == len(prices) or (prices[i].period, prices[i].prices) != (
            prices[begin].period,
            prices[begin].prices,
        ):
            first = prices[begin]
            until = (
                _local(prices[i].interval_start, tariff.zone)[11:] if i < len(prices) else "24:00"
            )
            out.write(
                f"  {_local(first.interval_start, tariff.zone)[11:]}-{until}"
                f"  {first.period:<14} {format_price(first.prices.import_price)}"
                f" / {format_price(first.prices.export_price)}"
                f" / {format_price(first.prices.network_fee)}\n"
            )
            begin = i
    return EXIT_OK


def _summary(report: PublishReport) -> str:
    return (
        f"{len(report.published)} published, {len(report.already)} already on chain, "
        f"{len(report.past)} past, {len(report.failed)} failed"
    )


def _failures(report: PublishReport, err: TextIO) -> int:
    for start, outcome in report.failed[:5]:
        err.write(f"  interval {start}: {outcome.code}: {outcome.message}\n")
    return EXIT_REFUSED if report.failed else EXIT_OK


def run_prices_publish(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator prices publish --tariff FILE [--day D]``: publish a day's missing prices."""
    tariff = _tariff(args.tariff, err)
    if isinstance(tariff, int):
        return tariff
    day = args.day or _today(tariff) + timedelta(days=1)

    async def work(ledger: HttpLedger) -> PublishReport:
        publisher = PricePublisher(PriceSchedule(tariff), ledger, SystemClock())
        return await publisher.publish_day(day)

    status, report = _with_node(args, work, err)
    if report is None:
        return status
    out.write(f"{day.isoformat()} ({tariff.timezone}): {_summary(report)}\n")
    return _failures(report, err)


def run_prices_set(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator prices set``: override the prices of an interval or a range."""
    if args.import_price is None and args.export_price is None and args.fee is None:
        err.write("give at least one of --import, --export and --fee\n")
        return EXIT_UNAVAILABLE
    tariff = _tariff(args.tariff, err)
    if isinstance(tariff, int):
        return tariff
    zone = args.timezone or tariff.zone
    now = time.time()
    try:
        start = moment(args.at, zone, now) // 900 * 900
        end = moment(args.until, zone, now) if args.until else start + 900
    except argparse.ArgumentTypeError as error:
        err.write(f"{error}\n")
        return EXIT_UNAVAILABLE
    if end <= start:
        err.write("--until must be after --at\n")
        return EXIT_UNAVAILABLE

    async def work(ledger: HttpLedger) -> PublishReport:
        publisher = PricePublisher(PriceSchedule(tariff), ledger, SystemClock())
        return await publisher.override(
            start,
            end,
            import_price=args.import_price,
            export_price=args.export_price,
            network_fee=args.fee,
        )

    status, report = _with_node(args, work, err)
    if report is None:
        return status
    out.write(f"{_local(start, zone)} to {_local(end, zone)}: {_summary(report)}\n")
    return _failures(report, err)


# -- demand response ---------------------------------------------------------------------


def _signal(args: argparse.Namespace) -> DrSignal | None:
    if args.level is not None:
        return DrSignal.simple(args.level)
    if args.price is not None:
        return DrSignal.electricity_price(args.price)
    if args.setpoint_kw is not None:
        return DrSignal.setpoint(args.setpoint_kw)
    if args.delta_kw is not None:
        return DrSignal.delta(args.delta_kw)
    return None


def _describe(event: DrEvent, zone: ZoneInfo, now: float) -> str:
    who = ", ".join(event.targets) if event.targets else "everyone"
    extras = "".join(
        f", {name} {seconds} s"
        for name, seconds in (("ramp-up", event.ramp_up), ("recovery", event.recovery))
        if seconds
    )
    return (
        f"{event.event_id} (modification {event.modification_number}): {event.signal.describe()}"
        f" from {_local(event.start, zone)} to {_local(event.end, zone)} {zone.key}"
        f"{extras}; for {who}; status {event.status(now)}"
    )


def run_dr(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator dr issue|modify|cancel|show``."""
    zone = _zone_of(args)
    command = args.dr_command
    now = time.time()
    try:
        start = moment(args.start, zone, now) if getattr(args, "start", None) else None
    except argparse.ArgumentTypeError as error:
        err.write(f"{error}\n")
        return EXIT_UNAVAILABLE
    signal = _signal(args) if command in ("issue", "modify") else None
    if command == "issue" and (signal is None or start is None or args.duration is None):
        err.write("issue needs a signal (--level, --price, --setpoint-kw or --delta-kw), "
                  "--start and --duration\n")  # fmt: skip
        return EXIT_UNAVAILABLE

    async def work(ledger: HttpLedger) -> DrEvent:
        manager = DrManager(ledger, SystemClock())
        if command == "issue":
            assert signal is not None
            assert start is not None
            return await manager.issue(
                signal,
                start,
                args.duration,
                targets=args.target or (),
                ramp_up=args.ramp_up or 0,
                recovery=args.recovery or 0,
                event_id=args.id,
            )
        if command == "modify":
            return await manager.modify(
                args.event_id,
                signal=signal,
                start=start,
                duration=args.duration,
                targets=args.target,
                ramp_up=args.ramp_up,
                recovery=args.recovery,
            )
        if command == "cancel":
            return await manager.cancel(args.event_id)
        event = await manager.current(args.event_id)
        if event is None:
            raise DrError(404, "unknown_event", f"no demand-response event {args.event_id!r}")
        return event

    status, event = _with_node(args, work, err)
    if event is None:
        return status
    verb = {"issue": "issued", "modify": "modified", "cancel": "cancelled", "show": "event"}
    out.write(f"{verb[command]} {_describe(event, zone, time.time())}\n")
    return EXIT_OK


# -- invitations and participants ----------------------------------------------------------

_EXPIRY = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def expiry(text: str) -> int:
    """``"7d"``, ``"36h"``, ``"1d12h"``, ``"90m"`` or seconds, as seconds (1 min to 365 days)."""
    seconds = _seconds(text, _EXPIRY, (86400, 3600, 60, 1), "7d or 36h")
    if not 60 <= seconds <= 365 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r}: an invitation lasts 1 minute to 365 days")
    return seconds


def _call_node(
    args: argparse.Namespace, work: Callable[[NodeClient], Coroutine[Any, Any, Any]], err: TextIO
) -> tuple[int, Any]:
    """Run ``work`` with a client of the home's node; (status, result or None)."""
    try:
        client = _client(args)
        return EXIT_OK, asyncio.run(work(client))
    except HomeError as error:
        err.write(f"{error}\n")
        return EXIT_UNAVAILABLE, None
    except ApiError as error:
        err.write(f"refused: {error}\n")
        return (EXIT_UNAVAILABLE if error.status >= 500 else EXIT_REFUSED), None
    except (OSError, aiohttp.ClientError) as error:
        err.write(f"cannot reach the node: {error}; is 'transactiva node' running?\n")
        return EXIT_UNAVAILABLE, None


def _no_operator_routes(error: ApiError) -> bool:
    return error.status == 404 and error.code == "not_found"


def run_invite(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator invite NAME``: a single-use code, printed as the last line."""

    async def work(client: NodeClient) -> dict[str, Any]:
        try:
            return await client.post(
                "/operator/invitations",
                {
                    "name": args.name,
                    "role": args.role,
                    "expires_in": args.expires,
                    "approve": args.approve,
                },
            )
        except ApiError as error:
            if _no_operator_routes(error) and error.field is None:
                raise ApiError(
                    404,
                    "not_found",
                    "this node issues no invitations: its participant is not the chain's "
                    "operator, or it does not listen for peers",
                ) from None
            raise

    status, entry = _call_node(args, work, err)
    if entry is None:
        return status
    until = datetime.fromtimestamp(int(entry["expires"])).astimezone()
    how = (
        "by hand (transactiva operator admit)" if entry["approve"] == "manual" else "automatically"
    )
    out.write(
        f"invitation for {entry['name']!r} ({entry['role']}), admitted {how}, "
        f"valid until {until:%Y-%m-%d %H:%M %Z}; single use.\n"
        f"The new home runs: transactiva join CODE --dir HOME (the app: its invitation option)\n"
        f"{entry['code']}\n"
    )
    return EXIT_OK


def run_participants(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator participants [--json]``."""

    async def work(client: NodeClient) -> list[dict[str, Any]]:
        answer = await client.get("/operator/participants")
        rows: list[dict[str, Any]] = answer["participants"]
        return rows

    status, rows = _call_node(args, work, err)
    if rows is None:
        return status
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    out.write(f"{'NAME':<20} {'ADDRESS':<43} {'ROLE':<11} {'METER':<6} STATUS\n")
    for row in rows:
        out.write(
            f"{row['name'] or '-':<20} {row['address'] or '-':<43} {row['role']:<11} "
            f"{'bound' if row['meter_bound'] else '-':<6} {row['status']}\n"
        )
    return EXIT_OK


def _wait_member(client: NodeClient, name: str) -> Coroutine[Any, Any, dict[str, Any] | None]:
    async def wait() -> dict[str, Any] | None:
        for _ in range(120):
            rows = (await client.get("/operator/participants"))["participants"]
            row = next((r for r in rows if r["name"] == name), None)
            if row is not None and row["status"] in ("active", "failed"):
                return dict(row)
            await asyncio.sleep(0.5)
        return None

    return wait()


def run_admit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator admit NAME``: approve a home held for approval, wait until registered."""

    async def work(client: NodeClient) -> tuple[dict[str, Any], dict[str, Any] | None]:
        entry = await client.post(f"/operator/participants/{args.name}/admit", {})
        return entry, await _wait_member(client, str(entry["name"]))

    status, result = _call_node(args, work, err)
    if result is None:
        return status
    entry, row = result
    if row is None:
        out.write(f"admitting {entry['name']!r}: the registration is not committed yet\n")
        return EXIT_OK
    if row["status"] == "failed":
        err.write(f"admitting {entry['name']!r} failed: {row['invitation']['message']}\n")
        return EXIT_REFUSED
    out.write(
        f"admitted {row['name']!r}: participant {row['address']} ({row['role']}), "
        f"meter {'bound' if row['meter_bound'] else 'not bound'}\n"
    )
    return EXIT_OK


def run_readings_erase(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator readings erase PARTICIPANT [--force]``: a departed home's readings."""
    if not ADDRESS_RE.fullmatch(args.participant):
        err.write(f"{args.participant!r} is not a participant's address (tv + 40 hex)\n")
        return EXIT_UNAVAILABLE

    async def work(ledger: HttpLedger) -> dict[str, Any]:
        return await ledger.client.post(
            "/operator/readings/erase", {"participant": args.participant, "force": args.force}
        )

    status, answer = _with_node(args, work, err)
    if answer is None:
        return status
    meters = ", ".join(answer["meters"]) or "no meter"
    out.write(
        f"erased {answer['erased']} readings of {answer['participant']} ({meters}) from the "
        "concentrator's store; the chain keeps only their commitments\n"
    )
    return EXIT_OK


def run_revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator revoke NAME``: revoke a member (and its meter), or cancel an invitation."""

    async def work(client: NodeClient) -> dict[str, Any]:
        return await client.post(f"/operator/participants/{args.name}/revoke", {})

    status, result = _call_node(args, work, err)
    if result is None:
        return status
    if result["status"] == "cancelled":
        out.write(f"the invitation for {result['name']!r} is cancelled\n")
    else:
        out.write(f"{result['name'] or result['address']} revoked ({result['address']})\n")
    return EXIT_OK


def run_rename(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator rename NAME NEW``."""

    async def work(client: NodeClient) -> dict[str, Any]:
        return await client.post(f"/operator/participants/{args.name}/rename", {"name": args.new})

    status, result = _call_node(args, work, err)
    if result is None:
        return status
    out.write(f"{result['address']} is now {result['name']!r}\n")
    return EXIT_OK


def run_refusals(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``operator refusals``: refused codes and requests, newest first."""

    async def work(client: NodeClient) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await client.get("/operator/refusals"))["refusals"]
        return rows

    status, rows = _call_node(args, work, err)
    if rows is None:
        return status
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    for row in rows:
        when = datetime.fromtimestamp(float(row["at"])).astimezone()
        who = f" {row['name']!r}" if row["name"] else ""
        out.write(
            f"{when:%Y-%m-%d %H:%M:%S} {row['stage']}{who}: {row['reason']}: {row['message']}\n"
        )
    if not rows:
        out.write("no refusals\n")
    return EXIT_OK


# -- the parser ----------------------------------------------------------------------------


def _dr_options(parser: argparse.ArgumentParser, *, issue: bool) -> None:
    signal = parser.add_mutually_exclusive_group()
    signal.add_argument("--level", type=int, choices=[0, 1, 2, 3], help="SIMPLE level")
    signal.add_argument("--price", type=mxn_price, metavar="MXN/kWh", help="ELECTRICITY_PRICE")
    signal.add_argument("--setpoint-kw", type=kilowatts, metavar="KW", help="LOAD_DISPATCH")
    signal.add_argument("--delta-kw", type=kilowatts, metavar="KW", help="LOAD_DISPATCH change")
    parser.add_argument("--start", metavar="WHEN", help="'YYYY-MM-DD HH:MM' local, now, +30m")
    parser.add_argument("--duration", type=duration, metavar="DUR", help="e.g. 30m, 1h30m")
    parser.add_argument("--ramp-up", type=duration, metavar="DUR")
    parser.add_argument("--recovery", type=duration, metavar="DUR")
    parser.add_argument(
        "--target",
        action="append",
        metavar="ADDR",
        help="a participant (repeat for several; none: everyone)",
    )
    if issue:
        parser.add_argument("--id", metavar="EVENT_ID", help="default: dr-<UTC time>-<random>")


def _configure_members(sub: Any) -> list[argparse.ArgumentParser]:  # noqa: ANN401 - argparse's
    """``invite``, ``participants``, ``admit``, ``revoke``, ``rename``, ``refusals``."""
    invite = sub.add_parser("invite", help="invite a home: prints a single-use code")
    invite.add_argument("name", metavar="NAME", help="the name the home is given (e.g. casa-12)")
    invite.add_argument(
        "--role",
        default="consumer",
        choices=[str(r) for r in INVITED_ROLES],
        help="default: consumer (prosumer for a home with panels)",
    )
    invite.add_argument(
        "--expires", type=expiry, default=7 * 86400, metavar="DUR", help="e.g. 2h, 7d (default 7d)"
    )
    invite.add_argument(
        "--approve",
        choices=["auto", "manual"],
        default="auto",
        help="auto: admitted when its node asks; manual: after 'operator admit NAME'",
    )
    invite.set_defaults(operator_run=run_invite)
    members = sub.add_parser("participants", help="members and invitations not admitted yet")
    members.add_argument("--json", action="store_true", help="a JSON list of objects")
    members.set_defaults(operator_run=run_participants)
    admit = sub.add_parser("admit", help="admit a home invited with --approve manual")
    admit.add_argument("name", metavar="NAME")
    admit.set_defaults(operator_run=run_admit)
    revoke = sub.add_parser("revoke", help="revoke a member, or cancel an unused invitation")
    revoke.add_argument("name", metavar="NAME", help="a name or an address")
    revoke.set_defaults(operator_run=run_revoke)
    rename = sub.add_parser("rename", help="give a member another name")
    rename.add_argument("name", metavar="NAME", help="a name or an address")
    rename.add_argument("new", metavar="NEW")
    rename.set_defaults(operator_run=run_rename)
    refusals = sub.add_parser("refusals", help="refused invitation codes and requests")
    refusals.add_argument("--json", action="store_true")
    refusals.set_defaults(operator_run=run_refusals)
    return [invite, members, admit, revoke, rename, refusals]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``operator`` subcommands."""
    sub = parser.add_subparsers(dest="operator_command", metavar="AREA", required=True)

    tariff = sub.add_parser("tariff", help="tariff files")
    tariff_sub = tariff.add_subparsers(dest="tariff_command", metavar="ACTION", required=True)
    check = tariff_sub.add_parser("check", help="check a tariff file and summarise it")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(operator_run=run_tariff_check)

    prices = sub.add_parser("prices", help="price signals from a tariff")
    prices_sub = prices.add_subparsers(dest="prices_command", metavar="ACTION", required=True)
    show = prices_sub.add_parser("show", help="print a day's schedule (no node needed)")
    show.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="default: today")
    show.set_defaults(operator_run=run_prices_show)
    publish = prices_sub.add_parser("publish", help="publish a day's missing prices")
    publish.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="default: tomorrow")
    publish.set_defaults(operator_run=run_prices_publish)
    override = prices_sub.add_parser("set", help="override the prices of an interval or range")
    override.add_argument("--at", required=True, metavar="WHEN", help="the first interval")
    override.add_argument("--until", metavar="WHEN", help="end, excluded (default: +15m)")
    override.add_argument("--import", dest="import_price", type=mxn_price, metavar="MXN/kWh")
    override.add_argument("--export", dest="export_price", type=mxn_price, metavar="MXN/kWh")
    override.add_argument("--fee", type=mxn_price, metavar="MXN/kWh", help="network fee")
    override.add_argument("--timezone", type=_zone, help="default: the tariff's")
    override.set_defaults(operator_run=run_prices_set)
    for p in (show, publish, override):
        p.add_argument("--tariff", required=True, metavar="FILE", help="a tariff file (TOML)")

    dr = sub.add_parser("dr", help="demand-response events")
    dr_sub = dr.add_subparsers(dest="dr_command", metavar="ACTION", required=True)
    issue = dr_sub.add_parser("issue", help="issue an event")
    _dr_options(issue, issue=True)
    modify = dr_sub.add_parser("modify", help="change an event (a new modification)")
    modify.add_argument("event_id", metavar="EVENT_ID")
    _dr_options(modify, issue=False)
    cancel = dr_sub.add_parser("cancel", help="cancel an event")
    cancel.add_argument("event_id", metavar="EVENT_ID")
    show_dr = dr_sub.add_parser("show", help="an event as the ledger has it")
    show_dr.add_argument("event_id", metavar="EVENT_ID")
    for p in (issue, modify, cancel, show_dr):
        p.add_argument("--timezone", type=_zone, help=f"for times (default {DEFAULT_TIMEZONE})")
        p.set_defaults(operator_run=run_dr)

    readings = sub.add_parser("readings", help="the meters' readings the concentrator holds")
    readings_sub = readings.add_subparsers(dest="readings_command", metavar="ACTION", required=True)
    erase = readings_sub.add_parser(
        "erase", help="delete a departed participant's readings (docs/privacy.md)"
    )
    erase.add_argument("participant", metavar="PARTICIPANT", help="the participant's address")
    erase.add_argument(
        "--force",
        action="store_true",
        help="even if the participant is still a member or readings wait for a bill",
    )
    erase.set_defaults(operator_run=run_readings_erase)

    membership = _configure_members(sub)

    for p in (publish, override, issue, modify, cancel, show_dr, erase, *membership):
        add_dir(p)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Dispatch to the chosen ``operator`` subcommand."""
    handler: Callable[[argparse.Namespace, TextIO, TextIO], int] = args.operator_run
    return handler(args, out, sys.stderr)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run as ``python -m ledger_core.concentrator_cli`` (before it is wired into transactiva)."""
    parser = argparse.ArgumentParser(prog="transactiva operator", description=__doc__)
    configure(parser)
    return run(parser.parse_args(argv), out if out is not None else sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
