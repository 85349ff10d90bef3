"""``dipn build-samples``: raw logs -> memory-mapped samples with labels, split by time."""

from __future__ import annotations

import argparse
from pathlib import Path

from dipn.commands.options import (
    ConfigFlag,
    add_config_flags,
    finite_float,
    given_fields,
    int_in,
    regular_file,
    seed,
    spark_master,
    utc_offset_minutes,
)
from dipn.commands.render import format_summary
from dipn.errors import DipnValidationError
from dipn.samples.build import BuildConfig


# Every BuildConfig field but `lenient` (a switch), in --help order; tests hold the two in step.
FLAGS = (
    ConfigFlag("cuts_per_day", finite_float, "cuts per user-day (default {default}, the paper's ~400 per 14 days)"),
    ConfigFlag("eval_days", finite_float, "days at the end of the cut window used for evaluation, the test (default {default})"),
    ConfigFlag("val_days", finite_float, "days before the evaluation days used for validation: early stopping, model choice "
          "(default {default})"),
    ConfigFlag("realtime_hours", finite_float, "label horizon of the real-time task: purchase within this many hours "
          "(default {default})"),
    ConfigFlag("longterm_hours", finite_float, "label horizon of the long-term task (default {default}); cuts stop this long "
          "before the logs end"),
    ConfigFlag("idle_timer_ms", finite_float, "idle cuts: a device timer fires this often after the last event (default "
          "{default} s)", "seconds", 1000),
    ConfigFlag("idle_limit_ms", finite_float, "...until this long after it, when the app counts as closed (default {default} "
          "min; 0: no idle cuts)", "minutes", 60_000),
    ConfigFlag("idle_share", finite_float, "share of each user-day's cuts taken at idle moments (default: as the timer would "
          "score them, i.e. drawn from event and idle moments alike)"),
    ConfigFlag("seed", seed, "seed of the cut sampling (default {default})"),
    ConfigFlag("min_count", int_in(1, 10**9), "vocabularies (pages, buttons, categories) keep values seen at least this many "
          "times in the training logs; rarer ones encode as out-of-vocabulary. Embedding tables are sized to the "
          "vocabulary built (default {default}: every value seen)"),
    ConfigFlag("users_per_shard", int_in(1, 10**9), "users per shard directory (default {default})"),
    ConfigFlag("utc_offset_minutes", utc_offset_minutes, "time zone of the hour-of-day feature (default: meta.json's, as dipn "
          "import writes it; else UTC)"),
)  # fmt: skip


def build_config(args: argparse.Namespace) -> BuildConfig:
    """The BuildConfig the flags given name; a flag left out keeps the config's default."""
    given = given_fields(args, FLAGS)
    if getattr(args, "lenient", False):
        given["lenient"] = True
    return BuildConfig(**given)


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
    add_config_flags(p, FLAGS, d)
    p.add_argument("--manifest", type=regular_file, default=None,
                   help="reuse this features.json (vocabularies) instead of building one")
    p.add_argument("--cuts", type=regular_file, default=None,
                   help="CSV with columns user_id, ts (integer ms since the epoch, as the raw logs) "
                   "and optionally split (train|val|eval): build samples exactly at these cut times "
                   "instead of random ones; without split, the cut's day decides it")
    p.add_argument("--lenient", action="store_true", default=argparse.SUPPRESS,
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
    from dipn.features import FeatureManifest
    from dipn.samples.build import build_samples

    config = build_config(args)
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
