"""GBDT baselines (paper section 6.1, after Romov & Sokolov [15]): LightGBM on session summaries.

Two rows, the two names of ``dipn.presets.GBDT_MODELS``:
  * ``gbdt``, the paper's: browse session features plus history and profile, "to see the benefit
    of the touch behaviour" that DIPN reads and this baseline does not;
  * ``gbdt_touch``: the same plus swipe and tap summaries, a stronger baseline of our own.
Features are computed from the same encoded id tensors DIPN reads (no raw logs needed), one row
per sample, in the spirit of [15]'s session summaries, over the views the row summarizes:
  * per view: number of real events; counts per action type (swipe action, tap event, browse
    type) over the whole window and over the last ``recent_steps`` rows;
  * distinct pages per view, distinct buttons (tap), leaf and top categories (browse);
  * the most recent event of each view: its type, page (and button / top category), swipe time-gap
    bucket (recency: how long since the previous action), browse stay-time bucket and hour;
    these ids are declared categorical to LightGBM;
  * mean swipe time-gap bucket over the recent rows; swipe-duration bucket count / mean / max over
    real swipes; browse stay-time bucket mean / max;
  * recency: the context group's bucketed time from each summarized view's last event to the
    cut, and the cut's hour (what a phone knows at the cut, ``dipn.features.cut``);
  * history ids (capped counts, ordinal: numeric) and profile ids (levels, ordinal: numeric),
    for the groups the data holds.
Ids are bucket ids (value + 1, 0 = padding / not applicable) as written by ``dipn.features``;
the statistics of bucket ids are taken over the steps where the field applies (id > 0).
One LightGBM model per task, seeded, 2 threads, quiet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import lightgbm as lgb
import numpy as np

from dipn.errors import DipnValidationError
from dipn.features import TASKS
from dipn.features.spec import MASK_FEATURE, SEQUENCE_GROUPS, STATIC_GROUPS, FeatureConfig, Group
from dipn.presets import GBDT_MODELS

TOUCH_ROW = "gbdt_touch"  # the row of dipn.presets.GBDT_MODELS that also summarizes swipe and tap
GBDT_FORMAT = 1


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
    touch: bool = False  # False: the paper's GBDT (browse + history + profile); True: + swipe, tap
    statics: tuple[str, ...] = tuple(g.value for g in STATIC_GROUPS)  # the static groups it reads

    @property
    def views(self) -> tuple[Group, ...]:
        return SEQUENCE_GROUPS if self.touch else (Group.BROWSE,)


def gbdt_config_for_data(name: str, available: Sequence[str], **settings: object) -> GBDTConfig:
    """The config of a GBDT row on data holding only the ``available`` groups.

    Static groups the data lacks are left out (they would be constant columns); ``gbdt_touch``
    on logs without swipes and taps is refused, since it would be the ``gbdt`` row under
    another name.
    """
    if name not in GBDT_MODELS:
        raise DipnValidationError(f"unknown GBDT model {name!r}; known: {sorted(GBDT_MODELS)}")
    config = GBDTConfig(touch=name == TOUCH_ROW, **settings)  # type: ignore[arg-type]
    missing = [g.value for g in config.views if g.value not in available]
    if missing:
        raise DipnValidationError(
            f"{name} summarizes {', '.join(g.value for g in config.views)}, but the samples hold no "
            f"{', '.join(missing)} events" + ("; use --model gbdt" if config.touch else "")
        )
    return replace(config, statics=tuple(g for g in config.statics if g in available))


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
    views: Sequence[Group] = SEQUENCE_GROUPS,
    statics: Sequence[str] = tuple(g.value for g in STATIC_GROUPS),
) -> tuple[np.ndarray, list[str]]:
    """Encoded id arrays of a batch -> (B, K) float32 features of the given views, the context
    group and the given static groups, and their names."""
    fc = feature_config or FeatureConfig()
    cols = _Columns(batch, fc)
    features: dict[str, np.ndarray] = {}
    recent = slice(-recent_steps, None)
    S, T, B = Group.SWIPE, Group.TAP, Group.BROWSE

    for view in views:
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
        features[f"{view.value}.recency"] = cols.ids(Group.CONTEXT, f"recency_{view.value}")
    if T in views:
        features["tap.distinct_buttons"] = _distinct_nonzero(cols.ids(T, "button"))
    if B in views:
        features["browse.distinct_leaf_categories"] = _distinct_nonzero(cols.ids(B, "leaf_category"))
        features["browse.distinct_top_categories"] = _distinct_nonzero(cols.ids(B, "top_category"))
    features["cut_hour"] = cols.ids(Group.CONTEXT, "cut_hour")

    # The most recent event of each view (last row; 0 when the view is empty).
    last = (
        (S, "action"), (S, "page"), (S, "time_gap"),
        (T, "event"), (T, "page"), (T, "button"),
        (B, "type"), (B, "page"), (B, "top_category"), (B, "stay_time"), (B, "hour"),
    )
    for group, name in last:
        if group in views:
            features[f"{group.value}.last.{name}"] = cols.ids(group, name)[:, -1]

    if S in views:
        gaps, swipe_mask = cols.ids(S, "time_gap"), cols.mask(S)
        features["swipe.recent_mean_time_gap"] = _mean_where(gaps[:, recent], swipe_mask[:, recent])
        duration = cols.ids(S, "swipe_duration")
        is_swipe = duration > 0
        features["swipe.swipes_with_duration"] = is_swipe.sum(axis=1)
        features["swipe.mean_duration"] = _mean_where(duration, is_swipe)
        features["swipe.max_duration"] = duration.max(axis=1)
    if B in views:
        stay, browse_mask = cols.ids(B, "stay_time"), cols.mask(B)
        features["browse.mean_stay_time"] = _mean_where(stay, browse_mask)
        features["browse.max_stay_time"] = (stay * browse_mask).max(axis=1)

    for group in (Group(g) for g in statics):
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
        c = self.config
        matrix, names = summary_features(batch, self.feature_config, c.recent_steps, c.views, c.statics)
        if self.feature_names and names != self.feature_names:
            raise DipnValidationError("summary features differ from the ones the model was fitted on")
        self.feature_names = names
        return matrix

    def fit(self, train_batch: Mapping[str, np.ndarray], val_batch: Mapping[str, np.ndarray] | None = None) -> GBDTBaseline:
        """Fit on batches; early stopping on ``val_batch`` when given."""
        x_val = self.features(val_batch) if val_batch is not None else None
        y_val = {t: _labels(val_batch, t) for t in self.config.tasks} if val_batch is not None else None
        return self.fit_features(self.features(train_batch), {t: _labels(train_batch, t) for t in self.config.tasks},
                                 x_val, y_val)  # fmt: skip

    def fit_features(self, x_train: np.ndarray, y_train: Mapping[str, np.ndarray], x_val: np.ndarray | None = None,
                     y_val: Mapping[str, np.ndarray] | None = None) -> GBDTBaseline:  # fmt: skip
        """Fit on summary matrices (from ``features``), so a large split can be summarized in
        chunks instead of gathered as one batch of id tensors."""
        categorical = categorical_names(self.feature_names)
        self.boosters, self.constant = {}, {}
        for task in self.config.tasks:
            y = np.asarray(y_train[task], dtype=np.float32)
            if y.min() == y.max():
                self.constant[task] = float(y[0])
                continue
            train = lgb.Dataset(
                x_train, y, feature_name=self.feature_names, categorical_feature=categorical, free_raw_data=False
            )
            callbacks, valid_sets = [], []
            if x_val is not None and y_val is not None:
                valid_sets = [lgb.Dataset(x_val, np.asarray(y_val[task], dtype=np.float32), reference=train)]
                callbacks = [lgb.early_stopping(self.config.early_stopping_rounds, verbose=False)]
            self.boosters[task] = lgb.train(
                self._params(), train, num_boost_round=self.config.num_boost_round,
                valid_sets=valid_sets, callbacks=callbacks,
            )
        return self

    def predict(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Probabilities per configured task: {"realtime": (B,), "longterm": (B,)}."""
        return self.predict_features(self.features(batch))

    def predict_features(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if not self.boosters and not self.constant:
            raise DipnValidationError("GBDTBaseline.predict called before fit")
        out = {}
        for task in self.config.tasks:
            if task in self.constant:
                out[task] = np.full(len(x), self.constant[task])
            else:
                booster = self.boosters[task]
                out[task] = booster.predict(x, num_iteration=booster.best_iteration or None)
        return out

    def save(self, path: Path) -> Path:
        """A JSON file of plain data (LightGBM's own text format per task): loading it runs no code."""
        state = {
            "format": GBDT_FORMAT, "kind": "gbdt", "config": asdict(self.config), "feature_names": self.feature_names,
            "constant": self.constant,
            "boosters": {t: b.model_to_string(num_iteration=b.best_iteration or None) for t, b in self.boosters.items()},
        }  # fmt: skip
        from dipn.outputs import write_text

        return write_text(path, json.dumps(state) + "\n")

    @classmethod
    def load(cls, path: Path, feature_config: FeatureConfig) -> GBDTBaseline:
        try:
            state = json.loads(Path(path).read_text())
            if state.get("kind") != "gbdt" or state.get("format") != GBDT_FORMAT:
                raise ValueError(f"not a GBDT model of format {GBDT_FORMAT}")
            config = GBDTConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()})
            model = cls(config, feature_config)
            model.feature_names = list(state["feature_names"])
            model.constant = {t: float(v) for t, v in state["constant"].items()}
            model.boosters = {t: lgb.Booster(model_str=text) for t, text in state["boosters"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError, lgb.basic.LightGBMError) as exc:
            raise DipnValidationError(f"{path}: not a readable GBDT model ({exc})") from exc
        return model


def _labels(batch: Mapping[str, np.ndarray], task: str) -> np.ndarray:
    try:
        return np.asarray(batch[task], dtype=np.float32).reshape(-1)
    except KeyError:
        raise DipnValidationError(f"the batch has no {task!r} labels") from None
