"""Touch events inside page visits: the swipe view (open/leave page, swipes, taps with geometry)
and the tap view (page events and button taps), for all visits of a chunk at once.

Per visit: open_page at its start; a Poisson number of touches at ordered random times (the rate
depends on the page and the phase); optionally a "pre-navigation" button tap (add to cart before
opening the cart, choosing a SKU before buy-now); the navigation gesture (a button tap, a back
button, an edge swipe, or nothing for the system back key / leaving the app); leave_page at its
end. Every swipe-view tap on a button is also a tap-view button event a few ms later; every
visit is a tap-view page event just after open_page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.logs.simulation import catalog as cat

OPEN, LEAVE, SWIPE, TAP = range(4)  # codes in dipn.features.spec.SWIPE_ACTIONS order
PAGE_EVENT, BUTTON_EVENT = range(2)  # codes in TAP_EVENTS order
LEAD_MS = 150.0  # first touch no earlier than this after open_page
NAV_TAIL_MS = 250.0  # room kept for the navigation gesture
PRE_TAIL_MS = 900.0  # and for a pre-navigation tap
MIN_TOUCH_SPACING_MS = 120.0
MIN_DWELL_MS = LEAD_MS + NAV_TAIL_MS + PRE_TAIL_MS + 200.0


@dataclass
class VisitTouchInput:
    user: np.ndarray  # chunk-local user of each visit
    start: np.ndarray  # ms, float
    end: np.ndarray
    kind: np.ndarray
    sub: np.ndarray
    behaviour: np.ndarray  # 0 browse, 1 consider, 2 buy
    next_kind: np.ndarray
    back: np.ndarray


@dataclass
class TouchOutput:
    swipe: dict[str, np.ndarray]  # visit, ts, type, x, y, x0, y0, x1, y1, duration_ms
    tap: dict[str, np.ndarray]  # visit, ts, event, button (-1 on page events)
    nav_ts: np.ndarray  # per visit: time of the navigation gesture (the visit's end if none)


def touches(v: VisitTouchInput, shoppers, rng: np.random.Generator) -> TouchOutput:
    n = len(v.start)
    kind, b = v.kind, v.behaviour
    dwell = v.end - v.start
    nxt_kind = np.minimum(v.next_kind, cat.N_KINDS - 1)
    forward = (v.next_kind != cat.EXIT) & ~v.back
    # Navigation gesture: forward button, or back via button / edge swipe / system key.
    nav_button = np.where(forward, cat.NAV_BUTTON[kind, nxt_kind], -1)
    for k, ids in cat.SUB_ITEM_BUTTON.items():
        sel = forward & (kind == k) & (v.next_kind == cat.DETAIL)
        nav_button[sel] = ids[v.sub[sel]]
    back_style = cat.draw(cat.BACK_STYLE_CDF, rng.random(n))
    nav_button = np.where(v.back & (back_style == 0), cat.BACK_BUTTON[kind], nav_button)
    nav_swipe = v.back & (back_style == 1)
    nav_tap = nav_button >= 0
    has_nav = nav_tap | nav_swipe
    pre_button = np.where(forward, cat.PRE_BUTTON[kind, nxt_kind], -1)
    has_pre = (pre_button >= 0) & (rng.random(n) < cat.PRE_PROB[kind, nxt_kind, b])
    pre_button = np.where(has_pre, pre_button, -1)

    # Free touches at ordered random times in (start + LEAD, end - tail).
    tail = NAV_TAIL_MS + PRE_TAIL_MS * has_pre
    room = np.maximum(dwell - LEAD_MS - tail, 0.0)
    rate = cat.EVENT_RATE[kind] * cat.RATE_MODE[b] * shoppers.touch_rate[v.user]
    fits = (room // MIN_TOUCH_SPACING_MS).astype(np.int64)
    m = np.minimum(rng.poisson(dwell / 1000.0 * rate), fits)
    slots = m + 1
    total = int(slots.sum())
    gaps = rng.exponential(1.0, total)
    seg_first = np.cumsum(slots) - slots
    csum = np.cumsum(gaps)
    base = np.repeat(csum[seg_first] - gaps[seg_first], slots)
    within = csum - base
    seg_total = within[seg_first + slots - 1]
    is_inner = np.ones(total, dtype=bool)
    is_inner[seg_first + slots - 1] = False
    inner_visit = np.repeat(np.arange(n), m)
    frac = (within / np.repeat(seg_total, slots))[is_inner]
    inner_ts = v.start[inner_visit] + LEAD_MS + frac * room[inner_visit]
    ik, ib = kind[inner_visit], b[inner_visit]
    inner_tap = rng.random(len(inner_visit)) < cat.P_TAP[ik]
    hit = inner_tap & (rng.random(len(inner_visit)) < cat.P_BUTTON[ik])
    slot = cat.draw(cat.IN_PAGE_CDF[ik, ib], rng.random(len(inner_visit)))
    inner_button = np.where(hit, cat.IN_PAGE_IDS[ik, slot], -1)

    # Rows of the swipe view: open, free touches, pre tap, navigation, leave.
    count = 2 + m + has_pre + has_nav
    first = np.cumsum(count) - count
    rows = int(count.sum())
    visit = np.repeat(np.arange(n), count)
    ts = np.empty(rows)
    typ = np.empty(rows, dtype=np.int64)
    button = np.full(rows, -1, dtype=np.int64)
    ts[first], typ[first] = v.start, OPEN
    last = first + count - 1
    ts[last], typ[last] = v.end, LEAVE
    rank_in_visit = np.arange(len(inner_visit)) - np.repeat(np.cumsum(m) - m, m)
    inner_rows = np.repeat(first + 1, m) + rank_in_visit
    ts[inner_rows] = inner_ts
    typ[inner_rows] = np.where(inner_tap, TAP, SWIPE)
    button[inner_rows] = inner_button
    pre_rows = (first + 1 + m)[has_pre]
    ts[pre_rows] = (v.end - NAV_TAIL_MS - rng.uniform(300, 800, n))[has_pre]
    typ[pre_rows], button[pre_rows] = TAP, pre_button[has_pre]
    nav_rows = (first + 1 + m + has_pre)[has_nav]
    nav_ts = np.where(nav_swipe, v.end - rng.uniform(180, 240, n), v.end - rng.uniform(40, 200, n))
    ts[nav_rows] = nav_ts[has_nav]
    typ[nav_rows] = np.where(nav_swipe, SWIPE, TAP)[has_nav]
    button[nav_rows] = nav_button[has_nav]
    nav_ts = np.where(has_nav, nav_ts, v.end)

    # Geometry.
    user = v.user[visit]
    w, h = shoppers.screen_w[user], shoppers.screen_h[user]
    x = np.full(rows, np.nan)
    y = np.full(rows, np.nan)
    is_tap = typ == TAP
    tb = button[is_tap]
    fx = np.where(tb >= 0, cat.BUTTON_X_ARR[tb], cat.RANDOM_POS)
    fy = np.where(tb >= 0, cat.BUTTON_Y_ARR[tb], cat.RANDOM_POS)
    k_tap = is_tap.sum()
    rand = fx < 0
    fx = np.where(rand, rng.uniform(0.04, 0.96, k_tap), fx + rng.normal(0, 0.025, k_tap))
    fy = np.where(rand, rng.uniform(0.10, 0.92, k_tap), fy + rng.normal(0, 0.018, k_tap))
    x[is_tap] = _points(np.clip(fx, 0, 1) * w[is_tap])
    y[is_tap] = _points(np.clip(fy, 0, 1) * h[is_tap])

    is_swipe = typ == SWIPE
    style = np.full(rows, cat.FLING)
    inner_swipe = ~inner_tap
    style[inner_rows[inner_swipe]] = cat.draw(
        cat.STYLE_CDF[ik[inner_swipe], ib[inner_swipe]], rng.random(int(inner_swipe.sum()))
    )
    style[nav_rows[nav_swipe[has_nav]]] = cat.EDGE_BACK
    geo = swipe_geometry(
        style[is_swipe], b[visit[is_swipe]], shoppers.hand[user[is_swipe]],
        shoppers.swipe_speed[user[is_swipe]], shoppers.swipe_reach[user[is_swipe]], rng,
    )  # fmt: skip
    x0, y0, x1, y1, dur = (np.full(rows, np.nan) for _ in range(5))
    ws, hs = w[is_swipe], h[is_swipe]
    x0[is_swipe], x1[is_swipe] = _points(geo[0] * ws), _points(geo[2] * ws)
    y0[is_swipe], y1[is_swipe] = _points(geo[1] * hs), _points(geo[3] * hs)
    dur[is_swipe] = np.round(geo[4])

    swipe = {"visit": visit, "ts": np.floor(ts).astype(np.int64), "type": typ, "x": x, "y": y,
             "x0": x0, "y0": y0, "x1": x1, "y1": y1, "duration_ms": dur,
             "button": button}  # fmt: skip

    # Tap view: a page event per visit, a button event per button tap.
    btn_rows = np.flatnonzero(button >= 0)
    t_visit = np.concatenate([np.arange(n), visit[btn_rows]])
    page_ts = v.start + rng.uniform(3, 40, n)
    t_ts = np.concatenate([page_ts, ts[btn_rows] + rng.uniform(2, 25, len(btn_rows))])
    t_event = np.concatenate([np.full(n, PAGE_EVENT), np.full(len(btn_rows), BUTTON_EVENT)])
    t_button = np.concatenate([np.full(n, -1), button[btn_rows]])
    order = np.lexsort((t_ts, t_visit))
    tap = {"visit": t_visit[order], "ts": np.floor(t_ts[order]).astype(np.int64),
           "event": t_event[order], "button": t_button[order]}  # fmt: skip
    return TouchOutput(swipe=swipe, tap=tap, nav_ts=nav_ts)


def _points(v: np.ndarray) -> np.ndarray:
    """Touch coordinates are logged in half points (e.g. 336.5), as in the paper's Table 2."""
    return np.round(v * 2.0) / 2.0


def swipe_geometry(style: np.ndarray, behaviour: np.ndarray, hand: np.ndarray, speed: np.ndarray,
                   reach: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Start/end as screen fractions and duration (ms) of each swipe.

    Vertical styles move along y from a start band, the thumb near the user's hand side; horizontal
    ones (gallery, edge-back) along x. Focused phases swipe shorter and slower; each user has a
    speed and reach of their own, so neither gives the phase away alone.
    """
    k = len(style)
    p = cat.STYLE_PARAMS[style]
    axis, p_neg, lo, hi, dur_med, dur_sigma, s_lo, s_hi = p.T
    neg = rng.random(k) < p_neg
    sign = np.where(neg, -1.0, 1.0)
    length = rng.uniform(lo, hi) * cat.SWIPE_LENGTH_MODE[behaviour] * reach
    mid = (lo + hi) / 2
    dur = (dur_med * np.exp(rng.normal(0, dur_sigma)) * cat.SWIPE_DURATION_MODE[behaviour] * speed
           * np.sqrt(length / mid))  # fmt: skip
    start_band = rng.uniform(s_lo, s_hi)
    vertical = axis == 0
    # Vertical: swipes going down start in the mirrored band so they fit on screen.
    vy0 = np.where(neg | (style == cat.SCROLL_BACK), start_band, 1 - start_band)
    vx0 = hand + rng.normal(0, 0.07, k)
    vx1 = vx0 + rng.normal(0, 0.03, k)
    vy1 = vy0 + sign * length
    # Horizontal: leftwards from the right half, rightwards from the left half, edge-back from
    # the left edge.
    hx0 = np.where(neg, rng.uniform(0.55, 0.92, k), rng.uniform(0.08, 0.45, k))
    hx0 = np.where(style == cat.EDGE_BACK, rng.uniform(0.0, 0.03, k), hx0)
    hx1 = hx0 + sign * length
    hy0 = start_band
    hy1 = hy0 + rng.normal(0, 0.02, k)
    x0 = np.where(vertical, vx0, hx0)
    y0 = np.where(vertical, vy0, hy0)
    x1 = np.where(vertical, vx1, hx1)
    y1 = np.where(vertical, vy1, hy1)
    clip = lambda a: np.clip(a, 0.0, 1.0)  # noqa: E731
    return clip(x0), clip(y0), clip(x1), clip(y1), np.maximum(dur, 15.0)
