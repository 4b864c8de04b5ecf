"""The home agent: a home's contracts evaluated at every event, and what they do.

:mod:`.execution` (which events happen and what the contracts ask) and
:mod:`.home_agent` (following the node's events, trading, calling the
actuators, recording each action in the home's log, :mod:`ledger_core.node.local`).
"""
