"""Who gets a coupon: one decision per bucket, from the user's latest p_realtime.

- none: never; all: always (paper section 6.3, non- and all-allocation strategies).
- model: the paper's threshold policy, t_l <= p_realtime <= t_u (section 6.3).
- budgeted: a knapsack over users. Granting user i is worth v_i, the expected incremental GMV
  (the assumed coupon lift at the user's intent times the basket value), and costs w_i, the
  coupon's face value. Maximize sum x_i v_i subject to sum x_i w_i <= B. The Lagrangian
  relaxation decides each user alone: grant when v_i - lambda * w_i > 0, with the multiplier
  lambda >= 0 set so that the grants spend the budget on a reference population of scores
  (``solve_lagrange_multiplier``). That is how the decision stays online, one user at a time,
  while the budget holds for the population.

The budget cap itself is enforced by the store, whatever the policy says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.serving.config import CampaignConfig, UpliftCurve


@dataclass(frozen=True)
class Decision:
    grant: bool
    reason: str
    expected_incremental_gmv: float | None = None


def within_thresholds(p_realtime, t_l: float, t_u: float):  # noqa: ANN001, ANN201 (float or array)
    """Paper section 6.3: the model bucket gets a coupon when t_l <= p_realtime <= t_u."""
    return (t_l <= p_realtime) & (p_realtime <= t_u)


def expected_incremental_gmv(p_realtime, uplift: UpliftCurve, basket_value: float):  # noqa: ANN001, ANN201
    """v_i: the purchase probability a coupon adds at this intent, times the expected order value."""
    return uplift.lift(p_realtime) * basket_value


def budgeted_grants(p_realtime, config: CampaignConfig):  # noqa: ANN001, ANN201
    """Lagrangian decision of the knapsack: v_i - lambda * w_i > 0, w_i = coupon face value."""
    value = expected_incremental_gmv(p_realtime, config.uplift, config.basket_value)
    return value - config.lagrange_multiplier * config.coupon_value > 0


def solve_lagrange_multiplier(values: np.ndarray, weights: np.ndarray, budget: float, iterations: int = 100) -> float:
    """Smallest lambda >= 0 whose grants {i : v_i - lambda w_i > 0} cost at most ``budget``.

    Greedy by v_i / w_i with a threshold: optimal for the LP relaxation of the knapsack, and within
    one item of the integer optimum. ``values`` and ``weights`` come from a reference population
    (e.g. yesterday's scores, or the simulation); weights must be > 0.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if values.shape != weights.shape:
        raise ValueError(f"values {values.shape} and weights {weights.shape} differ in shape")
    if np.any(weights <= 0):
        raise ValueError("knapsack weights must be > 0")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")

    def spend(lam: float) -> float:
        return float(weights[values - lam * weights > 0].sum())

    if spend(0.0) <= budget:
        return 0.0
    low, high = 0.0, float((values / weights).max())  # spend(high) == 0
    for _ in range(iterations):
        middle = (low + high) / 2
        if spend(middle) <= budget:
            high = middle
        else:
            low = middle
    return high


def decide(bucket: str, p_realtime: float | None, config: CampaignConfig) -> Decision:
    """The decision for one user of ``bucket`` whose latest recent score is ``p_realtime``."""
    if bucket == "none":
        return Decision(False, "bucket_none")
    if bucket == "all":
        return Decision(True, "all_allocation")
    if p_realtime is None:
        return Decision(False, "no_recent_score")
    if bucket == "model":
        inside = bool(within_thresholds(p_realtime, config.t_l, config.t_u))
        return Decision(inside, "within_thresholds" if inside else "outside_thresholds")
    if bucket == "budgeted":
        value = float(expected_incremental_gmv(p_realtime, config.uplift, config.basket_value))
        grant = bool(budgeted_grants(p_realtime, config))
        return Decision(grant, "above_lagrange_price" if grant else "below_lagrange_price", value)
    raise ValueError(f"unknown bucket {bucket!r}")
