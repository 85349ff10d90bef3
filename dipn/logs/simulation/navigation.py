"""Page-to-page navigation inside sessions: a Markov chain over page kinds, run for all sessions
of a chunk at once (one numpy step per visit number, not one Python step per visit).

The chain's table depends on the session's phase at that visit (browse, consider, buy, after the
purchase). A buying session cannot end before its order is placed; the order is placed on the
transition checkout -> pay-success, only in the buying phase. "Back" from a detail page returns
to the last list page the session saw (home feed, search results, a channel, the cart ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.logs.simulation import catalog as cat
from dipn.logs.simulation.intent import SessionPlan


@dataclass
class Visits:
    """Page visits of a chunk, sorted by session then visit number."""

    session: np.ndarray
    step: np.ndarray
    kind: np.ndarray
    sub: np.ndarray  # numbered channel / activity page (0 for other kinds)
    chain_mode: np.ndarray  # cat.BROWSE .. cat.CONSIDER_STAY
    next_kind: np.ndarray  # kind of the next visit, cat.EXIT when the session ends here
    back: np.ndarray  # bool: the next visit is reached by "back"
    purchase: np.ndarray  # bool: the order is submitted at the end of this visit

    def __len__(self) -> int:
        return len(self.session)

    @property
    def behaviour(self) -> np.ndarray:
        return cat.BEHAVIOUR_OF[self.chain_mode]

    @property
    def page(self) -> np.ndarray:
        return cat.PAGE_BASE[self.kind] + self.sub


def _sub(kind: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(len(kind)) ** cat.SUBPAGE_SKEW
    return np.floor(u * cat.N_SUBPAGES[np.minimum(kind, cat.N_KINDS - 1)]).astype(np.int64)


def walk(plan: SessionPlan, rng: np.random.Generator) -> Visits:
    n = len(plan)
    sess = np.arange(n)
    left = plan.n_buy.copy()  # orders still to place
    bought = np.zeros(n, dtype=bool)
    step = 0
    first_mode = np.where((left > 0) & (plan.switch == 0), cat.BUY, plan.base_mode)
    kind = cat.draw(cat.ENTRY_CDF[first_mode], rng.random(n))
    sub = _sub(kind, rng)
    last_list, last_sub = np.full(n, cat.HOME), np.zeros(n, dtype=np.int64)
    switch, base = plan.switch, plan.base_mode
    names = ("session", "step", "kind", "sub", "mode", "next", "back", "buy")
    out: dict[str, list[np.ndarray]] = {k: [] for k in names}
    while len(sess):
        stay = base[sess] + (cat.BROWSE_STAY - cat.BROWSE)  # browse/consider, not allowed to exit
        mode = np.where(left > 0, np.where(step >= switch[sess], cat.BUY, stay),
                        np.where(bought, cat.POST, base[sess]))  # fmt: skip
        is_list = cat.IS_LIST[kind]
        last_list = np.where(is_list, kind, last_list)
        last_sub = np.where(is_list, sub, last_sub)
        nxt = cat.draw(cat.TRANSITION_CDF[mode, kind], rng.random(len(sess)))
        back = (nxt == cat.BACK) | (cat.IS_SUB[kind] & (nxt == cat.DETAIL))
        back |= (kind == cat.CHECKOUT) & ((nxt == cat.CART) | (nxt == cat.DETAIL))
        back |= (kind == cat.SEARCH) & (nxt == cat.HOME)
        to_list = nxt == cat.BACK
        nxt = np.where(to_list, last_list, nxt)
        buy = (kind == cat.CHECKOUT) & (nxt == cat.PAID)
        if step + 1 >= cat.MAX_VISITS:
            nxt = np.full_like(nxt, cat.EXIT)
        for name, arr in zip(names, (sess, np.full(len(sess), step), kind, sub, mode, nxt, back, buy)):
            out[name].append(arr)
        left = np.where(buy, 0, left)
        bought |= buy
        new_sub = _sub(nxt, rng)
        sub = np.where(to_list, last_sub, new_sub)
        alive = nxt != cat.EXIT
        sess, kind, sub = sess[alive], nxt[alive], sub[alive]
        left, bought = left[alive], bought[alive]
        last_list, last_sub = last_list[alive], last_sub[alive]
        step += 1
    cols = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in out.items()}
    order = np.lexsort((cols["step"], cols["session"]))
    cols = {k: v[order] for k, v in cols.items()}
    return Visits(
        session=cols["session"], step=cols["step"], kind=cols["kind"], sub=cols["sub"],
        chain_mode=cols["mode"], next_kind=cols["next"], back=cols["back"].astype(bool),
        purchase=cols["buy"].astype(bool),
    )  # fmt: skip
