"""The version of the ``transactiva-client`` distribution (not the API version it speaks)."""

__version__ = "1.1.0"
