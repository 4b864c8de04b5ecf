"""The node's HTTP/WebSocket API, under ``/api/v1``: one module per feature.

:mod:`.server` holds what every feature shares -- access (public, token,
stream), JSON errors, tickets, request helpers and :func:`~.server.add_feature`,
the one way to register routes; :mod:`.openapi` the document's frame and the
helpers each feature uses to describe its routes next to them; :mod:`.core`
assembles the ledger's features into the application (``make_app``).
``docs/api.md`` describes every endpoint.
"""
