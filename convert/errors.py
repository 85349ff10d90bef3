"""Errors of conversion; all are ``DipnValidationError`` so that ``dipn`` prints them as one clear
line and exits non-zero. (Why a bundle is refused when it is loaded: ``dipn.bundle.errors``.)"""

from __future__ import annotations

from dipn.errors import DipnValidationError


class ConversionError(DipnValidationError):
    """An export or a quantization could not be carried out as asked."""


class ParityGateError(ConversionError):
    """An artifact disagrees with PyTorch beyond the allowed AUC drop, or outputs NaN."""
