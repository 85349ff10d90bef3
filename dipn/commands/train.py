"""``dipn train``: train DIPN (or a variant, a baseline, an alternative model) on a sample directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from dipn.commands.options import ConfigFlag, add_config_flags, given_fields, regular_file, seed, torch_device
from dipn.commands.render import describe_model
from dipn.presets import models_help, variants_help
from dipn.training.config import TrainConfig

FLAGS = (  # defaults come from TrainConfig, then --config, then flags
    ConfigFlag("model", str, models_help()),
    ConfigFlag("variant", str, variants_help()),
    ConfigFlag("epochs", int, "epochs: passes over the training split, or parts of a pass with --epoch-samples"),
    ConfigFlag("epoch_samples", int, "training samples per epoch (default {default}: the whole split); val, early "
               "stopping and each task's best epoch then act within a pass, as a large set needs"),
    ConfigFlag("batch_size", int, "global batch size (split across torchrun processes)"),
    ConfigFlag("lr", float, "Adam learning rate"),
    ConfigFlag("adam_eps", float, "Adam epsilon (paper: 1e-3)"),
    ConfigFlag("patience", int, "epochs without a better val AUC before a task retires at its best epoch, and "
               "before stopping"),
    ConfigFlag("seed", seed, "seed of initialization and batch order"),
    ConfigFlag("max_steps", int, "stop after this many optimizer steps"),
    ConfigFlag("max_train_samples", int, "train on a fixed random subset of this size"),
    ConfigFlag("max_eval_samples", int, "score the validation split each epoch on a fixed random subset of this size"),
    ConfigFlag("checkpoint_every", int, "steps between resumable checkpoints"),
    ConfigFlag("threads", int, "torch threads per process (default {default}: chosen while training by timing steps with 1 "
               "thread and with the process's share of the cores, so a busy machine never makes the default slower than 1 thread)"),
    ConfigFlag("device", torch_device, "cpu, cuda (the local GPU under torchrun) or cuda:N (docs/deploy.md)"),
    ConfigFlag("amp", bool, "mixed precision: bfloat16 autocast on CPU, float16 with loss scaling on CUDA"),
    ConfigFlag("compile", bool, "torch.compile the model; falls back to eager with a one-line warning if that fails"),
    ConfigFlag("weight_decay", float, "Adam L2 penalty (the paper names none)"),
    ConfigFlag("dropout", float, "dropout of the model's head layers, overriding its preset"),
    ConfigFlag("embedding_dropout", float, "training only: each page, button or category id is read as "
               "out-of-vocabulary with this probability, so no category row can name a shopper; 0.3 lifted DIPN on "
               "the simulator at 100,000 samples, where a val day right after the training days hid the loss "
               "(docs/models.md)"),
    ConfigFlag("action_age_horizon_hours", float, "DIPN: read the time since each browse action (purchase, cart, "
               "collect, browse) up to this many hours, later as none: a bucket edge, 1-24 or whole days to 240 "
               "(default {default}: all of it; for logs of a few days, docs/models.md)"),
    ConfigFlag("ema_decay", float, "average the weights over steps (an exponential moving average with this decay "
               "per step, e.g. 0.995): val, best.pt and what is exported hold the average (default {default}: off)"),
)  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a model on samples; run under torchrun for data parallelism",
        description="Train DIPN (Adam, both tasks jointly: L_short + L_long) on a sample directory "
        "from build-samples, evaluate AUC per task on the val split every epoch, stop early, and "
        "write best.pt / last.pt checkpoints (weights, config, feature manifest, metrics, git "
        "revision) to --out. --model gbdt / gbdt_touch fit LightGBM instead (early stopping on val; "
        "--out/gbdt.json; epochs, lr and batch options do not apply). Options: command line over "
        "--config JSON over defaults. Data parallel: torchrun --nproc-per-node 2 $(which dipn) "
        "train ... (same options).",
    )
    p.add_argument("samples", type=Path, help="sample directory (from dipn build-samples)")
    p.add_argument("--out", type=Path, required=True, help="run directory for checkpoints and metrics")
    p.add_argument("--config", type=regular_file, help="JSON file of training options")
    earlier = p.add_mutually_exclusive_group()  # --out holding an earlier run is refused without one of them
    earlier.add_argument("--resume", action="store_true", help="continue from --out/last.pt after an interruption")
    earlier.add_argument("--overwrite", action="store_true", help="replace the run in --out (its checkpoints and "
                         "metrics are deleted first)")
    p.add_argument("--dry-run", action="store_true", help="build the model, print parameters by component and sizes, exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, FLAGS, d)
    p.set_defaults(run=run)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults, overridden by the --config file, overridden by flags given on the command line."""
    values = TrainConfig().to_dict()
    if args.config:
        values |= TrainConfig.load(args.config).to_dict()
    values |= given_fields(args, FLAGS)
    return TrainConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    from dipn.samples.store import SampleStore
    from dipn.presets import GBDT_MODELS

    config = resolve_config(args)
    store = SampleStore(args.samples)
    if config.model in GBDT_MODELS:
        return run_gbdt(args, config, store)
    if args.dry_run:
        print(describe_model(config, store))
        return 0
    from dipn.training import distributed
    from dipn.training.loop import Trainer
    from dipn.training.run_dir import prepare_run_dir

    from dipn.training.runtime import resolve_device

    resolve_device(config.device)  # an absent GPU is refused before the run directory is made
    prepare_run_dir(args.out, resume=args.resume, overwrite=args.overwrite)  # before any process can write
    rank = distributed.init_from_env()
    try:
        trainer = Trainer(store, config, args.out, rank, progress=not args.quiet)
        if rank.is_main:
            print(f"model {config.model}: inputs {', '.join(trainer.input_names)} "
                  f"(the samples hold {', '.join(store.groups_present)})")  # fmt: skip
        if args.resume:
            trainer.resume(args.out / "last.pt")
        result = trainer.fit()
    finally:
        distributed.shutdown(rank)
    if rank.is_main:
        best = max(result["history"], key=lambda r: r["score"], default=None)
        if best:
            aucs = ", ".join(f"{t} AUC {best[t]['auc']:.4f}" for t in ("realtime", "longterm") if t in best)
            print(f"best epoch {best['epoch']}: {aucs}; checkpoint {args.out / 'best.pt'}")
        else:
            print(f"stopped after {result['global_step']} steps; checkpoint {args.out / 'last.pt'}")
    return 0


def run_gbdt(args: argparse.Namespace, config: TrainConfig, store) -> int:
    from dipn.errors import DipnValidationError
    from dipn.models.gbdt import gbdt_config_for_data
    from dipn.training.boosted import train_gbdt
    from dipn.training.run_dir import prepare_run_dir

    gbdt = gbdt_config_for_data(config.model, store.groups_present)
    print(f"model {config.model}: summaries of {', '.join(g.value for g in gbdt.views)}, context"
          f"{''.join(', ' + g for g in gbdt.statics)} (the samples hold {', '.join(store.groups_present)})")  # fmt: skip
    if args.dry_run:
        print(f"samples: {store.split_counts()}")
        return 0
    if args.resume:
        raise DipnValidationError(f"{config.model} fits in one go and has nothing to resume: use --overwrite")
    prepare_run_dir(args.out, overwrite=args.overwrite)
    result = train_gbdt(store, config, args.out, progress=not args.quiet)
    best = result["history"][0]
    aucs = ", ".join(f"{t} AUC {best[t]['auc']:.4f}" for t in ("realtime", "longterm") if t in best)
    print(f"val: {aucs} after {best['rounds']} rounds; model {result['model_path']}")
    return 0
