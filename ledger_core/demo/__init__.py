"""``transactiva demo``: a neighbourhood market on this machine.

:mod:`.run` starts and drives it, :mod:`.chain` sets up the chain and its
homes through the node's public API, :mod:`.view` prints what happens.
"""
