"""Val evidence for DIPN-with-time choices on the real Taobao slices (issue 25), on held-out users.

    python benchmarks/real_data_choice.py tail wide '{"wide_context": true}' '{"epochs": 4}' users
    python benchmarks/real_data_choice.py window base '{}' '{"epochs": 2, "train": 10000, "lr": 0.003, "batch_size": 64}' valsplit

Why: the tail slice's val split is one later day of the SAME users, which rewards memorizing
shoppers (the eval day, and the maintainers' larger slice of new users, punish it). Protocol
``users`` (tail): a seeded quarter of the users is held out; the model trains on the other users'
train days and is validated (early stopping, the choice) on every non-eval sample of the held-out
users. Protocol ``valsplit`` (window): the slice's own val split, already users never trained on.
Eval AUC is printed beside for the record and read by no choice. Arguments: slice, a name, the
DIPNConfig fields changed from ``browse_history`` (or ``{"model": "gbdt"}``), TrainConfig fields
(plus ``train``: training samples, ``min_count``), protocol. Appends one JSON line per run to
benchmarks/results/real_data-choice.jsonl. Needs the samples ``benchmarks/real_data.py`` builds.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from dipn.data.store import SPLITS, SampleStore  # noqa: E402
from dipn.evaluation.metrics import task_metrics  # noqa: E402
from dipn.evaluation.tables import fit_and_score  # noqa: E402
from dipn.models.dipn import VARIANTS  # noqa: E402
from dipn.training.batches import subset  # noqa: E402
from dipn.training.config import TrainConfig  # noqa: E402


def held_out_users(store: SampleStore, seed: int = 123) -> np.ndarray:
    """The ``users`` protocol's split codes: a quarter of the users' non-eval samples become val;
    the other users' val day is left out (coded eval, which training never reads)."""
    users, _ = store.cuts(np.arange(len(store)))
    held = np.random.default_rng(seed).permutation(np.unique(users))[: len(np.unique(users)) // 4]
    inside = np.isin(users, held)
    split = store.split.copy()
    noneval = store.split != SPLITS["eval"]
    split[noneval & inside] = SPLITS["val"]
    split[noneval & ~inside & (store.split == SPLITS["val"])] = SPLITS["eval"]
    return split


def main(argv: list[str]) -> dict:
    slice_, name, spec, options = argv[0], argv[1], json.loads(argv[2]), json.loads(argv[3])
    protocol = argv[4] if len(argv) > 4 else "users"
    store = SampleStore(HERE / "data" / f"real-{slice_}" / f"samples-min{options.pop('min_count', 1)}")
    original = store.split.copy()
    evaluation = subset(store.indices("eval"), 20_000, 1)
    if protocol == "users":
        store.split = held_out_users(store)
    model, variant = spec.pop("model", "dipn"), None
    if model == "dipn":
        base = VARIANTS[spec.pop("base", "browse_history")]
        VARIANTS[name] = replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        variant = name
    config = TrainConfig(epochs=options.pop("epochs", 6), patience=options.pop("patience", 2), seed=options.pop("seed", 0),
                         max_train_samples=options.pop("train", 20_000), max_eval_samples=10_000, threads=1, **options)  # fmt: skip
    started = time.time()
    run = HERE / "data" / "choice-runs" / f"{slice_}-{protocol}-{name}-{config.seed}"
    row = fit_and_score(store, model, variant, config, run, evaluation, progress=False)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    tasks = ("realtime", "longterm") if slice_ == "tail" else ("realtime",)
    labels = store.labels[evaluation]
    out = {"name": name, "slice": slice_, "protocol": protocol, "seed": config.seed, "spec": argv[2], "options": argv[3],
           "secs": round(time.time() - started),
           "val_curve": {t: [round(h[t]["auc"], 4) for h in history if t in h] for t in tasks},
           "val_best": {t: max([h[t]["auc"] for h in history if t in h], default=None) for t in tasks},
           "eval": {t: round(task_metrics(labels[:, i], row.scores[t])["auc"], 4) for i, t in enumerate(tasks)}}  # fmt: skip
    print(json.dumps(out), flush=True)
    with open(HERE / "results" / "real_data-choice.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
