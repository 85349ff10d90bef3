"""Evaluate a checkpoint on a sample split and write the report files."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from dipn.data.store import SampleStore
from dipn.errors import DipnValidationError
from dipn.evaluation.metrics import calibration_table, task_metrics
from dipn.evaluation.plots import reliability_plot, score_histograms
from dipn.features import TASKS
from dipn.outputs import EVALUATION, replacing, staged, writing_file
from dipn.training import checkpoint
from dipn.training.boosted import load_gbdt, predict_gbdt
from dipn.training.predict import predict


def evaluate_checkpoint(
    ckpt_path: Path, samples: Path, split: str, out: Path, batch_size: int = 512, predictions_out: Path | None = None
) -> dict[str, Any]:
    # the model first: a file that is no model is refused before anything else is read
    if ckpt_path.suffix == ".json":  # a GBDT run's gbdt.json
        gbdt, manifest = load_gbdt(ckpt_path)
        tasks, revision = gbdt.config.tasks, None
        score = partial(predict_gbdt, gbdt)
    else:
        model, manifest, ckpt = checkpoint.load_model(ckpt_path)
        tasks, revision = tuple(getattr(model.config, "tasks", TASKS)), ckpt.get("git_revision")
        score = partial(predict, model, batch_size=batch_size)
    store = SampleStore(samples)
    if store.manifest.vocabularies != manifest.vocabularies:
        raise DipnValidationError(
            f"{samples} was encoded with other vocabularies than {ckpt_path}; rebuild it with "
            f"dipn build-samples --manifest <the model's features.json>"
        )
    indices = store.indices(split)
    preds = score(store, indices)
    labels = {t: preds[t] for t in tasks}
    scores = {t: preds[f"p_{t}"] for t in tasks}
    report = {
        "checkpoint": str(ckpt_path),
        "samples": str(samples),
        "split": split,
        "git_revision": revision,
        "tasks": {t: task_metrics(labels[t], scores[t]) for t in tasks},
        "calibration": {t: calibration_table(labels[t], scores[t]) for t in tasks},
    }
    with replacing(out, EVALUATION) as staging:  # the report replaces an earlier one whole, or not at all
        if predictions_out is not None:
            write_predictions(store, indices, preds, staged(predictions_out, out, staging))
        (staging / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
        reliability_plot(labels, scores, staging / "reliability.png")
        score_histograms(labels, scores, staging / "scores.png")
    return report


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
