"""The latent intent process: when users open the app and which phase each session is in.

Each user has app sessions (Poisson per day, an hour-of-day curve) and two kinds of episodes:

* purchase episodes (buyers only): an intent starts at an onset time; after a decision delay the
  user buys the item in the first session that starts after it. Sessions between onset and that
  session are *considering*, and the user opens the app more often in the hour before deciding
  (return visits); the session where the order is placed is *buying* from a switch visit on.
  A share of episodes are impulse buys: no delay, no considering sessions, the switch comes
  mid-session.
* window-shopping episodes (everyone): the same considering behaviour for a while, no purchase.

Sessions covered by no episode are *browsing*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.logs.simulation import catalog as cat
from dipn.logs.simulation.config import DAY_MS, HOUR_MS, SimulationConfig
from dipn.logs.simulation.shoppers import Shoppers, draw_leaves, draw_tops

LEAD_DAYS = 2.0  # episodes may start this long before the window (considering already under way)
IMPULSE_SHARE = 0.3
DELAY_MEDIAN_H, DELAY_SIGMA = 6.0, 1.0  # decision delay of planned purchases (log-normal)
DELAY_MIN_MS, DELAY_MAX_MS = 20 * 60_000, 4 * DAY_MS
WINDOW_MEDIAN_H, WINDOW_SIGMA = 8.0, 1.0  # length of a window-shopping episode
RETURN_SESSIONS = 1.2  # mean extra sessions shortly before a planned purchase
RETURN_WINDOW_MS = (2 * 60_000, 60 * 60_000)  # how long before the decision they start
_KEY = 10**13  # user * _KEY + time orders sessions by user, then time


@dataclass
class SessionPlan:
    """Sessions of a chunk, sorted by user then planned start."""

    user: np.ndarray  # chunk-local user index
    planned: np.ndarray  # planned start, ms (the real start may be pushed by the previous session)
    base_mode: np.ndarray  # cat.BROWSE or cat.CONSIDER
    n_buy: np.ndarray  # purchase episodes completed in this session
    switch: np.ndarray  # visit number at which the buying phase starts (when n_buy > 0)
    target_top: np.ndarray  # item the user is after (-1: none)
    target_leaf: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


def plan_sessions(
    config: SimulationConfig, shoppers: Shoppers, rng: np.random.Generator
) -> SessionPlan:
    n = len(shoppers)
    start, end = config.start_ms, config.end_ms
    n_days = -(-(end - start) // DAY_MS)
    lam = config.sessions_per_day * config.density * shoppers.activity[:, None]
    lam = lam * rng.gamma(4.0, 0.25, (n, n_days))
    counts = rng.poisson(lam)
    user = np.repeat(np.repeat(np.arange(n), n_days), counts.ravel())
    day = np.repeat(np.tile(np.arange(n_days), n), counts.ravel())
    hour = cat.draw(cat.HOUR_CDF, rng.random(len(user)))
    minute = (rng.random(len(user)) * HOUR_MS).astype(np.int64)
    planned = start + day * DAY_MS + hour * HOUR_MS + minute

    span_ms = end - start + LEAD_DAYS * DAY_MS
    span_days = span_ms / DAY_MS

    # Purchase episodes.
    n_ep = rng.poisson(shoppers.episode_rate * config.density * span_days)
    ep_user = np.repeat(np.arange(n), n_ep)
    onset = start - LEAD_DAYS * DAY_MS + rng.random(len(ep_user)) * span_ms
    impulse = rng.random(len(ep_user)) < IMPULSE_SHARE
    delay = np.exp(rng.normal(np.log(DELAY_MEDIAN_H * HOUR_MS), DELAY_SIGMA, len(ep_user)))
    delay = np.where(impulse, 0.0, np.clip(delay, DELAY_MIN_MS, DELAY_MAX_MS))
    ep_top = draw_tops(shoppers, ep_user, rng, p_taste=0.8)
    ep_leaf = draw_leaves(ep_top, rng)

    # Return visits: before a planned purchase the user comes back to compare, shortly before
    # deciding (extra sessions in the hour before the decision, never before the onset).
    n_ret = np.where(impulse, 0, rng.poisson(RETURN_SESSIONS, len(ep_user)))
    ret_user = np.repeat(ep_user, n_ret)
    due = np.repeat(onset + delay, n_ret)
    ret_at = due - rng.uniform(RETURN_WINDOW_MS[0], RETURN_WINDOW_MS[1], len(due))
    ret_ok = ret_at >= np.repeat(onset, n_ret)
    user = np.concatenate([user, ret_user[ret_ok]])
    planned = np.concatenate([planned, ret_at[ret_ok].astype(np.int64)])

    keep = (planned >= start) & (planned < end)
    user, planned = user[keep], planned[keep]
    order = np.lexsort((planned, user))
    user, planned = user[order], planned[order]
    key = user * _KEY + planned
    n_sess = len(user)

    buy_at = np.searchsorted(key, ep_user * _KEY + (onset + delay).astype(np.int64), side="left")
    user_end = np.searchsorted(key, (ep_user + 1) * _KEY, side="left")
    converts = buy_at < user_end
    consider_lo = np.searchsorted(key, ep_user * _KEY + onset.astype(np.int64), side="left")
    consider_hi = np.where(impulse, consider_lo, buy_at)

    # Window-shopping episodes.
    n_win = rng.poisson(shoppers.window_rate * config.density * span_days)
    win_user = np.repeat(np.arange(n), n_win)
    win_onset = start - LEAD_DAYS * DAY_MS + rng.random(len(win_user)) * span_ms
    win_len = np.exp(rng.normal(np.log(WINDOW_MEDIAN_H * HOUR_MS), WINDOW_SIGMA, len(win_user)))
    win_top = draw_tops(shoppers, win_user, rng, p_taste=0.8)
    win_leaf = draw_leaves(win_top, rng)
    win_lo = np.searchsorted(key, win_user * _KEY + win_onset.astype(np.int64), side="left")
    win_end = (win_onset + win_len).astype(np.int64)
    win_hi = np.searchsorted(key, win_user * _KEY + win_end, side="left")

    # Considering: the latest-starting episode covering a session sets its target.
    lo = np.concatenate([consider_lo, win_lo])
    hi = np.maximum(np.concatenate([consider_hi, win_hi]), lo)
    ep_onset = np.concatenate([onset, win_onset])
    tops = np.concatenate([ep_top, win_top])
    leaves = np.concatenate([ep_leaf, win_leaf])
    rank = np.argsort(np.argsort(ep_onset, kind="stable"), kind="stable")
    lengths = hi - lo
    covered = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    cover_rank = np.full(n_sess, -1, dtype=np.int64)
    np.maximum.at(cover_rank, covered, np.repeat(rank, lengths))
    by_rank = np.argsort(rank)
    has_cover = cover_rank >= 0
    target_top = np.full(n_sess, -1, dtype=np.int64)
    target_leaf = np.full(n_sess, -1, dtype=np.int64)
    target_top[has_cover] = tops[by_rank[cover_rank[has_cover]]]
    target_leaf[has_cover] = leaves[by_rank[cover_rank[has_cover]]]
    base_mode = np.where(has_cover, cat.CONSIDER, cat.BROWSE)

    # Buying sessions: the first converting episode sets the target; the switch visit is early
    # for planned purchases and later for impulse buys.
    sess = buy_at[converts]
    n_buy = np.bincount(sess, minlength=n_sess)
    first = np.full(n_sess, -1, dtype=np.int64)
    conv_idx = np.flatnonzero(converts)[::-1]  # reversed so the first episode is written last
    first[sess[::-1]] = conv_idx
    buying = n_buy > 0
    target_top[buying] = ep_top[first[buying]]
    target_leaf[buying] = ep_leaf[first[buying]]
    planned_buy = np.zeros(n_sess, dtype=bool)
    np.logical_or.at(planned_buy, sess, ~impulse[converts])
    early = planned_buy & (rng.random(n_sess) < 0.55)
    switch = np.where(
        early, 0, np.where(planned_buy, rng.geometric(1 / 4, n_sess), rng.geometric(1 / 6, n_sess))
    )
    switch = np.where(buying, switch, 0)
    return SessionPlan(user, planned, base_mode, n_buy, switch, target_top, target_leaf)
