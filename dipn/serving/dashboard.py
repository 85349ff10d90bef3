"""The operator dashboard: HTML pages with server-side SVG charts, drawn from the campaign report.

``GET /dashboard`` lists the campaigns; ``GET /dashboard/campaigns/{id}`` shows one: buckets with
R_c and I_gmv and their 95% intervals (a table, and charts over time), grant rate, budget burn,
the scores against the band, decisions by reason, model versions (each with R_c and I_gmv of its
users per scored bucket). Every number comes from
``report.campaign_full_report``, the same dict ``GET /campaigns/{id}/report`` returns, and each
table cell carries its raw value (``data-value``) so a test can hold the page to the JSON.

No script and no outside resource: the charts are SVG written here, the page's Content-Security-
Policy forbids loading anything, and it renders offline. The pages need the operator token, as
``Authorization: Bearer <token>`` or as the password of HTTP Basic (any user name), which a browser
asks for itself on the 401.
"""

from __future__ import annotations

import html
import math
import time

from fastapi.responses import HTMLResponse

from dipn.serving import report
from dipn.serving.config import BUCKETS, CampaignConfig
from dipn.serving.metrics import format_number, format_percent

COLORS = {"none": "#7f7f7f", "all": "#1f77b4", "model": "#d62728", "budgeted": "#2ca02c"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
W, H, PAD = 560, 220, 58


def render_campaigns(campaigns: list[tuple[int, int, CampaignConfig]], now_ms: int) -> str:
    """The campaign list: (id, created_ms, config) each, with its status at ``now_ms``."""
    rows = "".join(
        f"<tr><td><a href='/dashboard/campaigns/{i}'>{i}</a></td><td>{html.escape(c.name)}</td>"
        f"<td>{report.status_of(c, now_ms)}</td><td>[{c.t_l:.4g}, {c.t_u:.4g}]</td>"
        f"<td>{_money(c.budget)}</td><td>{_when(created)}</td></tr>"
        for i, created, c in campaigns)
    body = ("<table><tr><th>id</th><th>name</th><th>status</th><th>band</th><th>budget</th><th>created</th></tr>"
            f"{rows}</table>" if rows else "<p>No campaigns yet.</p>")
    return page("dipn campaigns", body)


def html_response(text: str, status: int = 200) -> HTMLResponse:
    """A page with the dashboard's headers: nothing may load from elsewhere, nothing is cached."""
    return HTMLResponse(text, status_code=status, headers={"content-security-policy": CSP, "cache-control": "no-store"})


def page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}}
table{{border-collapse:collapse;margin:8px 0 16px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}
.grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:12px}}
.card{{border:1px solid #ddd;border-radius:6px;padding:8px 12px}}.warn{{background:#fff3cd;border:1px solid #e0b400;
padding:8px 12px;border-radius:6px;margin:8px 0}}svg text{{font:11px system-ui,sans-serif}}.muted{{color:#777}}
</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"""


def render_campaign(data: dict) -> str:
    config, scores, budget = data["config"], data["scores"], data["budget"]
    band = scores["band"]
    statement = band["statement"]
    stated = "" if not statement else f" (stated as {html.escape(statement['kind'])}: " + html.escape(
        ", ".join(f"{k} {v}" for k, v in statement.items() if k not in ("kind",))) + ")"
    parts = [
        f"<p id='summary'>status <b id='status'>{data['status']}</b> &middot; band "
        f"<b id='band' data-t-l='{band['t_l']}' data-t-u='{band['t_u']}'>[{band['t_l']:.4g}, {band['t_u']:.4g}]</b>"
        f"{stated} &middot; <span id='decisions-total' data-value='{data['decisions']['total']}'>"
        f"{data['decisions']['total']}</span> decisions &middot; intervals: 95%, {data['bootstrap_rounds']} user "
        f"resamples &middot; <span class='muted'>generated {_when(data['generated_ms'])}</span></p>",
    ]
    parts += [f"<div class='warn' data-testid='warning'>&#9888; {html.escape(w)}</div>" for w in scores["warnings"]]
    parts.append(_bucket_table(data["buckets"]))
    charts = [
        _card("R_c over time (95% interval)", _time_chart(data["over_time"], "r_c", percent=True)),
        _card("I_gmv over time (95% interval)", _time_chart(data["over_time"], "i_gmv", percent=False)),
        _card("Grant rate over time", _time_chart(data["over_time"], "grant_rate", percent=True)),
        _card("Budget burn", _burn_chart(budget) + _budget_table(budget)),
        _card("Scores decided on, against the band", _histogram(scores["edges"], scores["decided"], band)),
        _card("Live scores (each user's latest), against the band", _histogram(scores["edges"], scores["live"], band)),
        _card("Decisions by reason", _bars(data["decisions"]["by_reason"])),
    ]
    parts.append(f"<div class='grid'>{''.join(charts)}</div>")
    parts.append(_card("Model versions", _versions_table(data["model_versions"])))  # full width: a wide table
    parts.append(f"<p class='muted'>coupon {config['coupon_value']:g} &middot; shares "
                 + html.escape(", ".join(f"{k} {v:g}" for k, v in config["shares"].items()))
                 + " &middot; <a href='/dashboard'>all campaigns</a></p>")
    return page(f"Campaign {data['campaign_id']}: {data['name']}", "".join(parts))


def _card(title: str, inner: str) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")[:40]
    return f"<div class='card' data-chart='{slug}'><h3>{html.escape(title)}</h3>{inner}</div>"


def _cell(bucket: str, field: str, value: float | None, text: str, version: str | None = None) -> str:
    raw = "" if value is None else repr(float(value))
    return f"<td{_version_attr(version)} data-bucket='{bucket}' data-field='{field}' data-value='{raw}'>{text}</td>"


def _version_attr(version: str | None) -> str:
    return "" if version is None else f" data-version='{html.escape(version, quote=True)}'"


def _bucket_table(buckets: dict) -> str:
    head = ("<table id='buckets'><tr><th>bucket</th><th>users</th><th>granted</th><th>grant rate</th><th>used</th>"
            "<th>GMV</th><th>R_c</th><th>R_c 95%</th><th>I_gmv</th><th>I_gmv 95%</th><th>R_c vs all</th>"
            "<th>I_gmv vs all</th></tr>")
    rows = []
    for name, row in buckets.items():
        rows.append(
            f"<tr><td style='color:{COLORS[name]}'>{name}</td>" + _cell(name, "users", row["users"], str(row["users"]))
            + _cell(name, "granted", row["granted"], str(row["granted"]))
            + _cell(name, "grant_rate", row["grant_rate"], format_percent(row["grant_rate"]))
            + _cell(name, "redeemers", row["redeemers"], str(row["redeemers"]))
            + _cell(name, "gmv", row["gmv"], f"{row['gmv']:.2f}")
            + _cell(name, "r_c", row["r_c"], format_percent(row["r_c"]))
            + _interval_cell(name, "r_c_interval", row["r_c_interval"], format_percent)
            + _cell(name, "i_gmv", row["i_gmv"], format_number(row["i_gmv"]))
            + _interval_cell(name, "i_gmv_interval", row["i_gmv_interval"], format_number)
            + _cell(name, "r_c_vs_all", row["r_c_vs_all"], _rel(row["r_c_vs_all"]))
            + _cell(name, "i_gmv_vs_all", row["i_gmv_vs_all"], _rel(row["i_gmv_vs_all"])) + "</tr>")
    return head + "".join(rows) + "</table>"


def _interval_cell(bucket: str, field: str, interval: list | None, fmt, version: str | None = None) -> str:  # noqa: ANN001
    where = f"{_version_attr(version)} data-bucket='{bucket}' data-field='{field}'"
    if interval is None:
        return f"<td{where} data-value=''>/</td>"
    return (f"<td{where} data-low='{interval[0]!r}' data-high='{interval[1]!r}'>"
            f"[{fmt(interval[0])}, {fmt(interval[1])}]</td>")


def _budget_table(budget: dict) -> str:
    rows = "".join(f"<tr><td>{b}</td><td>{_money(v['cap'])}</td><td>{v['reserved']:.2f}</td>"
                   f"<td>{_money(v['remaining'])}</td></tr>"
                   for b, v in budget["buckets"].items() if v["reserved"] or v["cap"])
    return (f"<p>budget <b id='budget' data-value='{budget['budget'] if budget['budget'] is not None else ''}'>"
            f"{_money(budget['budget'])}</b>, reserved <b id='reserved' data-value='{budget['reserved']!r}'>"
            f"{budget['reserved']:.2f}</b>, remaining <b id='remaining'>{_money(budget['remaining'])}</b></p>"
            f"<table><tr><th>bucket</th><th>cap</th><th>reserved</th><th>remaining</th></tr>{rows}</table>")


def _versions_table(versions: dict) -> str:
    if not versions:
        return "<p class='muted'>no decision used a score yet</p>"
    rows = "".join(f"<tr><td>{html.escape(v)}</td><td>{d['decisions']}</td><td>{d['coupons']}</td>"
                   f"<td>{d['redeemed']}</td><td>{format_percent(d['r_c'])}</td><td>{d['mean_p_realtime']:.4f}</td>"
                   f"<td>{_clock(d['first_ms'])}</td><td>{_clock(d['last_ms'])}</td></tr>" for v, d in versions.items())
    return ("<table id='model-versions'><tr><th>model version</th><th>decisions</th><th>coupons</th><th>used</th>"
            f"<th>R_c</th><th>mean p_realtime</th><th>first (UTC)</th><th>last (UTC)</th></tr>{rows}</table>"
            + _version_bucket_table(versions))


def _version_bucket_table(versions: dict) -> str:
    """R_c and I_gmv of each version's users, per bucket that decides on scores (the report's
    ``model_versions[v].buckets``), cells tagged with version, bucket and field as the bucket table's."""
    rows = []
    for version, data in versions.items():
        for name, row in data["buckets"].items():
            rows.append(
                f"<tr><td>{html.escape(version)}</td><td style='color:{COLORS[name]}'>{name}</td>"
                + _cell(name, "users", row["users"], str(row["users"]), version)
                + _cell(name, "granted", row["granted"], str(row["granted"]), version)
                + _cell(name, "redeemers", row["redeemers"], str(row["redeemers"]), version)
                + _cell(name, "gmv", row["gmv"], f"{row['gmv']:.2f}", version)
                + _cell(name, "r_c", row["r_c"], format_percent(row["r_c"]), version)
                + _interval_cell(name, "r_c_interval", row["r_c_interval"], format_percent, version)
                + _cell(name, "i_gmv", row["i_gmv"], format_number(row["i_gmv"]), version)
                + _interval_cell(name, "i_gmv_interval", row["i_gmv_interval"], format_number, version) + "</tr>")
    if not rows:
        return ""
    return ("<table id='version-buckets'><tr><th>model version</th><th>bucket</th><th>users</th><th>granted</th>"
            "<th>used</th><th>GMV</th><th>R_c</th><th>R_c 95%</th><th>I_gmv</th><th>I_gmv 95%</th></tr>"
            + "".join(rows) + "</table>")


# --- SVG -----------------------------------------------------------------------------------------


def _svg(inner: str, height: int = H) -> str:
    size = f"width='{W}' height='{height}' viewBox='0 0 {W} {height}'"
    return f"<svg xmlns='http://www.w3.org/2000/svg' {size}>{inner}</svg>"


def _scale(low: float, high: float, out_low: float, out_high: float):  # noqa: ANN202
    span = (high - low) or 1.0
    return lambda v: out_low + (v - low) / span * (out_high - out_low)


def _axes(x_labels: list[tuple[float, str]], y_low: float, y_high: float, fmt, height: int = H) -> str:  # noqa: ANN001
    y = _scale(y_low, y_high, height - PAD, 12)
    parts = [f"<line x1='{PAD}' y1='{height - PAD}' x2='{W - 8}' y2='{height - PAD}' stroke='#999'/>",
             f"<line x1='{PAD}' y1='12' x2='{PAD}' y2='{height - PAD}' stroke='#999'/>"]
    for k in range(5):
        v = y_low + (y_high - y_low) * k / 4
        parts.append(f"<text x='{PAD - 4}' y='{y(v) + 4:.1f}' text-anchor='end'>{fmt(v)}</text>"
                     f"<line x1='{PAD}' y1='{y(v):.1f}' x2='{W - 8}' y2='{y(v):.1f}' stroke='#eee'/>")
    for k, (x, label) in enumerate(x_labels):
        anchor = "start" if k == 0 else "end"
        parts.append(f"<text x='{x:.1f}' y='{height - PAD + 14}' text-anchor='{anchor}'>{html.escape(label)}</text>")
    return "".join(parts)


def _time_chart(over_time: list, field: str, percent: bool) -> str:
    series = {b: [(p["ms"], p["buckets"][b][field], p["buckets"][b].get(f"{field}_interval"))
                  for p in over_time if b in p["buckets"]] for b in BUCKETS}
    values = [v for pts in series.values() for _, point, interval in pts if point is not None
              for v in (point, *(interval or ())) if math.isfinite(v)]
    if not values:
        return "<p class='muted'>not defined yet (no coupon granted or used)</p>"
    t0, t1 = over_time[0]["ms"], over_time[-1]["ms"]
    lo, hi = min(0.0, min(values)), max(values) * 1.05 or 1.0
    x, y = _scale(t0, t1 if t1 > t0 else t0 + 1, PAD, W - 16), _scale(lo, hi, H - PAD, 12)
    fmt = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}")
    parts = [_axes([(x(t0), _clock(t0)), (x(t1), _clock(t1))], lo, hi, fmt)]
    legend = []
    for b, pts in series.items():
        pts = [(t, v, iv) for t, v, iv in pts if v is not None]
        if not pts:
            continue
        band = [(t, iv) for t, _, iv in pts if iv is not None]
        if len(band) > 1:
            upper = " ".join(f"{x(t):.1f},{y(iv[1]):.1f}" for t, iv in band)
            lower = " ".join(f"{x(t):.1f},{y(iv[0]):.1f}" for t, iv in reversed(band))
            parts.append(f"<polygon points='{upper} {lower}' fill='{COLORS[b]}' fill-opacity='0.15'/>")
        parts.append(f"<polyline points='{' '.join(f'{x(t):.1f},{y(v):.1f}' for t, v, _ in pts)}' fill='none' "
                     f"stroke='{COLORS[b]}' stroke-width='2'/>")
        parts += [f"<circle cx='{x(t):.1f}' cy='{y(v):.1f}' r='2.5' fill='{COLORS[b]}'/>" for t, v, _ in pts]
        legend.append(b)
    for k, b in enumerate(legend):
        parts.append(f"<rect x='{PAD + 10 + k * 90}' y='{H - 16}' width='10' height='10' fill='{COLORS[b]}'/>"
                     f"<text x='{PAD + 24 + k * 90}' y='{H - 7}'>{b}</text>")
    return _svg("".join(parts))


def _burn_chart(budget: dict) -> str:
    burn = budget["burn"]
    if not burn:
        return "<p class='muted'>nothing granted yet</p>"
    top = max([p["reserved"] for p in burn] + [budget["budget"] or 0.0]) * 1.05 or 1.0
    t0, t1 = burn[0]["ms"], burn[-1]["ms"]
    x, y = _scale(t0, t1 if t1 > t0 else t0 + 1, PAD, W - 16), _scale(0, top, H - PAD, 12)
    parts = [_axes([(x(t0), _clock(t0)), (x(t1), _clock(t1))], 0, top, lambda v: f"{v:.0f}")]
    if budget["budget"] is not None:
        parts.append(f"<line x1='{PAD}' y1='{y(budget['budget']):.1f}' x2='{W - 8}' y2='{y(budget['budget']):.1f}' "
                     "stroke='#d62728' stroke-dasharray='4 3'/>"
                     f"<text x='{W - 10}' y='{y(budget['budget']) - 4:.1f}' text-anchor='end'>cap</text>")
    points = " ".join(f"{x(p['ms']):.1f},{y(p['reserved']):.1f}" for p in burn)
    parts.append(f"<polyline points='{points}' fill='none' stroke='#1f77b4' stroke-width='2'/>")
    return _svg("".join(parts))


def _histogram(edges: list[float], part: dict, band: dict) -> str:
    if not part["count"]:
        return "<p class='muted'>no scores</p>"
    counts = part["counts"]
    x, y = _scale(edges[0], edges[-1], PAD, W - 16), _scale(0, max(counts) * 1.1 or 1, H - PAD, 12)
    parts = [_axes([(x(edges[0]), f"{edges[0]:.3g}"), (x(edges[-1]), f"{edges[-1]:.3g}")], 0, max(counts) * 1.1 or 1,
                   lambda v: f"{v:.0f}")]
    t_l, t_u = max(band["t_l"], edges[0]), min(band["t_u"], edges[-1])
    if t_l <= edges[-1] and t_u >= edges[0]:
        parts.append(f"<rect x='{x(t_l):.1f}' y='12' width='{max(1.0, x(t_u) - x(t_l)):.1f}' height='{H - PAD - 12}' "
                     "fill='#2ca02c' fill-opacity='0.15' stroke='#2ca02c' stroke-dasharray='3 2'/>")
    else:
        parts.append(f"<text x='{W - 12}' y='26' text-anchor='end' fill='#b00'>band [{band['t_l']:.3g}, "
                     f"{band['t_u']:.3g}] is off this range</text>")
    for k, count in enumerate(counts):
        width = x(edges[k + 1]) - x(edges[k]) - 1
        parts.append(f"<rect x='{x(edges[k]) + 0.5:.1f}' y='{y(count):.1f}' width='{width:.1f}' "
                     f"height='{H - PAD - y(count):.1f}' fill='#555'/>")
    share = f"{part['inside_share']:.1%}" if part["inside_share"] is not None else "/"
    parts.append(f"<text x='{PAD + 6}' y='24'>{part['count']} scores, {share} inside the band</text>")
    return _svg("".join(parts))


def _bars(counts: dict[str, int]) -> str:
    if not counts:
        return "<p class='muted'>no decisions</p>"
    height = 22 * len(counts) + 16
    top = max(counts.values())
    parts = []
    for k, (reason, n) in enumerate(counts.items()):
        width = (W - 240) * n / top
        parts.append(f"<text x='170' y='{22 * k + 20}' text-anchor='end'>{html.escape(reason)}</text>"
                     f"<rect x='176' y='{22 * k + 8}' width='{width:.1f}' height='16' fill='#1f77b4' "
                     f"data-reason='{html.escape(reason)}' data-value='{n}'/>"
                     f"<text x='{180 + width:.1f}' y='{22 * k + 20}'>{n}</text>")
    return _svg("".join(parts), height)


def _rel(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


def _money(value: float | None) -> str:
    return "no cap" if value is None else f"{value:.2f}"


def _when(ms: int | None) -> str:
    return "" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _clock(ms: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000))
