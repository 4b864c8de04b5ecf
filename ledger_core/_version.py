"""The single source of the project's version (read by setuptools and the CLI)."""

__version__ = "0.1.0"
