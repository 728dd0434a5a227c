"""Tokensmith: issue, validate, rotate, revoke and watch every token and API key."""

__all__ = ["__version__"]

__version__ = "0.1.0"
