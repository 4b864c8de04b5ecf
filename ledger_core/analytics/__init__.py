"""A home's analytics, off the consensus path: readings, forecasts, backtests, advice.

Entry points: :class:`ledger_core.analytics.service.AnalyticsService` (what a
node runs), :func:`ledger_core.analytics.api.add_analytics_routes` (its HTTP
routes) and ``python -m ledger_core.analytics.backtest``. See docs/analytics.md.
"""
