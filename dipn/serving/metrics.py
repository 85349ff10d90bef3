"""R_c and I_gmv per bucket (paper section 6.3, eq. 7 and 8), from recorded grants and orders.

The paper uses N_b for two counts; here they have two names:
- ``granted``: users of bucket b who got the coupon (N_b of eq. 7);
- ``users``: all users of bucket b (N_b of eq. 8), i.e. those the campaign saw (a decision or an
  order);
- ``redeemers``: users of b who used the coupon to buy (N_wb);
- ``gmv``: total GMV of the users of b (G_b), coupon or not.
The endpoint, ``dipn coupon-report`` and the policy simulation all compute them here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dipn.serving.config import BUCKETS


@dataclass(frozen=True)
class BucketTotals:
    users: int
    granted: int
    redeemers: int
    gmv: float
    orders: int = 0
    reserved: float = 0.0  # face value of the coupons granted


def coupon_usage_rate(bucket: BucketTotals) -> float | None:
    """Eq. (7): R_c = N_wb / N_b, over the users who got the coupon; None when nobody did."""
    if bucket.granted == 0:
        return None
    return bucket.redeemers / bucket.granted


def gmv_improvement_per_coupon(bucket: BucketTotals, non: BucketTotals) -> float | None:
    """Eq. (8): I_gmv = (N_non G_b - N_b G_non) / (N_non N_wb).

    The bucket's GMV beyond what its users would have spent at the non-allocation bucket's rate,
    per coupon used. None when it is undefined: no users in the non-allocation bucket, or no
    coupon used in b.
    """
    if non.users == 0 or bucket.redeemers == 0:
        return None
    return (non.users * bucket.gmv - bucket.users * non.gmv) / (non.users * bucket.redeemers)


def campaign_report(totals: dict[str, BucketTotals]) -> dict[str, dict]:
    """One row per bucket present: the totals, R_c, I_gmv, and both relative to the all bucket."""
    non = totals.get("none", BucketTotals(0, 0, 0, 0.0))
    rows: dict[str, dict] = {}
    for bucket in BUCKETS:
        if bucket not in totals:
            continue
        row = asdict(totals[bucket])
        row["r_c"] = coupon_usage_rate(totals[bucket])
        # Table 7 shows I_gmv = 0 for the non-allocation bucket, by definition.
        row["i_gmv"] = 0.0 if bucket == "none" and non.users else gmv_improvement_per_coupon(totals[bucket], non)
        rows[bucket] = row
    base = rows.get("all")
    for bucket, row in rows.items():
        compared = base is not None and bucket not in ("all", "none")
        row["r_c_vs_all"] = _relative(row["r_c"], base["r_c"]) if compared else None
        row["i_gmv_vs_all"] = _relative(row["i_gmv"], base["i_gmv"]) if compared else None
    return rows


def _relative(value: float | None, reference: float | None) -> float | None:
    """(value - reference) / |reference|, as Table 7's '+41.1%'."""
    if value is None or reference is None or reference == 0:
        return None
    return (value - reference) / abs(reference)


def format_report(rows: dict[str, dict]) -> str:
    """A plain-text table like the paper's Table 7."""
    lines = [f"{'bucket':9s} {'users':>9s} {'granted':>9s} {'used':>8s} {'GMV':>13s} {'R_c':>16s} {'I_gmv':>18s}"]
    for bucket, row in rows.items():
        r_c = "/" if row["r_c"] is None else f"{row['r_c']:.1%}" + _paren(row["r_c_vs_all"])
        i_gmv = "/" if row["i_gmv"] is None else f"{row['i_gmv']:.2f}" + _paren(row["i_gmv_vs_all"])
        lines.append(
            f"{bucket:9s} {row['users']:9d} {row['granted']:9d} {row['redeemers']:8d} {row['gmv']:13.2f} "
            f"{r_c:>16s} {i_gmv:>18s}"
        )
    return "\n".join(lines)


def format_percent(value: float | None) -> str:
    """'57.0%', or '/' where the figure is undefined (as Table 7 writes it)."""
    return "/" if value is None else f"{value:.1%}"


def format_number(value: float | None) -> str:
    """'39.80', or '/' where the figure is undefined."""
    return "/" if value is None else f"{value:.2f}"


def _paren(relative: float | None) -> str:
    return "" if relative is None else f" ({relative:+.1%})"
