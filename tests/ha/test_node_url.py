"""Node URL validation used by the config flow and at entry setup."""

from __future__ import annotations

import pytest

from custom_components.transactiva.node_url import parse_node_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://nodo.local:8765/", "http://nodo.local:8765"),
        ("  https://nodo.local/transactiva/  ", "https://nodo.local/transactiva"),
        ("http://[::1]:8765", "http://[::1]:8765"),
    ],
)
def test_node_urls_are_normalised(raw: str, expected: str) -> None:
    url = parse_node_url(raw)
    assert url is not None
    assert str(url) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        8765,
        "",
        "   ",
        "nodo.local",
        "ftp://nodo.local",
        "http://",
        "http://[zz",
        "http://nodo.local:99999",
        "http://no do",
        "http://nodo.local/?token=x",
        "http://nodo.local/#frag",
    ],
)
def test_anything_else_is_refused(raw: object) -> None:
    assert parse_node_url(raw) is None
