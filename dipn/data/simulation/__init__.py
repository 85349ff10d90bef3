"""A seeded generative model of mobile shoppers producing dipn's five raw views.

    from dipn.data.simulation import SimulationConfig, simulate
    meta = simulate(SimulationConfig(users=2000, days=3, seed=7), Path("sim"))

Writes swipe/tap/browse/history/profile ``.parquet`` files (columns as ``dipn.data.schema``) and
``meta.json`` (the window, row counts and the simulator's own ground-truth rates). The model and
its hypotheses are described in docs/simulator.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dipn.data.schema import VIEWS
from dipn.data.simulation import catalog as cat
from dipn.data.simulation.config import (
    CHUNK_USERS,
    DAY_MS,
    GENERATOR_VERSION,
    HOUR_MS,
    SimulationConfig,
)
from dipn.data.simulation.history import daily_counts, snapshots
from dipn.data.simulation.sessions import CART, PURCHASE, Chunk, simulate_chunk
from dipn.data.simulation.writer import ViewWriters, floats, ints, strings, write_table
from dipn.features.columns import PROFILE_COLUMNS
from dipn.features.spec import BROWSE_ACTIONS, SWIPE_ACTIONS, TAP_EVENTS

__all__ = ["GENERATOR_VERSION", "SimulationConfig", "simulate", "user_ids"]

_KEY = 10**13


def user_ids(first: int, n: int, total: int) -> list[str]:
    """"u000017"-style ids, zero-padded so string order is numeric order."""
    width = max(6, len(str(max(total - 1, 0))))
    return [f"u{i:0{width}d}" for i in range(first, first + n)]


def simulate(config: SimulationConfig, out_dir: Path, progress: bool = True) -> dict:
    """Simulate ``config.users`` shoppers into ``out_dir``; returns the summary in meta.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = _Stats(config)
    truth: list[dict[str, np.ndarray]] = []
    with ViewWriters(out_dir, VIEWS) as writers, tqdm(
        total=config.users, unit="user", desc="simulate", disable=not progress
    ) as bar:
        for chunk, first in enumerate(range(0, config.users, CHUNK_USERS)):
            n = min(CHUNK_USERS, config.users - first)
            c = simulate_chunk(config, chunk, first, n)
            ids = user_ids(first, n, config.users)
            _write_chunk(writers, config, c, ids)
            stats.add(c)
            if config.write_truth:
                truth.append({"user_id": strings(c.sessions["user"], ids), **{
                    k: ints(v) for k, v in c.sessions.items() if k != "user"}})  # fmt: skip
            bar.update(n)
        rows = dict(writers.rows)
    if config.write_truth:
        import pyarrow as pa

        write_table(out_dir / "truth_sessions.parquet",
                    {k: pa.concat_arrays([t[k] for t in truth]) for k in truth[0]})  # fmt: skip
    meta = {
        "generator": GENERATOR_VERSION,
        "start_ms": config.start_ms,
        "days": config.days,
        "cut_end_ms": config.cut_end_ms,
        "end_ms": config.end_ms,
        "horizon_hours": config.horizon_hours,
        "users": config.users,
        "seed": config.seed,
        "density": config.density,
        "config": config.as_dict(),
        "rows": rows,
        "ground_truth": stats.summary(),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _write_chunk(writers: ViewWriters, config: SimulationConfig, c: Chunk, ids: list[str]) -> None:
    s = c.swipe
    w, h = c.shoppers.screen_w, c.shoppers.screen_h
    writers.write("swipe", {
        "user_id": strings(s["user"], ids), "ts": ints(s["ts"]), "type": strings(s["type"], SWIPE_ACTIONS),
        "page": strings(s["page"], cat.PAGE_NAMES),
        **{k: floats(s[k]) for k in ("x", "y", "x0", "y0", "x1", "y1", "duration_ms")},
        "screen_w": floats(w[s["user"]]), "screen_h": floats(h[s["user"]]),
    })  # fmt: skip
    t = c.tap
    writers.write("tap", {
        "user_id": strings(t["user"], ids), "ts": ints(t["ts"]), "event": strings(t["event"], TAP_EVENTS),
        "page": strings(t["page"], cat.PAGE_NAMES), "button": strings(t["button"], cat.BUTTON_NAMES),
    })  # fmt: skip
    b = c.browse
    writers.write("browse", {
        "user_id": strings(b["user"], ids), "ts": ints(b["ts"]), "action": strings(b["action"], BROWSE_ACTIONS),
        "leaf_category": strings(b["leaf"], cat.LEAF_NAMES), "top_category": strings(b["top"], cat.TOP_NAMES),
        "page": strings(b["page"], cat.BROWSE_PAGE_NAMES), "stay_ms": floats(b["stay_ms"]),
    })  # fmt: skip
    hist = snapshots(config, c.shoppers.pre_counts, daily_counts(config, len(ids), b))
    writers.write("history", {"user_id": strings(hist.pop("user"), ids), **{k: ints(v) for k, v in hist.items()}})
    prof = c.shoppers.profile
    writers.write("profile", {
        "user_id": strings(np.arange(len(ids)), ids),
        **{name: ints(prof[:, j]) for j, name in enumerate(PROFILE_COLUMNS[1:])},
    })  # fmt: skip


class _Stats:
    """The simulator's own ground truth: purchase rate, label rates over event-time cuts, phases."""

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
        self.purchases_all = 0
        self.phase_sessions = np.zeros(3, dtype=np.int64)

    def add(self, c: Chunk) -> None:
        cfg = self.config
        b = c.browse
        is_p = b["action"] == PURCHASE
        p_user, p_ts = b["user"][is_p], b["ts"][is_p]
        in_cut = (p_ts >= cfg.start_ms) & (p_ts < cfg.cut_end_ms)
        self.purchases += int(in_cut.sum())
        self.buying_users += len(np.unique(p_user[in_cut]))

        # Labels at every event time in the cut window: a purchase in (t, t+1h] / (t, t+24h].
        users = np.concatenate([c.swipe["user"], c.tap["user"], b["user"]])
        ts = np.concatenate([c.swipe["ts"], c.tap["ts"], b["ts"]])
        keep = (ts >= cfg.start_ms) & (ts < cfg.cut_end_ms)
        users, ts = users[keep], ts[keep]
        p_key = np.sort(p_user * _KEY + p_ts)
        e_key = users * _KEY + ts
        idx = np.searchsorted(p_key, e_key, side="right")
        nxt = np.append(p_key, np.iinfo(np.int64).max)[idx]
        gap = nxt - e_key  # crosses users only when no purchase is left: then gap is huge
        rt, lt = gap <= HOUR_MS, gap <= DAY_MS
        self.events += len(ts)
        self.realtime += int(rt.sum())
        self.longterm += int(lt.sum())
        n_ev = np.bincount(users, minlength=len(c.shoppers))
        has = n_ev > 0
        self.user_rt += (np.bincount(users, weights=rt, minlength=len(n_ev))[has] / n_ev[has]).tolist()
        self.user_lt += (np.bincount(users, weights=lt, minlength=len(n_ev))[has] / n_ev[has]).tolist()

        # Purchases preceded (in the simulated logs) by a cart add of the same leaf category.
        is_c = b["action"] == CART
        c_key = b["user"][is_c] * cat.N_LEAF + b["leaf"][is_c]
        first_cart = {}
        for k, t in zip(c_key.tolist(), b["ts"][is_c].tolist()):
            first_cart.setdefault(k, t)
        pk = (p_user * cat.N_LEAF + b["leaf"][is_p]).tolist()
        self.purchases_after_cart += sum(1 for k, t in zip(pk, p_ts.tolist()) if first_cart.get(k, t) < t)
        self.purchases_all += len(pk)

        s = c.sessions
        s_in = (s["start"] >= cfg.start_ms) & (s["start"] < cfg.cut_end_ms)
        self.phase_sessions += np.bincount(s["phase"][s_in], minlength=3)

    def summary(self) -> dict:
        cfg = self.config
        user_days = cfg.users * cfg.days
        sessions = max(int(self.phase_sessions.sum()), 1)
        return {
            "purchases": self.purchases,
            "purchases_per_user_day": self.purchases / user_days,
            "share_users_buying": self.buying_users / cfg.users,
            "label_rates_event_weighted": {
                "events": self.events,
                "realtime_1h": self.realtime / max(self.events, 1),
                "longterm_24h": self.longterm / max(self.events, 1),
            },
            "label_rates_user_weighted": {
                "realtime_1h": float(np.mean(self.user_rt)) if self.user_rt else 0.0,
                "longterm_24h": float(np.mean(self.user_lt)) if self.user_lt else 0.0,
            },
            "share_purchases_after_cart_add": self.purchases_after_cart / max(self.purchases_all, 1),
            "session_phase_shares": {
                name: int(k) / sessions for name, k in zip(cat.MODE_NAMES, self.phase_sessions)
            },
        }
