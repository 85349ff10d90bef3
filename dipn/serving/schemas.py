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
    expires_ms: int | None = Field(None, description="when the coupon expires (ms since the epoch); null: never")


class DecisionRequest(Strict):
    user_id: UserId


class DecisionOut(BaseModel):
    """One coupon decision; the same is recorded in the campaign's decisions (``GET .../report``)."""

    campaign_id: int
    user_id: str
    bucket: str = Field(description="A/B bucket: none, all, model or budgeted")
    granted: bool = Field(description="whether the user holds the campaign's coupon after this decision")
    reason: str = Field(description="why: bucket_none, all_allocation, within_thresholds, outside_thresholds, "
                        "above_lagrange_price, below_lagrange_price, no_recent_score, budget_exhausted, "
                        "already_granted, campaign_paused, campaign_not_started, campaign_ended")
    coupon_id: int | None = None
    coupon_value: float | None = None
    p_realtime: float | None = Field(None, description="the user's latest recent score the decision used")
    model_version: str | None = Field(None, description="model version that produced that score")
    expected_incremental_gmv: float | None = Field(None, description="budgeted bucket: v_i of the knapsack")
    lagrange_multiplier: float | None = Field(None, description="budgeted bucket: the paced lambda applied")
    expires_ms: int | None = Field(None, description="when the coupon expires (ms); null: never")


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


class BandIn(Strict):
    """How the model bucket's band is stated (``dipn.serving.band``). ``probability``: t_l, t_u;
    ``quantiles``: q_l, q_u of the reference scores; ``grant_rate``: a window holding that share
    of the reference (from ``start_quantile``, or where the assumed uplift is largest). The
    reference is ``live`` (each user's latest recent score in the database, when the campaign is
    created) or ``inline`` (``reference_scores``, e.g. a model's val predictions)."""

    kind: Literal["probability", "quantiles", "grant_rate"] = "probability"
    t_l: Probability | None = None
    t_u: Probability | None = None
    q_l: Probability | None = None
    q_u: Probability | None = None
    grant_rate: Annotated[float, Field(strict=True, gt=0.0, le=1.0, allow_inf_nan=False)] | None = None
    start_quantile: Probability | None = None
    reference: Literal["live", "inline"] = "live"
    reference_scores: Annotated[list[Probability], Field(max_length=200_000)] | None = None

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> BandIn:
        needed = {"probability": ("t_l", "t_u"), "quantiles": ("q_l", "q_u"), "grant_rate": ("grant_rate",)}
        missing = [name for name in needed[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} band needs {', '.join(missing)}")
        if self.kind != "probability" and self.reference == "inline" and not self.reference_scores:
            raise ValueError("reference inline needs reference_scores")
        return self

    def to_config_fields(self) -> dict:
        """t_l, t_u for a probability band; otherwise the statement, which the store resolves over
        its reference when the campaign is created or changed (``store.resolve_band``)."""
        if self.kind == "probability":
            return {"t_l": self.t_l, "t_u": self.t_u, "band": None}
        return {"band": self.model_dump(exclude={"t_l", "t_u"}, exclude_none=True)}


class CampaignPatch(Strict):
    """What may change during a campaign. Shares and salt may not: users would change buckets."""

    t_l: Probability | None = None
    t_u: Probability | None = None
    band: BandIn | None = Field(None, description="restate the band (replaces t_l, t_u)")
    budget: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    lagrange_multiplier: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    pacing_gain: Annotated[float, Field(ge=0.0, le=1e6, allow_inf_nan=False)] | None = None
    active: StrictBool | None = Field(None, description="false pauses the campaign, true resumes it")
    starts_ms: TimestampMs | None = None
    ends_ms: TimestampMs | None = None
    coupon_ttl_ms: Annotated[StrictInt, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _only_budget_may_be_null(self) -> CampaignPatch:
        """An explicit null means "no cap" for the budget (no start, end or expiry for those); for
        any other field it means nothing."""
        nullable = ("budget", "starts_ms", "ends_ms", "coupon_ttl_ms")
        nulls = sorted(name for name in self.model_fields_set if name not in nullable and getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null (only {', '.join(nullable)} may)")
        return self

    def changes(self) -> dict:
        """The fields given, the band as the config keeps it (resolved to t_l, t_u unless live)."""
        changes = self.model_dump(exclude_unset=True, exclude={"band"})
        if self.band is not None:
            changes |= self.band.to_config_fields()
        return changes


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
    band: BandIn | None = Field(None, description="the band stated as probabilities, quantiles or a grant rate "
                                "over reference scores; replaces t_l and t_u")
    starts_ms: TimestampMs | None = Field(None, description="decisions before this answer campaign_not_started")
    ends_ms: TimestampMs | None = Field(None, description="decisions from this on answer campaign_ended")
    coupon_ttl_ms: Annotated[StrictInt, Field(gt=0)] | None = Field(
        None, description="a coupon expires this long after its grant; null: never")
    pacing_gain: Number = Field(CampaignConfig.pacing_gain, description="budgeted bucket: lambda rises by this per "
                                "unit of budget share spent ahead of the elapsed share of the campaign")

    def to_config(self) -> CampaignConfig:
        """Raises ``ValueError`` for values out of range (a 422 naming the field)."""
        values = self.model_dump(exclude={"uplift", "shares", "band"})
        shares = {} if self.shares is None else {"shares": dict(self.shares)}
        uplift = UpliftCurve(**self.uplift.model_dump())
        if self.band is not None:
            values |= self.band.to_config_fields()
        return CampaignConfig(**values, **shares, uplift=uplift)


# --- typed operator responses (campaigns, metrics, report) ----------------------------------------

Interval = Annotated[list[float], Field(min_length=2, max_length=2, description="95% user-bootstrap interval "
                                        "[low, high]; null when most resamples leave the figure undefined")]


class UpliftOut(BaseModel):
    peak: float = Field(description="assumed lift of the purchase probability at the mode")
    mode: float = Field(description="intent the coupon moves most")
    concentration: float


class CampaignConfigOut(BaseModel):
    """A campaign's stored configuration (``dipn.serving.config.CampaignConfig``)."""

    name: str
    coupon_value: float = Field(description="coupon face value")
    budget: float | None = Field(description="face value that may be granted in all; null: no cap")
    t_l: float = Field(description="model bucket: lowest p_realtime granted (the resolved band)")
    t_u: float = Field(description="model bucket: highest p_realtime granted (the resolved band)")
    shares: dict[str, float] = Field(description="share of users per bucket")
    lagrange_multiplier: float
    basket_value: float
    uplift: UpliftOut
    score_max_age_ms: int
    salt: str
    active: bool = Field(description="false: paused")
    band: dict | None = Field(description="how the band was stated when not as probabilities: kind, its "
                              "numbers, reference (live or inline), reference_size, resolved_ms")
    starts_ms: int | None
    ends_ms: int | None
    coupon_ttl_ms: int | None
    pacing_gain: float


class BandOut(BaseModel):
    """The band a device's posting policy and the decisions use, in probability terms."""

    t_l: float
    t_u: float
    kind: Literal["probability", "quantiles", "grant_rate"] = Field(description="how it was stated")
    statement: dict | None = Field(description="the statement and its reference, unless given as probabilities")


class CampaignOut(BaseModel):
    id: int
    name: str
    status: Literal["scheduled", "running", "paused", "ended"] = Field(description="from active, starts_ms, ends_ms")
    created_ms: int | None = None
    band: BandOut
    config: CampaignConfigOut


class CampaignList(BaseModel):
    campaigns: list[CampaignOut] = Field(description="every campaign, oldest first")


class BucketMetrics(BaseModel):
    """One bucket's row of the paper's Table 7."""

    users: int = Field(description="users of the bucket the campaign has seen (N_b of eq. 8)")
    granted: int = Field(description="users who got the coupon (N_b of eq. 7)")
    redeemers: int = Field(description="users who used it to buy (N_wb)")
    gmv: float = Field(description="total GMV of the bucket's users (G_b)")
    orders: int = 0
    reserved: float = Field(0.0, description="face value of the coupons granted")
    r_c: float | None = Field(description="eq. 7: redeemers / granted; null when nobody got a coupon")
    i_gmv: float | None = Field(description="eq. 8; 0 for the none bucket; null when no coupon was used")
    r_c_vs_all: float | None = Field(description="relative change of R_c against the all bucket")
    i_gmv_vs_all: float | None = Field(description="relative change of I_gmv against the all bucket")


class MetricsOut(BaseModel):
    campaign_id: int
    name: str
    buckets: dict[str, BucketMetrics]


class BucketReport(BucketMetrics):
    grant_rate: float | None = Field(description="granted / users")
    r_c_interval: Interval | None
    i_gmv_interval: Interval | None
    grant_rate_interval: Interval | None


class BucketAtTime(BaseModel):
    users: int
    granted: int
    redeemers: int
    r_c: float | None
    r_c_interval: Interval | None
    i_gmv: float | None
    i_gmv_interval: Interval | None
    grant_rate: float | None


class TimePoint(BaseModel):
    ms: int = Field(description="the figures are cumulative up to this moment (ms since the epoch)")
    buckets: dict[str, BucketAtTime]


class DecisionCounts(BaseModel):
    total: int
    by_reason: dict[str, int]
    by_bucket: dict[str, dict[str, int]]


class VersionBucket(BaseModel):
    """A scored bucket (model, budgeted) restricted to the users a model version is counted under:
    the version whose score granted their coupon, else the version of their latest scored decision."""

    users: int = Field(description="the bucket's users counted under this version")
    granted: int = Field(description="of those, users whose coupon this version's score granted")
    redeemers: int = Field(description="of those, users who used it to buy")
    gmv: float = Field(description="total GMV of those users")
    orders: int
    grant_rate: float | None = Field(description="granted / users")
    grant_rate_interval: Interval | None
    r_c: float | None = Field(description="eq. 7 over this version's coupons in the bucket; null when it granted none")
    r_c_interval: Interval | None
    i_gmv: float | None = Field(description="eq. 8 of these users against the whole none bucket; null when none "
                                "used a coupon")
    i_gmv_interval: Interval | None


class ModelVersionReport(BaseModel):
    decisions: int = Field(description="decisions that used a score of this model version")
    granted: int = Field(description="of those, new coupons")
    coupons: int = Field(description="coupons granted on a score of this version")
    redeemed: int
    r_c: float | None = Field(description="redeemed / coupons (eq. 7 over this version's coupons)")
    mean_p_realtime: float
    first_ms: int
    last_ms: int
    buckets: dict[str, VersionBucket] = Field(description="per scored bucket, R_c and I_gmv of this version's "
                                              "users with 95% user-bootstrap intervals; empty beyond the 20 "
                                              "versions with the most decisions")


class Histogram(BaseModel):
    count: int
    counts: list[int] = Field(description="scores per bin of ``edges``")
    inside: int = Field(description="scores inside the band")
    inside_share: float | None
    quantiles: dict[str, float] | None


class ScoresReport(BaseModel):
    band: dict = Field(description="t_l, t_u and the statement")
    edges: list[float]
    decided: Histogram = Field(description="p_realtime of every decision that used a score")
    live: Histogram = Field(description="each user's latest score within score_max_age_ms")
    warnings: list[str] = Field(description="e.g. the band holds (nearly) none of the scores")


class BudgetBucket(BaseModel):
    cap: float | None
    reserved: float
    remaining: float | None


class BurnPoint(BaseModel):
    ms: int
    reserved: float


class BudgetReport(BaseModel):
    budget: float | None
    reserved: float = Field(description="face value of the coupons granted")
    remaining: float | None
    buckets: dict[str, BudgetBucket]
    burn: list[BurnPoint]


class ReportOut(BaseModel):
    """``GET /campaigns/{id}/report``: the campaign's figures with how sure they are."""

    campaign_id: int
    name: str
    status: str
    generated_ms: int
    bootstrap_rounds: int
    interval_level: float
    buckets: dict[str, BucketReport]
    over_time: list[TimePoint]
    decisions: DecisionCounts
    model_versions: dict[str, ModelVersionReport]
    scores: ScoresReport
    budget: BudgetReport
    config: CampaignConfigOut
