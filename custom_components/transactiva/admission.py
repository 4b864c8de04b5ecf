"""A home that is not (yet) a participant of its neighbourhood: the repair issue that says so.

A node made with ``transactiva join`` (or the app's invitation code) runs and follows the
chain before the operator's node admits its participant; a node made with ``transactiva
init`` on someone else's chain is nobody's until an operator registers it. Such a node is
added like any other (the config flow says that it waits for the operator, not that
something failed), and while its participant is not an active member this repair issue
says why and what to do: it joins by itself, it waits for the operator's approval, the
operator refused it, it has no invitation, or it was revoked. The coordinator reads the
admission again whenever the chain registers, names or revokes this participant, and the
issue goes away once the home is a member.
"""

from __future__ import annotations

from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from transactiva_client.models import Admission
from transactiva_client.protocol import AdmissionStatus

from .const import DOMAIN

LEARN_MORE: Final = (
    "https://github.com/transactiva/transactiva/blob/main/docs/home-assistant.md"
    "#a-home-waiting-to-be-admitted"
)
# The repair issue's translation for each status; a status of a newer node that this
# integration does not know reads as joining (the node is not a participant yet).
ISSUE_KEYS: Final = {
    AdmissionStatus.JOINING: "admission_joining",
    AdmissionStatus.AWAITING_APPROVAL: "admission_awaiting_approval",
    AdmissionStatus.REFUSED: "admission_refused",
    AdmissionStatus.NOT_INVITED: "admission_not_invited",
    AdmissionStatus.REVOKED: "admission_revoked",
}
# The admission sensor's states (AdmissionStatus), a newer node's unknown one as None.
STATES: Final = tuple(str(status) for status in AdmissionStatus)


def issue_id(entry_id: str) -> str:
    """The repair issue of one entry whose home is not a member."""
    return f"not_admitted_{entry_id}"


def issue_key(admission: Admission) -> str:
    """The translation key of the repair issue for a home that is not a member."""
    for status, key in ISSUE_KEYS.items():
        if admission.status == status:
            return key
    return ISSUE_KEYS[AdmissionStatus.JOINING]


def update_issue(hass: HomeAssistant, entry: ConfigEntry, admission: Admission) -> None:
    """Raise the repair issue while the home is not a member; withdraw it once it is."""
    if admission.member:
        clear_issue(hass, entry.entry_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry.entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        learn_more_url=LEARN_MORE,
        translation_key=issue_key(admission),
        translation_placeholders={
            "entry": entry.title,
            "participant": admission.participant,
            "name": admission.name or admission.participant,
            "message": admission.message or "-",
        },
    )


def clear_issue(hass: HomeAssistant, entry_id: str) -> None:
    """The home is a member, or the entry is gone."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry_id))
