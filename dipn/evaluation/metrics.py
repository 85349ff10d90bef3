"""Metrics per task, from scikit-learn; they tolerate a split with a single class."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score


def task_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC (the paper's metric), log loss, base rate and mean score of one task."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    both = 0 < labels.sum() < len(labels)
    return {
        "auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "logloss": float(log_loss(labels, scores, labels=[0, 1])) if len(labels) else float("nan"),
        "positive_rate": float(labels.mean()) if len(labels) else float("nan"),
        "mean_score": float(scores.mean()) if len(scores) else float("nan"),
        "samples": int(len(labels)),
    }


def _user_resamples(labels: np.ndarray, users: np.ndarray, rounds: int, seed: int) -> Iterator[np.ndarray]:
    """Per-sample weights of ``rounds`` resamples of users with replacement, skipping those that
    hold one class only (no AUC there).

    A user's samples are cut from one stream and are far from independent; resampling samples
    would give intervals that are too narrow. A user drawn k times weighs k on each of its samples,
    which is the resampled data set without copying it.
    """
    _, user_of = np.unique(np.asarray(users), return_inverse=True)
    n_users = int(user_of.max()) + 1 if len(user_of) else 0
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        weights = np.bincount(rng.integers(0, n_users, n_users), minlength=n_users)[user_of]
        if 0 < (weights * labels).sum() < weights.sum():
            yield weights


def _percentiles(values: list[float], rounds: int, level: float) -> tuple[float, float]:
    if len(values) < rounds / 2:  # most resamples held one class only: no interval
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_auc_interval(
    labels: np.ndarray, scores: np.ndarray, users: np.ndarray, rounds: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the AUC when users, not samples, are resampled with replacement."""
    labels, scores = np.asarray(labels, np.float64), np.asarray(scores, np.float64)
    aucs = [roc_auc_score(labels, scores, sample_weight=w) for w in _user_resamples(labels, users, rounds, seed)]
    return _percentiles(aucs, rounds, level)


def bootstrap_auc_difference(
    labels: np.ndarray, scores: np.ndarray, reference: np.ndarray, users: np.ndarray, rounds: int = 200,
    level: float = 0.95, seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """AUC(scores) - AUC(reference) on the same samples, with a paired user-bootstrap interval.

    Both models are scored on each resample, so the interval of the difference is far narrower
    than the two separate intervals suggest: an interval above 0 says the first model is better.
    """
    labels = np.asarray(labels, np.float64)
    both = 0 < labels.sum() < len(labels)
    if not both:
        return {"delta": float("nan"), "low": float("nan"), "high": float("nan")}
    delta = float(roc_auc_score(labels, scores) - roc_auc_score(labels, reference))
    deltas = [roc_auc_score(labels, scores, sample_weight=w) - roc_auc_score(labels, reference, sample_weight=w)
              for w in _user_resamples(labels, users, rounds, seed)]  # fmt: skip
    low, high = _percentiles(deltas, rounds, level)
    return {"delta": delta, "low": low, "high": high}


def calibration_table(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability diagram data: equal-width score bins, mean score vs observed rate."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            rows.append({"bin_low": b / bins, "bin_high": (b + 1) / bins, "count": int(sel.sum()),
                         "mean_score": float(scores[sel].mean()), "observed_rate": float(labels[sel].mean())})  # fmt: skip
    return rows
