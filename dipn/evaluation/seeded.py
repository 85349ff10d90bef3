"""AUC of a row trained with several seeds: the mean over seeds, their spread, and an interval
that resamples both users and seeds.

One training run is one draw of the initialisation and batch order; on a small real slice two
seeds of the same model differ by as much as two models do. A table row therefore trains each
seed on the same data and scores them on the same evaluation samples. Each bootstrap round
resamples users with replacement (a user's samples are not independent, see
``dipn.training.metrics``) and the seeds with replacement, and takes the mean AUC of the drawn
seeds on the drawn users: the interval covers both sources of chance. A paired difference draws
the same users and the same seed positions for both rows, so the user-level noise they share
cancels. With one seed these reduce to the plain user bootstrap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from dipn.samples.cuts import CUT_TYPES
from dipn.training.metrics import task_metrics


def _resamples(labels: np.ndarray, users: np.ndarray, seeds: int, rounds: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(sample weights, seed positions) of each round; rounds whose users hold one class are skipped."""
    _, user_of = np.unique(np.asarray(users), return_inverse=True)
    n_users = int(user_of.max()) + 1 if len(user_of) else 0
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        weights = np.bincount(rng.integers(0, n_users, n_users), minlength=n_users)[user_of]
        drawn = rng.integers(0, seeds, seeds)
        if 0 < (weights * labels).sum() < weights.sum():
            yield weights, drawn


def _interval(values: list[float], rounds: int, level: float = 0.95) -> tuple[float, float]:
    if len(values) < rounds / 2:  # most resamples held one class only
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _mean_auc(labels: np.ndarray, runs: Sequence[np.ndarray], weights: np.ndarray, drawn: np.ndarray) -> float:
    aucs = {int(i): roc_auc_score(labels, runs[i], sample_weight=weights) for i in np.unique(drawn)}
    return float(np.mean([aucs[int(i)] for i in drawn]))


def seeded_auc(labels: np.ndarray, runs: Sequence[np.ndarray], users: np.ndarray, rounds: int = 200,
               seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Per-seed AUCs, their mean and standard deviation, and the interval over users and seeds."""
    labels = np.asarray(labels, np.float64)
    per_seed = [task_metrics(labels, scores) for scores in runs]
    aucs = [m["auc"] for m in per_seed]
    values = [_mean_auc(labels, runs, w, d) for w, d in _resamples(labels, users, len(runs), rounds, seed)]
    low, high = _interval(values, rounds)
    return {"auc": float(np.mean(aucs)), "auc_seeds": aucs, "auc_sd": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
            "auc_low": low, "auc_high": high, "logloss": float(np.mean([m["logloss"] for m in per_seed])),
            "positive_rate": per_seed[0]["positive_rate"], "samples": per_seed[0]["samples"]}  # fmt: skip


def seeded_difference(labels: np.ndarray, runs: Sequence[np.ndarray], reference: Sequence[np.ndarray],
                      users: np.ndarray, rounds: int = 200, seed: int = 0) -> dict[str, float]:  # fmt: skip
    """Mean AUC over ``runs`` minus mean AUC over ``reference``, paired on users and seed positions.

    Rows with different seed counts pair position i of the shorter one with position i modulo its
    length (a GBDT row is deterministic: one run stands for every seed)."""
    labels = np.asarray(labels, np.float64)
    if not 0 < labels.sum() < len(labels):
        return {"delta": float("nan"), "low": float("nan"), "high": float("nan")}
    n = max(len(runs), len(reference))
    a = [runs[i % len(runs)] for i in range(n)]
    b = [reference[i % len(reference)] for i in range(n)]
    delta = float(np.mean([roc_auc_score(labels, s) for s in runs]) - np.mean([roc_auc_score(labels, s) for s in reference]))
    deltas = [_mean_auc(labels, a, w, d) - _mean_auc(labels, b, w, d) for w, d in _resamples(labels, users, n, rounds, seed)]
    low, high = _interval(deltas, rounds)
    return {"delta": delta, "low": low, "high": high}


def seeded_row_metrics(runs: Sequence[dict[str, np.ndarray]], labels: dict[str, np.ndarray], users: np.ndarray,
                       cut_type: np.ndarray, references: dict[str, Sequence[dict[str, np.ndarray]]] | None = None,
                       rounds: int = 200, seed: int = 0) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per task: ``seeded_auc``, the paired difference against each named reference row
    (``vs_<name>``; ``vs_reference`` for the first, as ``benchmarks.tables.row_metrics``
    names it) and the same by cut type. ``runs``: per seed, task -> scores on the evaluation samples."""
    out: dict[str, dict[str, Any]] = {}
    for task in runs[0]:
        scores = [r[task] for r in runs]
        metrics = seeded_auc(labels[task], scores, users, rounds, seed)
        for k, (name, ref) in enumerate((references or {}).items()):
            if task in ref[0]:
                d = seeded_difference(labels[task], scores, [r[task] for r in ref], users, rounds, seed)
                metrics[f"vs_{name}"] = d
                if k == 0:
                    metrics["vs_reference"] = d
        metrics["by_cut_type"] = {}
        for kind, code in CUT_TYPES.items():
            sel = cut_type == code
            if sel.any():
                part = seeded_auc(labels[task][sel], [s[sel] for s in scores], users[sel], rounds, seed)
                for name, ref in (references or {}).items():
                    if task in ref[0]:
                        part[f"vs_{name}"] = seeded_difference(labels[task][sel], [s[sel] for s in scores],
                                                               [r[task][sel] for r in ref], users[sel], rounds, seed)  # fmt: skip
                metrics["by_cut_type"][kind] = part
        out[task] = metrics
    return out
