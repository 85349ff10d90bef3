"""Request and response bodies. A score carries exactly the five fields a device may send."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from dipn.serving.config import BUCKETS, CampaignConfig, UpliftCurve, is_encodable
from dipn.wire import DEVICE_ID_PATTERN, EPOCH_2000_MS, MAX_TS_MS, MODEL_VERSION_PATTERN, PUBLIC_KEY_PATTERN

UserId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
Probability = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
TimestampMs = Annotated[StrictInt, Field(ge=EPOCH_2000_MS, lt=MAX_TS_MS)]


class Strict(BaseModel):
    """A request body: unknown fields refused, numbers finite, text Unicode (no unpaired surrogate)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="after")
    def _text_is_unicode(self) -> Strict:
        """JSON's "\\ud800" decodes to a lone surrogate, which no database driver can encode (it
        was an HTTP 500): refused here for every text field of every body, nested ones included."""
        for name in type(self).model_fields:
            if not _unicode(getattr(self, name)):
                raise ValueError(f"{name}: text holds an unpaired surrogate (such as \\ud800), which is no Unicode")
        return self


def _unicode(value: object) -> bool:
    if isinstance(value, str):
        return is_encodable(value)
    if isinstance(value, dict):
        return all(_unicode(k) and _unicode(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_unicode(v) for v in value)
    return True  # numbers, booleans, None; nested bodies check themselves


class ErrorBody(BaseModel):
    """What every refusal carries (4xx, and 503 when storage is down)."""

    error: str = Field(description="machine-readable code, e.g. invalid_request, bad_signature, rate_limited, "
                       "unknown_campaign (docs/serving.md lists them per route)")
    detail: str = Field(description="why, for a person: names the field, header or limit")


class PatternedStrict(BaseModel):
    """A strict body whose every text field has an ASCII pattern, so no surrogate can pass: the
    score post, validated on the hot path without ``Strict``'s walk over its fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Score(PatternedStrict):
    """What a device sends (``dipn.wire``) and nothing else: unknown fields are refused."""

    device_id: DeviceId
    model_version: Annotated[str, Field(pattern=MODEL_VERSION_PATTERN)]
    p_realtime: Probability
    p_longterm: Probability
    ts: TimestampMs


class ScoreBatch(PatternedStrict):
    scores: Annotated[list[Score], Field(min_length=1)]


class ScoresAccepted(BaseModel):
    accepted: int  # new scores stored
    duplicates: int  # scores already stored for the same (device, ts): a retry, not an error


class RegisterDevice(Strict):
    user_id: UserId
    platform: Annotated[str, Field(max_length=32, pattern=r"^[^\x00]*$")] | None = None
    # The device's Ed25519 public key, hex; the private key never leaves the device.
    public_key: Annotated[str, Field(pattern=PUBLIC_KEY_PATTERN)]


class DeviceRegistered(BaseModel):
    device_id: str
    user_id: str


class CouponOut(BaseModel):
    """What a device may read: its own user's coupon in a campaign, nothing about other users."""

    campaign_id: int
    granted: bool
    coupon_id: int | None = None
    coupon_value: float | None = None
    redeemed: bool | None = None


class DecisionRequest(Strict):
    user_id: UserId


class DecisionOut(BaseModel):
    campaign_id: int
    user_id: str
    bucket: str
    granted: bool
    reason: str
    coupon_id: int | None = None
    coupon_value: float | None = None
    p_realtime: float | None = None
    expected_incremental_gmv: float | None = None


class OrderIn(Strict):
    """A purchase of a campaign user: its GMV and whether the campaign's coupon was used."""

    order_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
    user_id: UserId
    gmv: Annotated[float, Field(strict=True, ge=0.0, le=1e9, allow_inf_nan=False)]
    coupon_used: StrictBool = False
    ts: TimestampMs


class OrderRecorded(BaseModel):
    campaign_id: int
    order_id: str
    bucket: str
    duplicate: bool  # the same order was already recorded (an idempotent retry)


class CampaignPatch(Strict):
    """What may change during a campaign. Shares and salt may not: users would change buckets."""

    t_l: Probability | None = None
    t_u: Probability | None = None
    budget: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    lagrange_multiplier: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    active: StrictBool | None = None

    @model_validator(mode="after")
    def _only_budget_may_be_null(self) -> CampaignPatch:
        """An explicit null means "no cap" for the budget; for any other field it means nothing."""
        nulls = sorted(name for name in self.model_fields_set if name != "budget" and getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null (only budget may: no cap)")
        return self


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # a JSON number; "10" is not one


class UpliftIn(Strict):
    peak: Number = UpliftCurve.peak
    mode: Number = UpliftCurve.mode
    concentration: Number = UpliftCurve.concentration


class CampaignIn(Strict):
    """``POST /campaigns``: a ``CampaignConfig`` as JSON, strictly typed, unknown fields refused (a
    typo such as ``buget`` must not silently mean "no cap"); ``CampaignConfig`` checks the ranges."""

    name: StrictStr = CampaignConfig.name
    coupon_value: Number = CampaignConfig.coupon_value
    budget: Number | None = CampaignConfig.budget
    t_l: Number = CampaignConfig.t_l
    t_u: Number = CampaignConfig.t_u
    shares: dict[Literal[BUCKETS], Number] | None = None  # None: the default shares
    lagrange_multiplier: Number = CampaignConfig.lagrange_multiplier
    basket_value: Number = CampaignConfig.basket_value
    uplift: UpliftIn = Field(default_factory=UpliftIn)
    score_max_age_ms: StrictInt = CampaignConfig.score_max_age_ms
    salt: StrictStr = CampaignConfig.salt
    active: StrictBool = CampaignConfig.active

    def to_config(self) -> CampaignConfig:
        """Raises ``ValueError`` for values out of range (a 422 naming the field)."""
        values = self.model_dump(exclude={"uplift", "shares"})
        shares = {} if self.shares is None else {"shares": dict(self.shares)}
        return CampaignConfig(**values, **shares, uplift=UpliftCurve(**self.uplift.model_dump()))
