"""The simulator's own answer key: purchase rate, label rates over event-time cuts, phase shares."""

from __future__ import annotations

import numpy as np

from dipn.logs.simulation import catalog as cat
from dipn.logs.simulation.config import DAY_MS, HOUR_MS, SimulationConfig
from dipn.logs.simulation.sessions import CART, PURCHASE, Chunk

_KEY = 10**13  # user * _KEY + ts orders events by user, then time


class GroundTruth:
    """Accumulates over chunks; ``summary()`` goes to meta.json under "ground_truth".

    Labels are those the sample builder computes: at a cut time t, realtime = a purchase in
    (t, t + 1 h], longterm = a purchase in (t, t + 24 h]. Here every event time (all three views)
    in [start_ms, cut_end_ms) is a cut: "event weighted" averages over all of them, "user
    weighted" first within each user (what a fixed number of cuts per user gives).
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.purchases = 0
        self.buying_users = 0
        self.events = 0
        self.realtime = 0
        self.longterm = 0
        self.user_rt: list[float] = []
        self.user_lt: list[float] = []
        self.purchases_after_cart = 0
        self.purchase_lines = 0
        self.phase_sessions = np.zeros(3, dtype=np.int64)

    def add(self, c: Chunk) -> None:
        cfg = self.config
        b = c.browse
        is_p = b["action"] == PURCHASE
        p_user, p_ts = b["user"][is_p], b["ts"][is_p]
        in_cut = (p_ts >= cfg.start_ms) & (p_ts < cfg.cut_end_ms)
        self.purchases += int(in_cut.sum())
        self.buying_users += len(np.unique(p_user[in_cut]))

        users = np.concatenate([c.swipe["user"], c.tap["user"], b["user"]])
        ts = np.concatenate([c.swipe["ts"], c.tap["ts"], b["ts"]])
        keep = (ts >= cfg.start_ms) & (ts < cfg.cut_end_ms)
        users, ts = users[keep], ts[keep]
        p_key = np.sort(p_user * _KEY + p_ts)
        e_key = users * _KEY + ts
        nxt = np.append(p_key, np.iinfo(np.int64).max)[np.searchsorted(p_key, e_key, side="right")]
        gap = nxt - e_key  # the next purchase key belongs to another user only if gap is huge
        rt, lt = gap <= HOUR_MS, gap <= DAY_MS
        self.events += len(ts)
        self.realtime += int(rt.sum())
        self.longterm += int(lt.sum())
        n_ev = np.bincount(users, minlength=len(c.shoppers))
        has = n_ev > 0
        for acc, flag in ((self.user_rt, rt), (self.user_lt, lt)):
            hits = np.bincount(users, weights=flag, minlength=len(n_ev))
            acc.extend((hits[has] / n_ev[has]).tolist())

        # Purchases preceded (in the simulated logs) by a cart add of the same leaf category.
        is_c = b["action"] == CART
        first_cart: dict[int, int] = {}
        cart_keys = b["user"][is_c] * cat.N_LEAF + b["leaf"][is_c]
        for k, t in zip(cart_keys.tolist(), b["ts"][is_c].tolist()):
            first_cart.setdefault(k, t)
        lines = zip((p_user * cat.N_LEAF + b["leaf"][is_p]).tolist(), p_ts.tolist())
        self.purchases_after_cart += sum(1 for k, t in lines if first_cart.get(k, t) < t)
        self.purchase_lines += int(is_p.sum())

        s = c.sessions
        s_in = (s["start"] >= cfg.start_ms) & (s["start"] < cfg.cut_end_ms)
        self.phase_sessions += np.bincount(s["phase"][s_in], minlength=3)

    def summary(self) -> dict:
        cfg = self.config
        sessions = max(int(self.phase_sessions.sum()), 1)
        events = max(self.events, 1)
        return {
            "purchases": self.purchases,
            "purchases_per_user_day": self.purchases / (cfg.users * cfg.days),
            "share_users_buying": self.buying_users / cfg.users,
            "label_rates_event_weighted": {
                "events": self.events,
                "realtime_1h": self.realtime / events,
                "longterm_24h": self.longterm / events,
            },
            "label_rates_user_weighted": {
                "realtime_1h": float(np.mean(self.user_rt)) if self.user_rt else 0.0,
                "longterm_24h": float(np.mean(self.user_lt)) if self.user_lt else 0.0,
            },
            "share_purchases_after_cart_add": self.purchases_after_cart / max(self.purchase_lines, 1),
            "session_phase_shares": {
                name: int(k) / sessions for name, k in zip(cat.MODE_NAMES, self.phase_sessions)
            },
        }
