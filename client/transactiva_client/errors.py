"""What can go wrong between a client and a node.

Every request either answers or raises one of these :class:`TransactivaError` subclasses:

- :class:`TransactivaConnectionError`: the node cannot be reached or answered a 5xx; its
  subclass :class:`UnexpectedAnswerError`: something answered, but not as a Transactiva
  node does (not JSON, or JSON that does not decode: the message names the field);
- :class:`TransactivaAuthError`: the node refused the token (401);
- :class:`TransactivaNotReadyError`: the node has no answer yet (503 with its own error
  body: the meter has not been read, the forecast has too little history);
- :class:`TransactivaRequestError`: the node understood the request and refused it (4xx),
  with the node's ``code`` (an :class:`~transactiva_client.protocol.ErrorCode` when this
  client knows it), ``message`` and ``field``;
- :class:`IncompatibleNodeError`: the node serves an API version this client cannot
  speak; ``update`` says which side to update.

:class:`DecodeError` is separate (a ValueError): a message or field that is not what the
node sends, raised by the decoders of :mod:`transactiva_client.models`. The client turns
it into a connection error for answers; a stream skips such a message.
"""

from __future__ import annotations

from typing import Final

from transactiva_client.protocol import API_VERSION, ErrorCode, Update, known

NOT_A_NODE: Final = "the answer is not a Transactiva node's"


class TransactivaError(Exception):
    """Base error of the client."""


class TransactivaConnectionError(TransactivaError):
    """The node cannot be reached, or its answer is not the node API's."""


class UnexpectedAnswerError(TransactivaConnectionError):
    """Something answered at the node's address, but not what the node API answers."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(NOT_A_NODE if detail is None else f"{NOT_A_NODE}: {detail}")


class TransactivaAuthError(TransactivaError):
    """The node refused the token."""


class TransactivaNotReadyError(TransactivaError):
    """The node has no answer yet (HTTP 503 with its own error body); ``retry_after`` is
    the node's hint in seconds (its Retry-After header; ``overloaded``, ``mempool_full``)."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        self.code: ErrorCode | str = known(ErrorCode, code)
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{code}: {message}")


class TransactivaRequestError(TransactivaError):
    """The node understood the request and refused it (HTTP 4xx)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code: ErrorCode | str = known(ErrorCode, code)
        self.message = message
        self.field = field
        where = f" ({field})" if field else ""
        super().__init__(f"{code}: {message}{where}")


class IncompatibleNodeError(TransactivaError):
    """The node serves an API version this client cannot speak.

    ``node_version`` is what the node said (None: it did not say, so it predates API
    1.0), ``client_version`` the version this client speaks, ``update`` the side to
    update: the node when it is older, the client (and what uses it) when it is newer.
    """

    def __init__(self, node_version: str | None, update: Update, url: str = "") -> None:
        self.node_version = node_version
        self.client_version = API_VERSION
        self.update = update
        where = f" at {url}" if url else ""
        said = (
            f"serves API {node_version}"
            if node_version is not None
            else "does not say its API version (it predates API 1.0)"
        )
        what = (
            "update the node (the Transactiva app, or the transactiva package)"
            if update is Update.NODE
            else "update transactiva-client (the Home Assistant integration or the CLI using it)"
        )
        super().__init__(
            f"the Transactiva node{where} {said}; this client speaks API {API_VERSION}: {what}"
        )


class DecodeError(ValueError):
    """A message or field that is not what the node sends; ``field`` says where."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field} {problem}")
