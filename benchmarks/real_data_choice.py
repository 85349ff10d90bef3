"""Val evidence for DIPN-with-time choices on the real Taobao slices (issue 25), on held-out users.

    python -m benchmarks.real_data_choice tail wide '{"wide_context": true}' '{"epochs": 4}' users
    python -m benchmarks.real_data_choice window base '{}' '{"epochs": 2, "train": 10000, "lr": 0.003, "batch_size": 64}' valsplit

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

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

from benchmarks.tables import fit_and_score
from dipn.errors import DipnValidationError
from dipn.models.dipn import VARIANTS
from dipn.samples.store import SPLITS, SampleStore
from dipn.training.batches import subset
from dipn.training.config import TrainConfig
from dipn.training.metrics import task_metrics


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


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"wants a JSON object, got {text!r}")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.real_data_choice", description=__doc__.split("\n\n")[0])
    p.add_argument("slice", choices=("tail", "window"))
    p.add_argument("name", help="the run's name (and the variant's, for a DIPN run)")
    p.add_argument("spec", type=_json_object, help='DIPNConfig fields changed from browse_history, or {"model": "gbdt"}')
    p.add_argument("options", type=_json_object, help="TrainConfig fields, plus train (samples) and min_count")
    p.add_argument("protocol", nargs="?", choices=("users", "valsplit"), default="users")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    try:
        return run(args)
    except (DipnValidationError, TypeError, KeyError) as exc:  # a field no config has, a missing sample store
        raise SystemExit(f"real_data_choice: error: {exc}") from None


def run(args: argparse.Namespace) -> dict:
    slice_, name, spec, options, protocol = args.slice, args.name, dict(args.spec), dict(args.options), args.protocol
    store = SampleStore(HERE / "data" / f"real-{slice_}" / f"samples-min{options.pop('min_count', 1)}")
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
    out = {"name": name, "slice": slice_, "protocol": protocol, "seed": config.seed, "spec": json.dumps(args.spec),
           "options": json.dumps(args.options),
           "secs": round(time.time() - started),
           "val_curve": {t: [round(h[t]["auc"], 4) for h in history if t in h] for t in tasks},
           "val_best": {t: max([h[t]["auc"] for h in history if t in h], default=None) for t in tasks},
           "eval": {t: round(task_metrics(labels[:, i], row.scores[t])["auc"], 4) for i, t in enumerate(tasks)}}  # fmt: skip
    print(json.dumps(out), flush=True)
    with open(HERE / "results" / "real_data-choice.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    return out


if __name__ == "__main__":
    main()
