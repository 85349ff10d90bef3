"""Metrics per task, from scikit-learn; they tolerate a split with a single class."""

from __future__ import annotations

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
