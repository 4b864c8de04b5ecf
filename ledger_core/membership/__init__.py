"""Membership: invitations, admission and joining -- how a home becomes a participant.

The operator's node (whose local participant is a genesis operator) keeps the
invitations it issues in its home (``invitations.db``, never on the chain), answers
joining homes on the P2P ``admission`` channel and, for an admitted home, signs the
registration (with the granted name and role) and the binding of its meter:

- ``invitations.py``: the operator's book of invitations and of every refusal;
- ``admission.py``: issuing invitations, judging requests, admitting, revoking;
- ``joining.py``: the home's side -- fetching the genesis and checking a code before
  its home exists (``transactiva join``), then asking for admission from its node;
- ``api.py``: the routes of both sides (``/operator/invitations``,
  ``/operator/participants``, ``/local/admission``).

See docs/joining.md for the journey and its design.
"""
