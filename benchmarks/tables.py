"""One row of an accuracy table: train a model as ``dipn train`` does, score it on a fixed
evaluation subset, and report AUC with user-bootstrap intervals, paired differences against a
reference row and AUC by cut type. ``benchmarks/accuracy.py`` and ``benchmarks/real_data.py``
build their tables from these rows, so both measure the same thing the same way.

Model choice uses the validation days only: a torch row is scored with its ``best.pt`` (the
epoch with the best mean val AUC), a GBDT row stops boosting on val. The evaluation subset is
never seen before it is scored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dipn.samples.cuts import CUT_TYPES
from dipn.samples.store import SampleStore
from dipn.training.metrics import bootstrap_auc_difference, bootstrap_auc_interval, task_metrics
from dipn.features import TASKS
from dipn.presets import GBDT_MODELS
from dipn.training import checkpoint
from dipn.training.boosted import GBDT_FILE, load_gbdt, predict_gbdt, train_gbdt
from dipn.training.config import TrainConfig
from dipn.training.loop import Trainer
from dipn.training.predict import predict
from dipn.training.run_dir import prepare_run_dir


@dataclass
class ScoredRow:
    """A trained row's scores on the evaluation subset, and what its training cost."""

    scores: dict[str, np.ndarray]  # task -> probabilities, in the order of the evaluation subset
    inputs: tuple[str, ...]  # the input groups the model read
    train_seconds: float
    samples_per_s: float | None = None  # median training throughput over epochs (torch rows)
    parameters: int | None = None
    model: nn.Module | None = None  # the selected torch model (best.pt), for deployment figures


def fit_and_score(store: SampleStore, model: str, variant: str | None, config: TrainConfig, run_dir: Path,
                  evaluation: np.ndarray, progress: bool = True) -> ScoredRow:  # fmt: skip
    """Train ``model`` / ``variant`` into ``run_dir`` and score the selected model on ``evaluation``."""
    config = replace(config, model=model, variant=variant)
    prepare_run_dir(run_dir, overwrite=True)  # a table's run replaces the row's earlier one
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    if model in GBDT_MODELS:
        gbdt = train_gbdt(store, config, run_dir, progress)["model"]
        seconds = time.perf_counter() - started
        preds = predict_gbdt(gbdt, store, evaluation)
        inputs = tuple(g.value for g in gbdt.config.views) + ("context",) + gbdt.config.statics
        return ScoredRow({t: preds[f"p_{t}"] for t in gbdt.config.tasks}, inputs, seconds)
    trainer = Trainer(store, config, run_dir, progress=progress)
    result = trainer.fit()
    seconds = time.perf_counter() - started
    selected, _, _ = checkpoint.load_model(run_dir / "best.pt")
    preds = predict(selected, store, evaluation)
    throughput = [h["train"]["samples_per_s"] for h in result["history"]]
    return ScoredRow({t: preds[f"p_{t}"] for t in trainer.tasks}, tuple(i for i in trainer.input_names if i != "merged"),
                     seconds, float(np.median(throughput)) if throughput else None,
                     sum(p.numel() for p in selected.parameters()), selected)  # fmt: skip


def saved_scores(store: SampleStore, model: str, run_dir: Path, evaluation: np.ndarray) -> dict[str, np.ndarray]:
    """Task -> scores on ``evaluation`` of a row ``fit_and_score`` trained earlier into ``run_dir``
    (its best.pt, or gbdt.json): what a comparison between two finished rows pairs up."""
    if model in GBDT_MODELS:
        gbdt, _ = load_gbdt(run_dir / GBDT_FILE)
        preds, tasks = predict_gbdt(gbdt, store, evaluation), gbdt.config.tasks
    else:
        selected, _, _ = checkpoint.load_model(run_dir / "best.pt")
        preds, tasks = predict(selected, store, evaluation), selected.tasks
    return {t: preds[f"p_{t}"] for t in tasks}


@dataclass(frozen=True)
class EvalSet:
    """The fixed evaluation subset every row is scored on: labels, users (the bootstrap unit), cut types."""

    indices: np.ndarray
    labels: dict[str, np.ndarray]
    users: np.ndarray
    cut_type: np.ndarray

    @classmethod
    def of(cls, store: SampleStore, indices: np.ndarray) -> EvalSet:
        users, _ = store.cuts(indices)
        return cls(indices, {t: store.labels[indices, i].astype(np.float32) for i, t in enumerate(TASKS)},
                   users, store.cut_type[indices])  # fmt: skip


def row_metrics(row: ScoredRow, ev: EvalSet, reference: ScoredRow | None = None, rounds: int = 200,
                seed: int = 0) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per task: AUC, log loss, ... with a user-bootstrap 95% interval, the paired difference to
    ``reference`` (same resamples), and the AUC on each cut type's samples."""
    out: dict[str, dict[str, Any]] = {}
    for task, scores in row.scores.items():
        labels = ev.labels[task]
        low, high = bootstrap_auc_interval(labels, scores, ev.users, rounds=rounds, seed=seed)
        metrics: dict[str, Any] = task_metrics(labels, scores) | {"auc_low": low, "auc_high": high}
        if reference is not None and task in reference.scores:
            metrics["vs_reference"] = bootstrap_auc_difference(labels, scores, reference.scores[task], ev.users,
                                                               rounds=rounds, seed=seed)  # fmt: skip
        metrics["by_cut_type"] = {}
        for name, code in CUT_TYPES.items():
            sel = ev.cut_type == code
            if sel.any():
                lo, hi = bootstrap_auc_interval(labels[sel], scores[sel], ev.users[sel], rounds=rounds, seed=seed)
                metrics["by_cut_type"][name] = task_metrics(labels[sel], scores[sel]) | {"auc_low": lo, "auc_high": hi}
        out[task] = metrics
    return out


def format_delta(metrics: dict | None) -> str:
    """A row's paired difference to the reference as table text: "+0.0123 [-0.0040, +0.0290]"."""
    d = (metrics or {}).get("vs_reference")
    if not d or d["delta"] != d["delta"]:
        return "-"
    return f"{d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
