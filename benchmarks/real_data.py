"""AUC of DIPN and the other models on real public e-commerce logs, leak-free, several seeds per row
(issues 16 and 25).

    python -m benchmarks.real_data --slice tail      # Taobao tail slice: 114 users, 9 days, both tasks
    python -m benchmarks.real_data --slice window    # Taobao window slice: 66,454 users, 2 hours, 1 h task
    python -m benchmarks.real_data --slice tail --seeds 5 --epochs 8      # on a quiet machine
    python -m benchmarks.real_data --format rees46 --path 2019-Oct.csv    # another public log (split by days)

The slices live in ../shared/data (read each SOURCE.md). A log is imported into our raw contract
(``dipn import``) and cut into samples (``dipn build-samples``). What a sample holds is what a
phone knows at its cut; these logs hold a browse view and the history derived from it (no swipes,
taps or profile), so every model runs on browse + history + context.

* **tail**: cut at random moments (events and idle-timer moments), split by days: train, val (one
  day: early stopping, every choice), eval (the last day, the test). Both tasks.
* **window**: every user's events of two hours. A 24 h label is never observed there (a build that
  asks for one stops with a one-line reason), and two hours cannot be split by days. The cuts are
  written here and given to ``build-samples --cuts``: event and idle-timer moments from the first
  event to one hour before the last (the 1 h label is observed), at most ``--cuts-per-user`` per
  user drawn with the seed (``dipn.samples.cuts.sample_cuts``), and the users split 70 / 15 / 15 into
  train / val / eval by a seeded permutation: eval users are never seen in training. Only the
  real-time (1 h) task is reported; the samples are built with a 1 h long-term horizon, so the
  long-term head trains on the same label and is not reported.

Rows (``ROWS``): GBDT, the recency rule (``recency_scores``: no training, a fair floor), RNN+DNN, the
paper-literal DIPN, DIPN with time, ATRank, RIB, each (but the rule) a preset of
``dipn.presets``. A row whose preset this branch does not define is listed as such, not run. Every
row trains ``--seeds`` seeds on the same training subset and is scored on the same eval subset.

Embeddings (issue 25, item 2): tables are sized to the vocabulary the build makes. The frequency
floor (``build-samples --min-count``: rarer categories read as OOV) and embedding dropout
(``train --embedding-dropout``) of the ``TUNED`` row are chosen on val with the first seed; every
candidate is an ablation row of the output (val AUC decides, eval AUC is shown beside). The other
rows keep the defaults (every value seen, no embedding dropout).

Reported per task: the mean AUC over seeds with a 95% interval from a bootstrap over users and
seeds (``dipn.evaluation.seeded``), the spread of the seeds (sd), paired differences against GBDT
and ATRank on the same resamples, and all of it by cut type (event / idle). Writes
benchmarks/results/real_data-SLICE.json and .md, then RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent

from benchmarks.machine import machine_info, machine_line
from benchmarks.render_results import render
from benchmarks.tables import EvalSet, fit_and_score, saved_scores
from dipn.errors import DipnValidationError
from dipn.evaluation.seeded import seeded_row_metrics
from dipn.features.spec import Group
from dipn.logs.importers import FORMATS, ImportConfig, import_logs
from dipn.presets import PRESETS, preset
from dipn.samples.build import BuildConfig, build_samples
from dipn.samples.cuts import CutWindow, sample_cuts
from dipn.samples.store import SampleStore
from dipn.training.batches import subset
from dipn.training.config import TrainConfig

TASKS = ("realtime", "longterm")
DATA = HERE.parent.parent / "shared" / "data"
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Slice:
    path: Path
    tasks: tuple[str, ...]
    title: str


SLICES = {
    "tail": Slice(DATA / "taobao-userbehavior-tail" / "UserBehavior_tail.csv.gz", TASKS,
                  "Taobao UserBehavior, tail slice (114 users, 9 days)"),
    "window": Slice(DATA / "taobao-userbehavior-window" / "UserBehavior_window.csv.gz", ("realtime",),
                    "Taobao UserBehavior, 2-hour window slice (66,454 users)"),
}  # fmt: skip

# The two DIPN rows, by preset name: the paper's DIPN and ours (time at every step), both on what
# public logs hold (browse + history).
PAPER_LITERAL_PRESET = "browse_history_paper"
DIPN_WITH_TIME_PRESET = "browse_history"
RULE = "recency"  # a row with no training: ``recency_scores``
# Rows in table order, by preset name (labels from ``dipn.presets``), and the rule.
ROW_PRESETS = ("gbdt", RULE, "rnn_dnn", PAPER_LITERAL_PRESET, DIPN_WITH_TIME_PRESET, "atrank", "rib")
# (row label, model, preset); preset None: the model's default configuration on the groups present.
ROWS = [("Recency rule", RULE, None) if name == RULE else (preset(name).title, preset(name).model, preset(name).config_name)
        for name in ROW_PRESETS]  # fmt: skip
REFERENCES = (preset("gbdt").title, preset("atrank").title)  # every paired difference is taken against these rows
TUNED = preset(DIPN_WITH_TIME_PRESET).title  # the row whose frequency floor and embedding dropout are chosen on val
FLOORS = (1, 5)  # build-samples --min-count candidates (1: every value seen)
EMBEDDING_DROPOUTS = (0.2,)  # train --embedding-dropout candidates beside 0


def defined(preset: str | None) -> bool:
    return preset is None or preset in {p.name for p in PRESETS}


def variant_of(model: str, preset: str | None) -> str | None:
    """The --variant a row trains: a model's own-name preset is its default configuration, which
    keeps the groups a public log has (browse, history, context); another preset is trained as named
    (``dipn train`` refuses one that reads groups the log lacks)."""
    return None if preset == model else preset


# ---- data ---------------------------------------------------------------------------------------
def window_cuts(raw: Path, out: Path, per_user: float, seed: int) -> dict:
    """The window slice's cuts (module docstring): moments with an observed 1 h label, a few per
    user, users split into train / val / eval by a seeded permutation."""
    events = pl.read_parquet(raw / "browse.parquet", columns=["user_id", "ts"])
    users, user_idx = np.unique(events["user_id"].to_numpy().astype(str), return_inverse=True)
    ts = events["ts"].to_numpy().astype(np.int64)
    start, end = int(ts.min()), int(ts.max()) + 1 - HOUR_MS
    cut_user, cut_ts, _ = sample_cuts(user_idx, ts, CutWindow(start, end, end, end), per_user, seed)
    rank = np.empty(len(users), np.int64)
    rank[np.random.default_rng(seed).permutation(len(users))] = np.arange(len(users))
    split = np.where(rank < 0.70 * len(users), "train", np.where(rank < 0.85 * len(users), "val", "eval"))
    pl.DataFrame({"user_id": users[cut_user], "ts": cut_ts, "split": split[cut_user]}).write_csv(out)
    return {"cuts": int(len(cut_ts)), "cut_users": int(len(np.unique(cut_user))), "first_cut_ms": start,
            "cuts_end_ms": end, "cuts_per_user": per_user}  # fmt: skip


def prepare(args: argparse.Namespace, min_count: int) -> tuple[SampleStore, dict]:
    """Import once, build once per frequency floor; a rerun with the same settings reuses both."""
    raw, samples = args.work / "raw", args.work / f"samples-min{min_count}"
    source = {"format": args.format, "paths": [str(p.resolve()) for p in args.path], "lenient": args.lenient,
              "users_fraction": args.users_fraction, "seed": args.seed, "slice": args.slice,
              "cuts": str(args.cuts.resolve()) if args.cuts else None, "idle_share": args.idle_share,
              "cuts_per_user": args.cuts_per_user, "min_count": min_count}  # fmt: skip
    stamp = samples / "source.json"
    facts: dict = {}
    if not (args.work / "raw.json").exists() or json.loads((args.work / "raw.json").read_text()) != source | {"min_count": None}:
        print(f"importing {args.format} -> {raw}", flush=True)
        import_logs(args.format, args.path, raw, ImportConfig(lenient=args.lenient, users_fraction=args.users_fraction))
        (args.work / "raw.json").write_text(json.dumps(source | {"min_count": None}) + "\n")
    cuts = args.cuts
    build = BuildConfig(seed=args.seed, lenient=args.lenient, idle_share=args.idle_share, min_count=min_count)
    if args.slice == "window":
        cuts = args.work / "cuts.csv"
        facts = window_cuts(raw, cuts, args.cuts_per_user, args.seed)
        build = BuildConfig(seed=args.seed, lenient=args.lenient, longterm_hours=1.0, min_count=min_count)
    if not stamp.exists() or json.loads(stamp.read_text()) != source:
        print(f"building samples (min count {min_count}) -> {samples}", flush=True)
        build_samples(raw, samples, build, cuts_file=cuts, progress=False)
        stamp.write_text(json.dumps(source) + "\n")
    return SampleStore(samples), facts


def refusal_of_24h(raw: Path) -> str:
    """The one line ``build-samples`` gives when asked for 24 h labels on this log (or "" if it builds)."""
    try:
        build_samples(raw, raw.parent / "samples-24h-check", BuildConfig(), progress=False)
    except DipnValidationError as exc:
        return str(exc)
    return ""


# ---- rows ---------------------------------------------------------------------------------------
def val_score(run_dir: Path, tasks: tuple[str, ...]) -> float:
    """Mean over ``tasks`` of each task's best val AUC over the epochs (what the choice reads)."""
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return float(np.mean([max(h[t]["auc"] for h in history if t in h) for t in tasks]))


def train_seeds(store: SampleStore, model: str, variant: str | None, config: TrainConfig, run_root: Path,
                evaluation: np.ndarray, seeds: list[int], tasks: tuple[str, ...],
                first: dict | None = None) -> tuple[list[dict], list[float]]:  # fmt: skip
    """Task -> eval scores per seed, and the seconds each seed took to train; ``first``: the first
    seed's scores and seconds, already trained (the chosen candidate of the embedding choice)."""
    runs, seconds = ([first["scores"]], [first["train_seconds"]]) if first else ([], [])
    for seed in seeds[len(runs):]:
        row = fit_and_score(store, model, variant, replace(config, seed=seed), run_root / f"seed{seed}", evaluation,
                            progress=False)  # fmt: skip
        runs.append({t: row.scores[t] for t in tasks if t in row.scores})
        seconds.append(row.train_seconds)
        print(f"  seed {seed}: {row.train_seconds:.0f} s", flush=True)
    return runs, seconds


def recency_scores(store: SampleStore, evaluation: np.ndarray, tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The recency rule, a fair floor for every model: the more recent the last browse event, the
    likelier a purchase (score = 1 / (1 + the context's recency_browse bucket id), a rank rather
    than a probability, the same for both tasks). Fixed in advance, nothing fitted, no choice: on the tail slice this one input scored
    about as much as GBDT on the 1 h task (issue 25)."""
    specs = store.manifest.config.group(Group.CONTEXT)
    column = next(i for i, spec in enumerate(specs) if spec.name == "recency_browse")
    chunks = np.array_split(evaluation, max(1, len(evaluation) // 2048))
    ids = np.concatenate([store.batch(chunk)["context"][:, column] for chunk in chunks]).astype(np.float64)
    return {t: 1.0 / (1.0 + ids) for t in tasks}  # decreasing in the bucket, inside (0, 1) as metrics want


def choose_embeddings(args: argparse.Namespace, stores: dict[int, SampleStore], config: TrainConfig,
                      evaluation: np.ndarray, ev: EvalSet, tasks: tuple[str, ...]) -> tuple[dict, list[dict]]:  # fmt: skip
    """The tuned row's (floor, embedding dropout): every candidate trained with the first seed, the
    best val score kept; returns the choice and the ablation rows."""
    from dipn.training.metrics import task_metrics

    _, model, variant = next(r for r in ROWS if r[0] == TUNED)
    candidates = [(f, 0.0) for f in FLOORS] + [(1, p) for p in EMBEDDING_DROPOUTS]
    rows = []
    for floor, dropout in candidates:
        print(f"\n=== {TUNED}: min count {floor}, embedding dropout {dropout} (seed {args.seed}) ===", flush=True)
        run_dir = args.work / "runs" / "choice" / f"min{floor}-edrop{dropout}"
        started = time.perf_counter()
        scored = fit_and_score(stores[floor], model, variant_of(model, variant), replace(config, embedding_dropout=dropout),
                               run_dir, evaluation, progress=False)  # fmt: skip
        manifest = stores[floor].manifest
        rows.append({"min_count": floor, "embedding_dropout": dropout, "val": val_score(run_dir, tasks),
                     "scores": {t: scored.scores[t] for t in tasks},
                     "eval": {t: task_metrics(ev.labels[t], scored.scores[t])["auc"] for t in tasks},
                     "leaf_category_values": len(manifest.vocabularies.get("browse.leaf_category", ())),
                     "parameters": scored.parameters, "train_seconds": time.perf_counter() - started})  # fmt: skip
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "scores"}), flush=True)
    best = max(rows, key=lambda r: r["val"])
    first = {"scores": best.pop("scores"), "train_seconds": best["train_seconds"]}
    for r in rows:
        r.pop("scores", None)
    return {"min_count": best["min_count"], "embedding_dropout": best["embedding_dropout"], "first_seed": first}, rows


# ---- report -------------------------------------------------------------------------------------
def fmt_auc(m: dict | None) -> str:
    if not m or m["auc"] != m["auc"]:
        return "-"
    interval = "" if m["auc_low"] != m["auc_low"] else f" [{m['auc_low']:.4f}, {m['auc_high']:.4f}]"
    return f"{m['auc']:.4f}{interval} ±{m['auc_sd']:.4f}"


def fmt_delta(m: dict | None, reference: str) -> str:
    d = (m or {}).get(f"vs_{reference}")
    if not d or d["delta"] != d["delta"]:
        return "-"
    return f"{d['delta']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


def command(a: dict) -> str:
    parts = ["python -m benchmarks.real_data"]
    parts += ["--slice", a["slice"]]
    if a["slice"] == "custom":
        parts += ["--format", a["format"], "--path", *(Path(p).name for p in a["path"])]
    if a["cuts"]:
        parts += ["--cuts", Path(a["cuts"]).name]
    flags = ["seeds", "train_samples", "eval_samples", "val_samples", "epochs", "epoch_samples", "patience", "batch_size", "lr",
             "bootstrap", "seed", "threads"] + (["cuts_per_user"] if a["slice"] == "window" else [])  # fmt: skip
    parts += [f"--{f.replace('_', '-')} {a[f]}" for f in flags if a.get(f) is not None]
    parts += ["--no-tune"] if a["no_tune"] else []
    return " ".join(parts)


def markdown(report: dict) -> str:
    a, d, tasks = report["args"], report["data"], report["tasks"]
    names = {"realtime": "real-time (1 h)", "longterm": "long-term (24 h)"}
    lines = [
        f"## Real data: {report['title']}, leak-free, {len(report['seeds'])} seeds per row (issues 16, 25)", "",
        f"Command: `{command(a)}`  ",
        f"Machine: {machine_line(report['machine'])}; load average {report['load'][0]} at the start, "
        f"{report['load'][1]} at the end; whole run {report['wall_seconds'] / 60:.1f} min wall clock  ",
        f"Data: {d['users']:,} users; groups {', '.join(d['groups'])}; {d['split_rule']}; train subset "
        f"{d['train_used']:,} of {d['train_samples']:,} samples, val {d['val_used']:,} of {d['val_samples']:,} "
        f"(early stopping, every choice), eval {d['eval_used']:,} of {d['eval_samples']:,} ({d['eval_users']:,} users; "
        f"{d['eval_event_cuts']:,} cut at events, {d['eval_idle_cuts']:,} at idle moments); eval label rates: "
        + ", ".join(f"{t} {d[f'eval_{t}_rate']:.3f}" for t in tasks) + ".",
        "",
    ]
    if d.get("refused_24h"):
        lines += [f"24 h task: not built. `dipn build-samples` on this log with the default horizons says: "
                  f"`dipn: error: {d['refused_24h']}`", ""]  # fmt: skip
    lines += [f"AUC on eval: the mean over seeds {report['seeds']}, a 95% interval from {a['bootstrap']} bootstrap "
              "rounds resampling users and seeds, ± the seeds' standard deviation. Δ: the paired difference of mean "
              "AUCs on the same resamples (an interval above 0: better than the reference). Torch rows are scored "
              "with their best val epoch (best.pt); GBDT stops boosting on val.", "",
              "| model | preset | " + " | ".join(f"AUC {names[t]} | Δ vs GBDT | Δ vs ATRank" for t in tasks)
              + " | train s per seed |",
              "| --- | --- | " + " | ".join("--- | --- | ---" for _ in tasks) + " | --- |"]  # fmt: skip
    for row in report["rows"]:
        if "skipped" in row:
            lines.append(f"| {row['label']} | {row['variant']} | not run: {row['skipped']} |" + " |" * (3 * len(tasks)))
            continue
        m = row["metrics"]
        cells = [f"{fmt_auc(m[t])} | {fmt_delta(m[t], 'GBDT')} | {fmt_delta(m[t], 'ATRank')}" for t in tasks]
        lines.append(f"| {row['label']} | {row['variant'] or 'default'}{row.get('embedding_note', '')} | "
                     + " | ".join(cells) + f" | {np.median(row['train_seconds']):.0f} |")  # fmt: skip
    if not report.get("paper_literal_defined", True):
        lines += ["", f"This run predates the paper-literal preset ({PAPER_LITERAL_PRESET!r} is not defined in the "
                  f"code that ran, git {report['machine'].get('git_revision', '?')}): there, preset {DIPN_WITH_TIME_PRESET!r} is "
                  "DIPN without the time-before-cut inputs of issue 25, item 1."]  # fmt: skip
    lines += ["", "Reading: " + "; ".join(verdicts(report)) + ".", "", "By cut type (mean AUC [95% interval] ±sd; "
              "Δ vs GBDT; Δ vs ATRank; samples):", "",
              "| model | " + " | ".join(f"{names[t]}, {k} cuts" for t in tasks for k in ("event", "idle")) + " |",
              "| --- | " + " | ".join("---" for _ in tasks for _ in range(2)) + " |"]  # fmt: skip
    for row in report["rows"]:
        if "skipped" in row:
            continue
        cells = []
        for task in tasks:
            for kind in ("event", "idle"):
                m = row["metrics"][task]["by_cut_type"].get(kind)
                cells.append(f"{fmt_auc(m)}; {fmt_delta(m, 'GBDT')}; {fmt_delta(m, 'ATRank')}; {m['samples']:,}" if m else "-")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    if report.get("ablation"):
        lines += ["", f"Embedding choices of {TUNED} (seed {report['seeds'][0]}): frequency floor (`build-samples "
                  "--min-count`) and embedding dropout (`train --embedding-dropout`), chosen on the val score (mean "
                  "over the tasks of the best val AUC); eval AUC shown beside, never read by the choice.", "",
                  "| min count | embedding dropout | leaf-category values | parameters | val score | "
                  + " | ".join(f"eval AUC {names[t]}" for t in tasks) + " | chosen |",
                  "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in tasks) + " | --- |"]  # fmt: skip
        for r in report["ablation"]:
            chosen = r["min_count"] == report["choice"]["min_count"] and r["embedding_dropout"] == report["choice"]["embedding_dropout"]
            lines.append(f"| {r['min_count']} | {r['embedding_dropout']} | {r['leaf_category_values']:,} | {r['parameters']:,} "
                         f"| {r['val']:.4f} | " + " | ".join(f"{r['eval'][t]:.4f}" for t in tasks)
                         + f" | {'yes' if chosen else ''} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def verdicts(report: dict) -> list[str]:
    """DIPN with time against each reference per task, as the paired interval says."""
    rows = {r["label"]: r for r in report["rows"] if "skipped" not in r}
    out = []
    for label in (TUNED, preset(PAPER_LITERAL_PRESET).title):
        for task in report["tasks"]:
            for ref in REFERENCES:
                d = rows.get(label, {}).get("metrics", {}).get(task, {}).get(f"vs_{ref}")
                if not d or label == ref:
                    continue
                word = ("above" if d["low"] > 0 else "below" if d["high"] < 0 else "not resolved from") \
                    if d["low"] == d["low"] else "no interval against"  # fmt: skip
                out.append(f"{label} {task} {word} {ref} (Δ {d['delta']:+.4f})")
    return out or ["no DIPN row ran"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slice", choices=(*SLICES, "custom"), default="tail",
                   help="tail or window (../shared/data), or custom: --format and --path (default tail)")  # fmt: skip
    p.add_argument("--format", default="taobao-userbehavior", choices=sorted(FORMATS),
                   help="the log's published layout (custom slice; default taobao-userbehavior)")  # fmt: skip
    p.add_argument("--path", nargs="+", type=Path, help="the log's file(s), as `dipn import` takes them (custom slice)")
    p.add_argument("--cuts", type=Path, help="CSV user_id, ts (integer ms), optional split (train|val|eval): cut "
                   "samples at exactly these moments (dipn build-samples --cuts); not with --slice window")  # fmt: skip
    p.add_argument("--work", type=Path, help="where imported logs, samples and runs go (default benchmarks/data/real-SLICE)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="where the JSON and Markdown results go")
    p.add_argument("--seeds", type=int, default=3, help="seeds per row: --seed, --seed + 1, ... (default 3)")
    p.add_argument("--train-samples", type=int, default=20_000, help="fixed training subset (default 20,000)")
    p.add_argument("--val-samples", type=int, default=10_000, help="fixed val subset scored each epoch (default 10,000)")
    p.add_argument("--eval-samples", type=int, default=20_000, help="fixed evaluation subset (default 20,000)")
    p.add_argument("--epochs", type=int, default=6, help="at most this many epochs (default 6)")
    p.add_argument("--epoch-samples", type=int, default=None, help="training samples per epoch (default: the whole "
                   "training subset); val, early stopping and each task's best epoch act within a pass")
    p.add_argument("--patience", type=int, default=2, help="epochs without a better val AUC before stopping (default 2)")
    p.add_argument("--batch-size", type=int, default=256, help="default 256, the training default")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3, the training default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap rounds over users and seeds (default 500)")
    p.add_argument("--seed", type=int, default=0, help="first training seed; also the seed of cuts, splits and subsets")
    p.add_argument("--cuts-per-user", type=float, default=4.0, help="window slice: cuts per user (default 4)")
    p.add_argument("--idle-share", type=float, default=None, help="share of cuts at idle moments (default: as a "
                   "device timer would score them; build-samples --idle-share)")  # fmt: skip
    p.add_argument("--only", nargs="*", help="row labels to run (default: all; the references always run)")
    p.add_argument("--no-tune", action="store_true", help=f"skip the embedding choices of {TUNED}: defaults")
    p.add_argument("--lenient", action="store_true", help="drop malformed rows (counted) instead of stopping")
    p.add_argument("--users-fraction", type=float, default=1.0,
                   help="import this share of the users (build-samples holds the log in memory: about 1 GB per "
                   "3 M events; the full Taobao file wants about 0.2)")
    p.add_argument("--no-render", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    p.add_argument("--rerender", action="store_true", help="rewrite the Markdown of this slice from its results "
                   "JSON (no training), then RESULTS.md")  # fmt: skip
    p.add_argument("--rescore", action="store_true", help="recompute every row's metrics of this run from its saved "
                   "models (no training; give the run's own options), then its JSON, Markdown and RESULTS.md")  # fmt: skip
    args = p.parse_args(argv)
    if args.slice != "custom":
        if args.path:
            p.error("--path goes with --slice custom")
        args.path = [SLICES[args.slice].path]
    elif not args.path:
        p.error("--slice custom needs --path")
    if args.slice == "window" and args.cuts:
        p.error("the window slice writes its own cuts (see --help)")
    missing = [str(path) for path in args.path if not path.exists()]
    if missing:
        p.error(f"no such file: {', '.join(missing)} (the real Taobao slices live in ../shared/data)")
    if args.cuts is not None and not args.cuts.exists():
        p.error(f"no such file: {args.cuts}")
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    args.work = args.work or HERE / "data" / f"real-{args.slice if args.slice != 'custom' else args.format}"
    return args


def data_facts(store: SampleStore, train: np.ndarray, val_used: int, ev: EvalSet, tasks: tuple[str, ...]) -> dict:
    splits = store.split_counts()
    return {"users": store.info["users"], "groups": list(store.groups_present),
            "train_samples": splits["train"]["samples"], "val_samples": splits["val"]["samples"],
            "eval_samples": splits["eval"]["samples"], "train_used": len(train), "val_used": val_used,
            "eval_used": len(ev.indices), "eval_users": int(len(np.unique(ev.users))),
            "eval_event_cuts": int((ev.cut_type == 0).sum()), "eval_idle_cuts": int((ev.cut_type == 1).sum()),
            **{f"eval_{t}_rate": float(ev.labels[t].mean()) for t in tasks}}  # fmt: skip


def rerender(args: argparse.Namespace) -> dict:
    """The Markdown of a finished run, from its JSON (a text change needs no retraining)."""
    name = f"real_data-{args.slice if args.slice != 'custom' else args.format}"
    report = json.loads((args.out / f"{name}.json").read_text())
    report.setdefault("paper_literal_defined", any(r.get("variant") == PAPER_LITERAL_PRESET and "skipped" not in r
                                                   for r in report["rows"]))  # fmt: skip
    (args.out / f"{name}.md").write_text(markdown(report))
    if not args.no_render:
        render()
    return report


def rescore(args: argparse.Namespace) -> dict:
    """Every row's metrics of a finished run recomputed from its saved models and the rule (no
    training), then its JSON and Markdown rewritten: for a fix in scoring or metrics. Give the
    run's own command line plus ``--rescore``."""
    name = f"real_data-{args.slice if args.slice != 'custom' else args.format}"
    report = json.loads((args.out / f"{name}.json").read_text())
    choice = report.get("choice", {"min_count": 1, "embedding_dropout": 0.0})
    stores = {floor: prepare(args, floor)[0] for floor in {1, choice["min_count"]}}
    store, tasks = stores[1], tuple(report["tasks"])
    evaluation = subset(store.indices("eval"), args.eval_samples, args.seed + 1)
    ev = EvalSet.of(store, evaluation)
    runs: dict[str, list[dict]] = {}
    for row in report["rows"]:
        if "skipped" in row:
            continue
        if row["model"] == RULE:
            runs[row["label"]] = [recency_scores(store, evaluation, tasks)]
            row["variant"] = "rule: 1 / (1 + recency_browse)"
            continue
        root, tuned = args.work / "runs" / row["label"].replace(" ", "_"), row["label"] == TUNED
        dirs = [root / f"seed{seed}" for seed in report["seeds"]]
        if tuned and report.get("ablation"):
            dirs[0] = args.work / "runs" / "choice" / f"min{choice['min_count']}-edrop{choice['embedding_dropout']}"
        row_store = stores[choice["min_count"]] if tuned else store
        runs[row["label"]] = [saved_scores(row_store, row["model"], d, evaluation) for d in dirs]
    references = {r: runs[r] for r in REFERENCES if r in runs}
    for row in report["rows"]:
        if "skipped" not in row:
            refs = {r: v for r, v in references.items() if r != row["label"]}
            row["metrics"] = seeded_row_metrics(runs[row["label"]], ev.labels, ev.users, ev.cut_type, refs,
                                                report["args"]["bootstrap"], report["args"]["seed"])  # fmt: skip
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / f"{name}.md").write_text(markdown(report))
    if not args.no_render:
        render()
    return report


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.rerender:
        return rerender(args)
    if args.rescore:
        return rescore(args)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    tasks = SLICES[args.slice].tasks if args.slice in SLICES else TASKS
    floors = FLOORS if not args.no_tune else (1,)
    try:
        prepared = {floor: prepare(args, floor) for floor in floors}
    except DipnValidationError as exc:
        raise SystemExit(f"real_data: error: {exc}") from None
    stores = {floor: s for floor, (s, _) in prepared.items()}
    store, cut_facts = prepared[1]
    train = subset(store.indices("train"), args.train_samples, args.seed)
    evaluation = subset(store.indices("eval"), args.eval_samples, args.seed + 1)
    if len(train) == 0 or len(evaluation) == 0 or len(store.indices("val")) == 0:
        raise SystemExit(f"{args.work}: a split is empty ({store.split_counts()}); is the log long enough?")
    ev = EvalSet.of(store, evaluation)
    for other in stores.values():  # a floor changes ids, never the cuts: every row scores the same samples
        assert np.array_equal(EvalSet.of(other, evaluation).users, ev.users)
    config = TrainConfig(epochs=args.epochs, epoch_samples=args.epoch_samples, patience=args.patience,
                         batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, max_train_samples=args.train_samples, max_eval_samples=args.val_samples,
                         threads=args.threads)  # fmt: skip
    facts = data_facts(store, train, min(args.val_samples, len(store.indices("val"))), ev, tasks)
    if args.slice == "window":
        facts["split_rule"] = (f"cuts: {cut_facts['cuts']:,} event and idle-timer moments of {cut_facts['cut_users']:,} "
                               f"users between the first event and 1 h before the last, about {args.cuts_per_user:g} per user "
                               f"(seed {args.seed}); users split 70/15/15 into train/val/eval by a permutation with seed "
                               f"{args.seed}")  # fmt: skip
        facts["refused_24h"] = refusal_of_24h(args.work / "raw")
    else:
        facts["split_rule"] = "cuts at random event and idle moments, split by days (train, 1 val day, 1 eval day)"
    seeds = list(range(args.seed, args.seed + args.seeds))
    report = {"title": SLICES[args.slice].title if args.slice in SLICES else args.format,
              "args": {k: [str(p) for p in v] if k == "path" else str(v) if isinstance(v, Path) else v
                       for k, v in vars(args).items()},
              "machine": machine_info(), "tasks": list(tasks), "seeds": seeds, "data": facts, "rows": [],
              "paper_literal_defined": defined(PAPER_LITERAL_PRESET)}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"real_data-{args.slice if args.slice != 'custom' else args.format}"

    choice = {"min_count": 1, "embedding_dropout": 0.0}
    if not args.no_tune and (not args.only or TUNED in args.only):
        choice, report["ablation"] = choose_embeddings(args, stores, config, evaluation, ev, tasks)
        report["choice"] = {k: v for k, v in choice.items() if k != "first_seed"}
    runs: dict[str, list[dict]] = {}
    for label, model, variant in ROWS:
        if args.only and label not in args.only and label not in REFERENCES:
            continue
        if not defined(variant):
            report["rows"].append({"label": label, "model": model, "variant": variant,
                                   "skipped": f"preset {variant!r} is not defined on this branch"})
            continue
        print(f"\n=== {label} ({variant or model}) ===", flush=True)
        if model == RULE:
            runs[label] = [recency_scores(store, evaluation, tasks)]
            report["rows"].append({"label": label, "model": model, "variant": "rule: 1 / (1 + recency_browse)",
                                   "train_seconds": [0.0], "embedding_note": ""})  # fmt: skip
            continue
        tuned = label == TUNED
        row_config = replace(config, embedding_dropout=choice["embedding_dropout"] if tuned else 0.0)
        row_store = stores[choice["min_count"]] if tuned else store
        runs[label], seconds = train_seeds(row_store, model, variant_of(model, variant), row_config, args.work / "runs" / label.replace(" ", "_"),
                                           evaluation, seeds, tasks, choice.get("first_seed") if tuned else None)  # fmt: skip
        note = f" (min count {choice['min_count']}, embedding dropout {choice['embedding_dropout']})" if tuned else ""
        report["rows"].append({"label": label, "model": model, "variant": variant, "train_seconds": seconds,
                               "embedding_note": note})  # fmt: skip
    references = {r: runs[r] for r in REFERENCES if r in runs}
    print("\nbootstrapping over users and seeds ...", flush=True)
    for row in report["rows"]:
        if "skipped" not in row:
            refs = {r: v for r, v in references.items() if r != row["label"]}
            row["metrics"] = seeded_row_metrics(runs[row["label"]], ev.labels, ev.users, ev.cut_type, refs,
                                                args.bootstrap, args.seed)  # fmt: skip
    report["wall_seconds"] = time.perf_counter() - started
    report["load"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    md = markdown(report)
    (args.out / f"{name}.md").write_text(md)
    if not args.no_render:
        render()
    print("\n" + md)
    return report


if __name__ == "__main__":
    main()
