"""The budgeted allocator: a knapsack over users, decided one user at a time, and paced.

Granting user i is worth v_i (expected incremental GMV) and costs w_i (the coupon's face value);
maximize sum v_i x_i subject to sum w_i x_i <= B. The Lagrangian relaxation decides each user
alone (grant when v_i - lambda w_i > 0, ``policy.budgeted_grants``), with lambda set offline on a
reference population (``multiplier_for_budget``). Online, the day rarely matches the reference,
so the endpoint paces: with a budget cap and an end time, lambda rises while spending runs ahead
of the elapsed share of the campaign,

    lambda_t = lambda_0 + pacing_gain * max(0, spent / cap - elapsed / duration),

so a busy morning does not spend the day's budget by noon (the dual step of a budget-paced
auction, written as a function of what the database holds rather than of a running state, so
every worker and host computes the same lambda). Whatever the multiplier says, the cap itself is
a conditional update in the store: ``reserved + value <= cap`` in the grant's transaction, so
spend never exceeds the cap, under concurrent requests or after a crash.
The simulation (``benchmarks/coupon_ab.py``) runs the same allocator.
"""

from __future__ import annotations

import math

import numpy as np

from dipn.serving.config import CampaignConfig
from dipn.serving.policy import expected_incremental_gmv, solve_lagrange_multiplier


def multiplier_for_budget(reference_scores: np.ndarray, config: CampaignConfig, coupons_per_user: float) -> float:
    """lambda that spends ``coupons_per_user`` coupons per user on the reference population."""
    values = expected_incremental_gmv(np.asarray(reference_scores, dtype=np.float64), config.uplift,
                                      config.basket_value)
    weights = np.full(len(values), config.coupon_value)
    return solve_lagrange_multiplier(values, weights, coupons_per_user * len(values) * config.coupon_value)


def paced_multiplier(config: CampaignConfig, spent_cents: int, cap_cents: int | None, now_ms: int) -> float:
    """lambda_t: the campaign's multiplier, raised while spend runs ahead of time (module doc).
    Without a cap, a schedule (start and end) or a gain, it is the campaign's multiplier."""
    base = config.lagrange_multiplier
    if not cap_cents or config.pacing_gain == 0 or config.starts_ms is None or config.ends_ms is None:
        return base
    elapsed = min(1.0, max(0.0, (now_ms - config.starts_ms) / (config.ends_ms - config.starts_ms)))
    ahead = spent_cents / cap_cents - elapsed
    return base + config.pacing_gain * max(0.0, ahead)


def cap_in_arrival_order(wants: np.ndarray, arrival: np.ndarray, max_coupons: float) -> np.ndarray:
    """Grant in arrival order until ``max_coupons`` are spent: what the store's conditional update
    does one request at a time, for a whole population at once (the simulation)."""
    if not math.isfinite(max_coupons):
        return wants
    order = np.argsort(arrival, kind="stable")
    granted_sorted = wants[order] & (np.cumsum(wants[order]) <= max_coupons)
    granted = np.zeros_like(wants)
    granted[order] = granted_sorted
    return granted
