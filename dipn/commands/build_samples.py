"""``dipn build-samples``: raw logs -> memory-mapped samples with labels, split by time."""

from __future__ import annotations

import argparse
from pathlib import Path

from dipn.commands.options import (
    finite_float,
    int_in,
    regular_file,
    seed,
    spark_master,
    utc_offset_minutes,
)
from dipn.samples.build import BuildConfig
from dipn.errors import DipnValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = BuildConfig()
    p = sub.add_parser(
        "build-samples",
        help="cut raw logs into samples (3 x 256 events + history + profile, 1 h / 24 h labels)",
        description="Read a directory of raw logs (swipe, tap, browse, history, profile as CSV, "
        "JSON Lines or Parquet), encode every event with the Table 3 encoder, cut samples at "
        "random moments of user activity (section 6.1): at events and at the idle moments a "
        "device timer scores; label them 'purchase within 1 hour' and 'within 1 day', split by "
        "time (train, then val for early stopping, then eval, the last day, as the test) and "
        "write shards of memory-mapped arrays plus dataset.json and features.json. A sample cut "
        "at t holds only what a phone knows at t (a page still open has stayed t - ts so far).",
    )
    p.add_argument("raw_dir", type=Path, help="directory with swipe.*, tap.*, browse.*, history.*, profile.*")
    p.add_argument("--out", type=Path, required=True, help="output sample directory")
    p.add_argument("--cuts-per-day", type=finite_float, default=d.cuts_per_day,
                   help=f"cuts per user-day (default {d.cuts_per_day:g}, the paper's ~400 per 14 days)")
    p.add_argument("--eval-days", type=finite_float, default=d.eval_days,
                   help=f"days at the end of the cut window used for evaluation, the test (default {d.eval_days:g})")
    p.add_argument("--val-days", type=finite_float, default=d.val_days,
                   help=f"days before the evaluation days used for validation: early stopping, model "
                   f"choice (default {d.val_days:g})")
    p.add_argument("--realtime-hours", type=finite_float, default=d.realtime_hours,
                   help=f"label horizon of the real-time task: purchase within this many hours (default {d.realtime_hours:g})")
    p.add_argument("--longterm-hours", type=finite_float, default=d.longterm_hours,
                   help=f"label horizon of the long-term task (default {d.longterm_hours:g}); cuts stop "
                   "this long before the logs end")
    p.add_argument("--idle-timer-seconds", type=finite_float, default=d.idle_timer_ms / 1000,
                   help=f"idle cuts: a device timer fires this often after the last event (default "
                   f"{d.idle_timer_ms / 1000:g} s)")
    p.add_argument("--idle-limit-minutes", type=finite_float, default=d.idle_limit_ms / 60_000,
                   help=f"...until this long after it, when the app counts as closed (default "
                   f"{d.idle_limit_ms / 60_000:g} min; 0: no idle cuts)")
    p.add_argument("--idle-share", type=finite_float, default=d.idle_share,
                   help="share of each user-day's cuts taken at idle moments (default: as the timer "
                   "would score them, i.e. drawn from event and idle moments alike)")
    p.add_argument("--seed", type=seed, default=d.seed, help="seed of the cut sampling")
    p.add_argument("--min-count", type=int_in(1, 10**9), default=d.min_count,
                   help=f"vocabularies (pages, buttons, categories) keep values seen at least this many times in "
                   f"the training logs; rarer ones encode as out-of-vocabulary. Embedding tables are sized to "
                   f"the vocabulary built (default {d.min_count}: every value seen)")
    p.add_argument("--users-per-shard", type=int_in(1, 10**9), default=d.users_per_shard,
                   help=f"users per shard directory (default {d.users_per_shard})")
    p.add_argument("--utc-offset-minutes", type=utc_offset_minutes, default=d.utc_offset_minutes,
                   help="time zone of the hour-of-day feature (default: meta.json's, as dipn import writes it; else UTC)")
    p.add_argument("--manifest", type=regular_file, default=None,
                   help="reuse this features.json (vocabularies) instead of building one")
    p.add_argument("--cuts", type=regular_file, default=None,
                   help="CSV with columns user_id, ts (integer ms since the epoch, as the raw logs) "
                   "and optionally split (train|val|eval): build samples exactly at these cut times "
                   "instead of random ones; without split, the cut's day decides it")
    p.add_argument("--lenient", action="store_true",
                   help="drop and count malformed rows instead of stopping at the first")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=("default", "spark"), default="default",
                   help="default: one process (Polars + numpy); spark: the same steps on Apache Spark, "
                   "identical output (needs dipn[spark] and Java; docs/deploy.md)")
    p.add_argument("--master", type=spark_master, default="local[*]",
                   help="with --engine spark: the cluster's master URL (spark://HOST:7077, yarn, k8s://...) "
                   "or local[N] (default local[*]); --out must be a filesystem every executor sees")
    p.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                   help="with --engine spark: a Spark setting, e.g. spark.driver.memory=8g (repeatable)")
    p.set_defaults(run=run)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from dipn.samples.build import build_samples
    from dipn.features import FeatureManifest

    config = BuildConfig(
        cuts_per_day=args.cuts_per_day,
        eval_days=args.eval_days,
        val_days=args.val_days,
        realtime_hours=args.realtime_hours,
        longterm_hours=args.longterm_hours,
        idle_timer_ms=round(args.idle_timer_seconds * 1000),
        idle_limit_ms=round(args.idle_limit_minutes * 60_000),
        idle_share=args.idle_share,
        seed=args.seed,
        users_per_shard=args.users_per_shard,
        lenient=args.lenient,
        utc_offset_minutes=args.utc_offset_minutes,
        min_count=args.min_count,
    )
    manifest = FeatureManifest.load(args.manifest) if args.manifest else None
    if args.engine == "spark":
        info = _build_on_spark(args, config, manifest)
    else:
        info = build_samples(args.raw_dir, args.out, config, manifest, progress=not args.quiet, cuts_file=args.cuts)
    print(format_summary(info))
    return 0


def _build_on_spark(args: argparse.Namespace, config: BuildConfig, manifest) -> dict:
    from dipn.samples.spark import build_samples_spark, spark_session, spark_unavailable

    reason = spark_unavailable()
    if reason:
        raise DipnValidationError(f"--engine spark: {reason}")
    conf = dict(_key_value(item) for item in args.spark_conf)
    with spark_session(args.master, conf, progress=not args.quiet) as spark:
        return build_samples_spark(spark, args.raw_dir, args.out, config, manifest,
                                   progress=not args.quiet, cuts_file=args.cuts)  # fmt: skip


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise DipnValidationError(f"--spark-conf wants KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def format_summary(info: dict) -> str:
    lines = [f"users: {info['users']}   events: " + ", ".join(f"{v} {n:,}" for v, n in info["events"].items())]
    hours = (info["build"]["realtime_hours"], info["build"]["longterm_hours"])
    for split, s in info["splits"].items():
        lines.append(
            f"{split:5s}: {s['samples']:>9,} samples ({s['event_cuts']:,} at events, {s['idle_cuts']:,} idle)"
            f"   realtime ({hours[0]:g} h) rate {s['realtime_rate']:.3f}   longterm ({hours[1]:g} h) rate {s['longterm_rate']:.3f}"
        )
    lines.append(f"built in {info['build_seconds']:.1f} s")
    for view, report in info.get("read_reports", {}).items():
        if "dropped" in report and "dropped: {}" not in report:
            lines.append(f"{view}: {report}")
    return "\n".join(lines)
