"""AUC of DIPN and the baselines on a public e-commerce log (paper Table 6, "browse only" rows).

    python benchmarks/real_data.py --format taobao-userbehavior --path UserBehavior.csv
    python benchmarks/real_data.py --format rees46 --path 2019-Oct.csv 2019-Nov.csv
    python benchmarks/real_data.py --format retailrocket --path events.csv category_tree.csv item_properties_part1.csv
    python benchmarks/real_data.py --format yoochoose --path yoochoose-clicks.dat yoochoose-buys.dat

Not run in CI: the logs are not shipped (each is a download from its publisher). The log is
imported into our raw contract (`dipn import`), cut into samples at random moments with the time
split of `dipn build-samples` (the last day is evaluation), and every model trains on the same
fixed training subset and is scored on the same evaluation subset. These logs hold a browse view
and the history derived from it, no swipes, taps or profile, so DIPN runs as its source-ablation
configurations. The intervals resample users, not samples (a user's samples are not independent).
Writes benchmarks/results/real_data-FORMAT.json and .md, then RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.machine import machine_info, machine_line  # noqa: E402
from benchmarks.render_results import render  # noqa: E402
from dipn.data.build import BuildConfig, build_samples  # noqa: E402
from dipn.data.importers import FORMATS, ImportConfig, import_logs  # noqa: E402
from dipn.data.store import SampleStore  # noqa: E402
from dipn.evaluation.metrics import bootstrap_auc_interval, task_metrics  # noqa: E402
from dipn.evaluation.predict import predict  # noqa: E402
from dipn.models.gbdt import GBDTBaseline, GBDTConfig  # noqa: E402
from dipn.training.batches import subset  # noqa: E402
from dipn.training.config import TrainConfig  # noqa: E402
from dipn.training.loop import Trainer  # noqa: E402

TASKS = ("realtime", "longterm")
# (row label, model, variant); variant None: the model's default restricted to the groups present.
ROWS = [
    ("GBDT", "gbdt", None),
    ("RNN+DNN", "rnn_dnn", None),
    ("DIPN w/ browse", "dipn", "only_browse"),
    ("DIPN w/ browse + history", "dipn", None),
]


def prepare(fmt: str, paths: list[Path], work: Path, lenient: bool, users_fraction: float, seed: int) -> SampleStore:
    """Import and build once per source; a rerun with the same files and settings reuses both."""
    raw, samples = work / "raw", work / "samples"
    source = {"format": fmt, "paths": [str(p.resolve()) for p in paths], "lenient": lenient,
              "users_fraction": users_fraction, "seed": seed}  # fmt: skip
    stamp = work / "source.json"
    if not stamp.exists() or json.loads(stamp.read_text()) != source:
        print(f"importing {fmt} -> {raw}", flush=True)
        import_logs(fmt, paths, raw, ImportConfig(lenient=lenient, users_fraction=users_fraction))
        print(f"building samples -> {samples}", flush=True)
        build_samples(raw, samples, BuildConfig(seed=seed, lenient=lenient))
        stamp.write_text(json.dumps(source) + "\n")
    return SampleStore(samples)


def score_gbdt(store: SampleStore, train: np.ndarray, evaluation: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """GBDT stops early on the latest 20% of the training subset, by time."""
    order = train[np.argsort(store.batch(train)["cut_ts"], kind="stable")]
    cut = int(len(order) * 0.8)
    model = GBDTBaseline(GBDTConfig(seed=seed), store.manifest.config)
    model.fit(store.batch(order[:cut]), store.batch(order[cut:]))
    return model.predict(store.batch(evaluation))


def score_torch(store: SampleStore, model: str, variant: str | None, config: TrainConfig, run_dir: Path,
                evaluation: np.ndarray) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:  # fmt: skip
    trainer = Trainer(store, replace(config, model=model, variant=variant), run_dir, progress=True)
    trainer.fit()
    preds = predict(trainer.model, store, evaluation)
    return {t: preds[f"p_{t}"] for t in trainer.tasks}, trainer.input_names


def row_metrics(scores: dict[str, np.ndarray], labels: dict[str, np.ndarray], users: np.ndarray,
                rounds: int, seed: int) -> dict[str, dict[str, float]]:  # fmt: skip
    out = {}
    for task in TASKS:
        metrics = task_metrics(labels[task], scores[task])
        low, high = bootstrap_auc_interval(labels[task], scores[task], users, rounds=rounds, seed=seed)
        out[task] = metrics | {"auc_low": low, "auc_high": high}
    return out


def fmt_auc(m: dict[str, float]) -> str:
    if m["auc"] != m["auc"]:
        return "-"
    return f"{m['auc']:.4f} [{m['auc_low']:.4f}, {m['auc_high']:.4f}]"


def markdown(report: dict) -> str:
    a, d = report["args"], report["data"]
    paths = " ".join(Path(p).name for p in a["path"])
    lines = [
        f"## Accuracy on a public log: {a['format']}",
        "",
        f"Command: `python benchmarks/real_data.py --format {a['format']} --path {paths} "
        f"--train-samples {a['train_samples']} --eval-samples {a['eval_samples']} --epochs {a['epochs']} "
        f"--bootstrap {a['bootstrap']} --users-fraction {a['users_fraction']:g} --seed {a['seed']}`  ",
        f"Machine: {machine_line(report['machine'])}  ",
        f"Data: {d['users']:,} users; groups {', '.join(d['groups'])}; train subset {d['train_used']:,} of "
        f"{d['train_samples']:,} samples, eval subset {d['eval_used']:,} of {d['eval_samples']:,} "
        f"({d['eval_users']:,} users); eval label rates: realtime {d['eval_realtime_rate']:.3f}, "
        f"longterm {d['eval_longterm_rate']:.3f}.",
        "",
        f"AUC with a {a['bootstrap']}-round bootstrap 95% interval over users.",
        "",
        "| model | inputs | AUC real-time | AUC long-term | train s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        m = row["metrics"]
        lines.append(f"| {row['label']} | {', '.join(row['inputs'])} | {fmt_auc(m['realtime'])} | "
                     f"{fmt_auc(m['longterm'])} | {row['train_seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="the log's published layout")
    p.add_argument("--path", required=True, nargs="+", type=Path, help="the log's file(s), as `dipn import` takes them")
    p.add_argument("--work", type=Path, help="where imported logs, samples and runs go (default benchmarks/data/real-FORMAT)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="where the JSON and Markdown results go")
    p.add_argument("--train-samples", type=int, default=50_000, help="fixed training subset (default 50,000)")
    p.add_argument("--eval-samples", type=int, default=20_000, help="fixed evaluation subset (default 20,000)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap rounds over users (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lenient", action="store_true", help="drop malformed rows (counted) instead of stopping")
    p.add_argument("--users-fraction", type=float, default=1.0,
                   help="import this share of the users (build-samples holds the log in memory: about 1 GB per "
                   "3 M events; the full Taobao file wants about 0.2)")
    p.add_argument("--no-render", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    missing = [str(path) for path in args.path if not path.exists()]
    if missing:
        p.error(f"no such file: {', '.join(missing)}")
    args.work = args.work or HERE / "data" / f"real-{args.format}"
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    store = prepare(args.format, args.path, args.work, args.lenient, args.users_fraction, args.seed)
    train = subset(store.indices("train"), args.train_samples, args.seed)
    evaluation = subset(store.indices("eval"), args.eval_samples, args.seed + 1)
    if len(train) == 0 or len(evaluation) == 0:
        raise SystemExit(f"{args.work / 'samples'}: no training or no evaluation samples; is the log long enough?")
    eval_batch = store.batch(evaluation)
    labels, users = {t: eval_batch[t] for t in TASKS}, eval_batch["user_index"]
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         patience=args.epochs, max_train_samples=args.train_samples,
                         max_eval_samples=args.eval_samples, threads=args.threads)  # fmt: skip
    splits = store.split_counts()
    report = {
        "args": {k: [str(p) for p in v] if k == "path" else str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_info(),
        "data": {"users": store.info["users"], "groups": list(store.groups_present),
                 "train_samples": splits["train"]["samples"], "eval_samples": splits["eval"]["samples"],
                 "train_used": len(train), "eval_used": len(evaluation), "eval_users": int(len(np.unique(users))),
                 "eval_realtime_rate": float(labels["realtime"].mean()),
                 "eval_longterm_rate": float(labels["longterm"].mean())},  # fmt: skip
        "rows": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"real_data-{args.format}"
    for label, model, variant in ROWS:
        print(f"\n=== {label} ===", flush=True)
        torch.manual_seed(args.seed)
        started = time.perf_counter()
        if model == "gbdt":
            scores, inputs = score_gbdt(store, train, evaluation, args.seed), tuple(store.groups_present)
        else:
            run_dir = args.work / "runs" / f"{model}-{variant or 'default'}"
            scores, inputs = score_torch(store, model, variant, config, run_dir, evaluation)
        seconds = time.perf_counter() - started
        metrics = row_metrics(scores, labels, users, args.bootstrap, args.seed)
        report["rows"].append({"label": label, "model": model, "variant": variant, "inputs": [i for i in inputs if i != "merged"],
                               "metrics": metrics, "train_seconds": seconds})  # fmt: skip
        print(json.dumps({t: fmt_auc(m) for t, m in metrics.items()}), flush=True)
        (args.out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    md = markdown(report)
    (args.out / f"{name}.md").write_text(md)
    if not args.no_render:
        render()
    print("\n" + md)
    return report


if __name__ == "__main__":
    main()
