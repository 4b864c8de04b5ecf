"""The concentrator role: tariffs, price signals, demand-response events and rules.

The operator (ISO, supplier and DSO) runs it next to its node: :mod:`.tariff`
reads tariff files, :mod:`.prices` turns them into signed day-ahead price
signals, :mod:`.dr` issues, modifies and cancels OpenADR-style
demand-response events, :mod:`.rules` issues them from the neighbourhood's
load, and :mod:`.service` runs all of it on a clock. Nothing here is part of
the consensus state machine: it only submits transactions.
"""
