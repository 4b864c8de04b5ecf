"""The node: a chain's host around the application, its storage and its home folder.

- :mod:`.host`: :class:`~.host.Node`, the mempool and the consensus engine's host
  (proposing, executing and committing blocks), waiters and subscribers; one
  validator runs its rounds locally;
- :mod:`.networked`: :class:`~.networked.ConsensusNode`, the same host with timers,
  a transport, block sync and snapshots, for a network of validators;
- :mod:`.storage`: blocks, results, events and state in SQLite;
- :mod:`.home`: the node's home folder (keys, genesis, configuration, token);
- :mod:`.local`: what happens at this home and stays here (local events, the
  action log in ``local.db``);
- :mod:`.peers`: the P2P network a home describes.

The node drives an :class:`~ledger_core.types.abci.Application` given to it by an
:class:`~ledger_core.types.abci.ApplicationFactory` and never imports the
concrete state machine (an import-linter contract keeps it so).
"""
