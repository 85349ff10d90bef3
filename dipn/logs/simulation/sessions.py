"""One chunk of users end to end: plan sessions, walk pages, time them, emit the three event views.

Timing: each visit's dwell time is log-normal around a median that depends on the page kind and
the phase (comments are read for ~10 s when browsing, ~35 s when buying), times a per-user
factor. Sessions are laid out at their planned start, pushed later if the previous session of
the same user is still running.

Browse view, derived from the visits and taps:
  browse   one per item context (a detail page plus its comments/specs/gallery/Q&A pages), logged
           when the user leaves the item; stay_ms = time in the context; page = where the item
           was opened from (home feed, search results, cart, a channel, "Page_External").
  search   one per submitted search (search page -> results); category of the query, no leaf.
  collect  one per "Favorite" tap on a detail page;  cart: one per "AddToCart" tap.
  purchase one per order line when the order is submitted at checkout (page "Page_Checkout").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.logs.simulation import catalog as cat
from dipn.logs.simulation.config import SimulationConfig
from dipn.logs.simulation.intent import SessionPlan, plan_sessions
from dipn.logs.simulation.navigation import Visits, walk
from dipn.logs.simulation.shoppers import Shoppers, draw_leaves, draw_shoppers, draw_tops
from dipn.logs.simulation.touches import MIN_DWELL_MS, VisitTouchInput, touches

BROWSE, SEARCH, COLLECT, CART, PURCHASE = range(5)  # codes in BROWSE_ACTIONS order
SESSION_GAP_MS = 60_000  # a new session starts at least a minute after the previous one ended
MAX_DWELL_MS = 30 * 60_000


@dataclass
class Chunk:
    shoppers: Shoppers
    swipe: dict[str, np.ndarray]  # user (chunk-local), ts, type, page, x ... duration_ms
    tap: dict[str, np.ndarray]  # user, ts, event, page, button
    browse: dict[str, np.ndarray]  # user, ts, action, leaf, top, page, stay_ms
    sessions: dict[str, np.ndarray]  # latent truth: user, start, end, phase, n_buy, switch


def simulate_chunk(config: SimulationConfig, chunk: int, first_user: int, n_users: int) -> Chunk:
    rng = np.random.default_rng([config.seed, chunk])
    shoppers = draw_shoppers(config, first_user, n_users, rng)
    plan = plan_sessions(config, shoppers, rng)
    visits = walk(plan, rng)
    v_user = plan.user[visits.session]
    b = visits.behaviour

    # Dwell times and the layout of sessions in time.
    dwell = cat.DWELL_MEDIAN_S[visits.kind, b] * 1000.0 * shoppers.dwell[v_user]
    dwell = dwell * np.exp(rng.normal(0, cat.DWELL_SIGMA, len(visits)))
    dwell = np.clip(dwell, MIN_DWELL_MS, MAX_DWELL_MS)
    step_ms = dwell + rng.uniform(40, 400, len(visits))  # transition to the next page
    n_sess = len(plan)
    sess_first = np.searchsorted(visits.session, np.arange(n_sess))
    csum = np.cumsum(step_ms)
    before = csum - step_ms  # time from the chunk's first visit to each visit
    n_visits = np.diff(np.append(sess_first, len(visits)))
    offset = before - np.repeat(before[sess_first], n_visits)
    duration = np.bincount(visits.session, weights=step_ms, minlength=n_sess)
    start = _layout(plan, duration, config.start_ms)
    v_start = start[visits.session] + offset
    v_end = v_start + dwell

    touch = touches(
        VisitTouchInput(user=v_user, start=v_start, end=v_end, kind=visits.kind, sub=visits.sub,
                        behaviour=b, next_kind=visits.next_kind, back=visits.back),
        shoppers, rng,
    )  # fmt: skip
    page = visits.page
    sw = touch.swipe
    swipe = {"user": v_user[sw["visit"]], "page": page[sw["visit"]],
             **{k: sw[k] for k in ("ts", "type", "x", "y", "x0", "y0", "x1", "y1",
                                   "duration_ms")}}  # fmt: skip
    tp = touch.tap
    tap = {"user": v_user[tp["visit"]], "ts": tp["ts"], "event": tp["event"],
           "page": page[tp["visit"]], "button": tp["button"]}  # fmt: skip
    browse = _browse_rows(plan, visits, v_user, v_start, v_end, sw, touch.nav_ts, shoppers, rng)

    end = config.end_ms
    swipe, tap, browse = (_before(d, end) for d in (swipe, tap, browse))
    purchased = np.zeros(n_sess, dtype=np.int64)
    paid = visits.session[visits.purchase]
    np.add.at(purchased, paid, plan.n_buy[paid])
    sessions = {"user": plan.user, "start": start.astype(np.int64),
                "end": (start + duration).astype(np.int64),
                "phase": np.where(plan.n_buy > 0, 2, plan.base_mode), "n_buy": purchased,
                "switch": plan.switch}  # fmt: skip
    return Chunk(shoppers, swipe, tap, browse, sessions)


def _layout(plan: SessionPlan, duration: np.ndarray, origin: int) -> np.ndarray:
    """Start of each session: max(planned, end of the user's previous session + gap).

    With C = the user's cumulative (duration + gap) before a session,
    start = C + cummax(planned - C) within the user, which numpy does for all users at once by
    lifting each user's values above the previous user's.
    """
    d = duration + SESSION_GAP_MS
    csum = np.cumsum(d)
    user_first = np.searchsorted(plan.user, plan.user, side="left")
    c_prev = csum - d - (csum - d)[user_first]
    val = (plan.planned - origin) - c_prev
    lift = plan.user.astype(np.float64) * 1e11
    return origin + c_prev + np.maximum.accumulate(val + lift) - lift


def _browse_rows(plan: SessionPlan, visits: Visits, v_user: np.ndarray, v_start: np.ndarray,
                 v_end: np.ndarray, sw: dict[str, np.ndarray], nav_ts: np.ndarray,
                 shoppers: Shoppers, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(visits)
    kind, sess = visits.kind, visits.session
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = sess[1:] == sess[:-1]
    prev_kind = np.full(n, -1)
    prev_kind[1:] = kind[:-1]
    prev_kind = np.where(same_prev, prev_kind, -1)
    prev_page = np.full(n, cat.EXTERNAL_PAGE)
    prev_page[1:] = visits.page[:-1]
    prev_page = np.where(same_prev, prev_page, cat.EXTERNAL_PAGE)
    focused = visits.behaviour > 0
    t_top, t_leaf = plan.target_top[sess], plan.target_leaf[sess]
    has_target = t_top >= 0

    # Item contexts: a detail page not reached back from one of its own sub-pages.
    is_item = np.isin(kind, cat.ITEM_PAGES)
    new_ctx = (kind == cat.DETAIL) & ~((prev_kind >= 0) & cat.IS_SUB[np.maximum(prev_kind, 0)])
    ctx_of = np.where(is_item, np.cumsum(new_ctx) - 1, -1)
    c_idx = np.flatnonzero(new_ctx)
    n_ctx = len(c_idx)
    u = rng.random(n_ctx)
    from_cart = prev_kind[c_idx] == cat.CART
    aim = focused[c_idx] & has_target[c_idx]
    p_target = np.where(from_cart, 0.8, 0.65)
    rand_top = draw_tops(shoppers, v_user[c_idx], rng)
    top = np.where(aim & (u < 0.8), t_top[c_idx], rand_top)
    leaf = np.where(aim & (u < p_target), t_leaf[c_idx], draw_leaves(top, rng))
    ctx_end = np.zeros(n_ctx)
    np.maximum.at(ctx_end, ctx_of[is_item], v_end[is_item])
    stay = ctx_end - v_start[c_idx]
    rows = [_rows(v_user[c_idx], ctx_end, BROWSE, leaf, top, prev_page[c_idx], stay)]

    # Searches: the search page submitted to the results page.
    s_idx = np.flatnonzero((kind == cat.RESULTS) & (prev_kind == cat.SEARCH))
    aim = focused[s_idx] & has_target[s_idx] & (rng.random(len(s_idx)) < 0.8)
    s_top = np.where(aim, t_top[s_idx], draw_tops(shoppers, v_user[s_idx], rng))
    search_page = np.full(len(s_idx), cat.PAGE_BASE[cat.SEARCH])
    no_leaf, no_stay = np.full(len(s_idx), -1), np.full(len(s_idx), np.nan)
    rows.append(_rows(v_user[s_idx], v_start[s_idx], SEARCH, no_leaf, s_top, search_page, no_stay))

    # Collect / cart: Favorite and AddToCart taps on detail pages, for the item in view.
    detail_page = cat.PAGE_BASE[cat.DETAIL]
    for action, btn in ((COLLECT, cat.FAVORITE), (CART, cat.ADD_TO_CART)):
        r = np.flatnonzero(sw["button"] == btn)
        vis = sw["visit"][r]
        c = ctx_of[vis]
        rows.append(_rows(v_user[vis], sw["ts"][r].astype(np.float64), action, leaf[c], top[c],
                          np.full(len(r), detail_page), np.full(len(r), np.nan)))  # fmt: skip

    # Purchases: one row per order line; the first line is the item the episode was after.
    p_idx = np.flatnonzero(visits.purchase)
    lines = np.maximum(plan.n_buy[sess[p_idx]], 1)
    line_visit = np.repeat(p_idx, lines)
    first_line = np.zeros(len(line_visit), dtype=bool)
    first_line[np.cumsum(lines) - lines] = True
    extra_top = draw_tops(shoppers, v_user[line_visit], rng)
    p_top = np.where(first_line, t_top[line_visit], extra_top)
    p_leaf = np.where(first_line, t_leaf[line_visit], draw_leaves(np.maximum(p_top, 0), rng))
    rows.append(_rows(v_user[line_visit], nav_ts[line_visit] + 1.0, PURCHASE, p_leaf, p_top,
                      np.full(len(line_visit), cat.PAGE_BASE[cat.CHECKOUT]),
                      np.full(len(line_visit), np.nan)))  # fmt: skip

    out = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    out["ts"] = np.floor(out["ts"]).astype(np.int64)
    order = np.lexsort((out["ts"], out["user"]))
    return {k: v[order] for k, v in out.items()}


def _rows(user, ts, action, leaf, top, page, stay) -> dict[str, np.ndarray]:
    return {"user": user, "ts": ts, "action": np.full(len(user), action), "leaf": leaf,
            "top": top, "page": page, "stay_ms": np.floor(stay)}  # fmt: skip


def _before(cols: dict[str, np.ndarray], end: int) -> dict[str, np.ndarray]:
    keep = cols["ts"] < end
    return {k: v[keep] for k, v in cols.items()}
