"""Golden vectors, the write side: raw event streams, the ids they encode to, each artifact's scores.

A port of the encoder (Kotlin, Swift) is correct when it turns each case's raw events into exactly
these ids, and a runtime is correct when the artifact turns the ids into these scores within the
stated tolerance. The cases are made here, deterministically, from the feature manifest's own
vocabularies, so they need no raw logs and cover what a port gets wrong first:
  * ``session``: a short shopping session on every view (known pages, buttons, categories);
  * ``long``: more events than the sequence length (only the last T are kept), gaps from
    milliseconds to days (a purchase days before the score: step and action ages in days),
    taps and swipes at the screen edges;
  * ``unknown_values``: strings outside the vocabularies (out-of-vocabulary id), coordinates off
    the screen, a negative gap, very long stays, counts and levels beyond their ranges;
  * ``no_events``: no behaviour at all, only history and profile (every view all padding).
Each case is scored at its ``score_ts`` (an idle moment after its last event, or at it): pages
still open then have stayed ``score_ts - ts``, and the context group is computed at that moment
(``dipn.features.cut``), as the device does when its timer or a page leave triggers a score.

Encoding is the device's own (``dipn.bundle.selftest.encode_case``: ``dipn.features.StreamEncoder``,
one event at a time as a phone does); sequences are left-padded with zero rows to length T (a real
event's row is never all zero: its mask column is non-zero). ``golden.json`` stores the real rows
only (``dipn.bundle.golden``, which a device reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dipn.features import VIEWS, FeatureManifest
SCREEN = (390.0, 844.0)  # points, an iPhone 12-14 class screen
# Scores must match within these absolute tolerances: fp32 kernels differ in summation order only;
# int8 kernels quantize activations on the fly, and rounding differs between CPU instruction sets.
TOLERANCE = {"fp32": 1e-4, "int8": 5e-3}
START_MS = 1_767_261_600_000  # 2026-01-01 10:00 UTC


def _vocab(manifest: FeatureManifest, key: str, fallback: str) -> list[str]:
    vocab = manifest.vocabularies.get(key)
    return list(vocab.values) if vocab is not None and len(vocab) else [fallback]


def _session(rng: np.random.Generator, manifest: FeatureManifest, n_swipe: int, n_tap: int, n_browse: int,
             start: int, unknown: bool = False) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    pages = _vocab(manifest, "swipe.page", "Page_Home")
    tap_pages = _vocab(manifest, "tap.page", "Page_Home")
    buttons = _vocab(manifest, "tap.button", "Page_Home_Button-Search")
    leaves = _vocab(manifest, "browse.leaf_category", "L00001")
    tops = _vocab(manifest, "browse.top_category", "T001")
    browse_pages = _vocab(manifest, "browse.page", "Page_Detail")
    w, h = SCREEN

    def pick(values: list[str], label: str) -> str:
        if unknown and rng.random() < 0.4:
            return f"Golden_Unknown_{label}_{int(rng.integers(1000))}"
        return values[int(rng.integers(min(len(values), 40)))]

    def gaps(n: int) -> np.ndarray:
        kinds = rng.integers(0, 4, n)
        scale = np.array([40, 900, 20_000, 3_600_000])[kinds]  # ms: a burst, a tap, a read, an hour
        return np.maximum(1, (rng.random(n) * scale).astype(np.int64))

    swipe, t = [], start
    for i, gap in enumerate(gaps(n_swipe)):
        t += int(gap)
        kind = ("open_page", "swipe", "swipe", "tap", "leave_page")[i % 5]
        event: dict[str, Any] = {"user_id": "golden", "ts": t, "type": kind, "page": pick(pages, "page")}
        if kind == "tap":
            x, y = rng.random() * w, rng.random() * h
            if unknown or i % 7 == 3:  # screen edges, and off the screen when unknown
                x, y = (w * 1.2, -10.0) if unknown else (w, 0.0)
            event |= {"x": round(float(x), 1), "y": round(float(y), 1)}
        elif kind == "swipe":
            x0, y0 = rng.random() * w, rng.random() * h
            x1, y1 = rng.random() * w, rng.random() * h
            event |= {"x0": round(float(x0), 1), "y0": round(float(y0), 1), "x1": round(float(x1), 1),
                      "y1": round(float(y1), 1), "duration_ms": float(rng.integers(20, 3_000))}  # fmt: skip
        swipe.append(event)
    if unknown and len(swipe) > 2:
        swipe[-1]["ts"] = swipe[-2]["ts"] - 500  # a clock step backwards: a negative gap
    tap, t = [], start
    for i, gap in enumerate(gaps(n_tap)):
        t += int(gap)
        if i % 3 == 0:
            tap.append({"user_id": "golden", "ts": t, "event": "page", "page": pick(tap_pages, "page"), "button": None})
        else:
            tap.append({"user_id": "golden", "ts": t, "event": "button", "page": pick(tap_pages, "page"),
                        "button": pick(buttons, "button")})  # fmt: skip
    browse, t = [], start
    actions = ("browse", "browse", "search", "collect", "cart", "purchase")
    for i, gap in enumerate(gaps(n_browse)):
        t += int(gap)
        action = actions[i % len(actions)]
        stay = float(rng.integers(500, 90_000)) if action == "browse" else None
        if unknown and action == "browse":
            stay = 5_000_000.0  # beyond the last stay-time bucket
        leaf = None if action == "search" else pick(leaves, "leaf")
        top, page = pick(tops, "top"), pick(browse_pages, "page")
        browse.append({"user_id": "golden", "ts": t, "action": action, "leaf_category": leaf,
                       "top_category": top, "page": page, "stay_ms": stay})  # fmt: skip
    return {"swipe": swipe, "tap": tap, "browse": browse}


def golden_cases(manifest: FeatureManifest, seed: int = 20190804) -> list[dict[str, Any]]:
    """The raw cases (see the module docstring), reproducible from the manifest and the seed."""
    rng = np.random.default_rng(seed)
    length = manifest.config.sequence_length
    history = {"collect_7d": 2, "collect_365d": 31, "cart_7d": 1, "cart_365d": 12,
               "purchase_7d": 0, "purchase_365d": 7}  # fmt: skip
    profile = {"age_level": 3, "gender": 1, "buyer_star": 6, "tm_level": 2, "vip_level": 1, "phone_price_level": 5}
    cases = [
        {"name": "session", "events": _session(rng, manifest, 24, 9, 7, START_MS),
         "history": history, "profile": profile},
        {"name": "long", "events": _session(rng, manifest, length + 44, length + 3, 40, START_MS - 86_400_000),
         "history": history | {"purchase_7d": 3}, "profile": profile | {"gender": 2}},
        {"name": "unknown_values", "events": _session(rng, manifest, 17, 8, 12, START_MS, unknown=True),
         "history": {k: 10_000 for k in history}, "profile": {k: 99 for k in profile}},
        {"name": "no_events", "events": {v: [] for v in VIEWS}, "history": {k: 0 for k in history},
         "profile": {k: 0 for k in profile}},
    ]  # fmt: skip
    # A purchase days before the long history: the day pieces of the step ages and action ages.
    long_browse = cases[1]["events"]["browse"]
    long_browse.insert(0, {**long_browse[0], "ts": START_MS - 3 * 86_400_000 - 5 * 3_600_000, "action": "purchase",
                           "stay_ms": None})  # fmt: skip
    idle_after_ms = {"session": 45_000, "long": 2 * 3_600_000, "unknown_values": 0, "no_events": 0}
    for case in cases:
        case["screen"] = list(SCREEN)
        stamps = [e["ts"] for events in case["events"].values() for e in events]
        case["score_ts"] = (max(stamps) if stamps else START_MS) + idle_after_ms[case["name"]]
    return cases


def stack_inputs(encoded: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([e[name] for e in encoded]) for name in encoded[0]}
