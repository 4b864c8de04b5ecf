"""The home's side of joining: checking a code, creating the home, asking for admission.

``transactiva join CODE --dir HOME`` (and the Home Assistant app, given a code) calls
:func:`join_home`:

1. the code is decoded (a mistyped or malformed code is refused at once, nothing made);
2. a short-lived P2P connection to the code's seeds (the handshake needs the chain id
   and genesis hash the code carries, so a node of another chain refuses it) fetches the
   genesis and asks the operator's node to check the code -- expired, used, cancelled or
   forged codes are refused there, and the operator sees the refusal;
3. the genesis is kept only if its hash is the code's, and the code only if the
   chain's operator key (in that genesis) signed it;
4. the home is written in a temporary folder beside ``HOME`` -- keys (mode 0600), the
   genesis, ``config.json`` (P2P on, the code's seeds, role ``observer``), the API token
   and the code itself (``invitation``, 0600) -- and renamed into place, so a failure at
   any step leaves no half-made home.

When the node starts (``transactiva node --dir HOME``), :class:`Joiner` syncs with its
peers and asks the operator's node for admission (``{"op": "admit"}``, signed with the
participant key, naming the meter key to bind) until the chain has the participant,
then deletes the code. :class:`JoinStatus` is what ``GET /api/v1/local/admission``
reports meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ledger_core.node.home import Config, Home, write_config, write_token
from ledger_core.node.host import Node
from ledger_core.p2p.network import Network, P2PError, RemoteError
from ledger_core.state.keys import StateView
from ledger_core.types import codec
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, parse_genesis
from ledger_core.types.invitation import (
    CHANNEL,
    AdmissionRequest,
    Invitation,
    InvitationError,
    parse_code,
)

LOG: Final = logging.getLogger(__name__)
METER_KEY: Final = "keys/meter.key"
CONNECT_SECONDS: Final = 20.0
REQUEST_SECONDS: Final = 15.0
ASK_FIRST: Final = 1.0
ASK_MAX: Final = 30.0

# What a joining home's node reports (GET /api/v1/local/admission).
MEMBER: Final = "member"
REVOKED: Final = "revoked"
JOINING: Final = "joining"
AWAITING: Final = "awaiting_approval"
REFUSED: Final = "refused"
NOT_INVITED: Final = "not_invited"


class JoinError(Exception):
    """Joining refused or impossible; ``reason`` is a stable word, the text says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def read_code(code: str) -> Invitation:
    """The invitation of a code, or JoinError (mistyped, malformed, another format)."""
    try:
        return parse_code(code)
    except InvitationError as err:
        raise JoinError(err.reason, f"the invitation code is not valid: {err.message}") from None


async def _first_peer(network: Network, invitation: Invitation, seconds: float) -> str:
    """The id of the first peer the network connects to, or why none did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        peers = network.peers()
        if peers:
            return peers[0].id
        for record in network.recent_disconnects():
            if "chain_id:" in record.reason or "genesis_hash:" in record.reason:
                raise JoinError(
                    "other_chain",
                    f"the node at {record.address} is not on the code's chain "
                    f"{invitation.chain_id!r} ({record.reason}); ask your operator for a "
                    "new code",
                )
        await asyncio.sleep(0.1)
    errors = [a.last_error for a in network.addresses() if a.last_error]
    where = ", ".join(invitation.seeds)
    raise JoinError(
        "unreachable",
        f"cannot reach the concentrator at {where} within {seconds:g} s"
        + (f": {errors[-1]}" if errors else "")
        + "; is its node running, and is its P2P port open to this machine?",
    )


async def ask_operator(
    invitation: Invitation,
    key: SigningKey,
    requests: list[bytes],
    *,
    connect_seconds: float = CONNECT_SECONDS,
) -> list[bytes]:
    """Connect to the code's seeds for a moment and send ``requests`` on the admission
    channel; the answers, in order (JoinError when no operator answers)."""
    network = Network(
        key,
        invitation.chain_id,
        invitation.genesis_hash,
        "127.0.0.1",
        0,
        [],
        list(invitation.seeds),  # dialled at once, and again until they answer
        max_peers=len(invitation.seeds),
        pex=False,
        advertise="",  # not reachable: this connection lasts one exchange
    )
    await network.start()
    try:
        peer = await _first_peer(network, invitation, connect_seconds)
        answers = []
        for request in requests:
            try:
                answers.append(await network.request(peer, CHANNEL, request, REQUEST_SECONDS))
            except RemoteError as err:
                raise JoinError(
                    "not_operator",
                    f"the node at {', '.join(invitation.seeds)} does not admit homes ({err}): "
                    "the code's seed is not the operator's node",
                ) from None
            except P2PError as err:
                raise JoinError(
                    "unreachable", f"the operator's node did not answer: {err}"
                ) from None
        return answers
    finally:
        await network.stop()


def _verdict(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise JoinError("unexpected", "the operator's node answered something unreadable") from None
    if not isinstance(value, dict):
        raise JoinError("unexpected", "the operator's node answered something unreadable")
    if value.get("ok") is not True:
        reason = str(value.get("reason", "refused"))
        raise JoinError(
            reason, f"the operator refused the code ({reason}): {value.get('message', '')}"
        )
    return value


async def check_with_operator(
    invitation: Invitation, node_key: SigningKey, then: list[bytes] | None = None
) -> tuple[Genesis, list[bytes]]:
    """Fetch the chain's genesis from the operator's node and have it check the code;
    the genesis, verified against the code (JoinError otherwise), and the answers to
    the requests ``then`` sent on the same connection afterwards."""
    raw_genesis, raw_check, *answers = await ask_operator(
        invitation,
        node_key,
        [
            codec.encode({"op": "genesis"}),
            codec.encode({"code": invitation.code, "op": "check"}),
            *(then or []),
        ],
    )
    _verdict(raw_check)  # the operator's verdict first: it has seen the code
    try:
        genesis = parse_genesis(raw_genesis)
    except ValueError as err:
        raise JoinError(
            "unexpected", f"the operator's node sent a genesis that does not parse: {err}"
        ) from None
    if genesis.hash != invitation.genesis_hash or genesis.chain_id != invitation.chain_id:
        raise JoinError(
            "other_chain",
            f"the genesis the node sent has hash {genesis.hash[:12]}…, not the code's "
            f"{invitation.genesis_hash[:12]}…: it is not the chain you were invited to",
        )
    if not any(invitation.signed_by(op.public_key) for op in genesis.operators):
        raise JoinError("forged", "the code is not signed by the chain's operator")
    return genesis, answers


@dataclass(frozen=True, slots=True)
class JoinOptions:
    """Where the new home's node listens and what it measures."""

    api_host: str = "127.0.0.1"
    api_port: int = 8765
    p2p_host: str = "0.0.0.0"  # noqa: S104 - peers reach a node's P2P port from the LAN
    p2p_port: int = 26656
    smartpi: str | None = None
    meter: dict[str, Any] | None = None
    ingress_proxy: str | None = None
    concentrator: str | None = None  # the concentrator's API, where the meter's readings go


def home_config(invitation: Invitation, options: JoinOptions) -> Config:
    """``config.json`` of a home joining with ``invitation``."""
    meter = options.meter
    if meter is None and options.smartpi is not None:
        meter = {"source": {"type": "smartpi", "url": options.smartpi}}
    if meter is not None and options.concentrator is not None:
        meter = {**meter, "concentrator": options.concentrator}
    return Config(
        api_host=options.api_host,
        api_port=options.api_port,
        role="observer",
        p2p_host=options.p2p_host,
        p2p_port=options.p2p_port,
        seeds=invitation.seeds,
        # The concentrator is the home's way into the chain: kept connected for ever.
        persistent_peers=invitation.seeds,
        meter=meter,
        ingress_proxy=options.ingress_proxy,
    )


def must_be_free(path: Path) -> None:
    """JoinError unless ``path`` is missing or an empty folder."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise JoinError("exists", f"{path} already holds files; choose another --dir")


def write_home(
    path: Path, invitation: Invitation, genesis: Genesis, config: Config, node_key: SigningKey
) -> Home:
    """Write the whole home in a temporary folder beside ``path`` and rename it into place
    (``path`` must not exist, or be an empty folder); nothing is left on failure."""
    must_be_free(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.joining-", dir=path.parent))
    try:
        home = Home(staging)
        (staging / "keys").mkdir(mode=0o700)
        SigningKey.generate().save(home.participant_key_file)
        SigningKey.generate().save(staging / METER_KEY)
        node_key.save(staging / config.node_key_file)
        genesis.save(home.genesis_file)
        write_config(home, config)
        write_token(home)
        fd = os.open(home.invitation_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (invitation.code + "\n").encode("ascii"))
        finally:
            os.close(fd)
        staging.chmod(0o700)
        if path.exists():
            path.rmdir()  # empty, checked above
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Home(path)


async def join_home(path: Path, code: str, options: JoinOptions) -> tuple[Home, Invitation]:
    """Check ``code`` with its operator and create the home in ``path`` (see the module)."""
    invitation = read_code(code)
    must_be_free(path)
    node_key = SigningKey.generate()
    genesis, _ = await check_with_operator(invitation, node_key)
    home = write_home(path, invitation, genesis, home_config(invitation, options), node_key)
    return home, invitation


# -- in the node --------------------------------------------------------------------------


@dataclass
class JoinStatus:
    """What a joining home's node knows of its admission (besides the chain)."""

    status: str = JOINING
    message: str = ""
    invitation: dict[str, codec.Value] | None = None
    updated: float = 0.0
    asked: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def admission_of(view: StateView, participant: str, joining: JoinStatus | None) -> dict[str, Any]:
    """The node's admission, as ``GET /api/v1/local/admission`` answers it."""
    account = view.account(participant)
    out: dict[str, Any] = {
        "participant": participant,
        "status": NOT_INVITED,
        "name": None,
        "role": None,
        "message": None,
        "invitation": None,
    }
    if account is not None:
        out |= {
            "status": MEMBER if account["status"] == "active" else REVOKED,
            "name": account.get("name"),
            "role": account["role"],
        }
        return out
    if joining is not None:
        invitation = joining.invitation or {}
        out |= {
            "status": joining.status,
            "name": invitation.get("name"),
            "role": invitation.get("role"),
            "message": joining.message or None,
            "invitation": {
                k: invitation[k]
                for k in ("name", "role", "approve", "expires", "seeds")
                if k in invitation
            },
        }
    return out


class Joiner:
    """Asks the operator's node to admit this home until the chain has its participant."""

    def __init__(
        self,
        home: Home,
        node: Node,
        network: Network,
        participant: SigningKey,
        meter_public_key: bytes,
    ) -> None:
        self.home = home
        self.node = node
        self.network = network
        self.participant = participant
        self.meter_public_key = meter_public_key
        code = home.invitation_file.read_text(encoding="ascii").strip()
        self.invitation = read_code(code)
        self.status = JoinStatus(invitation=self.invitation.describe(), updated=node.clock())
        self._delay = ASK_FIRST

    def admitted(self) -> bool:
        """Whether the chain this node has synced holds the participant."""
        return StateView(self.node.committed).account(self.participant.address) is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Ask, wait, ask again, until admitted, refused or ``stop``."""
        LOG.info(
            "joining chain %s as %r: asking the operator for admission",
            self.invitation.chain_id,
            self.invitation.name,
        )
        while not stop.is_set():
            if self.admitted():
                self._done()
                return
            if self.status.status != REFUSED:
                await self._ask()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._delay)

    def _done(self) -> None:
        LOG.info("admitted to chain %s as %r", self.invitation.chain_id, self.invitation.name)
        self.status.status = MEMBER
        self.status.message = ""
        with contextlib.suppress(OSError):
            self.home.invitation_file.unlink()  # single use: nothing left to keep

    def _peers(self) -> list[str]:
        """Connected peers, the code's seeds first."""
        seeds = set(self.invitation.seeds)
        peers = self.network.peers()
        return [p.id for p in sorted(peers, key=lambda p: p.address not in seeds)]

    async def _ask(self) -> None:
        request = AdmissionRequest.make(
            self.invitation, self.participant, self.meter_public_key
        ).encode()
        for peer in self._peers():
            try:
                raw = await self.network.request(peer, CHANNEL, request, REQUEST_SECONDS)
            except RemoteError:
                continue  # not the operator's node
            except P2PError as err:
                LOG.info("asking %s for admission failed: %s", peer, err)
                continue
            self._answer(raw)
            return
        self.status.message = "waiting to connect to the operator's node"
        self._delay = min(ASK_MAX, self._delay * 2)

    def _answer(self, raw: bytes) -> None:
        self.status.asked += 1
        self.status.updated = self.node.clock()
        try:
            value = _verdict(raw)
        except JoinError as err:
            if self.status.status != REFUSED:
                LOG.warning("admission refused: %s", err.message)
            self.status.status = REFUSED
            self.status.message = err.message
            return
        status = str(value.get("status"))
        if status == "awaiting_approval":
            if self.status.status != AWAITING:
                LOG.info("waiting for the operator to approve %r", self.invitation.name)
            self.status.status = AWAITING
            self.status.message = "the operator approves this home by hand"
            self._delay = min(ASK_MAX, max(self._delay * 2, 5.0))
        else:
            self.status.status = JOINING
            self.status.message = (
                "admitted; waiting for this node to sync the registration"
                if status == "admitted"
                else "the operator is registering this home"
            )
            self._delay = ASK_FIRST
