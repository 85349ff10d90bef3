"""Artifact vs PyTorch fp32 on held-out samples, and the gate a conversion must pass.

For each artifact: the max and mean absolute difference of its scores from PyTorch's, the AUC of
each of the model's tasks for both, the drop (PyTorch AUC - artifact AUC; positive = worse), and
how many scores are NaN. The gate, artifact by artifact and in this order:

1. any NaN score fails;
2. scores within ``AGREEMENT`` (1e-4, the fp32 golden tolerance) of PyTorch's pass: the artifact
   computes the same function up to summation order, and an AUC that moves then only reorders
   near-tied samples (an fp32 artifact 5e-7 from PyTorch once failed on 200 such samples);
3. otherwise each task's AUC drop must be at most ``max_auc_drop`` (default 0.003, the
   project's target), but only where it can be measured: the parity samples must hold enough pairs of
   a positive and a negative that one reordered pair moves the AUC by at most a thirtieth of the
   allowed drop (``positives * negatives >= 30 / max_auc_drop``: 10,000 pairs at 0.003, e.g. 100
   positives and 100 negatives);
4. a task with fewer pairs is held to the golden tolerance of the artifact's precision instead
   (``convert.golden.TOLERANCE``: 1e-4 fp32, 5e-3 int8), the bound a device's self-test applies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from convert.errors import ParityGateError
from convert.golden import TOLERANCE

DEFAULT_MAX_AUC_DROP = 0.003
AGREEMENT = TOLERANCE["fp32"]  # scores this close to PyTorch's pass whatever the AUC does
PAIRS_PER_DROP = 30  # an AUC drop is measured once one reordered pair moves it by <= max_auc_drop / 30
TASK_COLUMN = {"realtime": 0, "longterm": 1}


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (ties count one half); NaN when only one class is present."""
    labels = np.asarray(labels) > 0.5
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0 or np.isnan(scores).any():
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass
class Parity:
    artifact: str
    method: str  # how the scores were obtained (runtime and version, or "weights only ...")
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    nan_scores: int
    precision: str = "fp32"  # a key of convert.golden.TOLERANCE
    auc_reference: dict[str, float] = field(default_factory=dict)
    auc_artifact: dict[str, float] = field(default_factory=dict)
    auc_drop: dict[str, float] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)  # positives x negatives of each task

    @property
    def worst_auc_drop(self) -> float:
        drops = [d for d in self.auc_drop.values() if not math.isnan(d)]
        return max(drops) if drops else float("nan")

    def failures(self, max_auc_drop: float) -> list[str]:
        """Why the artifact fails the gate (the module's rules 1-4); empty when it passes."""
        if self.nan_scores:
            return [f"{self.artifact}: {self.nan_scores} NaN score(s) on {self.samples} samples"]
        if self.max_abs_diff <= AGREEMENT:
            return []
        out = []
        tolerance = TOLERANCE[self.precision]
        for task, drop in self.auc_drop.items():
            if self.pairs[task] < measurable_pairs(max_auc_drop):
                if self.max_abs_diff > tolerance:
                    out.append(
                        f"{self.artifact}: scores differ from PyTorch's by up to {self.max_abs_diff:.2e} > "
                        f"{tolerance:g} ({self.precision} tolerance), and {self.pairs[task]:,} {task} "
                        f"positive-negative pairs are too few to measure an AUC drop of {max_auc_drop} (need "
                        f"{measurable_pairs(max_auc_drop):,}): score more eval samples"
                    )
            elif not math.isnan(drop) and drop > max_auc_drop:
                out.append(
                    f"{self.artifact}: {task} AUC {self.auc_artifact[task]:.4f} vs PyTorch "
                    f"{self.auc_reference[task]:.4f}, a drop of {drop:.4f} > {max_auc_drop}"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, float):
                return None if math.isnan(value) else float(f"{value:.4g}")
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return {k: clean(v) for k, v in asdict(self).items()} | {"worst_auc_drop": clean(self.worst_auc_drop)}


def measurable_pairs(max_auc_drop: float) -> int:
    """Positive-negative pairs a task needs before its AUC drop is gated (rule 3)."""
    return math.ceil(PAIRS_PER_DROP / max_auc_drop) if max_auc_drop > 0 else 0


def compare(
    artifact: str,
    method: str,
    reference: np.ndarray,
    scores: np.ndarray,
    labels: Mapping[str, np.ndarray],
    tasks: Sequence[str],
    precision: str = "fp32",
) -> Parity:
    """Scores (N, 2) of an artifact against PyTorch's (N, 2), over the model's ``tasks``."""
    columns = [TASK_COLUMN[t] for t in tasks]
    ref, got = np.asarray(reference, np.float64)[:, columns], np.asarray(scores, np.float64)[:, columns]
    nan = int(np.isnan(got).sum())
    diff = np.abs(ref - got)
    finite = diff[np.isfinite(diff)]
    parity = Parity(
        artifact=artifact,
        method=method,
        samples=len(ref),
        max_abs_diff=float(finite.max()) if finite.size else float("nan"),
        mean_abs_diff=float(finite.mean()) if finite.size else float("nan"),
        nan_scores=nan,
        precision=precision,
    )
    for task, column in zip(tasks, range(len(columns)), strict=True):
        positives = int((np.asarray(labels[task]) > 0.5).sum())
        parity.pairs[task] = positives * (len(ref) - positives)
        parity.auc_reference[task] = auc(labels[task], ref[:, column])
        parity.auc_artifact[task] = auc(labels[task], got[:, column])
        parity.auc_drop[task] = parity.auc_reference[task] - parity.auc_artifact[task]
    return parity


def gate(parities: Iterable[Parity], max_auc_drop: float = DEFAULT_MAX_AUC_DROP) -> list[str]:
    """All failures of all artifacts (empty = the gate passes)."""
    return [failure for p in parities for failure in p.failures(max_auc_drop)]


def enforce(parities: Iterable[Parity], max_auc_drop: float = DEFAULT_MAX_AUC_DROP) -> None:
    failures = gate(parities, max_auc_drop)
    if failures:
        raise ParityGateError("parity gate failed: " + "; ".join(failures))
