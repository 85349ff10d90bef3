"""Metrics per task, from scikit-learn; they tolerate a split with a single class."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

EPS = 1e-7  # scores are clipped to [EPS, 1 - EPS] for the log loss: one confident miss is not infinite


def task_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC (the paper's metric), PR-AUC (average precision: what a rare positive class needs), log
    loss, base rate and mean score of one task."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1 - EPS)
    both = 0 < labels.sum() < len(labels)
    return {
        "auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "pr_auc": float(average_precision_score(labels, scores)) if both else float("nan"),
        "logloss": float(log_loss(labels, scores, labels=[0, 1])) if len(labels) else float("nan"),
        "positive_rate": float(labels.mean()) if len(labels) else float("nan"),
        "mean_score": float(scores.mean()) if len(scores) else float("nan"),
        "samples": int(len(labels)),
    }


class _Ranked:
    """One task's scores grouped by distinct value, highest first, so that AUC, average precision
    and log loss under any per-sample weights cost a few O(n) passes: the bootstrap below scores
    hundreds of resamples of tens of thousands of samples in the time a few scikit-learn calls take.
    Same definitions as scikit-learn's weighted ``roc_auc_score`` (ties count half) and
    ``average_precision_score``; ``tests/test_evaluate.py`` pins them to it."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        scores = np.asarray(scores, np.float64)
        self.labels = np.asarray(labels, np.float64)
        distinct, self.group = np.unique(-scores, return_inverse=True)
        self.groups = len(distinct)
        clipped = np.clip(scores, EPS, 1 - EPS)
        self.loss = -(self.labels * np.log(clipped) + (1 - self.labels) * np.log1p(-clipped))

    def metrics(self, weights: np.ndarray) -> tuple[float, float, float]:
        """(AUC, average precision, log loss) with ``weights``; both classes must weigh > 0."""
        positive = np.bincount(self.group, weights * self.labels, minlength=self.groups)
        negative = np.bincount(self.group, weights * (1 - self.labels), minlength=self.groups)
        total_p, total_n = positive.sum(), negative.sum()
        above_n = np.cumsum(negative)  # negatives scored at or above each group
        auc = float((positive * (total_n - above_n + 0.5 * negative)).sum() / (total_p * total_n))
        flagged = np.cumsum(positive) + above_n
        precision = np.divide(np.cumsum(positive), flagged, out=np.zeros(self.groups), where=flagged > 0)
        ap = float((positive * precision).sum() / total_p)
        return auc, ap, float((weights * self.loss).sum() / weights.sum())


METRICS = ("auc", "pr_auc", "logloss")  # what bootstrap_intervals gives an interval for, in _Ranked.metrics order


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
        weights = np.bincount(rng.integers(0, n_users, n_users), minlength=n_users)[user_of].astype(np.float64)
        if 0 < (weights * labels).sum() < weights.sum():
            yield weights


def _percentiles(values: list[float], rounds: int, level: float) -> tuple[float, float]:
    if len(values) < rounds / 2:  # most resamples held one class only: no interval
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    labels: np.ndarray, scores: np.ndarray, users: np.ndarray, rounds: int = 200, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of AUC, PR-AUC and log loss when users, not samples, are resampled with
    replacement (the same resamples for the three)."""
    labels = np.asarray(labels, np.float64)
    ranked = _Ranked(labels, scores)
    values = [ranked.metrics(w) for w in _user_resamples(labels, users, rounds, seed)]
    return {name: _percentiles([v[i] for v in values], rounds, level) for i, name in enumerate(METRICS)}


def bootstrap_auc_interval(
    labels: np.ndarray, scores: np.ndarray, users: np.ndarray, rounds: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the AUC when users, not samples, are resampled with replacement."""
    return bootstrap_intervals(labels, scores, users, rounds, level, seed)["auc"]


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
    first, second = _Ranked(labels, scores), _Ranked(labels, reference)
    deltas = [first.metrics(w)[0] - second.metrics(w)[0] for w in _user_resamples(labels, users, rounds, seed)]
    low, high = _percentiles(deltas, rounds, level)
    return {"delta": delta, "low": low, "high": high}


def calibration_table(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability diagram data: score bins holding about equal numbers of samples (quantiles of
    the scores), each with its score range, count, positives, mean score and observed rate.

    Equal-count bins, because fixed tenths put nearly every score of a rare event into the first
    tenth (3,154 of 3,163 real-time scores on a real slice): the diagram then says nothing where
    the scores are. Tied scores stay in one bin, so a bin may hold more than its share.
    """
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return []
    edges = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)))
    which = np.searchsorted(edges[1:-1], scores, side="right")
    rows = []
    for b in range(len(edges) - 1 if len(edges) > 1 else 1):
        sel = which == b
        if sel.any():
            rows.append({"score_low": float(scores[sel].min()), "score_high": float(scores[sel].max()),
                         "count": int(sel.sum()), "positives": int(labels[sel].sum()),
                         "mean_score": float(scores[sel].mean()), "observed_rate": float(labels[sel].mean())})  # fmt: skip
    return rows
