"""``dipn band``: choose the model bucket's band [t_l, t_u] on a sample of one's own scores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dipn.errors import DipnValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "band",
        help="show the grant rate and expected uplift of candidate coupon bands on a predictions CSV",
        description="Read scores (the CSV of dipn evaluate --predictions-out: user_id, ts, p_realtime, p_longterm, "
        "whatever the file's name, gzip-compressed too; use the val split, not the test) and show, for candidate bands [t_l, t_u] of the model bucket, the share "
        "of scores inside (the grant rate, with a 95%% interval from resampling users) and the expected "
        "incremental GMV under the assumed uplift curve. With --grant-rate R the candidates are the windows "
        "holding R of the scores and the one with the largest expected uplift is chosen; with --quantiles the "
        "band between two quantiles; --band adds bands in probability terms. The paper's 0.2-0.4 is always "
        "shown. Prints the campaign JSON of the chosen band (POST /campaigns).",
    )
    p.add_argument("predictions", type=Path, help="predictions CSV (dipn evaluate --predictions-out)")
    p.add_argument("--grant-rate", type=float, help="share of decisions that should get a coupon, e.g. 0.1")
    p.add_argument("--start-quantile", type=float, help="with --grant-rate: the window's lower quantile "
                   "(default: the window with the largest expected uplift)")
    p.add_argument("--quantiles", type=float, nargs=2, metavar=("Q_L", "Q_U"), help="band between two quantiles")
    p.add_argument("--band", type=float, nargs=2, action="append", default=[], metavar=("T_L", "T_U"),
                   help="a candidate band in probability terms (repeatable)")
    p.add_argument("--column", default="p_realtime", help="score column (default p_realtime)")
    p.add_argument("--uplift-peak", type=float, default=None, help="assumed lift at the mode (default 0.15)")
    p.add_argument("--uplift-mode", type=float, default=None, help="intent the coupon moves most (default 0.3)")
    p.add_argument("--basket-value", type=float, default=None, help="expected order value (default 100)")
    p.add_argument("--coupon-value", type=float, default=None, help="coupon face value (default 10)")
    p.add_argument("--bootstrap", type=int, default=400, help="user resamples for the intervals (default 400)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dipn.serving.band import (
        Band,
        BandError,
        candidate_rows,
        quantile_band,
        rate_windows,
        resolve,
    )
    from dipn.serving.predictions import PredictionsError, read_predictions
    from dipn.serving.config import CampaignConfig, UpliftCurve

    if not 20 <= args.bootstrap <= 100_000:
        raise DipnValidationError(f"--bootstrap must lie in [20, 100000], got {args.bootstrap}")
    if args.start_quantile is not None and args.grant_rate is None:
        raise DipnValidationError("--start-quantile needs --grant-rate")
    try:
        defaults = CampaignConfig()
        uplift = UpliftCurve(peak=defaults.uplift.peak if args.uplift_peak is None else args.uplift_peak,
                             mode=defaults.uplift.mode if args.uplift_mode is None else args.uplift_mode)
        basket = defaults.basket_value if args.basket_value is None else args.basket_value
        coupon = defaults.coupon_value if args.coupon_value is None else args.coupon_value
        for t_l, t_u in args.band:
            if not 0 <= t_l <= t_u <= 1:
                raise DipnValidationError(f"--band {t_l} {t_u}: need 0 <= T_L <= T_U <= 1")
        users, scores = read_predictions(args.predictions, args.column)
        candidates: list[tuple[str, Band]] = [("paper", Band(defaults.t_l, defaults.t_u))]
        candidates += [(f"band {t_l:g}-{t_u:g}", Band(t_l, t_u)) for t_l, t_u in args.band]
        statement, chosen = None, None
        if args.quantiles:
            q_l, q_u = args.quantiles
            statement = {"kind": "quantiles", "q_l": q_l, "q_u": q_u}
            chosen = quantile_band(scores, q_l, q_u)
            candidates.append((f"quantiles {q_l:g}-{q_u:g}", chosen))
        if args.grant_rate is not None:
            statement = {"kind": "grant_rate", "grant_rate": args.grant_rate, "start_quantile": args.start_quantile}
            chosen = resolve(statement, scores, uplift, basket)
            if args.start_quantile is None:
                windows = rate_windows(scores, args.grant_rate)
                candidates += [(f"rate window from q{a:.2f}", band) for a, band in windows]
            else:
                candidates.append((f"rate window from q{args.start_quantile:.2f}", chosen))
    except (BandError, PredictionsError, ValueError) as exc:
        raise DipnValidationError(str(exc)) from None
    rows = candidate_rows(scores, users, candidates, uplift, basket, coupon, rounds=args.bootstrap)
    chosen_row = next((r for r in rows if chosen is not None and (r["t_l"], r["t_u"]) == (chosen.t_l, chosen.t_u)),
                      None)
    if chosen_row is not None:
        chosen_row["chosen"] = True
    summary = {
        "predictions": str(args.predictions), "column": args.column, "scores": int(len(scores)),
        "users": int(len(set(users.tolist()))),
        "score_quantiles": {q: float(v) for q, v in zip(("min", "p05", "p50", "p95", "max"),
                                                        _quantiles(scores), strict=True)},
        "assumed_uplift": {"peak": uplift.peak, "mode": uplift.mode, "concentration": uplift.concentration},
        "basket_value": basket, "coupon_value": coupon, "bootstrap_rounds": args.bootstrap,
        "candidates": rows, "chosen": chosen_row, "statement": statement,
        "campaign": None if chosen is None else {"t_l": chosen.t_l, "t_u": chosen.t_u},
    }  # fmt: skip
    print(json.dumps(summary, indent=1) if args.json else format_table(summary))
    return 0


def _quantiles(scores):  # noqa: ANN001, ANN202
    import numpy as np

    return np.quantile(scores, [0.0, 0.05, 0.5, 0.95, 1.0])


def format_table(summary: dict) -> str:
    q = summary["score_quantiles"]
    lines = [
        f"{summary['scores']:,} scores of {summary['users']:,} users in {summary['predictions']} "
        f"({summary['column']}: min {q['min']:.4f}, median {q['p50']:.4f}, p95 {q['p95']:.4f}, max {q['max']:.4f})",
        f"expected uplift assumes lift peak {summary['assumed_uplift']['peak']} at p = "
        f"{summary['assumed_uplift']['mode']}, basket {summary['basket_value']:g}, coupon {summary['coupon_value']:g}; "
        f"intervals: 95%, {summary['bootstrap_rounds']} user resamples",
        "",
        f"  {'candidate':26s} {'t_l':>8s} {'t_u':>8s} {'grant rate [95% CI]':>26s} {'incr. GMV/decision':>19s} "
        f"{'per coupon':>11s}",
    ]
    for row in summary["candidates"]:
        interval = "" if row["grant_rate_low"] is None else \
            f" [{row['grant_rate_low']:.1%}, {row['grant_rate_high']:.1%}]"
        per_coupon = "/" if row["expected_incremental_gmv_per_coupon"] is None else \
            f"{row['expected_incremental_gmv_per_coupon']:.3f}"
        mark = "*" if row.get("chosen") else " "
        lines.append(f"{mark} {row['label']:26s} {row['t_l']:8.4f} {row['t_u']:8.4f} "
                     f"{row['grant_rate']:>9.1%}{interval:>17s} {row['expected_incremental_gmv_per_decision']:19.4f} "
                     f"{per_coupon:>11s}")
    if summary["campaign"]:
        lines += ["", f"chosen (*): t_l = {summary['campaign']['t_l']:.6f}, t_u = {summary['campaign']['t_u']:.6f}",
                  "campaign (POST /campaigns): " + json.dumps(summary["campaign"])]
    return "\n".join(lines)
