"""The one typed source of campaign and server settings.

``CampaignConfig`` holds the paper's defaults (section 6.3): a 10 RMB coupon, and the model bucket
grants it when t_l = 0.2 <= p_realtime <= t_u = 0.4. The endpoint, ``dipn coupon-report`` and the
policy simulation (benchmarks/coupon_ab.py) all read these defaults from here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from dipn.wire import MAX_SCORES_PER_POST

# A/B buckets, one per strategy: no coupon, coupon for all, threshold policy on the DIPN score
# (paper section 6.3), and the budgeted knapsack policy (issue 6, item 6).
BUCKETS: tuple[str, ...] = ("none", "all", "model", "budgeted")

DEFAULT_SHARES: dict[str, float] = {"none": 0.1, "all": 0.45, "model": 0.45, "budgeted": 0.0}
# Money is stored in integer cents (64-bit); no campaign needs amounts beyond a trillion.
MAX_AMOUNT = 1e12
MAX_SCORE_AGE_MS = 365 * 24 * 3_600_000


@dataclass(frozen=True)
class UpliftCurve:
    """Assumed lift of a user's purchase probability from a coupon, as a function of intent p.

    The paper's hypothesis: users with very low intent do not change their mind for a coupon and
    users with high intent buy anyway, so the lift peaks at mid intent. Modelled as a bump shaped
    like a Beta density with its mode at ``mode``, scaled so that the lift at the mode is ``peak``:
    lift(p) = peak * (p / m)^(k m) * ((1 - p) / (1 - m))^(k (1 - m)),  m = mode, k = concentration.
    """

    peak: float = 0.15
    mode: float = 0.3
    concentration: float = 8.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.peak <= 1.0:
            raise ValueError(f"uplift.peak must lie in [0, 1], got {self.peak}")
        if not 0.0 < self.mode < 1.0:
            raise ValueError(f"uplift.mode must lie in (0, 1), got {self.mode}")
        if not (self.concentration > 0 and math.isfinite(self.concentration)):
            raise ValueError(f"uplift.concentration must be > 0, got {self.concentration}")

    def lift(self, p: float | np.ndarray) -> float | np.ndarray:
        """Lift at intent ``p`` (a float or an array in [0, 1]); never pushes p past 1."""
        m, k = self.mode, self.concentration
        q = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
        bump = (q / m) ** (k * m) * ((1.0 - q) / (1.0 - m)) ** (k * (1.0 - m))
        lift = np.minimum(self.peak * bump, 1.0 - q)
        return float(lift) if lift.ndim == 0 else lift


@dataclass(frozen=True)
class CampaignConfig:
    """A coupon campaign: coupon, budget, bucket shares and the policies' parameters."""

    name: str = "campaign"
    coupon_value: float = 10.0  # paper section 6.3: a 10 RMB coupon
    # Face value of coupons that may be granted, split across buckets by share; None: no cap.
    # The endpoint reserves the face value at grant time, so it can never owe more than this.
    budget: float | None = None
    t_l: float = 0.2  # paper section 6.3: lowest threshold on p_realtime
    t_u: float = 0.4  # paper section 6.3: uppermost threshold on p_realtime
    shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    # Budgeted policy: grant when expected incremental GMV - lambda * coupon_value > 0.
    lagrange_multiplier: float = 0.0
    basket_value: float = 100.0  # expected GMV of an order, for the incremental-GMV estimate
    uplift: UpliftCurve = field(default_factory=UpliftCurve)
    # Only a score this recent counts: p_realtime predicts a purchase within the next hour.
    score_max_age_ms: int = 3_600_000
    salt: str = ""  # bucket hash salt; empty: the server draws one per campaign
    active: bool = True  # false: paused (decisions answer campaign_paused)
    # How the band was stated (dipn.serving.band): None for t_l, t_u given as probabilities;
    # else {"kind": "quantiles" | "grant_rate", ..., "reference": "live" | "inline", "reference_scores": n}.
    band: dict | None = None
    starts_ms: int | None = None  # decisions before this answer campaign_not_started; None: at once
    ends_ms: int | None = None  # decisions from this on answer campaign_ended; None: open-ended
    coupon_ttl_ms: int | None = None  # a coupon expires this long after its grant; None: never
    # Budgeted bucket, with a budget and an end: lambda rises by pacing_gain per unit of budget
    # spent ahead of the elapsed share of the campaign (dipn.serving.budget); 0: no pacing.
    pacing_gain: float = 1.0

    def __post_init__(self) -> None:
        check_thresholds(self.t_l, self.t_u)
        check_text("name", self.name, 128)  # the campaigns.name column
        check_text("salt", self.salt, 128)
        value = self.coupon_value
        if not (math.isfinite(value) and value <= MAX_AMOUNT and round(value * 100) >= 1):  # stored in whole cents
            raise ValueError(f"coupon_value must be >= 0.01 and <= {MAX_AMOUNT:.0e}, got {self.coupon_value}")
        if self.budget is not None and not 0 <= self.budget <= MAX_AMOUNT:
            raise ValueError(f"budget must be >= 0 and <= {MAX_AMOUNT:.0e}, or null, got {self.budget}")
        if not (self.lagrange_multiplier >= 0 and math.isfinite(self.lagrange_multiplier)):
            raise ValueError(f"lagrange_multiplier must be >= 0, got {self.lagrange_multiplier}")
        if not 0 <= self.basket_value <= MAX_AMOUNT:
            raise ValueError(f"basket_value must be >= 0 and <= {MAX_AMOUNT:.0e}, got {self.basket_value}")
        if not 0 < self.score_max_age_ms <= MAX_SCORE_AGE_MS:
            raise ValueError(f"score_max_age_ms must be > 0 and <= {MAX_SCORE_AGE_MS} (a year), "
                             f"got {self.score_max_age_ms}")
        check_shares(self.shares)
        for name in ("starts_ms", "ends_ms", "coupon_ttl_ms"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 2**53:
                raise ValueError(f"{name} must be a positive integer of milliseconds, or null, got {value}")
        if self.starts_ms is not None and self.ends_ms is not None and self.ends_ms <= self.starts_ms:
            raise ValueError(f"ends_ms must be after starts_ms, got {self.starts_ms} .. {self.ends_ms}")
        if not (0 <= self.pacing_gain <= 1e6 and math.isfinite(self.pacing_gain)):
            raise ValueError(f"pacing_gain must lie in [0, 1e6], got {self.pacing_gain}")


def check_text(name: str, value: str, max_length: int) -> None:
    """Text the database stores: bounded, without NUL (PostgreSQL text cannot hold it) and without
    an unpaired surrogate (no UTF-8 encodes one: the driver would fail on it)."""
    if len(value) > max_length or "\x00" in value:
        raise ValueError(f"{name} must be at most {max_length} characters, without NUL")
    if not is_encodable(value):
        raise ValueError(f"{name} holds an unpaired surrogate (such as \\ud800), which is no Unicode text")


def is_encodable(text: str) -> bool:
    """Whether ``text`` is Unicode text: JSON's "\\ud800" escape decodes to a lone surrogate, which
    Python keeps in a str but no encoder (UTF-8 for SQLite and PostgreSQL) takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_thresholds(t_l: float, t_u: float) -> None:
    if not (0.0 <= t_l <= 1.0 and 0.0 <= t_u <= 1.0):
        raise ValueError(f"thresholds must lie in [0, 1], got t_l={t_l}, t_u={t_u}")
    if t_l > t_u:
        raise ValueError(f"t_l must be <= t_u, got t_l={t_l} > t_u={t_u}")


def check_shares(shares: dict[str, float]) -> None:
    unknown = sorted(set(shares) - set(BUCKETS))
    if unknown:
        raise ValueError(f"shares: unknown bucket(s) {unknown}; buckets are {list(BUCKETS)}")
    if any(not (0.0 <= s <= 1.0) for s in shares.values()):
        raise ValueError(f"shares must each lie in [0, 1], got {shares}")
    if abs(sum(shares.values()) - 1.0) > 1e-9:
        raise ValueError(f"shares must sum to 1, got {sum(shares.values())} from {shares}")


OPEN_OPERATOR_ROUTES_REFUSED = (
    "no admin token: campaign, decision, order and metrics routes would be open to anyone; set DIPN_ADMIN_TOKEN "
    "or --admin-token-file (or DIPN_ADMIN_TOKEN_FILE), or for a loopback demo --insecure-open-operator-routes")
OPEN_ENROLLMENT_REFUSED = (
    "no enrollment token: anyone could register a device for any user id and steer that user's coupon; set "
    "DIPN_ENROLL_TOKEN or --enroll-token-file (or DIPN_ENROLL_TOKEN_FILE), or for a demo --insecure-open-enrollment")
OPEN_ENROLLMENT_WARNING = (
    "open enrollment (--insecure-open-enrollment): anyone who can reach POST /devices can register a device for "
    "any user id and post that user's scores; use it for demos only")


def read_token_file(path: str, what: str) -> str:
    """A token kept in a file (a secret mount, 0600), so that it never shows on a command line:
    the first line, without its line break; an unreadable or empty file is a ``ValueError``."""
    try:
        with open(path, encoding="utf-8") as file:
            token = file.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not token.strip():
        raise ValueError(f"{what} file {path} is empty: an empty token would guard nothing")
    return token


def token_from(file: str | None, env: str, what: str, environ: dict[str, str] | None = None) -> str | None:
    """The one rule by which every command (``dipn serve``, ``dipn shop``, ``dipn coupon-report``)
    and the server's own settings find a secret, never on the command line: the file named by the
    option (``what``) or by ``{env}_FILE``, read with ``read_token_file``; else the variable ``env``
    itself; None when neither is set (the caller decides whether that is allowed). A blank token is
    a ``ValueError``: it would guard nothing."""
    environ = os.environ if environ is None else environ
    if not file and environ.get(f"{env}_FILE"):
        file, what = environ[f"{env}_FILE"], f"{env}_FILE"
    if file:
        return read_token_file(file, what)
    token = environ.get(env)
    if not token:
        return None
    if not token.strip():
        raise ValueError(f"{env} holds an empty token, which would guard nothing; give a token or unset it")
    return token


class SettingError(ValueError):
    """A server setting out of its range; ``setting`` names the field, so that a command can name
    the option the value came from (``dipn serve --rate-limit``)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class ServerConfig:
    """Settings of the server, checked here for every caller (``dipn serve``, ``from_env``, the
    demo, the tests); ``from_env`` lets every uvicorn worker read the same."""

    db_url: str = "sqlite:///dipn-serve.db"
    # Where ``dipn serve`` listens, and how many worker processes it supervises (one per core).
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    admin_token: str | None = None  # Bearer token for campaign, decision, order and metrics routes
    # Without an admin token the app refuses to start unless this is set: a loopback demo's choice.
    open_operator_routes: bool = False
    enroll_token: str | None = None  # Bearer token for device registration
    # Without an enrollment token the app refuses to start unless this is set: a demo's choice.
    open_enrollment: bool = False
    max_body_bytes: int = 64 * 1024
    max_scores_per_post: int = MAX_SCORES_PER_POST
    max_header_bytes: int = 16 * 1024  # request line and headers together (``protocol`` bounds them)
    max_headers: int = 64
    signature_window_ms: int = 300_000  # a signed request older or newer than this is stale
    max_write_batch: int = 512  # score posts committed together (group commit)
    # Signed requests one device may make per window (0: no limit). A phone posts a batch every few
    # page views and drains its offline queue at 32 scores a post: 120 a minute is ample; a load
    # generator posing as a few devices needs 0.
    rate_limit: int = 120
    rate_window_ms: int = 60_000
    # Slow clients: the request line and headers must arrive within header_timeout_ms of the
    # connection (or of the previous response), a body within body_timeout_ms of its headers, and
    # an idle keep-alive connection is closed after keepalive_timeout_ms.
    header_timeout_ms: int = 10_000
    body_timeout_ms: int = 30_000
    keepalive_timeout_ms: int = 5_000

    ENV = {
        "db_url": "DIPN_DB_URL",
        "admin_token": "DIPN_ADMIN_TOKEN",
        "open_operator_routes": "DIPN_OPEN_OPERATOR_ROUTES",
        "enroll_token": "DIPN_ENROLL_TOKEN",
        "open_enrollment": "DIPN_OPEN_ENROLLMENT",
        "max_body_bytes": "DIPN_MAX_BODY_BYTES",
        "max_scores_per_post": "DIPN_MAX_SCORES_PER_POST",
        "max_header_bytes": "DIPN_MAX_HEADER_BYTES",
        "max_headers": "DIPN_MAX_HEADERS",
        "signature_window_ms": "DIPN_SIGNATURE_WINDOW_MS",
        "max_write_batch": "DIPN_MAX_WRITE_BATCH",
        "rate_limit": "DIPN_RATE_LIMIT",
        "rate_window_ms": "DIPN_RATE_WINDOW_MS",
        "header_timeout_ms": "DIPN_HEADER_TIMEOUT_MS",
        "body_timeout_ms": "DIPN_BODY_TIMEOUT_MS",
        "keepalive_timeout_ms": "DIPN_KEEPALIVE_TIMEOUT_MS",
    }
    # Tokens follow token_from: DIPN_ADMIN_TOKEN_FILE, DIPN_ENROLL_TOKEN_FILE name a file, else the variable.
    TOKENS = ("admin_token", "enroll_token")

    def __post_init__(self) -> None:
        for name in ("admin_token", "enroll_token"):
            token = getattr(self, name)
            if token is not None and not token.strip():
                raise SettingError(name, f"{name}: an empty token would guard nothing; give a token or none")
        bounds = {"port": (1, 65535), "workers": (1, 1024),
                  "max_body_bytes": (1024, 2**31), "max_scores_per_post": (1, MAX_SCORES_PER_POST),
                  "max_header_bytes": (1024, 2**20), "max_headers": (8, 1024),
                  "signature_window_ms": (1, 24 * 3_600_000), "max_write_batch": (1, 100_000),
                  "rate_limit": (0, 10**9), "rate_window_ms": (1, 24 * 3_600_000),
                  "header_timeout_ms": (100, 3_600_000), "body_timeout_ms": (100, 3_600_000),
                  "keepalive_timeout_ms": (100, 3_600_000)}  # fmt: skip
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SettingError(name, f"{name} must be an integer in [{low}, {high}], got {value!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerConfig:
        """Raises ``ValueError`` naming the variable whose value is not of its setting's type."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, var in cls.ENV.items():
            text = environ.get(var)
            if not text or name in cls.TOKENS:
                continue
            default = getattr(cls, name)
            if isinstance(default, bool):
                values[name] = text == "1"
            elif isinstance(default, int):
                if not text.isascii() or not text.lstrip("-").isdigit():
                    raise ValueError(f"{var} must be an integer, got {text!r}")
                values[name] = int(text)
            else:
                values[name] = text
        for name in cls.TOKENS:
            values[name] = token_from(None, cls.ENV[name], f"{cls.ENV[name]}_FILE", environ)
        return cls(**values)
