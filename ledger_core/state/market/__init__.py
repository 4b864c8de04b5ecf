"""The market inside the state machine: orders, holds, clearing and settlement in ``end_block``.

The state machine calls in here from six places: the ``order`` and ``order_cancel``
handlers (:mod:`.orders`), the concentrator's ``delivery`` and ``bill`` handlers
(:mod:`.metered`), ``end_block`` (:func:`.clearing.end_block`), and one hook, when a
price signal is recorded (:func:`.books.note_price`). Meter reports carry commitments,
not energy (docs/privacy.md), so the market never reads them: the concentrator, which
holds the readings, states the energy settlement needs and cites the reports.
Everything is a pure function of the state and the block: integers only, no
clock, and every collection is walked in a fixed order.

Timing, for an interval starting at ``T`` (``interval_seconds`` long):

* orders for ``T`` are accepted while the block time is before the gate,
  ``T - gate_closure_seconds``, and at most :data:`MAX_AHEAD_SECONDS` ahead;
* the ``end_block`` of the first block at or after the gate clears ``T`` with
  the backstop prices known then (:func:`backstop_at`);
* the ``end_block`` of the first block at or after ``T + interval_seconds +
  settlement_delay_seconds`` closes ``T``: without trades it is settled (there is
  nothing to settle), with trades it waits for its ``delivery``, which settles the
  trades at the interval's final prices;
* a participant's energy with the supplier is billed per local day by a ``bill``,
  once the day is over and ``settlement_delay_seconds`` more.

State (``T`` is the interval start as 12 digits; all readable with ``query``):

* ``market/<T>``: the interval — status (``open``, ``cleared``, ``unpriced``,
  ``settled``; ``settlement`` is ``awaiting_delivery`` while its trades wait),
  counters, the clearing result and the prices used;
* ``order/<id>`` (``id`` = the order transaction's id), ``position/<address>/<T>``
  (a participant's orders, trades and hold in ``T``), ``trade/<T>/<k>``,
  ``settle/<address>/<T>`` (the statement of a trader's trades),
  ``bill/<address>/<day>`` (a day's bill), ``debt/<address>``;
* indexes, so that ``end_block`` never scans the state: ``queue/market`` (the
  sorted starts of intervals not yet closed), ``traders/<T>/<n>`` (who ordered
  in ``T``; deleted when it closes), ``priceday/<day>`` (the latest priced
  interval of each UTC day, to find the latest price signal at or before any
  interval).

Holds: a buy order moves ``cost(energy_wh, limit_price)`` from ``bal/`` to
``held/`` (the same counter that holds pending withdrawals); clearing keeps
exactly what the participant's trades cost and releases the rest; the delivery
releases the remainder just before paying.

Debts: a wallet is ``bal - debt``. Settlement adds each wallet's movements to
that sum and stores it back as a balance when it is positive or as
``debt/<address>`` when it is negative, so a balance is never negative and a
later credit repays debt first. Every peer-to-peer payment is held in advance,
so only what is owed to the supplier can go unpaid: the supplier is credited
in full and carries the debt, as a utility carries its customers' unpaid bills.
Invariant: ``sum(bal) + sum(held) - sum(debt) == total/deposits -
total/withdrawals``.
"""
