"""The interval market inside the ledger: auction (pure), settlement (pure), state and API.

``auction`` matches one interval's orders; ``settlement`` turns trades and
metered energy into wallet movements; ``state`` runs both from the state
machine (order handlers, clearing and settlement in ``end_block``); ``api``
serves the results over HTTP. ``docs/market.md`` states the rules.
"""
