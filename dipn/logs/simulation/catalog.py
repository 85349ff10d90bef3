"""The simulated app: page kinds, page names, buttons and where they sit, item categories, devices.

Everything here is fixed (independent of the seed), so vocabularies built from two simulated
logs agree. Sizes stay inside Table 3's capacities: 170 pages (swipe <= 224, tap <= 200,
browse <= 181 with the extra "Page_External" source), < 500 buttons, 100 top and 12,000 leaf
categories (<= 102 and <= 19,011).
"""

from __future__ import annotations

import numpy as np

# --- page kinds -------------------------------------------------------------------------------
KIND_NAMES = (
    "HOME", "SEARCH", "RESULTS", "CATEGORY", "DETAIL", "COMMENTS", "SPECS", "GALLERY", "QA",
    "SHOP", "CART", "CHECKOUT", "PAID", "RECOMMEND", "LIVE", "VIDEO", "MESSAGES", "ACCOUNT",
    "ORDERS", "COUPON", "CHANNEL", "ACTIVITY",
)  # fmt: skip
(HOME, SEARCH, RESULTS, CATEGORY, DETAIL, COMMENTS, SPECS, GALLERY, QA, SHOP, CART, CHECKOUT, PAID,
 RECOMMEND, LIVE, VIDEO, MESSAGES, ACCOUNT, ORDERS, COUPON, CHANNEL, ACTIVITY) = range(22)  # fmt: skip
N_KINDS = len(KIND_NAMES)
EXIT = N_KINDS  # pseudo-target: the user leaves the app
BACK = N_KINDS + 1  # pseudo-target: back to the last list page (resolved per session)

# Page name prefix of each kind; CHANNEL and ACTIVITY have many numbered pages (a long tail).
KIND_PAGE = (
    "Page_Home", "Page_Search", "Page_SearchResult", "Page_Category", "Page_Detail",
    "Page_Detail_Comments", "Page_Detail_Specs", "Page_Detail_Gallery", "Page_Detail_QA",
    "Page_Shop", "Page_Cart", "Page_Checkout", "Page_PaySuccess", "Page_Recommend", "Page_Live",
    "Page_Video", "Page_Messages", "Page_MyTaobao", "Page_Orders", "Page_Coupon", "Page_Channel",
    "Page_Activity",
)  # fmt: skip
N_CHANNELS = 50
N_ACTIVITIES = 100
N_SUBPAGES = np.array([N_CHANNELS if k == CHANNEL else N_ACTIVITIES if k == ACTIVITY else 1
                       for k in range(N_KINDS)])  # fmt: skip

PAGE_NAMES: list[str] = []
PAGE_BASE = np.zeros(N_KINDS, dtype=np.int64)  # page id of (kind, sub) = PAGE_BASE[kind] + sub
for _k in range(N_KINDS):
    PAGE_BASE[_k] = len(PAGE_NAMES)
    if N_SUBPAGES[_k] == 1:
        PAGE_NAMES.append(KIND_PAGE[_k])
    else:
        PAGE_NAMES.extend(f"{KIND_PAGE[_k]}_{i:03d}" for i in range(N_SUBPAGES[_k]))
N_PAGES = len(PAGE_NAMES)
# Source page of a detail page opened from outside the app (push, shared link); browse view only.
EXTERNAL_PAGE = N_PAGES
BROWSE_PAGE_NAMES = (*PAGE_NAMES, "Page_External")

ITEM_PAGES = (DETAIL, COMMENTS, SPECS, GALLERY, QA)  # pages about one item ("item context")
SUB_PAGES = (COMMENTS, SPECS, GALLERY, QA)
# Pages a "back" from a detail page returns to.
LIST_PAGES = (HOME, RESULTS, CATEGORY, SHOP, CART, RECOMMEND, LIVE, VIDEO, MESSAGES, ORDERS,
              CHANNEL, ACTIVITY)  # fmt: skip
IS_LIST = np.isin(np.arange(N_KINDS), LIST_PAGES)
IS_SUB = np.isin(np.arange(N_KINDS), SUB_PAGES)

# Popularity of the numbered channel / activity pages (long tail): sub = floor(n * u ** SKEW).
SUBPAGE_SKEW = 2.0

# --- behaviour modes ----------------------------------------------------------------------------
# Latent phase of a session step. The chain tables have six rows of modes: the four phases plus
# "browse / consider but not allowed to leave yet" (the start of a buying session).
BROWSE, CONSIDER, BUY, POST, BROWSE_STAY, CONSIDER_STAY = range(6)
N_CHAIN_MODES = 6
# The three behaviour modes that shape dwell time, swipes and taps: browse, consider, buy.
BEHAVIOUR_OF = np.array([0, 1, 2, 0, 0, 1])
MODE_NAMES = ("browse", "consider", "buy")

# --- navigation: transition weights per chain mode ---------------------------------------------
_H, _S, _R, _CA, _D, _CO, _SP, _G, _Q, _SH, _C, _CH, _P, _RE, _L, _V, _M, _A, _O, _CP, _CN, _AC = (
    range(22))  # fmt: skip
_X, _B = EXIT, BACK

_BROWSE_T = {
    _H: {_D: 30, _S: 6, _CA: 3, _RE: 8, _L: 4, _V: 4, _CN: 12, _AC: 8, _M: 3, _A: 2, _C: 2,
         _CP: 2, _X: 6},
    _S: {_R: 85, _H: 10, _X: 5},
    _R: {_D: 62, _S: 10, _H: 14, _X: 6},
    _CA: {_R: 40, _D: 25, _H: 25, _X: 6},
    _D: {_CO: 6, _SP: 2, _G: 10, _Q: 1, _SH: 4, _D: 12, _C: 1.5, _CH: 0.3, _B: 52, _H: 6, _X: 6},
    _CO: {_D: 85, _H: 5, _X: 10},
    _SP: {_D: 88, _X: 12},
    _G: {_D: 90, _X: 10},
    _Q: {_D: 88, _X: 12},
    _SH: {_D: 55, _H: 28, _X: 15},
    _C: {_D: 25, _CH: 3, _H: 55, _X: 17},
    _CH: {_C: 50, _D: 30, _X: 20},
    _P: {_O: 30, _H: 40, _X: 30},
    _RE: {_D: 58, _H: 28, _X: 14},
    _L: {_D: 18, _L: 12, _H: 52, _X: 18},
    _V: {_D: 15, _V: 22, _H: 48, _X: 15},
    _M: {_AC: 20, _O: 15, _H: 50, _X: 15},
    _A: {_O: 35, _CP: 15, _C: 10, _H: 30, _X: 10},
    _O: {_D: 20, _H: 50, _X: 30},
    _CP: {_AC: 20, _H: 60, _X: 20},
    _CN: {_D: 48, _CN: 8, _H: 34, _X: 10},
    _AC: {_D: 36, _AC: 8, _H: 40, _X: 16},
}
# Considering: searching, comparing, reading comments and specifications, some carting.
_CONSIDER_T = {
    **_BROWSE_T,
    _H: {_D: 24, _S: 24, _CA: 4, _RE: 6, _L: 3, _V: 2, _CN: 6, _AC: 4, _M: 2, _A: 3, _C: 7,
         _CP: 3, _X: 5},
    _R: {_D: 72, _S: 12, _H: 8, _X: 4},
    _D: {_CO: 22, _SP: 9, _G: 12, _Q: 5, _SH: 6, _D: 14, _C: 7, _CH: 1.0, _B: 30, _CP: 1, _H: 3,
         _X: 4},
    _CO: {_D: 90, _X: 6, _H: 4},
    _C: {_D: 45, _CH: 5, _H: 35, _X: 15},
    _CH: {_C: 60, _D: 25, _X: 15},
}
# Buying (until the order is placed): no exit, towards cart, buy-now and checkout.
_BUY_T = {
    **_CONSIDER_T,
    _H: {_S: 30, _C: 30, _D: 24, _O: 3, _CP: 5, _CN: 4, _M: 2, _RE: 2},
    _S: {_R: 100},
    _R: {_D: 82, _S: 14, _H: 4},
    _CA: {_R: 50, _D: 50},
    _D: {_CO: 20, _SP: 9, _G: 8, _Q: 5, _SH: 3, _D: 6, _C: 22, _CH: 9, _B: 14, _CP: 2},
    _CO: {_D: 100},
    _SP: {_D: 100},
    _G: {_D: 100},
    _Q: {_D: 100},
    _SH: {_D: 80, _H: 20},
    _C: {_CH: 50, _D: 40, _H: 10},
    _CH: {_P: 85, _C: 10, _D: 5},
    _RE: {_D: 80, _H: 20},
    _L: {_D: 40, _H: 60},
    _V: {_D: 40, _H: 60},
    _M: {_O: 30, _H: 70},
    _A: {_O: 30, _C: 40, _H: 30},
    _O: {_D: 40, _H: 60},
    _CP: {_D: 30, _C: 30, _H: 40},
    _CN: {_D: 60, _H: 40},
    _AC: {_D: 50, _H: 50},
}
# After the order: order list, home, and leaving.
_POST_T = {k: {t: (w * 3.0 if t == _X else w) for t, w in row.items()}
           for k, row in _BROWSE_T.items()}  # fmt: skip
_POST_T[_P] = {_O: 25, _H: 35, _X: 40}


def _table(rows: dict[int, dict[int, float]], allow_exit: bool) -> np.ndarray:
    t = np.zeros((N_KINDS, N_KINDS + 2))
    for k, row in rows.items():
        for target, w in row.items():
            t[k, target] = w
    if not allow_exit:
        t[:, EXIT] = 0.0
    # The order is only ever submitted in the buying phase.
    assert np.all(t.sum(axis=1) > 0)
    return t / t.sum(axis=1, keepdims=True)


def _no_pay(rows: dict[int, dict[int, float]]) -> dict[int, dict[int, float]]:
    return {k: {t: w for t, w in row.items() if not (k == _CH and t == _P)}
            for k, row in rows.items()}  # fmt: skip


TRANSITIONS = np.stack([
    _table(_no_pay(_BROWSE_T), True),
    _table(_no_pay(_CONSIDER_T), True),
    _table(_BUY_T, False),
    _table(_no_pay(_POST_T), True),
    _table(_no_pay(_BROWSE_T), False),
    _table(_no_pay(_CONSIDER_T), False),
])  # (mode, from kind, to kind | EXIT | BACK)
TRANSITION_CDF = np.cumsum(TRANSITIONS, axis=2)
TRANSITION_CDF[:, :, -1] = 1.0 + 1e-9

_ENTRY = {
    BROWSE: {_H: 80, _M: 5, _AC: 5, _D: 3, _L: 3, _C: 2, _S: 2},
    CONSIDER: {_H: 62, _S: 15, _C: 9, _D: 8, _M: 3, _AC: 3},
    BUY: {_H: 42, _C: 25, _S: 20, _D: 10, _O: 3},
}


def _entry_cdf() -> np.ndarray:
    e = np.zeros((N_CHAIN_MODES, N_KINDS))
    for mode, row in _ENTRY.items():
        for k, w in row.items():
            e[mode, k] = w
    e[POST] = e[BROWSE]
    e[BROWSE_STAY] = e[BROWSE]
    e[CONSIDER_STAY] = e[CONSIDER]
    c = np.cumsum(e / e.sum(axis=1, keepdims=True), axis=1)
    c[:, -1] = 1.0 + 1e-9
    return c


ENTRY_CDF = _entry_cdf()
MAX_VISITS = 150  # per session

# --- behaviour per page kind ----------------------------------------------------------------------
# dwell median (s) for browse/consider/buy, touch events per second, share of touches that are
# taps, share of taps that hit an in-page button, swipe style weights (see SWIPE_STYLES).
FLING, READ, GALLERY_SWIPE, SCROLL_BACK, EDGE_BACK, LIVE_NEXT = range(6)
N_STYLES = 6
_KIND_BEHAVIOUR = {
    _H: ((18, 14, 8), 0.75, 0.17, 0.56, (85, 3, 2, 10, 0, 0)),
    _S: ((6, 8, 7), 0.25, 0.8, 0.78, (30, 50, 0, 20, 0, 0)),
    _R: ((14, 18, 12), 0.7, 0.17, 0.62, (80, 8, 2, 10, 0, 0)),
    _CA: ((10, 10, 8), 0.5, 0.35, 0.78, (70, 10, 10, 10, 0, 0)),
    _D: ((12, 22, 22), 0.45, 0.31, 0.62, (35, 35, 22, 8, 0, 0)),
    _CO: ((10, 30, 35), 0.5, 0.17, 0.67, (55, 35, 2, 8, 0, 0)),
    _SP: ((7, 18, 18), 0.35, 0.21, 0.67, (30, 60, 0, 10, 0, 0)),
    _G: ((7, 12, 12), 0.6, 0.11, 0.45, (5, 2, 90, 3, 0, 0)),
    _Q: ((8, 20, 25), 0.4, 0.21, 0.67, (40, 50, 0, 10, 0, 0)),
    _SH: ((14, 14, 12), 0.65, 0.21, 0.67, (75, 10, 5, 10, 0, 0)),
    _C: ((8, 14, 18), 0.35, 0.49, 0.78, (50, 35, 0, 15, 0, 0)),
    _CH: ((10, 14, 14), 0.2, 0.56, 0.9, (40, 50, 0, 10, 0, 0)),
    _P: ((4, 4, 4), 0.2, 0.42, 0.9, (60, 30, 0, 10, 0, 0)),
    _RE: ((18, 14, 10), 0.75, 0.17, 0.56, (85, 3, 2, 10, 0, 0)),
    _L: ((50, 40, 30), 0.2, 0.7, 0.67, (10, 5, 0, 5, 0, 80)),
    _V: ((40, 30, 20), 0.25, 0.42, 0.67, (10, 5, 0, 5, 0, 80)),
    _M: ((8, 8, 8), 0.35, 0.56, 0.67, (60, 20, 0, 20, 0, 0)),
    _A: ((7, 7, 7), 0.3, 0.56, 0.9, (60, 20, 0, 20, 0, 0)),
    _O: ((10, 10, 10), 0.5, 0.42, 0.78, (60, 25, 0, 15, 0, 0)),
    _CP: ((8, 10, 10), 0.4, 0.56, 0.9, (60, 20, 0, 20, 0, 0)),
    _CN: ((22, 18, 14), 0.7, 0.17, 0.56, (80, 5, 5, 10, 0, 0)),
    _AC: ((18, 15, 12), 0.6, 0.25, 0.62, (75, 5, 10, 10, 0, 0)),
}
DWELL_MEDIAN_S = np.array([_KIND_BEHAVIOUR[k][0] for k in range(N_KINDS)], dtype=np.float64)
EVENT_RATE = np.array([_KIND_BEHAVIOUR[k][1] for k in range(N_KINDS)], dtype=np.float64)
P_TAP = np.array([_KIND_BEHAVIOUR[k][2] for k in range(N_KINDS)], dtype=np.float64)
P_BUTTON = np.array([_KIND_BEHAVIOUR[k][3] for k in range(N_KINDS)], dtype=np.float64)
_STYLE_W = np.array([_KIND_BEHAVIOUR[k][4] for k in range(N_KINDS)], dtype=np.float64)
DWELL_SIGMA = 0.7
# Focused phases (consider, buy) read: more slow short swipes, fewer flings, slightly fewer
# touches per second on the same page.
_FOCUS_STYLE = np.array([0.6, 2.2, 1.0, 1.0, 1.0, 1.0])
STYLE_CDF = np.zeros((N_KINDS, 3, N_STYLES))
for _b, _mult in enumerate((np.ones(N_STYLES), _FOCUS_STYLE, _FOCUS_STYLE)):
    _w = _STYLE_W * _mult
    STYLE_CDF[:, _b] = np.cumsum(_w / _w.sum(axis=1, keepdims=True), axis=1)
STYLE_CDF[:, :, -1] = 1.0 + 1e-9
RATE_MODE = np.array([1.0, 0.85, 0.85])
SWIPE_DURATION_MODE = np.array([1.0, 1.25, 1.35])
SWIPE_LENGTH_MODE = np.array([1.0, 0.9, 0.88])

# Swipe styles: axis (0 vertical, 1 horizontal), share moving up/left, length range (fraction of
# the axis), duration median (ms) and log-sigma, start range on the other axis... see touches.py.
SWIPE_STYLES = {
    # name: (axis, p_negative, len_lo, len_hi, dur_ms, dur_sigma, start_lo, start_hi)
    FLING: (0, 0.97, 0.25, 0.60, 130.0, 0.35, 0.55, 0.88),
    READ: (0, 0.92, 0.07, 0.25, 380.0, 0.40, 0.45, 0.80),
    GALLERY_SWIPE: (1, 0.80, 0.35, 0.75, 170.0, 0.35, 0.12, 0.42),
    SCROLL_BACK: (0, 0.0, 0.15, 0.45, 180.0, 0.40, 0.20, 0.50),
    EDGE_BACK: (1, 0.0, 0.35, 0.70, 220.0, 0.30, 0.30, 0.70),
    LIVE_NEXT: (0, 0.95, 0.45, 0.75, 150.0, 0.30, 0.60, 0.90),
}
STYLE_PARAMS = np.array([SWIPE_STYLES[s] for s in range(N_STYLES)], dtype=np.float64)

# --- buttons --------------------------------------------------------------------------------------
RANDOM_POS = -1.0  # fx < 0: the tap lands anywhere in the content area (feed items)
BUTTON_NAMES: list[str] = []
BUTTON_X: list[float] = []
BUTTON_Y: list[float] = []
_BUTTON_INDEX: dict[str, int] = {}


def button(name: str, fx: float = RANDOM_POS, fy: float = RANDOM_POS) -> int:
    """Id of a button, registering it (with its nominal position) on first use."""
    if name not in _BUTTON_INDEX:
        _BUTTON_INDEX[name] = len(BUTTON_NAMES)
        BUTTON_NAMES.append(name)
        BUTTON_X.append(fx)
        BUTTON_Y.append(fy)
    return _BUTTON_INDEX[name]


# In-page buttons: (name, fx, fy, weight browse, consider, buy).
_IN_PAGE = {
    _H: [("Refresh", .5, .12, 3, 3, 3), ("Scan", .08, .07, 1, 1, 1), ("Dislike", .8, .6, 2, 1, 1),
         ("Message", .92, .07, 2, 2, 2)],
    _S: [("History", .3, .2, 3, 3, 3), ("Hot", .5, .35, 3, 2, 1), ("Clear", .9, .15, 1, 1, 1)],
    _R: [("Filter", .9, .12, 2, 4, 4), ("Sort", .2, .12, 2, 3, 3), ("SalesSort", .45, .12, 1, 3, 3),
         ("PriceSort", .65, .12, 1, 3, 3), ("Like", .8, .5, 1, 1, 1)],
    _CA: [("Tab", .12, .5, 5, 5, 5)],
    _D: [("AddToCart", .62, .95, 0.5, 1.5, 3), ("Favorite", .06, .95, 0.6, 1.5, 0.8),
         ("SKU", .5, .72, 2, 6, 12), ("Share", .92, .07, 2, 1, 1), ("Coupon", .5, .42, 1, 3, 4),
         ("Service", .12, .95, .5, 2, 3), ("Price", .3, .45, 2, 3, 3),
         ("ImageZoom", .5, .25, 5, 3, 2)],
    _CO: [("WithPhotos", .3, .15, 1, 3, 3), ("Filter", .6, .15, 1, 2, 2), ("Like", .85, .5, 2, 1, 1),
          ("Expand", .5, .6, 2, 5, 6), ("ImageView", .4, .45, 2, 4, 4)],
    _SP: [("Expand", .5, .5, 2, 3, 3), ("SizeGuide", .5, .8, 1, 3, 4)],
    _G: [("Save", .9, .9, 1, 1, 1), ("Close", .92, .06, 3, 3, 3)],
    _Q: [("Ask", .85, .93, 1, 2, 2), ("ExpandAnswer", .5, .5, 2, 4, 4)],
    _SH: [("Follow", .85, .15, 2, 2, 2), ("Tab", .4, .25, 3, 3, 3)],
    _C: [("SelectItem", .06, .4, 2, 4, 6), ("Edit", .9, .07, 1, 1, 1), ("Delete", .9, .4, 1, 1, .5),
         ("Coupon", .7, .88, 1, 3, 4), ("Quantity", .8, .45, 1, 2, 4),
         ("MoveToFavorite", .7, .4, .5, 1, .5)],
    _CH: [("Address", .5, .15, 1, 2, 3), ("Coupon", .5, .6, 1, 3, 3), ("Payment", .5, .75, 1, 2, 3),
          ("Note", .5, .68, .5, 1, 1)],
    _P: [("Share", .5, .5, 1, 1, 1)],
    _RE: [("Dislike", .8, .6, 2, 1, 1), ("Refresh", .5, .1, 1, 1, 1)],
    _L: [("Like", .85, .85, 6, 4, 3), ("Comment", .3, .93, 2, 2, 2), ("Follow", .3, .07, 1, 1, 1),
         ("Bag", .08, .93, 2, 4, 5)],
    _V: [("Like", .9, .6, 5, 4, 3), ("Comment", .9, .7, 1, 1, 1), ("Bag", .1, .85, 1, 3, 3)],
    _M: [("Tab", .5, .12, 2, 2, 2), ("MarkRead", .9, .07, 1, 1, 1)],
    _A: [("Settings", .9, .07, 1, 1, 1), ("Footprints", .5, .35, 1, 2, 2),
         ("Favorites", .3, .35, 1, 2, 2)],
    _O: [("Logistics", .6, .4, 3, 3, 3), ("Tab", .5, .12, 2, 2, 2),
         ("ConfirmReceipt", .85, .45, 1, 1, 1)],
    _CP: [("Claim", .8, .4, 3, 4, 5), ("Tab", .5, .12, 1, 1, 1)],
    _CN: [("Tab", .5, .15, 2, 2, 2), ("Banner", .5, .3, 1, 1, 1)],
    _AC: [("Rule", .9, .1, 1, 1, 1), ("Lottery", .5, .6, 2, 2, 2)],
}
_MAX_IN_PAGE = max(len(v) for v in _IN_PAGE.values())
IN_PAGE_IDS = np.full((N_KINDS, _MAX_IN_PAGE), -1, dtype=np.int64)
IN_PAGE_CDF = np.ones((N_KINDS, 3, _MAX_IN_PAGE)) * (1.0 + 1e-9)
for _k, _buttons in _IN_PAGE.items():
    _w = np.array([b[3:] for b in _buttons], dtype=np.float64).T  # (3, n)
    for _i, (_name, _fx, _fy, *_) in enumerate(_buttons):
        IN_PAGE_IDS[_k, _i] = button(f"{KIND_PAGE[_k]}_Button-{_name}", _fx, _fy)
    IN_PAGE_CDF[_k, :, : len(_buttons)] = np.cumsum(_w / _w.sum(axis=1, keepdims=True), axis=1)
    IN_PAGE_CDF[_k, :, len(_buttons) - 1] = 1.0 + 1e-9
ADD_TO_CART = button("Page_Detail_Button-AddToCart")
FAVORITE = button("Page_Detail_Button-Favorite")

# Navigation: the button tapped to go from one kind to the next (-1: no tap-view button).
_TARGET_POS = {
    _H: (.1, .965), _C: (.7, .965), _S: (.5, .08), _RE: (RANDOM_POS, RANDOM_POS), _L: (.3, .22),
    _V: (.5, .965), _M: (.9, .07), _A: (.9, .965), _O: (.5, .3), _CP: (.5, .28), _CA: (.3, .965),
    _SH: (.16, .95), _CN: (RANDOM_POS, RANDOM_POS),
}
_TARGET_LABEL = {
    _H: "TabHome", _C: "TabCart", _S: "SearchBox", _RE: "Recommend", _L: "Live", _V: "Video",
    _M: "Messages", _A: "TabMine", _O: "Orders", _CP: "Coupon", _CA: "TabCategory", _SH: "Shop",
    _CN: "Channel", _AC: "Banner", _R: "Results", _D: "Item",
}
NAV_BUTTON = np.full((N_KINDS, N_KINDS), -1, dtype=np.int64)
PRE_BUTTON = np.full((N_KINDS, N_KINDS), -1, dtype=np.int64)
PRE_PROB = np.zeros((N_KINDS, N_KINDS, 3))  # by behaviour mode
_R_ = RANDOM_POS
_SPECIFIC = {
    (_D, _CO): ("Page_Detail_Button-Comments", .5, .55),
    (_D, _SP): ("Page_Detail_Button-Specs", .5, .65),
    (_D, _G): ("Page_Detail_Button-Gallery", .5, .22),
    (_D, _Q): ("Page_Detail_Button-QA", .5, .6),
    (_D, _C): ("Page_Detail_Button-Cart", .27, .95),
    (_D, _CH): ("Page_Detail_Button-BuyNow", .85, .95),
    (_D, _D): ("Page_Detail_Button-SimilarItem", _R_, _R_),
    (_D, _CP): ("Page_Detail_Button-Coupon", .5, .42),
    (_C, _CH): ("Page_Cart_Button-Checkout", .85, .95),
    (_CH, _P): ("Page_Checkout_Button-SubmitOrder", .85, .955),
    (_S, _R): ("Page_Search_Button-Submit", .92, .07),
    (_CA, _R): ("Page_Category_Button-Leaf", _R_, _R_),
    (_P, _O): ("Page_PaySuccess_Button-ViewOrder", .3, .4),
    (_P, _H): ("Page_PaySuccess_Button-BackHome", .7, .4),
    (_H, _CN): ("Page_Home_Button-Channel", _R_, _R_),
    (_H, _AC): ("Page_Home_Button-Banner", .5, .25),
    (_M, _AC): ("Page_Messages_Button-Item", _R_, _R_),
    (_CN, _CN): ("Page_Channel_Button-Tab", .5, .15),
    (_AC, _AC): ("Page_Activity_Button-Next", .5, .9),
    (_CP, _AC): ("Page_Coupon_Button-Activity", .5, .3),
}
_POSSIBLE = TRANSITIONS[:, :, :N_KINDS].max(axis=0) > 0
for _k in range(N_KINDS):
    for _t in range(N_KINDS):
        if not _POSSIBLE[_k, _t]:
            continue
        if (_k, _t) in _SPECIFIC:
            NAV_BUTTON[_k, _t] = button(*_SPECIFIC[(_k, _t)])
        elif _t in _TARGET_LABEL and _t != _k:
            _fx, _fy = _TARGET_POS.get(_t, (RANDOM_POS, RANDOM_POS))
            NAV_BUTTON[_k, _t] = button(f"{KIND_PAGE[_k]}_Button-{_TARGET_LABEL[_t]}", _fx, _fy)
        elif _t != _k:
            NAV_BUTTON[_k, _t] = button(f"{KIND_PAGE[_k]}_Button-{KIND_PAGE[_t][5:]}")
PRE_BUTTON[_D, _C], PRE_PROB[_D, _C] = ADD_TO_CART, (0.5, 0.7, 0.9)
PRE_BUTTON[_D, _CH], PRE_PROB[_D, _CH] = button("Page_Detail_Button-SKU"), (0.5, 0.6, 0.7)
PRE_BUTTON[_C, _CH], PRE_PROB[_C, _CH] = button("Page_Cart_Button-SelectItem"), (0.4, 0.5, 0.6)
# Each numbered channel / activity page has its own "open an item" button.
SUB_ITEM_BUTTON = {
    CHANNEL: np.array([button(f"Page_Channel_{i:03d}_Button-Item") for i in range(N_CHANNELS)]),
    ACTIVITY: np.array([button(f"Page_Activity_{i:03d}_Button-Item") for i in range(N_ACTIVITIES)]),
}
BACK_BUTTON = np.array([button(f"{KIND_PAGE[k]}_Button-Back", .06, .065) for k in range(N_KINDS)])
# How a "back" is done: back button, edge swipe, system back key (no touch recorded).
BACK_STYLE_CDF = np.array([0.45, 0.80, 1.0 + 1e-9])
N_BUTTONS = len(BUTTON_NAMES)
BUTTON_X_ARR = np.array(BUTTON_X)
BUTTON_Y_ARR = np.array(BUTTON_Y)

# --- item categories ----------------------------------------------------------------------------
N_TOP = 100
N_LEAF = 12_000
_cat_rng = np.random.default_rng(20190804)
_top_sizes = _cat_rng.lognormal(0.0, 0.8, N_TOP)
LEAF_PER_TOP = np.maximum(10, np.round(_top_sizes / _top_sizes.sum() * N_LEAF)).astype(np.int64)
LEAF_PER_TOP[-1] += N_LEAF - LEAF_PER_TOP.sum()  # exact total
LEAF_START = np.concatenate([[0], np.cumsum(LEAF_PER_TOP)[:-1]])
_pop = 1.0 / np.arange(1, N_TOP + 1) ** 0.9
TOP_POPULARITY_CDF = np.cumsum(_cat_rng.permutation(_pop / _pop.sum()))
TOP_POPULARITY_CDF[-1] = 1.0 + 1e-9
LEAF_SKEW = 3.0  # leaf rank within its top: floor(n * u ** LEAF_SKEW)
TOP_NAMES = [f"T{i:03d}" for i in range(N_TOP)]
LEAF_NAMES = [f"L{i:05d}" for i in range(N_LEAF)]
LEAF_TOP = np.repeat(np.arange(N_TOP), LEAF_PER_TOP)

# --- devices -------------------------------------------------------------------------------------
# (width, height) in points, price tier 0..10, share of users.
DEVICES = np.array([
    (320, 568, 1, 3), (360, 640, 2, 8), (375, 667, 4, 12), (360, 780, 3, 10), (360, 800, 3, 10),
    (414, 736, 5, 8), (375, 812, 7, 8), (393, 851, 5, 10), (390, 844, 8, 12), (412, 915, 6, 7),
    (414, 896, 7, 7), (428, 926, 9, 5),
], dtype=np.float64)  # fmt: skip
DEVICE_CDF = np.cumsum(DEVICES[:, 3] / DEVICES[:, 3].sum())
DEVICE_CDF[-1] = 1.0 + 1e-9

# Hour-of-day activity (UTC hours; the simulated market's clock is UTC).
HOUR_WEIGHTS = np.array([3, 1.5, .8, .5, .4, .5, 1, 2.5, 4, 4.5, 4.5, 5, 6, 6, 5, 4.5, 4.5, 5, 5.5,
                         6.5, 8, 9, 8.5, 6], dtype=np.float64)  # fmt: skip
HOUR_CDF = np.cumsum(HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
HOUR_CDF[-1] = 1.0 + 1e-9

assert N_PAGES <= 200 and len(BROWSE_PAGE_NAMES) <= 181 and N_BUTTONS <= 500
assert N_TOP <= 102 and N_LEAF <= 19011


def draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws; ``cdf`` is (..., n) with rows broadcast against ``u``."""
    return (u[..., None] >= cdf).sum(axis=-1)
