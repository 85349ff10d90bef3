"""Train and score the GBDT rows (``gbdt``, ``gbdt_touch``) on a sample store, as ``dipn train``
trains the torch models: same splits, same subsets, early stopping on the validation days only.

A run directory holds ``gbdt.json`` (the boosters as LightGBM text, plain data), the feature
manifest, the training options and ``metrics.jsonl``; ``dipn evaluate RUN/gbdt.json`` scores it.
Summaries are computed in chunks, so a large split never gathers as one batch of id tensors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from dipn.samples.store import SampleStore
from dipn.errors import DipnValidationError
from dipn.training.metrics import task_metrics
from dipn.features import TASKS, FeatureManifest
from dipn.models.gbdt import GBDTBaseline, gbdt_config_for_data
from dipn.outputs import write_text
from dipn.training.batches import eval_batches, fit_splits
from dipn.training.config import TrainConfig

GBDT_FILE = "gbdt.json"
CHUNK = 4096


def summarize(model: GBDTBaseline, store: SampleStore, indices: np.ndarray, progress: bool = False,
              desc: str = "summaries") -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    """(summary matrix, labels per task) of the given samples, in order."""
    rows, labels = [], {t: [] for t in TASKS}
    chunks = list(eval_batches(indices, CHUNK))
    for chunk in tqdm(chunks, desc=desc, unit="chunk", disable=not progress, dynamic_ncols=True):
        batch = store.batch(chunk)
        rows.append(model.features(batch))
        for t in TASKS:
            labels[t].append(batch[t])
    if not rows:
        return np.zeros((0, len(model.feature_names)), np.float32), {t: np.zeros(0, np.float32) for t in TASKS}
    return np.concatenate(rows), {t: np.concatenate(v) for t, v in labels.items()}


def train_gbdt(store: SampleStore, config: TrainConfig, run_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Fit one booster per task on the training split, stopping early on the validation split."""
    model = GBDTBaseline(
        gbdt_config_for_data(config.model, store.groups_present, seed=config.seed, num_threads=config.threads or 2),
        store.manifest.config,
    )
    train, val = fit_splits(store, config.max_train_samples, config.max_eval_samples, config.seed)
    x_train, y_train = summarize(model, store, train, progress, "train summaries")
    x_val, y_val = summarize(model, store, val, progress, "val summaries")
    model.fit_features(x_train, y_train, x_val, y_val)
    scores = model.predict_features(x_val)
    metrics = {t: task_metrics(y_val[t], scores[t]) for t in model.config.tasks}
    aucs = [m["auc"] for m in metrics.values() if not math.isnan(m["auc"])]
    record = {"epoch": 1, "step": 0, "score": float(np.mean(aucs)) if aucs else math.nan, **metrics,
              "rounds": {t: b.best_iteration or b.current_iteration() for t, b in model.boosters.items()},
              "features": len(model.feature_names), "train_samples": len(train)}  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    store.manifest.save(run_dir / "features.json")
    write_text(run_dir / "train_config.json", json.dumps(config.to_dict(), indent=1) + "\n")
    model.save(run_dir / GBDT_FILE)
    write_text(run_dir / "metrics.jsonl", json.dumps(record) + "\n")  # one fit: the run's one record
    return {"best_score": record["score"], "history": [record], "global_step": 0, "run_dir": str(run_dir),
            "model_path": str(run_dir / GBDT_FILE), "model": model}  # fmt: skip


def load_gbdt(path: Path) -> tuple[GBDTBaseline, FeatureManifest]:
    """A GBDT run's model and the manifest beside it (the samples it scores must match it)."""
    manifest_path = Path(path).parent / "features.json"
    if not manifest_path.exists():
        raise DipnValidationError(f"{path}: no features.json beside it (a GBDT run directory holds both)")
    manifest = FeatureManifest.load(manifest_path)
    return GBDTBaseline.load(path, manifest.config), manifest


def predict_gbdt(model: GBDTBaseline, store: SampleStore, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Labels and probabilities in the shape ``dipn.training.predict.predict`` returns."""
    x, labels = summarize(model, store, indices)
    scores = model.predict_features(x) if len(x) else {t: np.zeros(0) for t in model.config.tasks}
    return labels | {f"p_{t}": np.asarray(scores[t], np.float32) for t in model.config.tasks}
