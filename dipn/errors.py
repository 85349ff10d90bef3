"""Errors a user can act on: each names what was wrong and where."""

from __future__ import annotations


class DipnValidationError(ValueError):
    """Input that cannot be encoded as given (NaN timestamps, wrong shapes, unknown enums)."""
