"""The ledger's state machine: a pure function of ordered transactions.

:mod:`.kernel` (overlays, rejections, the chain a handler runs on, the router),
one module per domain -- :mod:`.accounts` (membership), :mod:`.contracts`,
:mod:`.meters` (reports and service), :mod:`.signals` (prices and demand
response), :mod:`.wallet`, :mod:`.validators` (validator sets and evidence),
:mod:`.market` (orders, auction, clearing, settlement) -- the key schema and
its typed reads (:mod:`.keys`), the state root (:mod:`.commitment`), and the
application that joins them (:mod:`.machine`). It imports only
:mod:`ledger_core.types` and the contract language: no clock, no randomness,
no floats, no I/O.
"""
