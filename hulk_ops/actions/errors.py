"""The actions' input error, apart from the request models so a command that never acts need not build them."""

from __future__ import annotations


class BadRequest(ValueError):
    """Input that can never succeed as given (exit 2): a validation error, an unknown target, a wrong kind."""
