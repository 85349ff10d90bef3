"""The model bucket's band [t_l, t_u], stated as probabilities or fitted to a sample of scores.

The paper's band (t_l = 0.2, t_u = 0.4, section 6.3) assumes scores spread over [0, 1]. A model
trained on a sparse public log scores most users between 0.02 and 0.05 (its base rate is a few
percent), and that band then grants nobody. So a campaign may state its band three ways:

- ``probability``: t_l and t_u as given (the default: the paper's pair);
- ``quantiles``: t_l and t_u are the q_l and q_u quantiles of a reference sample of scores;
- ``grant_rate``: a window holding that share of the reference scores, starting at quantile
  ``start_quantile``, or, when none is given, the window of that share with the largest expected
  incremental GMV under the campaign's assumed uplift curve.

The reference is the val predictions of ``dipn evaluate --predictions-out`` (``dipn band``
resolves it offline) or the live scores (the endpoint resolves it when the campaign is created).
Either way the campaign keeps the band in probability terms, which is what a device's posting
policy and the decisions use; the statement stays beside it so the operator sees how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.serving.config import UpliftCurve
from dipn.serving.intervals import weighted_rate
from dipn.serving.policy import expected_incremental_gmv, within_thresholds

KINDS = ("probability", "quantiles", "grant_rate")
MIN_REFERENCE = 20  # fewer scores than this cannot place a quantile


class BandError(ValueError):
    """A band statement that cannot be resolved (bad numbers, too few reference scores)."""


@dataclass(frozen=True)
class Band:
    t_l: float
    t_u: float

    def contains(self, scores: np.ndarray) -> np.ndarray:
        return within_thresholds(np.asarray(scores, dtype=np.float64), self.t_l, self.t_u)


def quantile_band(scores: np.ndarray, q_l: float, q_u: float) -> Band:
    """[Q(q_l), Q(q_u)] of the reference; an end at quantile 0 or 1 opens to 0 or 1, so that a
    future score beyond the reference's range is not turned away at the edge."""
    if not 0.0 <= q_l < q_u <= 1.0:
        raise BandError(f"quantiles need 0 <= q_l < q_u <= 1, got {q_l}, {q_u}")
    scores = _reference(scores)
    t_l = 0.0 if q_l == 0.0 else float(np.quantile(scores, q_l))
    t_u = 1.0 if q_u == 1.0 else float(np.quantile(scores, q_u))
    return Band(t_l, t_u)


def rate_windows(scores: np.ndarray, grant_rate: float, step: float = 0.05) -> list[tuple[float, Band]]:
    """(start quantile, band) of each window holding ``grant_rate`` of the scores, every ``step``."""
    if not 0.0 < grant_rate <= 1.0:
        raise BandError(f"grant_rate must lie in (0, 1], got {grant_rate}")
    starts = np.unique(np.round(np.append(np.arange(0.0, 1.0 - grant_rate + 1e-9, step), 1.0 - grant_rate), 6))
    return [(float(a), quantile_band(scores, float(a), min(1.0, float(a) + grant_rate))) for a in starts]


def expected_gain(scores: np.ndarray, band: Band, uplift: UpliftCurve, basket_value: float) -> float:
    """Expected incremental GMV per decision: lift(p) * basket over the scores inside, / all."""
    scores = np.asarray(scores, dtype=np.float64)
    gain = expected_incremental_gmv(scores, uplift, basket_value) * band.contains(scores)
    return float(gain.mean()) if len(scores) else 0.0


def resolve(statement: dict, reference: np.ndarray | None, uplift: UpliftCurve, basket_value: float) -> Band:
    """The band in probability terms from a statement (``BandIn``'s fields, as a dict)."""
    kind = statement.get("kind", "probability")
    if kind == "probability":
        return Band(float(statement["t_l"]), float(statement["t_u"]))
    if reference is None:
        raise BandError(f"a {kind} band needs reference scores")
    if kind == "quantiles":
        return quantile_band(reference, float(statement["q_l"]), float(statement["q_u"]))
    if kind == "grant_rate":
        rate, start = float(statement["grant_rate"]), statement.get("start_quantile")
        if start is not None:
            start = float(start)
            if not 0.0 <= start <= 1.0 - rate + 1e-12:
                raise BandError(f"start_quantile must lie in [0, 1 - grant_rate], got {start}")
            return quantile_band(reference, start, min(1.0, start + rate))
        windows = rate_windows(reference, rate)
        return max(windows, key=lambda w: expected_gain(reference, w[1], uplift, basket_value))[1]
    raise BandError(f"band kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _reference(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if len(scores) < MIN_REFERENCE:
        raise BandError(f"{len(scores)} reference scores; a quantile band needs at least {MIN_REFERENCE}")
    return scores


def candidate_rows(scores: np.ndarray, users: np.ndarray, bands: list[tuple[str, Band]], uplift: UpliftCurve,
                   basket_value: float, coupon_value: float, rounds: int, seed: int = 0) -> list[dict]:
    """Per candidate: its band, the grant rate on the reference with a user-bootstrap interval, and
    the expected incremental GMV per decision and per coupon granted."""
    rows = []
    for label, band in bands:
        inside = band.contains(scores)
        rate = weighted_rate(inside, users, rounds=rounds, seed=seed)
        per_decision = expected_gain(scores, band, uplift, basket_value)
        rows.append({
            "label": label, "t_l": band.t_l, "t_u": band.t_u, "grant_rate": rate["rate"],
            "grant_rate_low": rate["low"], "grant_rate_high": rate["high"],
            "expected_incremental_gmv_per_decision": per_decision,
            "expected_incremental_gmv_per_coupon": per_decision / rate["rate"] if rate["rate"] else None,
            "expected_net_gmv_per_decision": per_decision - rate["rate"] * coupon_value,
        })  # fmt: skip
    return rows
