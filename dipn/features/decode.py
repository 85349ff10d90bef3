"""Ids back to words, so a person can read what the model sees (``dipn inspect``)."""

from __future__ import annotations

import numpy as np

from dipn.features.buckets import STAY_TIME_BUCKETS, STEP_BUCKETS
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import PAD_ID, FeatureSpec, Kind


def _step_range(y: int, f_s: float, f_b: float) -> str:
    if y < f_b / f_s:
        return f"{y * f_s:g}-{(y + 1) * f_s:g}ms"
    if y < STEP_BUCKETS - 1:
        return f"{(y - 9) * f_b:g}-{(y - 8) * f_b:g}ms"
    return f">={10 * f_b:g}ms"


def _stay_range(y: int) -> str:
    if y < 120:
        return f"{y}s"
    if y < 168:
        lo = 120 + (y - 120) * 10
        return f"{lo}-{lo + 10}s"
    if y < STAY_TIME_BUCKETS - 1:
        lo = 600 + (y - 168) * 60
        return f"{lo // 60}-{lo // 60 + 1}min"
    return ">=20min"


def _duration(ms: float) -> str:
    if ms == 0:
        return "0"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if ms >= size and ms % size == 0:
            return f"{ms / size:g}{unit}"
    return f"{ms:g}ms"


def _piecewise_range(y: int, pieces: tuple[tuple[float, float], ...]) -> str:
    lower, first = 0.0, 0
    for upper, step in pieces:
        count = int((upper - lower) / step)
        if y < first + count:
            lo = lower + (y - first) * step
            return f"{_duration(lo)}-{_duration(lo + step)}"
        first, lower = first + count, upper
    return f">={_duration(lower)}"


def describe(spec: FeatureSpec, feature_id: int, manifest: FeatureManifest) -> str:
    """One id of one feature as a short human-readable string."""
    if feature_id == PAD_ID:
        return "-"
    if spec.kind is Kind.VOCABULARY:
        return manifest.vocabulary(spec).decode(np.array([feature_id]))[0]
    v = feature_id - 1
    cfg = manifest.config
    match spec.kind:
        case Kind.STEP:
            rule = cfg.time_gap if spec.name == "time_gap" else cfg.duration
            return _step_range(v, rule.f_s, rule.f_b)
        case Kind.CATEGORY:
            return spec.categories[v] if v < len(spec.categories) else f"#{v}"
        case Kind.SCREEN_X | Kind.SCREEN_Y:
            return f"{v}/{spec.vocab_size}"
        case Kind.SWIPE_LENGTH_X | Kind.SWIPE_LENGTH_Y:
            half = spec.vocab_size // 2
            sign = "-" if v >= half else "+"
            return f"{sign}{v % half}seg"
        case Kind.DIRECTION:
            return ("right", "left")[v] if "right" in spec.name else ("down", "up")[v]
        case Kind.RECENCY:
            rule = cfg.recency
            return "no event yet" if v == STEP_BUCKETS else _step_range(v, rule.f_s, rule.f_b)
        case Kind.AGE:
            return _piecewise_range(v, cfg.step_age.pieces) + " ago"
        case Kind.SINCE:
            return "none in the window" if v == cfg.action_age.buckets else _piecewise_range(v, cfg.action_age.pieces)
        case Kind.STAY_TIME:
            return _stay_range(v)
        case Kind.HOUR:
            return f"{v:02d}h"
        case Kind.COUNT:
            return f">={v}" if v == spec.vocab_size - 1 else str(v)
        case _:
            return str(v)
