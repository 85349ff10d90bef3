"""What the device side raises at the host app: typed, one line each, naming the field and the rule.

Every public method of ``mobile_demo`` (the scorer, its events, the uplink) raises these (or the
bundle's own ``dipn.bundle.errors``) and nothing untyped; all are ``DipnValidationError``, so the
``dipn`` command line prints them as one ``dipn: error:`` line.
"""

from __future__ import annotations

from dipn.errors import DipnValidationError


class DeviceError(DipnValidationError):
    """A device-side call that cannot be carried out as given."""


class InvalidEventError(DeviceError):
    """An event the app handed over breaks the raw contract (strict mode raises it; lenient mode
    drops the event, counts ``reason`` and logs it once)."""

    def __init__(self, kind: str, field: str, rule: str, detail: str = "") -> None:
        self.kind, self.field, self.rule, self.detail = kind, field, rule, detail
        subject = kind if " " in kind else f"{kind} event"  # "Browse event", "swipe row"
        super().__init__(f"{subject}: {field}: {rule}" + (f" ({detail})" if detail else ""))

    @property
    def reason(self) -> str:
        """How lenient mode counts and logs it (``status()["dropped"]``): the field and the rule,
        without the offending value, so each reason is logged once however often it recurs."""
        return f"{self.kind}.{self.field}: {self.rule}"


class InvalidArgumentError(DeviceError):
    """A number or option passed to a device method that it cannot take (NaN, 10**400, negative)."""
