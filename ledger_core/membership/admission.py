"""The operator's side: issuing invitations, judging codes and requests, admitting, revoking.

:class:`Admissions` runs on a node whose local participant is a genesis operator. It

- issues invitations (:meth:`Admissions.invite`): a unique name not held on the chain
  nor by another live invitation, a role, an expiry, automatic or manual approval,
  signed with the operator key and kept in the :class:`InvitationBook`;
- answers joining homes on the P2P ``admission`` request channel: the genesis
  (``{"op": "genesis"}``), a check of a code before a home is created
  (``{"op": "check", "code"}``), and a request for admission signed by the home's
  participant key (``{"op": "admit", "code", "participant_key", "meter_key",
  "signature"}``);
- admits: signs ``register`` (name and role) and ``bind_meter`` with the operator key
  and waits for them to be committed -- at once for an automatic invitation, or when the
  operator approves (:meth:`Admissions.admit`) a manual one;
- revokes a participant and its meter, or cancels an invitation not used yet, and
  renames participants (``set_name``).

Every refusal is logged at WARNING and kept in the book. Answers on the channel are
canonical JSON: ``{"ok": true, ...}`` or ``{"ok": false, "reason", "message"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

from ledger_core.membership.invitations import (
    ADMITTED,
    ADMITTING,
    AWAITING,
    CANCELLED,
    FAILED,
    LIVE,
    OPEN,
    Entry,
    InvitationBook,
)
from ledger_core.node.host import Node, Submitted
from ledger_core.node.storage import StoredTx
from ledger_core.state.keys import StateView
from ledger_core.types import codec
from ledger_core.types.crypto import ADDRESS_RE, SigningKey, address_of
from ledger_core.types.invitation import (
    ROLES,
    AdmissionRequest,
    Invitation,
    InvitationError,
    decode_request,
    parse_code,
)
from ledger_core.types.names import checked_name
from ledger_core.types.tx import TxType, sign

LOG: Final = logging.getLogger(__name__)
DEFAULT_EXPIRY: Final = 7 * 86400
MAX_EXPIRY: Final = 365 * 86400
WAIT_SECONDS: Final = 60.0
APPROVALS: Final = ("auto", "manual")
REASONS: Final = (
    "malformed",
    "mistyped",
    "version",
    "other_chain",
    "forged",
    "unknown",
    "cancelled",
    "expired",
    "used",
    "name_taken",
    "failed",
)
"""Why a code or a request is refused (the ``reason`` of a refusal), as the operator sees."""
STAGES: Final = ("check", "admit", "request", "handshake")
"""Where it was refused: checking a code (``transactiva join``), asking for admission,
a request that is not one, the P2P handshake (a node of another chain)."""
MEMBER_STATUSES: Final = ("active", "revoked", "invited", AWAITING, ADMITTING, FAILED)
"""The ``status`` of a row of :meth:`Admissions.participants`."""


class AdmissionError(Exception):
    """A request of the operator's that cannot be done; ``code`` is an API error code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class Refused(Exception):  # noqa: N818 - a verdict on a code, not a crash
    """A code or request refused: ``reason`` is a stable word, ``message`` says why."""

    def __init__(self, reason: str, message: str, invitation: Invitation | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.invitation = invitation


def answer(value: dict[str, codec.Value]) -> bytes:
    """An answer on the admission channel."""
    return codec.encode(value)


class Admissions:
    """Invitations and admission on the operator's node."""

    def __init__(
        self,
        node: Node,
        key: SigningKey,
        book: InvitationBook,
        seeds: Callable[[], tuple[str, ...]],
        *,
        wait: float = WAIT_SECONDS,
    ) -> None:
        self.node = node
        self.key = key
        self.book = book
        self.seeds = seeds
        self.wait = wait
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the chain ------------------------------------------------------------------

    @property
    def view(self) -> StateView:
        return StateView(self.node.committed)

    def now(self) -> int:
        """The node's clock (accelerated in demos and tests), in whole seconds."""
        return int(self.node.clock())

    def holder(self, name: str) -> str | None:
        """The address holding ``name`` on the chain."""
        return self.view.name_holder(name)

    def resolve(self, who: str) -> tuple[str | None, Entry | None]:
        """A participant's address (by name or address) and its newest invitation."""
        if ADDRESS_RE.fullmatch(who):
            account = self.view.account(who)
            name = account.get("name") if account is not None else None
            return who, self.book.latest_for(name) if isinstance(name, str) else None
        try:
            name = checked_name(who)
        except ValueError as err:
            raise AdmissionError(400, "malformed", str(err), "name") from None
        return self.holder(name), self.book.latest_for(name)

    # -- invitations ----------------------------------------------------------------

    def invite(
        self,
        name: str,
        role: str = "consumer",
        expires_in: int = DEFAULT_EXPIRY,
        approve: str = "auto",
    ) -> Entry:
        """Issue an invitation; AdmissionError for a bad or taken name or option."""
        try:
            name = checked_name(name)
        except ValueError as err:
            raise AdmissionError(400, "malformed", str(err), "name") from None
        if role not in [str(r) for r in ROLES]:
            roles = ", ".join(str(r) for r in ROLES)
            raise AdmissionError(400, "malformed", f"must be one of {roles}", "role")
        if not 60 <= expires_in <= MAX_EXPIRY:
            raise AdmissionError(
                400, "malformed", "an invitation lasts 1 minute to 365 days", "expires_in"
            )
        if approve not in APPROVALS:
            raise AdmissionError(400, "malformed", "must be auto or manual", "approve")
        holder = self.holder(name)
        if holder is not None:
            raise AdmissionError(
                409, "name_taken", f"the name {name!r} belongs to {holder} on the chain", "name"
            )
        live = self.book.live_for(name)
        if live is not None:
            raise AdmissionError(
                409,
                "name_taken",
                f"invitation {live.id[:12]} for {name!r} is {live.status}; cancel it first "
                f"(transactiva operator revoke {name})",
                "name",
            )
        seeds = self.seeds()
        if not seeds:
            raise AdmissionError(
                409,
                "not_listening",
                "this node does not listen for peers, so no home could reach it: give it a "
                "p2p_port (transactiva init --p2p-port, or config.json) and restart it",
            )
        genesis = self.node.genesis
        invitation = Invitation(
            genesis.chain_id,
            genesis.hash,
            seeds,
            name,
            role,
            approve == "manual",
            self.now() + expires_in,
            os.urandom(4),
        ).signed(self.key)
        entry = self.book.add(
            invitation.id,
            invitation.code,
            name=name,
            role=role,
            approve=approve,
            expires=invitation.expires,
        )
        LOG.info("invitation %s issued for %r (%s, %s)", entry.id[:12], name, role, approve)
        return entry

    def cancel(self, entry: Entry) -> Entry:
        """Withdraw an invitation not used yet."""
        if entry.status not in (OPEN, AWAITING):
            raise AdmissionError(
                409, "not_pending", f"the invitation for {entry.name!r} is {entry.status}"
            )
        self.book.set_status(entry.id, CANCELLED, message="cancelled by the operator")
        LOG.info("invitation %s for %r cancelled", entry.id[:12], entry.name)
        found = self.book.get(entry.id)
        assert found is not None
        return found

    # -- judging codes ---------------------------------------------------------------

    def judge(self, code: str) -> tuple[Invitation, Entry]:
        """The invitation and its entry if ``code`` may be used now; :class:`Refused`."""
        try:
            invitation = parse_code(code)
        except InvitationError as err:
            raise Refused(err.reason, err.message) from None
        genesis = self.node.genesis
        if invitation.chain_id != genesis.chain_id or invitation.genesis_hash != genesis.hash:
            raise Refused(
                "other_chain",
                f"the code is for chain {invitation.chain_id!r} "
                f"(genesis {invitation.genesis_hash[:12]}…); this is {genesis.chain_id!r} "
                f"(genesis {genesis.hash[:12]}…)",
                invitation,
            )
        if not invitation.signed_by(self.key.public_key):
            raise Refused("forged", "the code is not signed by this chain's operator", invitation)
        entry = self.book.get(invitation.id)
        if entry is None:
            raise Refused(
                "unknown",
                "this operator's node has no record of the invitation (was it issued by "
                "another node of the operator?); ask for a new code",
                invitation,
            )
        if entry.status == CANCELLED:
            raise Refused("cancelled", "the operator cancelled this invitation", invitation)
        if self.now() > invitation.expires and entry.status in (OPEN, AWAITING):
            raise Refused(
                "expired", "the invitation has expired; ask the operator for a new code", invitation
            )
        return invitation, entry

    def _refuse(self, stage: str, refusal: Refused, peer: str | None) -> bytes:
        invitation = refusal.invitation
        self.book.refuse(
            stage,
            refusal.reason,
            refusal.message,
            invitation=invitation.id if invitation is not None else None,
            name=invitation.name if invitation is not None else None,
            peer=peer,
        )
        who = f" for {invitation.name!r}" if invitation is not None else ""
        LOG.warning(
            "invitation%s refused (%s, %s) from %s: %s",
            who,
            stage,
            refusal.reason,
            peer or "?",
            refusal.message,
        )
        return answer({"ok": False, "reason": refusal.reason, "message": refusal.message})

    # -- the P2P channel ---------------------------------------------------------------

    async def on_request(self, peer: str, payload: bytes) -> bytes:
        """Answer one request on the ``admission`` channel."""
        try:
            op, message = decode_request(payload)
        except ValueError as err:
            return self._refuse("request", Refused("malformed", str(err)), peer)
        if op == "genesis":
            return self.node.genesis.encode()
        code = str(message["code"])
        if op == "check":
            try:
                invitation = self._unused(code)
            except Refused as refusal:
                return self._refuse("check", refusal, peer)
            return answer({"ok": True, "invitation": invitation.describe()})
        request = AdmissionRequest(
            code,
            str(message["participant_key"]),
            str(message["meter_key"]),
            str(message["signature"]),
        )
        try:
            return answer(self._admit_request(request))
        except Refused as refusal:
            return self._refuse("admit", refusal, peer)

    def _unused(self, code: str) -> Invitation:
        """The invitation of a code a new home may still use (``transactiva join``)."""
        invitation, entry = self.judge(code)
        if entry.status != OPEN:
            raise Refused("used", "the invitation has been used; ask for a new code", invitation)
        return invitation

    def _admit_request(self, request: AdmissionRequest) -> dict[str, codec.Value]:
        invitation, entry = self.judge(request.code)
        if not request.valid_for(invitation):
            raise Refused(
                "forged",
                "the request is not signed by the participant key it names",
                invitation,
            )
        if entry.status == OPEN:
            if self.holder(invitation.name) is not None:
                raise Refused(
                    "name_taken",
                    f"the name {invitation.name!r} is now another participant's",
                    invitation,
                )
            status = ADMITTING if entry.approve == "auto" else AWAITING
            if not self.book.claim(entry.id, request.participant_key, request.meter_key, status):
                return self._admit_request(request)  # claimed meanwhile: judge it again
            LOG.info(
                "%s asks to join as %r with invitation %s: %s",
                address_of(bytes.fromhex(request.participant_key)),
                invitation.name,
                entry.id[:12],
                "admitting" if status == ADMITTING else "awaiting the operator's approval",
            )
            if status == ADMITTING:
                self._start(entry.id)
            entry = self.book.get(entry.id) or entry
        elif entry.participant_key != request.participant_key:
            raise Refused(
                "used",
                "the invitation has been used by another home; ask for a new code",
                invitation,
            )
        return self._status(entry)

    @staticmethod
    def _status(entry: Entry) -> dict[str, codec.Value]:
        out: dict[str, codec.Value] = {
            "ok": entry.status != FAILED,
            "status": entry.status,
            "name": entry.name,
            "role": entry.role,
        }
        if entry.status == FAILED:
            out["reason"] = "failed"
            out["message"] = entry.message
        if entry.address is not None:
            out["address"] = entry.address
        return out

    # -- admitting ---------------------------------------------------------------------

    def admit(self, who: str) -> Entry:
        """The operator approves the request held for ``who`` (a name)."""
        _address, entry = self.resolve(who)
        if entry is None or entry.status in (CANCELLED,):
            raise AdmissionError(404, "not_found", f"no invitation for {who!r}")
        if entry.status == OPEN:
            raise AdmissionError(
                409,
                "not_pending",
                f"no home has asked with the invitation for {entry.name!r} yet: it is "
                "admitted when its node asks",
            )
        if entry.status in (ADMITTED, ADMITTING):
            return entry
        if entry.status == FAILED or not self.book.set_status(
            entry.id, ADMITTING, expect=(AWAITING,)
        ):
            raise AdmissionError(
                409, "not_pending", f"the invitation for {entry.name!r} is {entry.status}"
            )
        self._start(entry.id)
        LOG.info("the operator admits %r", entry.name)
        return self.book.get(entry.id) or entry

    def _start(self, invitation_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._register(invitation_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _register(self, invitation_id: str) -> None:
        entry = self.book.get(invitation_id)
        if entry is None or entry.participant_key is None or entry.meter_key is None:
            return
        address = address_of(bytes.fromhex(entry.participant_key))
        meter = address_of(bytes.fromhex(entry.meter_key))
        txs: list[tuple[TxType, dict[str, codec.Value]]] = []
        if self.view.account(address) is None:
            txs.append(
                (
                    TxType.REGISTER,
                    {"public_key": entry.participant_key, "role": entry.role, "name": entry.name},
                )
            )
        if self.view.account(meter) is None:
            txs.append(
                (TxType.BIND_METER, {"meter_public_key": entry.meter_key, "participant": address})
            )
        failures = [
            f"{code}: {message}" for code, message in await self.submit(txs) if code != "ok"
        ]
        if failures:
            message = "; ".join(failures)
            self.book.set_status(entry.id, FAILED, address=address, message=message)
            self.book.refuse("admit", "failed", message, invitation=entry.id, name=entry.name)
            LOG.warning("admitting %r failed: %s", entry.name, message)
            return
        self.book.set_status(entry.id, ADMITTED, address=address)
        LOG.info("%r admitted: participant %s, meter %s", entry.name, address, meter)

    async def submit(
        self, txs: Sequence[tuple[TxType, dict[str, codec.Value]]]
    ) -> list[tuple[str, str]]:
        """Sign ``txs`` with the operator key, submit them in order and wait for each;
        ``(code, message)`` per transaction (``ok`` once committed and applied)."""
        waits: list[asyncio.Future[StoredTx | Submitted] | tuple[str, str]] = []
        for tx_type, body in txs:
            # No await between choosing the nonce and entering the mempool.
            nonce = self.node.next_nonce(self.key.address)
            tx = sign(self.key, self.node.genesis.chain_id, tx_type, nonce, body)
            submitted = self.node.submit(tx.wire())
            waits.append(
                self.node.wait_for(tx.id)
                if submitted.accepted
                else (submitted.code, submitted.message)
            )
        outcomes: list[tuple[str, str]] = []
        for item in waits:
            if isinstance(item, tuple):
                outcomes.append(item)
                continue
            try:
                result = await asyncio.wait_for(item, self.wait)
            except TimeoutError:
                outcomes.append(("pending", "not committed within the wait"))
                continue
            outcomes.append((result.code, result.message))
        return outcomes

    def resume(self) -> None:
        """After a restart: finish admissions that were being committed."""
        for entry in self.book.all():
            if entry.status == ADMITTING:
                self._start(entry.id)

    async def stop(self) -> None:
        """Let admissions in flight finish (bounded), then stop."""
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)

    # -- members ---------------------------------------------------------------------

    async def revoke(self, who: str) -> dict[str, Any]:
        """Revoke a participant (and its meters) on the chain, or cancel its invitation."""
        address, entry = self.resolve(who)
        if address is None:
            if entry is not None and entry.status in (OPEN, AWAITING):
                cancelled = self.cancel(entry)
                return {"name": cancelled.name, "status": cancelled.status, "address": None}
            raise AdmissionError(404, "not_found", f"no participant or open invitation {who!r}")
        account = self.view.account(address)
        if account is None:
            raise AdmissionError(404, "not_found", f"{address} is not registered")
        if account["role"] in ("operator", "meter"):
            raise AdmissionError(409, "not_permitted", "only participants can be revoked")
        if account["status"] == "revoked":
            raise AdmissionError(409, "revoked_account", f"{address} is already revoked")
        meters = [
            m
            for m, record in self.view.accounts()
            if record.get("owner") == address and record["status"] == "active"
        ]
        outcomes = await self.submit(
            [(TxType.REVOKE, {"address": target}) for target in (address, *meters)]
        )
        code, message = outcomes[0]
        if code != "ok":
            raise AdmissionError(422, code, message)
        LOG.info("participant %s (%s) revoked", address, account.get("name", "no name"))
        return {"name": account.get("name"), "status": "revoked", "address": address}

    async def rename(self, who: str, new: str) -> dict[str, Any]:
        """Give a participant another name (the old one is freed)."""
        address, _entry = self.resolve(who)
        if address is None:
            raise AdmissionError(404, "not_found", f"no participant {who!r}")
        try:
            name = checked_name(new)
        except ValueError as err:
            raise AdmissionError(400, "malformed", str(err), "name") from None
        live = self.book.live_for(name)
        if live is not None:
            raise AdmissionError(
                409, "name_taken", f"an open invitation holds the name {name!r}", "name"
            )
        code, message = (
            await self.submit([(TxType.SET_NAME, {"address": address, "name": name})])
        )[0]
        if code != "ok":
            raise AdmissionError(409 if code == "name_taken" else 422, code, message, "name")
        return {"name": name, "address": address}

    def participants(self) -> list[dict[str, Any]]:
        """Members on the chain (participants and operators, with their meter), then
        invitations not (yet) admitted: name, address, role, status, meter."""
        view = self.view
        accounts = list(view.accounts())
        meters: dict[str, str] = {}
        for address, record in accounts:
            owner = record.get("owner")
            if (
                record["role"] == "meter"
                and isinstance(owner, str)
                and record["status"] == "active"
            ):
                meters.setdefault(owner, address)
        rows: list[dict[str, Any]] = []
        for address, record in accounts:
            if record["role"] == "meter":
                continue
            rows.append(
                {
                    "name": record.get("name"),
                    "address": address,
                    "role": record["role"],
                    "status": record["status"],
                    "meter": meters.get(address),
                    "meter_bound": address in meters,
                    "since": record["since"],
                    "invitation": None,
                }
            )
        for entry in self.book.all():
            if entry.status in (*LIVE, FAILED) and not any(
                row["name"] == entry.name for row in rows
            ):
                rows.append(
                    {
                        "name": entry.name,
                        "address": entry.address,
                        "role": entry.role,
                        "status": "invited" if entry.status == OPEN else entry.status,
                        "meter": None,
                        "meter_bound": False,
                        "since": None,
                        "invitation": entry.to_json(with_code=False),
                    }
                )
        rows.sort(key=lambda r: (r["name"] is None, r["name"] or "", r["address"] or ""))
        return rows
