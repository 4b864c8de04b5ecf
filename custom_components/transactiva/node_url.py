"""Validation of a Transactiva node's base URL."""

from __future__ import annotations

from yarl import URL


def parse_node_url(raw: object) -> URL | None:
    """The normalised base URL of a node, or None when ``raw`` is not one.

    A node URL is ``http`` or ``https`` with a host, and no query or fragment;
    a trailing slash is dropped so that one node has one spelling.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        url = URL(raw.strip())
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        return None
    if any(char.isspace() for char in url.host):
        return None
    return url.with_path(url.path.rstrip("/"))
