"""Joining refused, held and revoked, with real processes: every bad code gets a clear
message and leaves nothing behind, the operator sees every refusal, a home invited with
``--approve manual`` waits for ``operator admit``, a revoked home knows it, and one home
runs one node."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, Final

from ledger_core.demo.chain import free_port
from ledger_core.types.crypto import SigningKey
from ledger_core.types.invitation import Invitation, parse_code
from tests.journey.harness import NodeProcess, local_midnight, set_config, transactiva, wait_for

SPEED: Final = 240.0


def _forged(code: str) -> str:
    """The same invitation signed by someone who is not the operator."""
    return parse_code(code).signed(SigningKey.generate()).code


def _other_chain(code: str) -> str:
    """A well-signed code of another chain that names this operator's node as its seed."""
    real = parse_code(code)
    other = Invitation(
        "otro-barrio",
        "ab" * 32,
        real.seeds,
        real.name,
        real.role,
        real.manual,
        real.expires,
        os.urandom(4),
    )
    return other.signed(SigningKey.generate()).code


def _mistyped(code: str) -> str:
    groups = code.split("-")
    groups[5] = groups[5][::-1] if groups[5] != groups[5][::-1] else groups[5].lower() + "X"
    return "-".join(groups)


async def _join(code: str, home: Path) -> Any:
    return await transactiva(
        "join", code, "--dir", str(home), "--api-port", str(free_port()),
        "--p2p-port", str(free_port()), "--p2p-host", "127.0.0.1",
    )  # fmt: skip


async def test_refused_codes_held_and_revoked_homes_and_one_node_per_home(tmp_path: Path) -> None:
    start = local_midnight(time.time()) + 86400 + 9 * 3600
    clock = {"clock_epoch": time.time(), "clock_start": start, "clock_speed": SPEED}
    op_dir = tmp_path / "operador"
    made = await transactiva(
        "init", "--dir", str(op_dir), "--chain-id", "barrio-2", "--api-port", str(free_port()),
        "--p2p-port", str(free_port()), "--p2p-host", "127.0.0.1",
    )  # fmt: skip
    made.ok()
    set_config(op_dir, **clock)
    operator = NodeProcess(op_dir)
    held, kept = NodeProcess(tmp_path / "casa-m"), NodeProcess(tmp_path / "casa-u")
    nodes = [operator]
    try:
        operator.start()
        await wait_for("the operator's node", lambda: operator.get("/status"), nodes)

        async def invite(name: str, *extra: str) -> str:
            ran = await transactiva("operator", "invite", name, *extra, "--dir", str(op_dir))
            return ran.ok().last_line

        # A code that is not one: refused at once, nothing made, nothing sent.
        nowhere = tmp_path / "nada"
        for code, words in (
            ("hola", "starts with TV1-"),
            (_mistyped(await invite("casa-t")), "mistyped"),
        ):
            ran = await _join(code, nowhere)
            assert ran.status == 1, ran
            assert words in ran.err
            assert "Traceback" not in ran.err
            assert not nowhere.exists()

        # Codes the operator refuses (and sees): forged, expired, of another chain.
        good = await invite("casa-u", "--role", "prosumer")
        expiring = await invite("casa-x", "--expires", "60")  # a clock minute: 0.25 s here
        await asyncio.sleep(1.0)
        for code, words in (
            (_forged(good), "(forged)"),
            (expiring, "(expired)"),
            (_other_chain(good), "not on the code's chain 'otro-barrio'"),
        ):
            ran = await _join(code, nowhere)
            assert ran.status == 1, ran
            assert words in ran.err, ran.err
            assert not nowhere.exists()
            assert not _leftovers(tmp_path), "no half-made home"

        # A folder that holds files is not overwritten.
        (tmp_path / "ocupada").mkdir()
        (tmp_path / "ocupada" / "notas.txt").write_text("mías\n")
        ran = await _join(good, tmp_path / "ocupada")
        assert (ran.status, "already holds files" in ran.err) == (2, True)

        # The good code joins; used again, it is refused.
        (await _join(good, kept.home)).ok()
        set_config(kept.home, **clock)
        kept.start()
        nodes.append(kept)
        admission = await wait_for("casa-u admitted", lambda: _status(kept, "member"), nodes)
        assert (admission["name"], admission["role"]) == ("casa-u", "prosumer")
        ran = await _join(good, nowhere)
        assert (ran.status, "(used)" in ran.err, nowhere.exists()) == (1, True, False)

        # One node per home: a second one is refused at once.
        began = time.monotonic()
        second = await transactiva("node", "--dir", str(kept.home), seconds=30.0)
        assert second.status == 2
        assert "a node is already running on this home" in second.err
        assert time.monotonic() - began < 15

        # Manual approval: the home waits until the operator admits it.
        manual = await invite("casa-m", "--approve", "manual", "--role", "consumer")
        (await _join(manual, held.home)).ok()
        set_config(held.home, **clock)
        held.start()
        nodes.append(held)
        waiting = await wait_for(
            "casa-m to wait for approval", lambda: _status(held, "awaiting_approval"), nodes
        )
        assert waiting["invitation"]["approve"] == "manual"
        rows = await _participants(op_dir)
        assert rows["casa-m"]["status"] == "awaiting_approval"
        admitted = (await transactiva("operator", "admit", "casa-m", "--dir", str(op_dir))).ok()
        assert admitted.out.startswith("admitted 'casa-m'")
        await wait_for("casa-m admitted", lambda: _status(held, "member"), nodes)

        # Revocation: the operator revokes casa-m and its meter; the home knows.
        revoked = (await transactiva("operator", "revoke", "casa-m", "--dir", str(op_dir))).ok()
        assert "revoked" in revoked.out
        await wait_for("casa-m revoked", lambda: _status(held, "revoked"), nodes)
        rows = await _participants(op_dir)
        assert rows["casa-m"]["status"] == "revoked"
        assert rows["casa-u"]["status"] == "active"

        # The operator saw every refusal, with its reason.
        shown = json.loads(
            (await transactiva("operator", "refusals", "--json", "--dir", str(op_dir))).ok().out
        )
        reasons = {row["reason"] for row in shown}
        assert {"forged", "expired", "used", "other_chain"} <= reasons, shown
    finally:
        for node in reversed(nodes):
            await node.stop()


def _leftovers(folder: Path) -> list[Path]:
    """Temporary folders a join would have left behind."""
    return list(folder.glob(".*.joining-*"))


async def _status(node: NodeProcess, wanted: str) -> dict[str, Any] | None:
    answer = await node.get("/local/admission")
    return answer if answer is not None and answer["status"] == wanted else None


async def _participants(op_dir: Path) -> dict[str, dict[str, Any]]:
    listed = await transactiva("operator", "participants", "--json", "--dir", str(op_dir))
    return {row["name"]: row for row in json.loads(listed.ok().out) if row["name"]}
