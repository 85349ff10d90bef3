"""Accuracy of DIPN, its ablations, the baselines and the alternative models on one simulated
dataset (paper Tables 4, 5), and a side-by-side comparison of the deployable models.

    python -m benchmarks.accuracy                  # 5,000 users x 3 days (the issue's size)
    python -m benchmarks.accuracy --users 500 ...  # quicker
    python -m benchmarks.accuracy --models ...     # only the model comparison rows
    python -m benchmarks.accuracy --only DIPN ... & python -m benchmarks.accuracy --only RIB ...  # one per core

Simulates (or reuses) a dataset, builds samples (train, val, eval by days; cut at events and at
idle moments; recency and cut-hour inputs), trains every row of Table 4 plus the single-task rows
of Table 5, both GBDT rows (the paper's: browse + history + profile; ours: + swipe and tap) and the
related models ATRank, RIB and HEROES (docs/models.md) as ``dipn train`` does, on the same fixed
training subset, and scores them on the same fixed subset of the evaluation day. Model choice uses
val only: torch rows are scored with their best.pt (best val AUC; early stopping with
``--patience``), GBDT stops boosting on val. Each row trains ``--seeds`` seeds (3 by default); its
AUC is the mean over seeds with a 95% interval from a bootstrap over users and seeds, the seeds'
spread beside it, and a paired difference against the paper's GBDT row (``dipn.evaluation.seeded``). Writes benchmarks/results/accuracy.json and accuracy.md.

Model comparison (DIPN, RNN+DNN, ATRank, RIB, HEROES): each trained model is also exported to ONNX,
quantized with the shipped int8 recipe (``convert.quantize``), and timed in onnxruntime on one eval
sample at a time (batch 1, intra_op_num_threads=1, median over repeats); writes
benchmarks/results/models.json and models.md. ``--models`` trains only those rows and leaves
accuracy.{json,md} as they are. Then RESULTS.md is regenerated.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

HERE = Path(__file__).resolve().parent

from benchmarks.machine import machine_info, machine_line
from benchmarks.render_results import render
from benchmarks.tables import EvalSet, fit_and_score, format_delta, saved_scores
from dipn.errors import DipnValidationError
from dipn.evaluation.seeded import seeded_difference, seeded_row_metrics
from dipn.features import TASKS
from dipn.logs.simulation import SimulationConfig, simulate
from dipn.presets import preset
from dipn.samples.build import BuildConfig, build_samples
from dipn.samples.store import SampleStore
from dipn.training.batches import subset
from dipn.training.config import TrainConfig

# Table 4 and 5 rows in the paper's order, then ours and the related models, by preset name; each
# row is (label, model, variant, paper AUC: realtime, longterm), all from ``dipn.presets``.
ROW_PRESETS = ("gbdt", "gbdt_touch", "rnn_dnn", "early_fusion", "no_attention", "no_inter_view", "no_intra_view",
               "no_multitask", "no_multitask_longterm", "dipn_paper", "dipn", "atrank", "rib", "heroes")  # fmt: skip
ROWS = [(preset(n).title, preset(n).model, preset(n).config_name, preset(n).paper_auc) for n in ROW_PRESETS]
COMPARED = tuple(preset(n).title for n in ("dipn", "rnn_dnn", "atrank", "rib", "heroes"))  # rows of the model comparison, in its order
REFERENCE = preset("gbdt").title  # the row every paired difference is taken against
OURS = preset("dipn").title  # checked against the baselines on each task (the paper has no figure for ours)
BASELINES = tuple(preset(n).title for n in ("gbdt", "gbdt_touch", "rnn_dnn"))
LATENCY_REPEATS = 100


def dataset(args: argparse.Namespace) -> Path:
    root = args.data / f"sim-u{args.users}-d{args.days}-s{args.seed}"
    raw, samples = root / "raw", root / "samples"
    if not (raw / "meta.json").exists():
        print(f"simulating {args.users} users x {args.days} days -> {raw}", flush=True)
        simulate(SimulationConfig(users=args.users, days=args.days, seed=args.seed), raw)
    if not (samples / "dataset.json").exists():
        print(f"building samples -> {samples}", flush=True)
        build_samples(raw, samples, BuildConfig(seed=args.seed))
    return samples


def runs_root(data: Path, ema_decay: float | None, embedding_dropout: float = 0.0) -> Path:
    """Where this run's rows train: runs whose weights are averaged (``--ema-decay``) or whose
    vocabulary ids are dropped (``--embedding-dropout``) apart, so no option reuses another's models."""
    parts = ([f"ema{ema_decay:g}"] if ema_decay is not None else []) + ([f"edrop{embedding_dropout:g}"] if embedding_dropout else [])
    return data / "-".join(["runs", *parts])


def run_dir_of(runs_dir: Path, model: str, variant: str | None, seed: int) -> Path:
    """Where a row's seed trains, so that a later run (resume, the orderings) finds its model."""
    return runs_dir / f"{model}-{variant or 'default'}" / f"seed{seed}"


def run_row(store: SampleStore, model: str, variant: str | None, config: TrainConfig, runs_dir: Path, ev: EvalSet,
            reference: list[dict] | None, bootstrap: int, seeds: list[int], deployment: bool) -> tuple[dict, list[dict]]:  # fmt: skip
    """One row trained with each of ``seeds``: the mean AUC over seeds with an interval over users
    and seeds, the seeds' spread, the paired difference to the reference row's seeds; the
    deployment figures of the first seed's model."""
    rows = [fit_and_score(store, model, variant, replace(config, seed=s), run_dir_of(runs_dir, model, variant, s), ev.indices)
            for s in seeds]  # fmt: skip
    runs = [row.scores for row in rows]
    references = {REFERENCE: reference} if reference is not None else None
    result = {"metrics": seeded_row_metrics(runs, ev.labels, ev.users, ev.cut_type, references, bootstrap, seeds[0]),
              "inputs": list(rows[0].inputs), "train_seconds": float(np.median([r.train_seconds for r in rows])),
              "samples_per_s": rows[0].samples_per_s, "parameters": rows[0].parameters}  # fmt: skip
    if deployment and rows[0].model is not None:
        result["deployment"] = deployment_figures(rows[0].model, store, ev.indices, run_dir_of(runs_dir, model, variant, seeds[0]) / "onnx")
    return result, runs


def deployment_figures(model: torch.nn.Module, store: SampleStore, evaluation: np.ndarray, out: Path) -> dict:
    """What a phone would pay for the model: ONNX fp32 and int8 (the shipped recipe) file sizes,
    op count, and single-thread batch-1 onnxruntime latency on a real eval sample (median)."""
    from convert.onnx_export import export_onnx
    from convert.quantize import quantize_onnx
    from convert.signature import model_inputs
    from dipn.bundle.runners.onnx import OnnxRunner

    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    sample = model_inputs(store, evaluation[:1], model.input_names)
    figures: dict = {}
    t0 = time.perf_counter()
    info = export_onnx(model, out / "model.onnx")
    quantize_onnx(out / "model.onnx", out / "model.int8.onnx")
    figures["export_seconds"] = time.perf_counter() - t0
    figures["op_count"] = info["op_count"]
    for precision, name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        runner = OnnxRunner(out / name, threads=1)
        feeds = {k: sample[k] for k in runner.input_names}
        for _ in range(5):
            runner.run_one(feeds)
        times = []
        for _ in range(LATENCY_REPEATS):
            started = time.perf_counter()
            runner.run_one(feeds)
            times.append(time.perf_counter() - started)
        figures[precision] = {"mb": (out / name).stat().st_size / 1e6, "latency_ms_p50": 1000 * float(np.median(times)),
                              "latency_ms_p90": 1000 * float(np.percentile(times, 90))}  # fmt: skip
    return figures


def fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.4f}"


def markdown(report: dict) -> str:
    a, d = report["args"], report["data"]
    at_size = "" if a.get("name", "accuracy") == "accuracy" else f", at {d['train_used']:,} training samples"
    if a.get("ema_decay") is not None:
        at_size += f", torch weights averaged over steps (decay {a['ema_decay']:g})"
    if a.get("embedding_dropout"):
        at_size += f", torch rows with embedding dropout {a['embedding_dropout']:g}"
    lines = [
        "## Accuracy: Tables 4 and 5 on simulated data" + at_size,
        "",
        f"Command: `{command(a)}`  ",
        f"Machine: {machine_line(report['machine'])}  ",
        f"Data: {d['users']:,} simulated users, {a['days']} days (train, then val: early stopping and model choice, "
        f"then the last day: eval); train subset {d['train_used']:,} of {d['train_samples']:,} samples, val "
        f"{d.get('val_samples', 0):,}, eval subset {d['eval_used']:,} of {d['eval_samples']:,}; eval label rates: "
        f"realtime {d['eval_realtime_rate']:.3f}, longterm {d['eval_longterm_rate']:.3f}.",
        "",
        f"AUC on eval: the mean over {a.get('seeds', 1)} seed(s), a 95% interval from {a['bootstrap']} bootstrap rounds "
        f"resampling users and seeds, ± the seeds' standard deviation; Δ vs {REFERENCE}: the paired "
        "difference on the same resamples (an interval above 0: better than the paper's GBDT).",
        "",
        f"| model | AUC real-time (ours) | Δ vs {REFERENCE} | AUC long-term (ours) | Δ vs {REFERENCE} "
        "| paper AUC (Table 4 / 5) | train s | samples/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        m = row["metrics"]
        paper = " / ".join(fmt(p) for p in row["paper"] if p is not None)
        rate = row.get("samples_per_s")
        lines.append(f"| {row['label']} | {fmt_interval(m.get('realtime'))} | {format_delta(m.get('realtime'))} "
                     f"| {fmt_interval(m.get('longterm'))} | {format_delta(m.get('longterm'))} | {paper} "
                     f"| {row['train_seconds']:.0f} | {'-' if rate is None else f'{rate:.0f}'} |")  # fmt: skip
    lines += ["", "The paper's figures come from 300 M samples of real Taobao traffic; ours from a simulator "
              "whose hypotheses are in docs/simulator.md. Compare orderings, not values.", ""]  # fmt: skip
    if report.get("claims"):
        lines += claims_markdown(report["claims"])
    return "\n".join(lines)


def fmt_interval(m: dict | None) -> str:
    """AUC (the mean over seeds) with its 95% interval and the seeds' standard deviation, where the run computed them."""
    if not m:
        return "-"
    if "auc_low" not in m:
        return fmt(m.get("auc"))
    spread = f" ±{m['auc_sd']:.4f}" if "auc_sd" in m else ""
    return f"{fmt(m['auc'])} [{fmt(m['auc_low'])}, {fmt(m['auc_high'])}]{spread}"


def command(a: dict) -> str:
    epoch_samples = f"--epoch-samples {a['epoch_samples']} " if a.get("epoch_samples") else ""
    return (f"python -m benchmarks.accuracy {'--models ' if a.get('models') else ''}--users {a['users']} "
            f"--days {a['days']} --seed {a['seed']} --train-samples {a['train_samples']} "
            f"--eval-samples {a['eval_samples']} --epochs {a['epochs']} {epoch_samples}--patience {a['patience']} "
            f"--batch-size {a['batch_size']} --lr {a['lr']} --bootstrap {a['bootstrap']} --seeds {a.get('seeds', 1)}"
            + (f" --threads {a['threads']}" if a.get("threads") else "")
            + (f" --ema-decay {a['ema_decay']:g}" if a.get("ema_decay") is not None else "")
            + (f" --embedding-dropout {a['embedding_dropout']:g}" if a.get("embedding_dropout") else "")
            + (f" --name {a['name']}" if a.get("name", "accuracy") != "accuracy" else "")
            + (f" --only {' '.join(repr(o) if ' ' in o else o for o in a['only'])}" if a.get("only") else ""))


def models_markdown(report: dict) -> str:
    """The comparison section: accuracy, size and latency of each deployable model, one run."""
    rows = {row["label"]: row for row in report["rows"]}
    lines = [
        "## Models: DIPN beside the related behaviour models",
        "",
        f"Command: `{command(report['args'])}`  ",
        f"Machine: {machine_line(report['machine'])}  ",
        f"Data: {report['data']['users']:,} simulated users, {report['args']['days']} days; every model trained on the "
        f"same {report['data']['train_used']:,} training samples for at most {report['args']['epochs']} epochs (the best val epoch kept) and scored on the "
        f"same {report['data']['eval_used']:,} eval samples, in this one run; AUC: the mean over {report['args'].get('seeds', 1)} seed(s) with a 95% interval from "
        f"{report['args']['bootstrap']} bootstrap resamples of users and seeds (deployment figures: the first seed's model). Size: ONNX files (opset 17; int8 = the "
        "shipped onnxruntime dynamic recipe). Latency: onnxruntime, batch 1, intra_op_num_threads=1, median of "
        f"{LATENCY_REPEATS} calls on one real eval sample, while the machine may run other jobs. Designs: docs/models.md.",
        "",
        "| model | AUC real-time | AUC long-term | parameters | ONNX fp32 MB | ONNX int8 MB | ONNX ops "
        "| p50 ms fp32 | p50 ms int8 | train samples/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label in COMPARED:
        row = rows.get(label)
        if row is None or "deployment" not in row:
            continue
        m, dep = row["metrics"], row["deployment"]
        rate = row.get("samples_per_s")
        lines.append(f"| {label} | {fmt_interval(m.get('realtime'))} | {fmt_interval(m.get('longterm'))} "
                     f"| {row['parameters']:,} | {dep['fp32']['mb']:.2f} | {dep['int8']['mb']:.2f} | {dep['op_count']:,} "
                     f"| {dep['fp32']['latency_ms_p50']:.2f} | {dep['int8']['latency_ms_p50']:.2f} "
                     f"| {'-' if rate is None else f'{rate:.0f}'} |")  # fmt: skip
    lines += ["", "HEROES' recurrence is a Python loop the exporter unrolls (a few thousand small ops per "
              "view step count); int8 adds a dynamic quantization per step, which costs more than it saves "
              "on such small matrices. Simulated data: compare orderings, not values.", ""]  # fmt: skip
    return "\n".join(lines)


def claims() -> list[tuple[str, str, str, float | None]]:
    """(task, better, worse, the paper's AUC difference) to check, from the paper AUCs of ``ROWS``.

    The paper's: its top row (its DIPN) against every row it scores on that task, and each pair of
    rows adjacent in its ranking. Ours (the paper has no figure for them): DIPN with time against
    both GBDT rows and RNN+DNN on each task."""
    out: list[tuple[str, str, str, float | None]] = []
    for k, task in enumerate(TASKS):
        paper = {label: auc[k] for label, _, _, auc in ROWS if auc[k] is not None}
        ranked = sorted(paper, key=lambda label: -paper[label])
        pairs = list(zip(ranked, ranked[1:])) + [(ranked[0], b) for b in ranked[1:] if b != ranked[1]]
        pairs += [(OURS, b) for b in BASELINES if (OURS, b) not in pairs]
        out += [(task, a, b, paper[a] - paper[b] if a in paper and b in paper else None) for a, b in pairs]
    return out


def check_claims(store: SampleStore, ev: EvalSet, runs_dir: Path, rounds: int, seeds: list[int],
                 ran: set[str] | None = None) -> list[dict]:  # fmt: skip
    """Each claim's difference on our data with a paired interval over users and seeds, and a verdict;
    with ``ran``, the claims both of whose rows are among those labels."""
    where = {label: (model, variant) for label, model, variant, _ in ROWS}
    scores: dict[str, list[dict[str, np.ndarray]]] = {}
    out = []
    for task, better, worse, paper in claims():
        if ran is not None and not {better, worse} <= ran:
            continue
        for label in (better, worse):
            if label not in scores:
                model, variant = where[label]
                scores[label] = [saved_scores(store, model, run_dir_of(runs_dir, model, variant, s), ev.indices) for s in seeds]
        d = seeded_difference(ev.labels[task], [s[task] for s in scores[better]], [s[task] for s in scores[worse]],
                              ev.users, rounds, seeds[0])  # fmt: skip
        verdict = ("holds" if d["low"] > 0 else "reversed" if d["high"] < 0 else
                   "same sign, interval spans 0" if d["delta"] > 0 else "opposite sign, interval spans 0")  # fmt: skip
        out.append({"task": task, "better": better, "worse": worse, "paper_delta": paper, **d, "verdict": verdict})
    return out


def claims_markdown(checked: list[dict]) -> list[str]:
    lines = ["### The paper's orderings on our data", "",
             "Each line: the paper says the first row beats the second (by its AUC difference); ours is the "
             "paired difference on the same eval samples with a user-bootstrap 95% interval. Holds: the interval "
             "is above 0; reversed: below 0; otherwise the data cannot tell the two apart. The last lines of "
             "each task are ours (the paper has no figure for GBDT+touch or long-term baselines).", "",
             "| task | claim | paper Δ | ours Δ [95%] | verdict |", "| --- | --- | ---: | --- | --- |"]  # fmt: skip
    for c in checked:
        paper = "-" if c["paper_delta"] is None else f"{c['paper_delta']:+.4f}"
        lines.append(f"| {c['task']} | {c['better']} > {c['worse']} | {paper} "
                     f"| {c['delta']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}] | {c['verdict']} |")  # fmt: skip
    held = sum(c["verdict"] == "holds" for c in checked)
    reversed_ = sum(c["verdict"] == "reversed" for c in checked)
    lines += ["", f"{held} of {len(checked)} hold, {reversed_} are reversed, {len(checked) - held - reversed_} "
              "cannot be told apart at this size.", ""]  # fmt: skip
    return lines


def _previous_rows(path: Path, args: dict, revision: str) -> dict[str, dict]:
    """Rows an earlier or a concurrent run with identical settings already finished on the same
    code (resume after a kill); a row of another git revision is run again, not reused."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    same = {k: v for k, v in earlier.get("args", {}).items() if k != "only"} == {k: v for k, v in args.items() if k != "only"}
    return {row["label"]: row for row in earlier.get("rows", []) if row.get("git_revision") == revision} if same else {}


def _save(path: Path, report: dict) -> None:
    """Writes this run's rows merged with those another run of the same settings wrote meanwhile.

    Two runs with disjoint ``--only`` lists can so share one results file (one per core); a last
    run without ``--only`` then finds every row finished and renders the whole table."""
    with FileLock(str(path) + ".lock"):
        mine = {row["label"] for row in report["rows"]}
        others = [row for row in _previous_rows(path, report["args"], report["machine"]["git_revision"]).values()
                  if row["label"] not in mine]  # fmt: skip
        order = {label: i for i, (label, *_) in enumerate(ROWS)}
        rows = sorted(report["rows"] + others, key=lambda row: order.get(row["label"], len(order)))
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report | {"rows": rows}, indent=1, default=str) + "\n")
        tmp.replace(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the subsets and the first training run")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per row: --seed, --seed + 1, ... (default 3)")
    p.add_argument("--train-samples", type=int, default=8000)
    p.add_argument("--eval-samples", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=2, help="at most this many epochs (default 2)")
    p.add_argument("--epoch-samples", type=int, default=None, help="training samples per epoch (default: the whole "
                   "training subset); val, early stopping and each task's best epoch act within a pass")
    p.add_argument("--patience", type=int, default=2, help="epochs without a better val AUC before stopping (default 2)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap rounds over users (default 200)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ema-decay", type=float, default=None, help="torch rows average their weights over steps "
                   "(dipn train --ema-decay); they train apart, in DATA/runs-emaDECAY (default: off)")
    p.add_argument("--embedding-dropout", type=float, default=0.0,
                   help="torch rows read each page, button and category id as OOV with this probability in "
                   "training (dipn train --embedding-dropout); they train apart, in DATA/runs-edropP (default: 0, off)")
    p.add_argument("--only", nargs="*", help="row labels or variants to run (default: all)")
    p.add_argument("--models", action="store_true", help="only the model comparison rows "
                   f"({', '.join(COMPARED)}): writes models.{{json,md}}, leaves accuracy.{{json,md}} alone")  # fmt: skip
    p.add_argument("--name", default="accuracy", help="results stem: NAME.json and NAME.md (default accuracy, the main "
                   "table, which also writes models.*); another name writes only those two, as a section of its own, "
                   "e.g. DIPN and the GBDT rows at a larger training size")
    p.add_argument("--data", type=Path, default=HERE / "data")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()

    try:  # TrainConfig's own checks, before any data is simulated: one line, not a traceback
        config = TrainConfig(epochs=args.epochs, epoch_samples=args.epoch_samples, patience=args.patience,
                             batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, max_train_samples=args.train_samples, max_eval_samples=args.eval_samples,
                             threads=args.threads, ema_decay=args.ema_decay,
                             embedding_dropout=args.embedding_dropout)  # fmt: skip
    except DipnValidationError as exc:
        p.error(str(exc))
    store = SampleStore(dataset(args))
    train = subset(store.indices("train"), args.train_samples, args.seed)
    ev = EvalSet.of(store, subset(store.indices("eval"), args.eval_samples, args.seed + 1))
    runs_dir = runs_root(args.data, args.ema_decay, args.embedding_dropout)
    rows = [r for r in ROWS if not args.only or r[0] in args.only or (r[2] or r[1]) in args.only or r[0] == REFERENCE]
    if args.models:
        rows = [r for r in rows if r[0] in COMPARED or r[0] == REFERENCE]
    splits = store.split_counts()
    report = {"args": vars(args) | {"data": str(args.data), "out": str(args.out)}, "machine": machine_info(),
              "data": {"users": store.info["users"], "train_samples": splits["train"]["samples"],
                       "val_samples": splits["val"]["samples"], "eval_samples": splits["eval"]["samples"],
                       "train_used": len(train), "eval_used": len(ev.indices),
                       "eval_realtime_rate": float(ev.labels["realtime"].mean()),
                       "eval_longterm_rate": float(ev.labels["longterm"].mean())},
              "rows": []}  # fmt: skip
    name = "models" if args.models else args.name
    previous = _previous_rows(args.out / f"{name}.json", report["args"], report["machine"]["git_revision"])
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seed, args.seed + args.seeds))
    reference: list[dict] | None = None
    for label, model, variant, paper in rows:
        if label in previous and label != REFERENCE:  # finished by an interrupted run with the same settings
            report["rows"].append(previous[label])
            continue
        print(f"\n=== {label} ===", flush=True)
        result, scored = run_row(store, model, variant, config, runs_dir, ev, reference, args.bootstrap, seeds,
                                 deployment=label in COMPARED)  # fmt: skip
        reference = scored if label == REFERENCE else reference
        report["rows"].append({"label": label, "model": model, "variant": variant, "paper": paper, **result,
                               "git_revision": report["machine"]["git_revision"]})  # fmt: skip
        print(json.dumps({k: v["auc"] for k, v in result["metrics"].items()}), flush=True)
        _save(args.out / f"{name}.json", report)
    if (not args.only or args.name != "accuracy") and not args.models:  # the paper's orderings, paired
        print("\nchecking the paper's orderings (paired bootstrap) ...", flush=True)
        ran = None if not args.only else {row["label"] for row in report["rows"]}
        report["claims"] = check_claims(store, ev, runs_dir, args.bootstrap, seeds, ran)
        _save(args.out / f"{name}.json", report)
    if args.name != "accuracy":  # a section of its own: the main table and the model comparison stay
        md = markdown(report)
        (args.out / f"{name}.md").write_text(md)
        render()
        print("\n" + md)
        return
    compared = {k: v for k, v in report.items() if k not in ("rows", "claims")} | {
        "rows": [row for row in report["rows"] if row["label"] in COMPARED]}  # fmt: skip
    md = models_markdown(compared)
    (args.out / "models.md").write_text(md)
    if not args.models:
        (args.out / "models.json").write_text(json.dumps(compared, indent=1, default=str) + "\n")
        md = markdown(report) + "\n" + md
        (args.out / "accuracy.md").write_text(markdown(report))
    render()
    print("\n" + md)


if __name__ == "__main__":
    main()
