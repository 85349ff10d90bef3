"""AUC of DIPN and the baselines on a real public e-commerce log, leak-free (paper Table 6,
"browse only" rows; issue 16).

    python benchmarks/real_data.py        # the real Taobao slice in ../shared/data (the default)
    python benchmarks/real_data.py --cuts cuts.csv   # score at the moments another system was scored at
    python benchmarks/real_data.py --format rees46 --path 2019-Oct.csv 2019-Nov.csv
    python benchmarks/real_data.py --format retailrocket --path events.csv category_tree.csv item_properties_part1.csv
    python benchmarks/real_data.py --format yoochoose --path yoochoose-clicks.dat yoochoose-buys.dat

By default it reads ``../shared/data/taobao-userbehavior-tail/UserBehavior_tail.csv.gz`` (a real
slice of Taobao UserBehavior: 114 users, 9 days; see its SOURCE.md). The log is imported into
our raw contract (``dipn import``), cut into samples (``dipn build-samples``: at events and at the
idle moments a device timer scores, or at the ``--cuts`` moments), split by days into train, val
(early stopping and model choice) and eval (the test, scored once). Every row trains as ``dipn
train`` does on the same training subset and is scored on the same eval subset.

What a sample holds is what a phone knows at its cut: a page still open has stayed t - ts so far,
and recency (time since each view's last event) and the cut hour are inputs. These logs hold a
browse view and the history derived from it, no swipes, taps or profile, so DIPN runs on browse +
history, and GBDT+touch does not apply.

Reported per task: AUC with a user-bootstrap 95% interval (users, not samples, are resampled: a
user's samples are not independent), the paired AUC difference against GBDT on the same resamples,
and AUC by cut type (event / idle). Writes benchmarks/results/real_data-FORMAT.json and .md, then
RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.machine import machine_info, machine_line  # noqa: E402
from benchmarks.render_results import render  # noqa: E402
from dipn.data.build import BuildConfig, build_samples  # noqa: E402
from dipn.data.importers import FORMATS, ImportConfig, import_logs  # noqa: E402
from dipn.data.store import SampleStore  # noqa: E402
from dipn.errors import DipnValidationError  # noqa: E402
from dipn.evaluation.tables import EvalSet, ScoredRow, fit_and_score, format_delta, row_metrics  # noqa: E402
from dipn.models.gbdt import gbdt_config_for_data  # noqa: E402
from dipn.training.batches import subset  # noqa: E402
from dipn.training.config import TrainConfig  # noqa: E402

TASKS = ("realtime", "longterm")
TAOBAO_TAIL = HERE.parent.parent / "shared" / "data" / "taobao-userbehavior-tail" / "UserBehavior_tail.csv.gz"
# (row label, model, variant); variant None: the model's default restricted to the groups present.
ROWS = [
    ("GBDT", "gbdt", None),
    ("GBDT+touch", "gbdt_touch", None),
    ("RNN+DNN", "rnn_dnn", None),
    ("DIPN w/ browse", "dipn", "only_browse"),
    ("DIPN w/ browse + history", "dipn", None),
]
REFERENCE = "GBDT"  # the row every paired difference is taken against


def prepare(args: argparse.Namespace) -> SampleStore:
    """Import and build once per source and settings; a rerun with the same ones reuses both."""
    raw, samples = args.work / "raw", args.work / "samples"
    source = {"format": args.format, "paths": [str(p.resolve()) for p in args.path], "lenient": args.lenient,
              "users_fraction": args.users_fraction, "seed": args.seed,
              "cuts": str(args.cuts.resolve()) if args.cuts else None, "idle_share": args.idle_share}  # fmt: skip
    stamp = args.work / "source.json"
    if not stamp.exists() or json.loads(stamp.read_text()) != source:
        print(f"importing {args.format} -> {raw}", flush=True)
        import_logs(args.format, args.path, raw, ImportConfig(lenient=args.lenient, users_fraction=args.users_fraction))
        print(f"building samples -> {samples}", flush=True)
        build_samples(raw, samples, BuildConfig(seed=args.seed, lenient=args.lenient, idle_share=args.idle_share),
                      cuts_file=args.cuts)  # fmt: skip
        stamp.write_text(json.dumps(source) + "\n")
    return SampleStore(samples)


def fmt_auc(m: dict) -> str:
    if m["auc"] != m["auc"]:
        return "-"
    return f"{m['auc']:.4f} [{m['auc_low']:.4f}, {m['auc_high']:.4f}]"


def command(a: dict) -> str:
    parts = ["python benchmarks/real_data.py"]
    if a["path"] != [str(TAOBAO_TAIL)]:
        parts += ["--format", a["format"], "--path", *(Path(p).name for p in a["path"])]
    if a["cuts"]:
        parts += ["--cuts", Path(a["cuts"]).name]
    for flag in ("train_samples", "eval_samples", "epochs", "patience", "batch_size", "lr", "bootstrap", "seed"):
        parts += [f"--{flag.replace('_', '-')}", str(a[flag])]
    if a["idle_share"] is not None:
        parts += ["--idle-share", str(a["idle_share"])]
    return " ".join(parts)


def markdown(report: dict) -> str:
    a, d = report["args"], report["data"]
    lines = [
        f"## Real data: {a['format']}, leak-free (issue 16)",
        "",
        f"Command: `{command(a)}`  ",
        f"Machine: {machine_line(report['machine'])}  ",
        f"Data: {', '.join(Path(p).name for p in a['path'])}: {d['users']:,} users; groups {', '.join(d['groups'])}; "
        f"train subset {d['train_used']:,} of {d['train_samples']:,} samples, val {d['val_samples']:,} (early "
        f"stopping, model choice), eval {d['eval_used']:,} of {d['eval_samples']:,} ({d['eval_users']:,} users; "
        f"{d['eval_event_cuts']:,} cut at events, {d['eval_idle_cuts']:,} at idle moments); eval label rates: "
        f"realtime {d['eval_realtime_rate']:.3f}, longterm {d['eval_longterm_rate']:.3f}.",
        "",
        f"AUC on eval with a {a['bootstrap']}-round user-bootstrap 95% interval; Δ vs {REFERENCE}: the paired "
        "difference on the same resamples (an interval above 0: better than GBDT). Torch rows are scored with the "
        "epoch of best val AUC (best.pt); GBDT stops boosting on val.",
        "",
        f"| model | inputs | AUC real-time | Δ vs {REFERENCE} | AUC long-term | Δ vs {REFERENCE} | train s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        if "skipped" in row:
            lines.append(f"| {row['label']} | - | not applicable: {row['skipped']} | | | | |")
            continue
        m = row["metrics"]
        lines.append(f"| {row['label']} | {', '.join(row['inputs'])} | {fmt_auc(m['realtime'])} | {format_delta(m['realtime'])} "
                     f"| {fmt_auc(m['longterm'])} | {format_delta(m['longterm'])} | {row['train_seconds']:.0f} |")  # fmt: skip
    lines += ["", "Reading: " + "; ".join(verdicts(report["rows"])) + ".", "",
              "By cut type (AUC [95% interval]; samples):", "",
              "| model | real-time, event cuts | real-time, idle cuts | long-term, event cuts | long-term, idle cuts |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in report["rows"]:
        if "skipped" in row:
            continue
        cells = []
        for task in TASKS:
            for kind in ("event", "idle"):
                m = row["metrics"][task]["by_cut_type"].get(kind)
                cells.append(f"{fmt_auc(m)}; {m['samples']:,}" if m else "-")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdicts(rows: list[dict]) -> list[str]:
    """Each row against GBDT per task, as its paired interval says: above, below, or not resolved."""
    out = []
    for row in rows:
        if "skipped" in row or row["label"] == REFERENCE:
            continue
        for task in TASKS:
            d = row["metrics"][task].get("vs_reference", {})
            word = ("above GBDT" if d["low"] > 0 else "below GBDT" if d["high"] < 0 else "not resolved from GBDT") \
                if d and d["low"] == d["low"] else "no interval"  # fmt: skip
            out.append(f"{row['label']} {task} {word} (Δ {d.get('delta', float('nan')):+.4f})")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", default="taobao-userbehavior", choices=sorted(FORMATS),
                   help="the log's published layout (default taobao-userbehavior)")  # fmt: skip
    p.add_argument("--path", nargs="+", type=Path, default=[TAOBAO_TAIL],
                   help=f"the log's file(s), as `dipn import` takes them (default {TAOBAO_TAIL})")  # fmt: skip
    p.add_argument("--cuts", type=Path, help="CSV user_id, ts (integer ms), optional split (train|val|eval): cut "
                   "samples at exactly these moments (dipn build-samples --cuts)")  # fmt: skip
    p.add_argument("--work", type=Path, help="where imported logs, samples and runs go (default benchmarks/data/real-FORMAT)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="where the JSON and Markdown results go")
    p.add_argument("--train-samples", type=int, default=50_000, help="fixed training subset (default 50,000)")
    p.add_argument("--eval-samples", type=int, default=20_000, help="fixed evaluation subset (default 20,000)")
    p.add_argument("--epochs", type=int, default=8, help="at most this many epochs (default 8)")
    p.add_argument("--patience", type=int, default=2, help="epochs without a better val AUC before stopping (default 2)")
    p.add_argument("--batch-size", type=int, default=256, help="default 256, the training default")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3, the training default)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap rounds over users (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--idle-share", type=float, default=None, help="share of cuts at idle moments (default: as a "
                   "device timer would score them; build-samples --idle-share)")  # fmt: skip
    p.add_argument("--only", nargs="*", help="row labels to run (default: all)")
    p.add_argument("--lenient", action="store_true", help="drop malformed rows (counted) instead of stopping")
    p.add_argument("--users-fraction", type=float, default=1.0,
                   help="import this share of the users (build-samples holds the log in memory: about 1 GB per "
                   "3 M events; the full Taobao file wants about 0.2)")
    p.add_argument("--no-render", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    missing = [str(path) for path in args.path if not path.exists()]
    if missing:
        hint = " (the real Taobao slice lives in ../shared/data; pass --format and --path for another log)" \
            if args.path == [TAOBAO_TAIL] else ""  # fmt: skip
        p.error(f"no such file: {', '.join(missing)}{hint}")
    if args.cuts is not None and not args.cuts.exists():
        p.error(f"no such file: {args.cuts}")
    args.work = args.work or HERE / "data" / f"real-{args.format}"
    return args


def data_facts(store: SampleStore, train: np.ndarray, ev: EvalSet) -> dict:
    splits = store.split_counts()
    return {"users": store.info["users"], "groups": list(store.groups_present),
            "train_samples": splits["train"]["samples"], "val_samples": splits["val"]["samples"],
            "eval_samples": splits["eval"]["samples"], "train_used": len(train), "eval_used": len(ev.indices),
            "eval_users": int(len(np.unique(ev.users))),
            "eval_event_cuts": int((ev.cut_type == 0).sum()), "eval_idle_cuts": int((ev.cut_type == 1).sum()),
            "eval_realtime_rate": float(ev.labels["realtime"].mean()),
            "eval_longterm_rate": float(ev.labels["longterm"].mean())}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        store = prepare(args)
    except DipnValidationError as exc:
        raise SystemExit(f"real_data: error: {exc}") from None
    train = subset(store.indices("train"), args.train_samples, args.seed)
    evaluation = subset(store.indices("eval"), args.eval_samples, args.seed + 1)
    if len(train) == 0 or len(evaluation) == 0 or len(store.indices("val")) == 0:
        raise SystemExit(f"{args.work / 'samples'}: a split is empty ({store.split_counts()}); is the log long enough?")
    ev = EvalSet.of(store, evaluation)
    config = TrainConfig(epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, max_train_samples=args.train_samples, threads=args.threads)  # fmt: skip
    report = {
        "args": {k: [str(p) for p in v] if k == "path" else str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_info(),
        "data": data_facts(store, train, ev),
        "rows": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"real_data-{args.format}"
    reference: ScoredRow | None = None
    for label, model, variant in ROWS:
        if args.only and label not in args.only and label != REFERENCE:
            continue
        print(f"\n=== {label} ===", flush=True)
        if model == "gbdt_touch":
            try:
                gbdt_config_for_data(model, store.groups_present)
            except DipnValidationError as exc:
                report["rows"].append({"label": label, "model": model, "skipped": str(exc).split("; use")[0]})
                continue
        row = fit_and_score(store, model, variant, config, args.work / "runs" / f"{model}-{variant or 'default'}", evaluation)
        reference = row if label == REFERENCE else reference
        metrics = row_metrics(row, ev, reference if label != REFERENCE else None, args.bootstrap, args.seed)
        report["rows"].append({"label": label, "model": model, "variant": variant, "inputs": list(row.inputs),
                               "metrics": metrics, "train_seconds": row.train_seconds})  # fmt: skip
        print(json.dumps({t: f"{fmt_auc(m)} Δ {format_delta(m)}" for t, m in metrics.items()}), flush=True)
        (args.out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    md = markdown(report)
    (args.out / f"{name}.md").write_text(md)
    if not args.no_render:
        render()
    print("\n" + md)
    return report


if __name__ == "__main__":
    main()
