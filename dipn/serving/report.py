"""A campaign report that says how sure it is (``GET /campaigns/{id}/report``, ``dipn coupon-report``,
the dashboard).

Per bucket: the Table-7 figures of ``metrics`` (R_c, eq. 7; I_gmv, eq. 8) with user-bootstrap 95%
intervals, and the same over time (cumulative at evenly spaced moments); the grant rate; decisions
by reason; per model version its decisions and coupons and, for each bucket that decides on scores,
its users' R_c and I_gmv with intervals; the scores the campaign decided on, and the
live scores, as histograms against the band, with a warning when nearly all of them fall outside
it; the budget, what is reserved and what remains, and its burn over time.

Every figure is computed from one per-user table (bucket, when first seen, coupon, use, GMV), so
the point estimates equal ``GET /metrics/campaign/{id}``'s and the intervals resample the same users.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import Engine, select

from dipn.serving import store
from dipn.serving.config import BUCKETS, CampaignConfig
from dipn.serving.db import read_tx
from dipn.serving.intervals import ROUNDS, percentile_interval, user_weights
from dipn.serving.metrics import BucketTotals, campaign_report, format_percent
from dipn.serving.tables import assignments, bucket_budgets, campaigns, decisions, grants, orders

TIME_POINTS = 8
# Resamples are (rounds x users) weights: fewer rounds for very large campaigns bound the memory.
MAX_WEIGHT_CELLS = 8_000_000
HISTOGRAM_BINS = 24
# The band "misses" the scores when fewer than this share of them fall inside (a stated grant rate
# r lowers it to r / 4): the paper's 0.2-0.4 on scores that lie between 0.02 and 0.05.
MISS_SHARE = 0.01
MIN_SCORES_FOR_WARNING = 10


@dataclass
class UserTable:
    """One row per user the campaign has seen; times in ms, NaN/inf where the event never came."""

    bucket: np.ndarray  # index into BUCKETS
    seen_ms: np.ndarray
    granted_ms: np.ndarray  # inf: no coupon
    coupon_value: np.ndarray  # face value of the user's coupon (0: none)
    redeemed_ms: np.ndarray  # inf: coupon not used
    order_user: np.ndarray  # per order: row of its user
    order_ms: np.ndarray
    order_gmv: np.ndarray


def load(engine: Engine, campaign_id: int, now_ms: int) -> tuple[dict, UserTable, list, dict, np.ndarray]:
    """(campaign facts, users, decision rows, bucket budgets, live scores) in one read transaction."""
    with read_tx(engine) as conn:
        config = store.load_campaign(conn, campaign_id)
        created_ms = conn.execute(select(campaigns.c.created_ms).where(campaigns.c.id == campaign_id)).scalar()
        seen = conn.execute(select(assignments.c.user_id, assignments.c.bucket, assignments.c.first_seen_ms)
                            .where(assignments.c.campaign_id == campaign_id)).all()
        granted = conn.execute(select(grants.c.user_id, grants.c.granted_ms, grants.c.redeemed_order_id,
                                      grants.c.value_cents, grants.c.model_version)
                               .where(grants.c.campaign_id == campaign_id)).all()
        bought = conn.execute(select(orders.c.order_id, orders.c.user_id, orders.c.gmv_cents, orders.c.received_ms)
                              .where(orders.c.campaign_id == campaign_id)).all()
        decided = conn.execute(select(decisions.c.user_id, decisions.c.bucket, decisions.c.granted, decisions.c.reason,
                                      decisions.c.p_realtime, decisions.c.model_version, decisions.c.decided_ms)
                               .where(decisions.c.campaign_id == campaign_id).order_by(decisions.c.id)).all()
        budgets = {r.bucket: (r.cap_cents, r.reserved_cents) for r in conn.execute(
            select(bucket_budgets.c.bucket, bucket_budgets.c.cap_cents, bucket_budgets.c.reserved_cents)
            .where(bucket_budgets.c.campaign_id == campaign_id))}
        live = store.live_scores(conn, now_ms - config.score_max_age_ms)
    row_of = {r.user_id: i for i, r in enumerate(seen)}
    n = len(seen)
    granted_ms, redeemed_ms, value = np.full(n, np.inf), np.full(n, np.inf), np.zeros(n)
    order_ms_of = {o.order_id: o.received_ms for o in bought}
    for g in granted:
        i = row_of[g.user_id]  # a grant always follows its user's assignment
        granted_ms[i], value[i] = g.granted_ms, g.value_cents / 100
        if g.redeemed_order_id is not None:
            redeemed_ms[i] = order_ms_of.get(g.redeemed_order_id, g.granted_ms)
    users = UserTable(
        bucket=np.array([BUCKETS.index(r.bucket) for r in seen], dtype=np.int64),
        seen_ms=np.array([r.first_seen_ms for r in seen], dtype=np.float64),
        granted_ms=granted_ms, coupon_value=value, redeemed_ms=redeemed_ms,
        order_user=np.array([row_of[o.user_id] for o in bought], dtype=np.int64),
        order_ms=np.array([o.received_ms for o in bought], dtype=np.float64),
        order_gmv=np.array([o.gmv_cents / 100 for o in bought], dtype=np.float64),
    )  # fmt: skip
    facts = {"config": config, "created_ms": int(created_ms), "grants": granted,
             "user_ids": [r.user_id for r in seen]}
    return facts, users, decided, budgets, live


def _columns(users: UserTable, as_of: float) -> np.ndarray:
    """(users, 4 * buckets): per bucket, indicator of seen, granted, redeemed, and GMV, as of ``as_of``."""
    n = len(users.bucket)
    gmv = np.zeros(n)
    sel = users.order_ms <= as_of
    np.add.at(gmv, users.order_user[sel], users.order_gmv[sel])
    seen = users.seen_ms <= as_of
    granted = np.isfinite(users.granted_ms) & (users.granted_ms <= as_of)
    redeemed = np.isfinite(users.redeemed_ms) & (users.redeemed_ms <= as_of)
    per_user = np.stack([seen, granted, redeemed, gmv * seen], axis=1)
    out = np.zeros((n, 4 * len(BUCKETS)))
    for b in range(len(BUCKETS)):
        out[:, 4 * b:4 * b + 4] = per_user * (users.bucket == b)[:, None]
    return out


def _figures(sums: np.ndarray) -> dict[str, np.ndarray]:
    """R_c and I_gmv per bucket from summed columns (rounds, 4 * buckets), as metrics computes them."""
    none = BUCKETS.index("none")
    n_non, g_non = sums[:, 4 * none], sums[:, 4 * none + 3]
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for b, name in enumerate(BUCKETS):
            users, granted, redeemed, gmv = (sums[:, 4 * b + k] for k in range(4))
            r_c = np.where(granted > 0, redeemed / granted, np.nan)
            i_gmv = np.where((n_non > 0) & (redeemed > 0), (n_non * gmv - users * g_non) / (n_non * redeemed), np.nan)
            grant_rate = np.where(users > 0, granted / users, np.nan)
            out[name] = {"r_c": r_c, "i_gmv": i_gmv, "grant_rate": grant_rate}
    return out


def _interval(values: np.ndarray) -> list[float] | None:
    interval = percentile_interval(values)
    return None if interval is None else [interval[0], interval[1]]


def bucket_rows(users: UserTable, as_of: float, weights: np.ndarray, shares: dict[str, float]) -> dict[str, dict]:
    """metrics.campaign_report's rows, plus grant rate and 95% intervals of R_c, I_gmv, grant rate."""
    columns = _columns(users, as_of)
    point = columns.sum(axis=0)
    ordered = users.bucket[users.order_user[users.order_ms <= as_of]]
    granted = np.isfinite(users.granted_ms) & (users.granted_ms <= as_of)
    totals = {}
    for b, name in enumerate(BUCKETS):
        in_bucket = users.bucket == b
        if point[4 * b] > 0 or shares.get(name, 0.0) > 0:  # the buckets metrics.campaign_totals shows
            totals[name] = BucketTotals(users=int(point[4 * b]), granted=int(point[4 * b + 1]),
                                        redeemers=int(point[4 * b + 2]), gmv=round(float(point[4 * b + 3]), 2),
                                        orders=int((ordered == b).sum()),
                                        reserved=round(float(users.coupon_value[granted & in_bucket].sum()), 2))
    rows = campaign_report(totals)
    resampled = _figures(weights @ columns)
    for name, row in rows.items():
        row["grant_rate"] = row["granted"] / row["users"] if row["users"] else None
        for figure in ("r_c", "i_gmv", "grant_rate"):
            row[f"{figure}_interval"] = _interval(resampled[name][figure])
        if name == "none":
            row["i_gmv_interval"] = None  # 0 by definition (Table 7)
    return rows


# The buckets whose decisions rest on a score, hence on a model version (none and all use none).
SCORED_BUCKETS = ("model", "budgeted")
MAX_VERSIONS = 20
VERSION_FIELDS = ("users", "granted", "redeemers", "gmv", "orders", "grant_rate", "grant_rate_interval", "r_c",
                  "r_c_interval", "i_gmv", "i_gmv_interval")


def version_of_users(users_seen: list[str], grants_rows: list, decided: list) -> list[str | None]:
    """The model version each user is counted under: the version whose score granted its coupon;
    without a coupon, the version of its latest decision that used a score; None if none did (a user
    of the none or all bucket, or one who never had a recent score)."""
    version: dict[str, str] = {}
    for d in decided:  # in decision order: the latest wins
        if d.model_version is not None:
            version[d.user_id] = d.model_version
    for g in grants_rows:
        if g.model_version is not None:
            version[g.user_id] = g.model_version
    return [version.get(user) for user in users_seen]


def version_rows(users: UserTable, version_of: list[str | None], weights: np.ndarray,
                 shares: dict[str, float], decisions_of: dict[str, int]) -> dict[str, dict[str, dict]]:
    """Per model version, the Table-7 row of each scored bucket restricted to that version's users,
    with the same intervals: R_c over the coupons its scores granted, and I_gmv of its users against
    the whole none bucket (the control serves every version alike). Each version's rows come from
    ``bucket_rows`` on its users and the none bucket's alone, with their columns of the same
    resamples, so the formulas and the intervals are the bucket table's and the cost is linear in
    the campaign's users; the rows of all versions add up to the bucket's users with a score.
    Devices name their model version, so only the ``MAX_VERSIONS`` with the most decisions get rows."""
    names = np.array(version_of, dtype=object)
    control = users.bucket == BUCKETS.index("none")
    scored = np.isin(users.bucket, [BUCKETS.index(b) for b in SCORED_BUCKETS])
    out: dict[str, dict[str, dict]] = {}
    for version in sorted(decisions_of, key=lambda v: (-decisions_of[v], v))[:MAX_VERSIONS]:
        keep = control | (scored & (names == version))
        rows = bucket_rows(_subset(users, keep), np.inf, weights[:, keep], shares)
        out[version] = {b: {k: rows[b][k] for k in VERSION_FIELDS} for b in SCORED_BUCKETS
                        if b in rows and rows[b]["users"] > 0}
    return out


def _subset(users: UserTable, keep: np.ndarray) -> UserTable:
    """The rows of ``keep``, with their orders (re-indexed)."""
    row = np.full(len(keep), -1, dtype=np.int64)
    row[keep] = np.arange(int(keep.sum()))
    own = keep[users.order_user]
    return UserTable(bucket=users.bucket[keep], seen_ms=users.seen_ms[keep], granted_ms=users.granted_ms[keep],
                     coupon_value=users.coupon_value[keep], redeemed_ms=users.redeemed_ms[keep],
                     order_user=row[users.order_user[own]], order_ms=users.order_ms[own],
                     order_gmv=users.order_gmv[own])


def _time_points(users: UserTable, decided: list) -> list[float]:
    """Evenly spaced moments from the campaign's first activity to its last."""
    times = [*users.seen_ms.tolist(), *users.order_ms.tolist(), *(d.decided_ms for d in decided)]
    if not times:
        return []
    first, last = min(times), max(times)
    if last <= first:
        return [float(last)]
    return np.linspace(first, last, TIME_POINTS + 1)[1:].tolist()


def histogram(scores: np.ndarray, edges: np.ndarray, t_l: float, t_u: float) -> dict:
    counts = np.histogram(np.clip(scores, edges[0], edges[-1]), bins=edges)[0] if len(scores) else \
        np.zeros(len(edges) - 1)
    inside = int(((scores >= t_l) & (scores <= t_u)).sum()) if len(scores) else 0
    return {"count": int(len(scores)), "counts": [int(c) for c in counts], "inside": inside,
            "inside_share": inside / len(scores) if len(scores) else None,
            "quantiles": None if not len(scores) else
            {q: float(v) for q, v in zip(("min", "p05", "p50", "p95", "max"),
                                         np.quantile(scores, [0, 0.05, 0.5, 0.95, 1]), strict=True)}}


def score_section(config: CampaignConfig, decided: list, live: np.ndarray) -> dict:
    """The scores the campaign decided on (model and budgeted buckets) and the live scores, as
    histograms over one set of edges, against the band; with a warning when the band misses them."""
    seen = np.array([d.p_realtime for d in decided if d.p_realtime is not None], dtype=np.float64)
    top = max([*seen.tolist(), *live.tolist(), config.t_l, config.t_u if config.t_u < 1 else 0.0, 1e-3])
    edges = np.linspace(0.0, min(1.0, top * 1.05), HISTOGRAM_BINS + 1)
    section = {"band": {"t_l": config.t_l, "t_u": config.t_u, "statement": config.band},
               "edges": edges.tolist(), "decided": histogram(seen, edges, config.t_l, config.t_u),
               "live": histogram(live, edges, config.t_l, config.t_u), "warnings": []}
    floor = MISS_SHARE
    if config.band and config.band.get("kind") == "grant_rate":
        floor = config.band["grant_rate"] / 4
    for name in ("decided", "live"):
        part = section[name]
        if part["count"] >= MIN_SCORES_FOR_WARNING and part["inside_share"] < floor:
            q = part["quantiles"]
            section["warnings"].append(
                f"band [{config.t_l:.4g}, {config.t_u:.4g}] holds {part['inside_share']:.1%} of the {part['count']} "
                f"{'scores decided on' if name == 'decided' else 'live scores'} (they lie between {q['p05']:.4g} and "
                f"{q['p95']:.4g}, 5th to 95th percentile): choose a band with `dipn band` or state it as a grant rate")
    return section


def budget_section(config: CampaignConfig, budgets: dict, grants_rows: list, points: list[float]) -> dict:
    reserved = sum(r for _, r in budgets.values())
    cap = None if config.budget is None else round(config.budget * 100)
    granted_ms = np.array([g.granted_ms for g in grants_rows], dtype=np.float64)
    value = np.array([g.value_cents for g in grants_rows], dtype=np.float64)
    return {
        "budget": config.budget, "reserved": reserved / 100,
        "remaining": None if cap is None else (cap - reserved) / 100,
        "buckets": {b: {"cap": None if c is None else c / 100, "reserved": r / 100,
                        "remaining": None if c is None else (c - r) / 100} for b, (c, r) in budgets.items()},
        "burn": [{"ms": int(t), "reserved": float(value[granted_ms <= t].sum()) / 100} for t in points],
    }  # fmt: skip


def status_of(config: CampaignConfig, now_ms: int) -> str:
    refusal = store.lifecycle_refusal(config, now_ms)
    return {"campaign_paused": "paused", "campaign_not_started": "scheduled", "campaign_ended": "ended",
            None: "running"}[refusal]


def campaign_full_report(engine: Engine, campaign_id: int, now_ms: int, rounds: int = ROUNDS) -> dict:
    facts, users, decided, budgets, live = load(engine, campaign_id, now_ms)
    config: CampaignConfig = facts["config"]
    rounds = max(100, min(rounds, MAX_WEIGHT_CELLS // max(1, len(users.bucket))))
    weights = user_weights(np.arange(len(users.bucket)), rounds=rounds, seed=campaign_id)
    points = _time_points(users, decided)
    over_time = []
    for t in points:
        rows = bucket_rows(users, t, weights, config.shares)
        over_time.append({"ms": int(t), "buckets": {b: {k: rows[b][k] for k in (
            "users", "granted", "redeemers", "r_c", "r_c_interval", "i_gmv", "i_gmv_interval", "grant_rate")}
            for b in rows}})
    by_reason = Counter(d.reason for d in decided)
    by_bucket_reason: dict[str, Counter] = {}
    for d in decided:
        by_bucket_reason.setdefault(d.bucket, Counter())[d.reason] += 1
    versions: dict[str, dict] = {}
    for d in decided:
        if d.model_version is None:
            continue
        v = versions.setdefault(d.model_version, {"decisions": 0, "granted": 0, "first_ms": d.decided_ms,
                                                  "last_ms": d.decided_ms, "scores": []})
        v["decisions"] += 1
        v["granted"] += bool(d.granted) and d.reason != "already_granted"
        v["last_ms"] = d.decided_ms
        v["scores"].append(d.p_realtime)
    for g in facts["grants"]:
        if g.model_version in versions:
            versions[g.model_version]["coupons"] = versions[g.model_version].get("coupons", 0) + 1
            versions[g.model_version]["redeemed"] = versions[g.model_version].get("redeemed", 0) + \
                (g.redeemed_order_id is not None)
    per_version = version_rows(users, version_of_users(facts["user_ids"], facts["grants"], decided), weights,
                               config.shares, {name: v["decisions"] for name, v in versions.items()})
    for name, v in versions.items():
        scores = v.pop("scores")
        v["mean_p_realtime"] = float(np.mean(scores))
        v.setdefault("coupons", 0)
        v.setdefault("redeemed", 0)
        v["r_c"] = v["redeemed"] / v["coupons"] if v["coupons"] else None
        v["buckets"] = per_version.get(name, {})
    return {
        "campaign_id": campaign_id, "name": config.name, "status": status_of(config, now_ms),
        "generated_ms": now_ms, "bootstrap_rounds": rounds, "interval_level": 0.95,
        "buckets": bucket_rows(users, np.inf, weights, config.shares),
        "over_time": over_time,
        "decisions": {"total": len(decided), "by_reason": dict(by_reason.most_common()),
                      "by_bucket": {b: dict(c.most_common()) for b, c in by_bucket_reason.items()}},
        "model_versions": versions,
        "scores": score_section(config, decided, live),
        "budget": budget_section(config, budgets, facts["grants"], points),
        "config": asdict(config),
    }  # fmt: skip


def format_report_text(report: dict) -> str:
    """The CLI's view: Table 7 with intervals, grant rates, decisions by reason, band, budget."""
    lines = [f"campaign {report['campaign_id']} ({report['name']}, {report['status']}): "
             f"{report['decisions']['total']} decisions; 95% intervals from {report['bootstrap_rounds']} user "
             "resamples",
             f"{'bucket':9s} {'users':>7s} {'granted':>8s} {'rate':>7s} {'used':>6s} {'GMV':>11s} "
             f"{'R_c [95% CI]':>24s} {'I_gmv [95% CI]':>30s}"]
    for name, row in report["buckets"].items():
        lines.append(f"{name:9s} {row['users']:7d} {row['granted']:8d} {format_percent(row['grant_rate']):>7s} "
                     f"{row['redeemers']:6d} {row['gmv']:11.2f} "
                     f"{_with_interval(row['r_c'], row['r_c_interval'], True):>24s} "
                     f"{_with_interval(row['i_gmv'], row['i_gmv_interval'], False):>30s}")
    reasons = ", ".join(f"{k} {v}" for k, v in report["decisions"]["by_reason"].items()) or "none"
    lines.append(f"decisions by reason: {reasons}")
    for version, v in report["model_versions"].items():
        lines.append(f"model {version}: {v['decisions']} decisions, {v['coupons']} coupons, {v['redeemed']} used, "
                     f"mean p_realtime {v['mean_p_realtime']:.4f}")
        for name, row in v["buckets"].items():
            lines.append(f"  {name:9s} {row['users']:7d} {row['granted']:8d} {format_percent(row['grant_rate']):>7s} "
                         f"{row['redeemers']:6d} {row['gmv']:11.2f} "
                         f"{_with_interval(row['r_c'], row['r_c_interval'], True):>24s} "
                         f"{_with_interval(row['i_gmv'], row['i_gmv_interval'], False):>30s}")
    band = report["scores"]["band"]
    decided = report["scores"]["decided"]
    lines.append(f"band [{band['t_l']:.4g}, {band['t_u']:.4g}]"
                 + (f" (stated as {band['statement']['kind']})" if band["statement"] else "")
                 + (f": {format_percent(decided['inside_share'])} of {decided['count']} scores decided on inside"
                    if decided["count"] else ""))
    budget = report["budget"]
    if budget["budget"] is not None:
        lines.append(f"budget {budget['budget']:.2f}: reserved {budget['reserved']:.2f}, "
                     f"remaining {budget['remaining']:.2f}")
    lines += [f"WARNING: {w}" for w in report["scores"]["warnings"]]
    return "\n".join(lines)


def _with_interval(value: float | None, interval: list | None, percent: bool) -> str:
    if value is None:
        return "/"
    fmt = (lambda x: f"{x:.1%}") if percent else (lambda x: f"{x:.2f}")
    return fmt(value) + ("" if interval is None else f" [{fmt(interval[0])}, {fmt(interval[1])}]")
