"""The ledger's wire and data types: the leaf every other part of the node builds on.

Canonical JSON (:mod:`.codec`), Ed25519 identities (:mod:`.crypto`), RFC 6962
Merkle trees (:mod:`.merkle`), field validation shared by every decoder
(:mod:`.fields`), transactions (:mod:`.tx`), votes, commits and evidence
(:mod:`.vote`), blocks (:mod:`.block`), proposals and consensus messages
(:mod:`.proposal`), validator sets (:mod:`.validators`), evidence
verification (:mod:`.evidence`) and the genesis file (:mod:`.genesis`).

Nothing here imports anything else of the project (an import-linter contract
keeps it so): a change to the state machine, consensus, the node or the API
never forces a change here, and every decoder here rejects malformed input
with a :class:`~ledger_core.types.fields.FieldError` naming the field.
"""
