"""The wire contract of a Transactiva node: its API version, enumerations, units, typed
answers and a typed async client.

One contract for every side: the node serves :data:`API_VERSION` and takes its
enumerations from here; the command line and the Home Assistant integration talk to it
with :class:`TransactivaClient`. See ``docs/api.md`` for the API itself and
``docs/architecture.md`` ("The wire contract") for why this is a distribution of its own.
"""

from transactiva_client._version import __version__
from transactiva_client.client import Stream, TransactivaClient
from transactiva_client.errors import (
    DecodeError,
    IncompatibleNodeError,
    TransactivaAuthError,
    TransactivaConnectionError,
    TransactivaError,
    TransactivaNotReadyError,
    TransactivaRequestError,
    UnexpectedAnswerError,
)
from transactiva_client.protocol import API_PREFIX, API_VERSION, ApiVersion, Update

__all__ = [
    "API_PREFIX",
    "API_VERSION",
    "ApiVersion",
    "DecodeError",
    "IncompatibleNodeError",
    "Stream",
    "TransactivaAuthError",
    "TransactivaClient",
    "TransactivaConnectionError",
    "TransactivaError",
    "TransactivaNotReadyError",
    "TransactivaRequestError",
    "UnexpectedAnswerError",
    "Update",
    "__version__",
]
