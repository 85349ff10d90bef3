"""``dipn build-samples``: raw logs -> memory-mapped samples with labels, split by time."""

from __future__ import annotations

import argparse
from pathlib import Path

from dipn.data.build import BuildConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = BuildConfig()
    p = sub.add_parser(
        "build-samples",
        help="cut raw logs into samples (3 x 256 events + history + profile, 1 h / 24 h labels)",
        description="Read a directory of raw logs (swipe, tap, browse, history, profile as CSV, "
        "JSON Lines or Parquet), encode every event with the Table 3 encoder, cut samples at "
        "random moments of user activity (section 6.1), label them 'purchase within 1 hour' and "
        "'within 1 day', split by time (the last day is evaluation) and write shards of "
        "memory-mapped arrays plus dataset.json and features.json.",
    )
    p.add_argument("raw_dir", type=Path, help="directory with swipe.*, tap.*, browse.*, history.*, profile.*")
    p.add_argument("--out", type=Path, required=True, help="output sample directory")
    p.add_argument("--cuts-per-day", type=float, default=d.cuts_per_day,
                   help=f"cuts per user-day (default {d.cuts_per_day:g}, the paper's ~400 per 14 days)")
    p.add_argument("--eval-days", type=float, default=d.eval_days,
                   help=f"days at the end of the cut window used for evaluation (default {d.eval_days:g})")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the cut sampling")
    p.add_argument("--users-per-shard", type=int, default=d.users_per_shard)
    p.add_argument("--utc-offset-minutes", type=int, default=d.utc_offset_minutes,
                   help="time zone of the hour-of-day feature (default: meta.json's, as dipn import writes it; else UTC)")
    p.add_argument("--manifest", type=Path, default=None,
                   help="reuse this features.json (vocabularies) instead of building one")
    p.add_argument("--cuts", type=Path, default=None,
                   help="CSV user_id, ts[, split]: build samples exactly at these cut times instead of random ones")
    p.add_argument("--lenient", action="store_true",
                   help="drop and count malformed rows instead of stopping at the first")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=("default", "spark"), default="default",
                   help="default: one process (Polars + numpy); spark: the same steps on Apache Spark, "
                   "identical output (needs dipn[spark] and Java; docs/deploy.md)")
    p.add_argument("--master", default="local[*]",
                   help="with --engine spark: the cluster's master URL (spark://HOST:7077, yarn, k8s://...) "
                   "or local[N] (default local[*]); --out must be a filesystem every executor sees")
    p.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                   help="with --engine spark: a Spark setting, e.g. spark.driver.memory=8g (repeatable)")
    p.set_defaults(run=run)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from dipn.data.build import build_samples
    from dipn.features import FeatureManifest

    config = BuildConfig(
        cuts_per_day=args.cuts_per_day,
        eval_days=args.eval_days,
        seed=args.seed,
        users_per_shard=args.users_per_shard,
        lenient=args.lenient,
        utc_offset_minutes=args.utc_offset_minutes,
    )
    manifest = FeatureManifest.load(args.manifest) if args.manifest else None
    if args.engine == "spark":
        info = _build_on_spark(args, config, manifest)
    else:
        info = build_samples(args.raw_dir, args.out, config, manifest, progress=not args.quiet, cuts_file=args.cuts)
    print(format_summary(info))
    return 0


def _build_on_spark(args: argparse.Namespace, config: BuildConfig, manifest) -> dict:  # noqa: ANN001
    from dipn.data.spark import build_samples_spark, spark_session, spark_unavailable

    reason = spark_unavailable()
    if reason:
        raise SystemExit(f"dipn build-samples --engine spark: {reason}")
    conf = dict(_key_value(item) for item in args.spark_conf)
    with spark_session(args.master, conf, progress=not args.quiet) as spark:
        return build_samples_spark(spark, args.raw_dir, args.out, config, manifest,
                                   progress=not args.quiet, cuts_file=args.cuts)  # fmt: skip


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"dipn build-samples: --spark-conf wants KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def format_summary(info: dict) -> str:
    lines = [f"users: {info['users']}   events: " + ", ".join(f"{v} {n:,}" for v, n in info["events"].items())]
    for split, s in info["splits"].items():
        lines.append(
            f"{split:5s}: {s['samples']:>9,} samples   realtime (1 h) rate {s['realtime_rate']:.3f}"
            f"   longterm (24 h) rate {s['longterm_rate']:.3f}"
        )
    lines.append(f"built in {info['build_seconds']:.1f} s")
    for view, report in info.get("read_reports", {}).items():
        if "dropped" in report and "dropped: {}" not in report:
            lines.append(f"{view}: {report}")
    return "\n".join(lines)
