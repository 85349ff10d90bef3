"""User-bootstrap percentile intervals for campaign figures (grant rates, R_c, I_gmv).

A user's scores, decisions and orders are not independent of each other, so the unit of
resampling is the user: each round draws as many users as there are, with replacement, and a user
drawn k times weighs k on each of its rows. Numpy only: the endpoint imports this (no sklearn).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ROUNDS = 400
LEVEL = 0.95


def user_weights(users: np.ndarray, rounds: int = ROUNDS, seed: int = 0) -> np.ndarray:
    """(rounds, rows) weights: how often each row's user was drawn in each resample."""
    _, user_of = np.unique(np.asarray(users), return_inverse=True)
    n_users = int(user_of.max()) + 1 if len(user_of) else 0
    if n_users == 0:
        return np.zeros((rounds, 0))
    draws = np.random.default_rng(seed).integers(0, n_users, (rounds, n_users))
    counts = np.stack([np.bincount(row, minlength=n_users) for row in draws])
    return counts[:, user_of].astype(np.float64)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The central ``level`` interval of the finite values; None when fewer than half are finite."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if len(values) == 0 or len(finite) < len(values) / 2:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap(statistic: Callable[[np.ndarray], float], users: np.ndarray, rounds: int = ROUNDS, seed: int = 0,
              level: float = LEVEL) -> tuple[float, float] | None:
    """Interval of ``statistic(weights)`` (a figure of weighted rows; NaN where undefined) over
    user resamples."""
    weights = user_weights(users, rounds, seed)
    return percentile_interval(np.array([statistic(w) for w in weights]), level)


def weighted_rate(inside: np.ndarray, users: np.ndarray, rounds: int = ROUNDS, seed: int = 0) -> dict:
    """Share of rows where ``inside`` holds, with its user-bootstrap interval."""
    inside = np.asarray(inside, dtype=np.float64)
    weights = user_weights(users, rounds, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = (weights @ inside) / weights.sum(axis=1)
    rate = float(inside.mean()) if len(inside) else float("nan")
    interval = percentile_interval(rates)
    return {"rate": rate, "low": None if interval is None else interval[0],
            "high": None if interval is None else interval[1]}
