"""Evaluate a checkpoint on a sample split and write the report files.

Per task: AUC, PR-AUC and log loss, each with a 95% interval from resampling users (a user's
samples come from one stream and are far from independent; resampling samples would give intervals
that are too narrow), and the same on each cut type's samples (at an event, at an idle moment: a
model can be good at one and poor at the other).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from dipn.samples.cuts import CUT_TYPES
from dipn.samples.store import SampleStore
from dipn.errors import DipnValidationError
from dipn.training.metrics import METRICS, bootstrap_intervals, calibration_table, task_metrics
from dipn.evaluation.plots import reliability_plot, score_histograms
from dipn.features import TASKS
from dipn.outputs import EVALUATION, replacing, staged, writing_file
from dipn.training import checkpoint, runtime
from dipn.training.boosted import load_gbdt, predict_gbdt
from dipn.training.predict import predict

BOOTSTRAP_ROUNDS = 200
LEVEL = 0.95


def evaluate_checkpoint(
    ckpt_path: Path, samples: Path, split: str, out: Path, batch_size: int | None = None,
    predictions_out: Path | None = None, threads: int | None = None, progress: bool = False,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> dict[str, Any]:  # fmt: skip
    # the model first: a file that is no model is refused before anything else is read
    model_name, tasks, revision, manifest, score = _scorer(ckpt_path, batch_size, threads, progress)
    store = SampleStore(samples)
    if store.manifest.vocabularies != manifest.vocabularies:
        raise DipnValidationError(
            f"{samples} was encoded with other vocabularies than {ckpt_path}; rebuild it with "
            f"dipn build-samples --manifest <the model's features.json>"
        )
    indices = store.indices(split)
    if not len(indices):
        raise DipnValidationError(f"{samples}: the {split} split holds no samples; choose another --split")
    started, cpu = time.perf_counter(), time.process_time()
    preds = score(store, indices)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    labels = {t: preds[t] for t in tasks}
    scores = {t: preds[f"p_{t}"] for t in tasks}
    users, _ = store.cuts(indices)
    cut_type = store.cut_type[indices]
    report = {
        "checkpoint": str(ckpt_path),
        "model": model_name,
        "samples": str(samples),
        "split": split,
        "git_revision": revision,
        "bootstrap": {"unit": "user", "rounds": rounds, "level": LEVEL, "users": int(len(np.unique(users)))},
        "scoring": {"samples": int(len(indices)), "seconds": seconds, "cpu_seconds": cpu_seconds,
                    "samples_per_s": len(indices) / seconds if seconds else None,
                    "threads": threads or "adaptive"},  # fmt: skip
        "tasks": {t: _with_intervals(labels[t], scores[t], users, cut_type, rounds) for t in tasks},
        "calibration": {t: calibration_table(labels[t], scores[t]) for t in tasks},
    }
    aucs = {t: report["tasks"][t]["auc"] for t in tasks}
    with replacing(out, EVALUATION) as staging:  # the report replaces an earlier one whole, or not at all
        if predictions_out is not None:
            write_predictions(store, indices, preds, staged(predictions_out, out, staging))
        (staging / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
        reliability_plot(report["calibration"], aucs, model_name, split, staging / "reliability.png")
        score_histograms(labels, scores, aucs, model_name, split, staging / "scores.png")
    return report


def _with_intervals(labels: np.ndarray, scores: np.ndarray, users: np.ndarray, cut_type: np.ndarray,
                    rounds: int) -> dict[str, Any]:  # fmt: skip
    """``task_metrics`` with ``<metric>_low`` / ``<metric>_high`` of each of AUC, PR-AUC and log
    loss, overall and under "by_cut_type" for each cut type present."""

    def measured(sel: np.ndarray | slice) -> dict[str, Any]:
        intervals = bootstrap_intervals(labels[sel], scores[sel], users[sel], rounds=rounds, level=LEVEL)
        bounds = {f"{m}_{side}": intervals[m][i] for m in METRICS for i, side in enumerate(("low", "high"))}
        return task_metrics(labels[sel], scores[sel]) | bounds

    metrics = measured(slice(None))
    metrics["by_cut_type"] = {name: measured(cut_type == code) for name, code in CUT_TYPES.items()
                              if (cut_type == code).any()}  # fmt: skip
    return metrics


def _scorer(ckpt_path: Path, batch_size: int | None, threads: int | None,
            progress: bool) -> tuple[str, tuple[str, ...], str | None, Any, Callable]:  # fmt: skip
    """(model label, tasks, git revision, feature manifest, store, indices -> predictions) of a
    torch checkpoint or of a GBDT run's gbdt.json."""
    if ckpt_path.suffix == ".json":  # a GBDT run's gbdt.json
        gbdt, manifest = load_gbdt(ckpt_path)
        name = "gbdt_touch" if gbdt.config.touch else "gbdt"
        return name, tuple(gbdt.config.tasks), None, manifest, partial(predict_gbdt, gbdt)
    model, manifest, ckpt = checkpoint.load_model(ckpt_path)
    variant = (ckpt.get("train_config") or {}).get("variant")
    name = ckpt["model_name"] + (f" ({variant})" if variant and variant != ckpt["model_name"] else "")
    tasks = tuple(getattr(model.config, "tasks", TASKS))
    scoring_threads(model, threads)
    options = {"batch_size": batch_size} if batch_size else {}
    return name, tasks, ckpt.get("git_revision"), manifest, partial(predict, model, progress=progress, **options)


def scoring_threads(model: Any, threads: int | None) -> None:
    """``threads`` torch threads for scoring ``model``; None: chosen from the batches' own wall
    time (``dipn.training.runtime.adapt_threads``), never slower than one thread on a busy machine."""
    runtime.set_threads(threads)
    if threads is None:
        runtime.adapt_threads(model)


def write_predictions(store: SampleStore, indices, preds: dict[str, Any], path: Path) -> Path:
    """One row per cut, keyed as the cuts file was: user_id, ts, p_realtime, p_longterm."""
    import polars as pl

    user_index, cut_ts = store.cuts(indices)
    frame = pl.DataFrame({
        "user_id": store.users[user_index],
        "ts": cut_ts,
        "p_realtime": preds["p_realtime"],
        "p_longterm": preds["p_longterm"],
    })  # fmt: skip
    with writing_file(path) as tmp:
        frame.write_csv(tmp)
    return path
