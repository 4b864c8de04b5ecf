"""The meter role of a node: read the home's meter, keep energy counters, report intervals.

Off the consensus path (floats are fine here); what leaves for the ledger are
integer Wh in signed ``report`` transactions. ``docs/meters.md`` describes the
sources, the accounting and rounding, the outbox, service-cut detection and
the SmartPi simulator. The modules, in the order data flows through them:
``smartpi`` / ``sources`` -> ``accounting`` -> ``intervals`` -> ``outbox``, with
``supply`` watching the voltages, ``service`` running it all and ``api``
adding its routes to the node's API.
"""
