"""Why a device refuses a bundle or an artifact; all are ``DipnValidationError`` so that ``dipn``
prints them as one clear line and exits non-zero."""

from __future__ import annotations

from dipn.errors import DipnValidationError


class BundleIntegrityError(DipnValidationError):
    """A bundle file is missing, truncated or modified (size or sha256 differs from manifest.json)."""


class BundleSignatureError(BundleIntegrityError):
    """A bundle is unsigned, signed by an untrusted key, or its manifest changed after signing."""


class RuntimeTooOldError(DipnValidationError):
    """The installed runtime is older than the minimum version an artifact needs."""


class RuntimeUnavailableError(DipnValidationError):
    """The runtime an artifact needs cannot run here (not installed, or CoreML off macOS)."""
