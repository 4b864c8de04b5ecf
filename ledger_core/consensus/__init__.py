"""Byzantine fault-tolerant consensus: the Tendermint algorithm around the ledger application.

The modules are a sans-IO core (``types``, ``validators``, ``votes``, ``engine``,
``evidence``, ``light``) plus the files a validator keeps (``wal``, ``privval``)
and the node that drives them (``node``). See ``docs/consensus.md``.
"""
