"""Qini coefficient and AUUC of a ranking of users by predicted uplift.

The same definitions as causalml (``causalml.metrics.get_cumgain``, ``get_qini``, ``auuc_score``,
``qini_score``; Gutierrez & Gerardy 2016, Radcliffe 2007), in numpy, so the policy simulation runs
without it; tests check both agree where causalml is installed. Sort users by score, highest
first; after the top k:
- with the true effect tau known (a simulation): gain(k) = sum of tau over the top k, and
  qini(k) = mean tau over the top k * treated among the top k;
- from a randomized test (outcome y, treatment w): gain(k) = k * (mean y of treated - mean y of
  controls) among the top k (the mean difference interpolated where a group is empty), and
  qini(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k).
Curves start at 0 for k = 0; points where a group is still empty are interpolated. Normalized by
the curve's last value, AUUC is the mean of the gain curve and the Qini coefficient is the mean
gap between the Qini curve and the straight line of a random ranking. Ties in the score must be
broken before calling (causalml's order among ties is that of an unstable sort).
"""

from __future__ import annotations

import numpy as np


def _order(score: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")


def _interpolate(curve: np.ndarray) -> np.ndarray:
    """Fill NaNs linearly between known points and with the last known value after them."""
    known = ~np.isnan(curve)
    if known.all():
        return curve
    index = np.arange(len(curve))
    return np.interp(index, index[known], curve[known])


def _cumulative(score, y, w, tau):  # noqa: ANN001, ANN202
    order = _order(score)
    k = np.arange(1, len(order) + 1, dtype=np.float64)
    cum_treated = None if w is None else np.cumsum(np.asarray(w, dtype=np.float64)[order])
    if tau is not None:
        return order, k, cum_treated, np.cumsum(np.asarray(tau, dtype=np.float64)[order])
    y = np.asarray(y, dtype=np.float64)[order]
    w = np.asarray(w, dtype=np.float64)[order]
    return order, k, cum_treated, (np.cumsum(y * w), np.cumsum(y * (1 - w)))


def gain_curve(score, *, y=None, w=None, tau=None, normalize: bool = False) -> np.ndarray:  # noqa: ANN001
    """Cumulative gain at k = 0..n."""
    _, k, cum_treated, sums = _cumulative(score, y, w, tau)
    if tau is not None:
        lift = sums / k
    else:
        y_treated, y_control = sums
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = y_treated / cum_treated - y_control / (k - cum_treated)
        lift[~np.isfinite(lift)] = np.nan
    # As causalml: the average lift is interpolated, then scaled by the population size.
    curve = _interpolate(np.concatenate([[0.0], lift])) * np.arange(len(k) + 1)
    return curve / abs(curve[-1]) if normalize and curve[-1] != 0 else curve


def qini_curve(score, *, y=None, w=None, tau=None, normalize: bool = False) -> np.ndarray:  # noqa: ANN001
    """Qini curve at k = 0..n; with ``tau``, ``w`` is still needed (treated counts)."""
    if w is None:
        raise ValueError("the Qini curve needs the treatment indicator w")
    _, k, cum_treated, sums = _cumulative(score, y, w, tau)
    if tau is not None:
        qini = sums / k * cum_treated
    else:
        y_treated, y_control = sums
        with np.errstate(divide="ignore", invalid="ignore"):
            qini = y_treated - y_control * cum_treated / (k - cum_treated)
        qini[~np.isfinite(qini)] = np.nan
    curve = _interpolate(np.concatenate([[0.0], qini]))
    return curve / abs(curve[-1]) if normalize and curve[-1] != 0 else curve


def auuc_score(score, *, y=None, w=None, tau=None, normalize: bool = True) -> float:  # noqa: ANN001
    """Area under the (normalized) cumulative gain curve, as ``causalml.metrics.auuc_score``."""
    curve = gain_curve(score, y=y, w=w, tau=tau, normalize=normalize)
    return float(curve.sum() / len(curve))


def qini_score(score, *, y=None, w=None, tau=None, normalize: bool = True) -> float:  # noqa: ANN001
    """Qini coefficient: mean gap between the Qini curve and a random ranking's straight line."""
    curve = qini_curve(score, y=y, w=w, tau=tau, normalize=normalize)
    random_line = np.linspace(curve[0], curve[-1], len(curve))
    return float((curve.sum() - random_line.sum()) / len(curve))
