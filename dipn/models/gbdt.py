"""GBDT baseline (paper section 6.1, after Romov & Sokolov [15]): LightGBM on session summaries.

Features are computed from the same encoded id tensors DIPN reads (no raw logs needed), one row
per sample, in the spirit of [15]'s session summaries, plus history and profile (as the paper
adds them):
  * per view: number of real events; counts per action type (swipe action, tap event, browse
    type) over the whole window and over the last ``recent_steps`` rows;
  * distinct pages per view, distinct buttons (tap), leaf and top categories (browse);
  * the most recent event of each view: its type, page (and button / top category), swipe time-gap
    bucket (recency: how long since the previous action), browse stay-time bucket and hour;
    these ids are declared categorical to LightGBM;
  * mean swipe time-gap bucket over the recent rows; swipe-duration bucket count / mean / max over
    real swipes; browse stay-time bucket mean / max;
  * history ids (capped counts, ordinal: numeric) and profile ids (levels, ordinal: numeric).
Ids are bucket ids (value + 1, 0 = padding / not applicable) as written by ``dipn.features``;
the statistics of bucket ids are taken over the steps where the field applies (id > 0).
One LightGBM model per task, seeded, 2 threads, quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from dipn.errors import DipnValidationError
from dipn.features.manifest import MASK_FEATURE
from dipn.features.spec import STATIC_GROUPS, FeatureConfig, Group

TASKS = ("realtime", "longterm")


@dataclass(frozen=True)
class GBDTConfig:
    num_boost_round: int = 300
    early_stopping_rounds: int = 30  # used when a validation batch is given
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 20
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.9
    bagging_freq: int = 1
    recent_steps: int = 32  # "last N steps" window of the summaries
    seed: int = 0
    num_threads: int = 2
    tasks: tuple[str, ...] = TASKS


class _Columns:
    """Named access to the id columns of a batch, with the view masks."""

    def __init__(self, batch: Mapping[str, np.ndarray], feature_config: FeatureConfig) -> None:
        self.batch = batch
        self.fc = feature_config

    def ids(self, group: Group, name: str) -> np.ndarray:
        columns = [s.name for s in self.fc.group(group)]
        try:
            array = np.asarray(self.batch[group.value])
        except KeyError:
            raise DipnValidationError(f"summary_features needs the {group.value!r} array") from None
        return array[..., columns.index(name)].astype(np.int64)

    def mask(self, view: Group) -> np.ndarray:
        return self.ids(view, MASK_FEATURE[view]) != 0


def _distinct_nonzero(ids: np.ndarray) -> np.ndarray:
    """(B, T) -> (B,) number of distinct non-zero ids per row."""
    s = np.sort(ids, axis=1)
    changes = (np.diff(s, axis=1) != 0) & (s[:, 1:] != 0)
    return changes.sum(axis=1) + (s[:, 0] != 0)


def _mean_where(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    count = where.sum(axis=1)
    return np.where(count > 0, (values * where).sum(axis=1) / np.maximum(count, 1), np.nan)


def _category_label(group: Group, feature_config: FeatureConfig, name: str, category_id: int) -> str:
    categories = feature_config.spec(group, name).categories
    return categories[category_id - 1] if category_id - 1 < len(categories) else str(category_id)


def summary_features(
    batch: Mapping[str, np.ndarray],
    feature_config: FeatureConfig | None = None,
    recent_steps: int = 32,
) -> tuple[np.ndarray, list[str]]:
    """Encoded id arrays (swipe, tap, browse, history, profile) -> (B, K) float32 features, names."""
    fc = feature_config or FeatureConfig()
    cols = _Columns(batch, fc)
    features: dict[str, np.ndarray] = {}
    recent = slice(-recent_steps, None)
    S, T, B = Group.SWIPE, Group.TAP, Group.BROWSE

    for view in (S, T, B):
        mask = cols.mask(view)
        kind = MASK_FEATURE[view]
        kinds = cols.ids(view, kind)
        features[f"{view.value}.events"] = mask.sum(axis=1)
        features[f"{view.value}.events_recent"] = mask[:, recent].sum(axis=1)
        for category_id in range(1, fc.spec(view, kind).vocab_size + 1):
            label = _category_label(view, fc, kind, category_id)
            features[f"{view.value}.count.{label}"] = (kinds == category_id).sum(axis=1)
            features[f"{view.value}.count_recent.{label}"] = (kinds[:, recent] == category_id).sum(axis=1)
        features[f"{view.value}.distinct_pages"] = _distinct_nonzero(cols.ids(view, "page"))
    features["tap.distinct_buttons"] = _distinct_nonzero(cols.ids(T, "button"))
    features["browse.distinct_leaf_categories"] = _distinct_nonzero(cols.ids(B, "leaf_category"))
    features["browse.distinct_top_categories"] = _distinct_nonzero(cols.ids(B, "top_category"))

    # The most recent event of each view (last row; 0 when the view is empty).
    last = (
        (S, "action"), (S, "page"), (S, "time_gap"),
        (T, "event"), (T, "page"), (T, "button"),
        (B, "type"), (B, "page"), (B, "top_category"), (B, "stay_time"), (B, "hour"),
    )
    for group, name in last:
        features[f"{group.value}.last.{name}"] = cols.ids(group, name)[:, -1]

    gaps, swipe_mask = cols.ids(S, "time_gap"), cols.mask(S)
    features["swipe.recent_mean_time_gap"] = _mean_where(gaps[:, recent], swipe_mask[:, recent])
    duration = cols.ids(S, "swipe_duration")
    is_swipe = duration > 0
    features["swipe.swipes_with_duration"] = is_swipe.sum(axis=1)
    features["swipe.mean_duration"] = _mean_where(duration, is_swipe)
    features["swipe.max_duration"] = duration.max(axis=1)
    stay, browse_mask = cols.ids(B, "stay_time"), cols.mask(B)
    features["browse.mean_stay_time"] = _mean_where(stay, browse_mask)
    features["browse.max_stay_time"] = (stay * browse_mask).max(axis=1)

    for group in STATIC_GROUPS:
        for spec in fc.group(group):
            features[f"{group.value}.{spec.name}"] = cols.ids(group, spec.name)

    names = list(features)
    matrix = np.stack([np.asarray(features[n], dtype=np.float32) for n in names], axis=1)
    return matrix, names


CATEGORICAL_SUFFIXES = (
    "last.action", "last.page", "last.event", "last.button", "last.type", "last.top_category",
)


def categorical_names(names: list[str]) -> list[str]:
    """The summary features LightGBM should treat as categorical (ids of the last event)."""
    return [n for n in names if n.endswith(CATEGORICAL_SUFFIXES)]


class GBDTBaseline:
    """One LightGBM binary classifier per task on ``summary_features``."""

    def __init__(self, config: GBDTConfig | None = None, feature_config: FeatureConfig | None = None) -> None:
        self.config = config or GBDTConfig()
        self.feature_config = feature_config or FeatureConfig()
        self.boosters: dict[str, lgb.Booster] = {}
        self.constant: dict[str, float] = {}  # tasks whose training labels were all one class
        self.feature_names: list[str] = []

    def _params(self) -> dict[str, object]:
        c = self.config
        return {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "min_data_in_leaf": c.min_data_in_leaf,
            "feature_fraction": c.feature_fraction,
            "bagging_fraction": c.bagging_fraction,
            "bagging_freq": c.bagging_freq,
            "seed": c.seed,
            "deterministic": True,
            "num_threads": c.num_threads,
            "verbosity": -1,
        }

    def features(self, batch: Mapping[str, np.ndarray]) -> np.ndarray:
        matrix, names = summary_features(batch, self.feature_config, self.config.recent_steps)
        if self.feature_names and names != self.feature_names:
            raise DipnValidationError("summary features differ from the ones the model was fitted on")
        self.feature_names = names
        return matrix

    def fit(self, train_batch: Mapping[str, np.ndarray], val_batch: Mapping[str, np.ndarray] | None = None) -> GBDTBaseline:
        x_train = self.features(train_batch)
        x_val = self.features(val_batch) if val_batch is not None else None
        categorical = categorical_names(self.feature_names)
        self.boosters, self.constant = {}, {}
        for task in self.config.tasks:
            y = _labels(train_batch, task)
            if y.min() == y.max():
                self.constant[task] = float(y[0])
                continue
            train = lgb.Dataset(
                x_train, y, feature_name=self.feature_names, categorical_feature=categorical, free_raw_data=False
            )
            callbacks, valid_sets = [], []
            if x_val is not None:
                valid_sets = [lgb.Dataset(x_val, _labels(val_batch, task), reference=train)]
                callbacks = [lgb.early_stopping(self.config.early_stopping_rounds, verbose=False)]
            self.boosters[task] = lgb.train(
                self._params(), train, num_boost_round=self.config.num_boost_round,
                valid_sets=valid_sets, callbacks=callbacks,
            )
        return self

    def predict(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Probabilities per configured task: {"realtime": (B,), "longterm": (B,)}."""
        if not self.boosters and not self.constant:
            raise DipnValidationError("GBDTBaseline.predict called before fit")
        x = self.features(batch)
        out = {}
        for task in self.config.tasks:
            if task in self.constant:
                out[task] = np.full(len(x), self.constant[task])
            else:
                booster = self.boosters[task]
                out[task] = booster.predict(x, num_iteration=booster.best_iteration or None)
        return out


def _labels(batch: Mapping[str, np.ndarray], task: str) -> np.ndarray:
    try:
        return np.asarray(batch[task], dtype=np.float32).reshape(-1)
    except KeyError:
        raise DipnValidationError(f"the batch has no {task!r} labels") from None
