"""What a phone knows at the moment t it scores: the one place that turns a cut time into inputs.

Training samples (``dipn.samples.store``), golden vectors (``dipn.bundle.selftest``) and the device wrapper
(``mobile_demo.runtime``) all call these functions (through ``dipn.features.inputs_at_cut``), so a sample cut at t and a phone scoring at t
see the same ids, and neither sees anything that happens after t:

  * a browse page still open at t has stayed ``t - ts`` so far, whatever the log says it will
    stay (the raw ``stay_ms`` is the final stay, known only when the page is left); a browse
    event without a stay time is a page still open;
  * recency: the time from each view's last event at or before t to t (``Kind.RECENCY``);
  * the hour of day of t;
  * the age of every sequence step, t - ts (``Kind.AGE``, the last column of each view): the same
    event is 30 s old at one cut and 3 days old at the next;
  * the time since the last browse event of each action (purchase, cart, collect, browse) in the
    browse window (``Kind.SINCE``, day scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dipn.features import buckets
from dipn.features.manifest import FeatureManifest
from dipn.features.spec import BROWSE_ACTIONS, PAD_ID, FeatureConfig, FeatureSpec, Group, Kind, mask_column, value_to_id

OPEN_STAY = -1  # stored stay of a browse page whose end is not in the log: still open
NO_EVENT_TS = np.iinfo(np.int64).min  # timestamp of a padded step
_BROWSE = int(value_to_id(BROWSE_ACTIONS.index("browse")))  # the type id of a page view


def raw_stays(actions: np.ndarray, stay_ms: np.ndarray) -> np.ndarray:
    """The stay time to keep per browse event (int64 ms): its final stay, ``OPEN_STAY`` for a browse
    action without one (the page was not left inside the log), 0 for the other actions."""
    stay = np.asarray(stay_ms, dtype=np.float64)
    is_browse = np.asarray(actions) == "browse"
    finite = np.isfinite(stay)
    kept = np.where(finite, np.clip(np.nan_to_num(stay, nan=0.0, posinf=0.0, neginf=0.0), 0, 2**62), 0)
    return np.where(is_browse & ~finite, OPEN_STAY, kept).astype(np.int64)


def event_stays(events: Sequence[Mapping[str, object]]) -> np.ndarray:
    """``raw_stays`` of raw browse events as dicts (the device's and the golden cases' form), where
    a missing or None ``stay_ms`` is a page not left yet."""
    actions = np.array([e.get("action") for e in events], dtype=object)
    stays = np.array([np.nan if e.get("stay_ms") is None else e["stay_ms"] for e in events], np.float64)
    return raw_stays(actions, stays)


def browse_at_cut(
    ids: np.ndarray, ts: np.ndarray, stay: np.ndarray, cut_ts: np.ndarray, manifest: FeatureManifest
) -> np.ndarray:
    """Browse windows (n, T, F) with each stay id as known at the cut: min(final stay, t - ts).

    ``ts`` and ``stay`` are (n, T) (``raw_stays`` values; padded steps anything), ``cut_ts`` (n,).
    Only the rows of pages still open at t change; the rest are returned as they are.
    """
    cfg = manifest.config
    column = [s.name for s in cfg.group(Group.BROWSE)].index("stay_time")
    action = ids[..., mask_column(cfg, Group.BROWSE)]  # the action type: 0 exactly on padding
    real = action != 0
    elapsed = np.asarray(cut_ts, dtype=np.int64)[:, None] - np.where(real, ts, 0)
    is_browse = action == _BROWSE
    still_open = real & is_browse & ((stay == OPEN_STAY) | (stay > elapsed))
    if not still_open.any():
        return ids
    out = np.array(ids, copy=True)
    out[..., column] = np.where(
        still_open, value_to_id(buckets.stay_time_bucket(np.where(still_open, elapsed, 0))), ids[..., column]
    )
    return out


def step_ages(view: str, ids: np.ndarray, ts: np.ndarray, cut_ts: np.ndarray, manifest: FeatureManifest) -> np.ndarray:
    """A view's windows (n, T, F) with each real step's age column set to its bucket of t - ts
    (``FeatureConfig.step_age``); padded steps (mask column 0) keep padding. A view without an age
    column (a manifest without it) is returned as it is."""
    cfg = manifest.config
    columns = cfg.at_cut_columns(view)
    if not columns:
        return ids
    real = ids[..., mask_column(cfg, view)] != 0
    elapsed = np.asarray(cut_ts, dtype=np.int64)[:, None] - np.where(real, ts, 0)
    age = np.where(real, value_to_id(buckets.piecewise_bucket(np.where(real, elapsed, 0), cfg.step_age.pieces)), PAD_ID)
    out = np.array(ids, dtype=np.int32, copy=True)
    for column in columns:
        out[..., column] = age
    return out


def last_action_ts(browse_ids: np.ndarray, browse_ts: np.ndarray, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Per browse action (``BROWSE_ACTIONS``), the timestamp of its last event in the browse windows
    (n, T, F) / (n, T), ``NO_EVENT_TS`` where the window holds none."""
    type_ids = browse_ids[..., mask_column(config, "browse")]
    out = {}
    for index, action in enumerate(BROWSE_ACTIONS):
        hit = type_ids == value_to_id(index)
        last = type_ids.shape[1] - 1 - np.argmax(hit[:, ::-1], axis=1)
        stamp = np.take_along_axis(browse_ts, last[:, None], axis=1)[:, 0]
        out[action] = np.where(hit.any(axis=1), stamp, NO_EVENT_TS).astype(np.int64)
    return out


def _elapsed(cut: np.ndarray, last: np.ndarray) -> np.ndarray:
    """cut - last in ms as float, NaN where there is no event (``NO_EVENT_TS``)."""
    return np.where(last == NO_EVENT_TS, np.nan, (cut - np.where(last == NO_EVENT_TS, 0, last)).astype(np.float64))


def context_ids(
    cut_ts: np.ndarray,
    last_ts: Mapping[str, np.ndarray],
    manifest: FeatureManifest,
    action_ts: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """(n, C) ids of the context group, column by column as the manifest lists them: recency of each
    view's last event at or before the cut (``NO_EVENT_TS`` or a missing view: none yet), the cut's
    hour of day, and the time since the last browse event of each action (``action_ts``, from
    ``last_action_ts``; missing: none)."""
    cfg = manifest.config
    cut = np.asarray(cut_ts, dtype=np.int64)
    none = np.full(cut.shape, NO_EVENT_TS)
    columns = []
    for spec in cfg.group(Group.CONTEXT):
        if spec.kind is Kind.RECENCY:
            last = np.asarray(last_ts.get(spec.name.removeprefix("recency_"), none), dtype=np.int64)
            columns.append(value_to_id(buckets.recency_bucket(_elapsed(cut, last), cfg.recency.f_s, cfg.recency.f_b)))
        elif spec.kind is Kind.HOUR:
            columns.append(value_to_id(buckets.hour_of_day(cut, cfg.utc_offset_minutes)))
        elif spec.kind is Kind.SINCE:
            last = np.asarray((action_ts or {}).get(spec.name.removeprefix("since_"), none), dtype=np.int64)
            columns.append(value_to_id(buckets.since_bucket(_elapsed(cut, last), cfg.action_age.pieces)))
        else:
            raise ValueError(f"context feature {spec.name!r} of kind {spec.kind.value!r} has no rule at the cut")
    return np.stack(columns, axis=-1).astype(np.int32)


def context_columns_read(config: FeatureConfig, views: Sequence[str], action_ages: bool = True) -> list[bool]:
    """Which context columns a model reads: the recency of the views it models, the cut hour, and
    the time since each browse action when it models the browse view and ``action_ages`` is on.

    A source ablation without the swipe view must not learn from the swipe view's recency either.
    """
    def read(spec: FeatureSpec) -> bool:
        if spec.kind is Kind.RECENCY:
            return spec.name.removeprefix("recency_") in views
        if spec.kind is Kind.SINCE:
            return action_ages and "browse" in views
        return True

    return [read(spec) for spec in config.group(Group.CONTEXT)]
