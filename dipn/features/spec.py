"""The paper's Table 3 as typed feature specs: the single source of vocab sizes and embedding dims.

Every other module (encoder, samples, models, converters, device runtime) reads sizes from here or
from a feature manifest written from here; no size is typed twice.

Id layout, the same for every feature:
  0          padding (left-padded steps of a sequence) and "not applicable" (e.g. the tap
             position of a swipe event, the button of a page tap);
  1..V       buckets and fixed categories: id = value + 1 (see ``value_to_id``);
  vocabularies (pages, buttons, categories): 1 = out of vocabulary, 2..V+1 the known values.
V is the paper's "Dictionary Dim"; the embedding table therefore has V + 1 rows (V + 2 for
vocabularies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

PAD_ID = 0
OOV_ID = 1
SEQUENCE_LENGTH = 256


class Kind(str, Enum):
    """How raw values become ids; each kind is one function of ``dipn.features.buckets``."""

    STEP = "step"  # section 3.1 step function (time gap, swipe duration)
    SCREEN_X = "screen_x"  # position on a 17-segment screen width
    SCREEN_Y = "screen_y"  # position on a 25-segment screen height
    SWIPE_LENGTH_X = "swipe_length_x"  # signed length in 2 x 17 segments
    SWIPE_LENGTH_Y = "swipe_length_y"  # signed length in 2 x 25 segments
    DIRECTION = "direction"  # right/left, up/down
    CATEGORY = "category"  # fixed enumeration (action type, event type, browse type)
    VOCABULARY = "vocabulary"  # strings mapped through a vocabulary built from training logs
    STAY_TIME = "stay_time"  # browse page stay time, 179 buckets
    HOUR = "hour"  # hour of day of the event
    COUNT = "count"  # history counts, capped
    LEVEL = "level"  # profile levels, clipped
    RECENCY = "recency"  # time from a view's last event to the cut: step function, or "none"
    AGE = "age"  # time from a sequence step's event to the cut: piecewise steps, seconds to days
    SINCE = "since"  # time from the last browse event of one action to the cut, day scale, or "none"


class Group(str, Enum):
    SWIPE = "swipe"
    TAP = "tap"
    BROWSE = "browse"
    HISTORY = "history"
    PROFILE = "profile"
    CONTEXT = "context"


SEQUENCE_GROUPS = (Group.SWIPE, Group.TAP, Group.BROWSE)
STATIC_GROUPS = (Group.HISTORY, Group.PROFILE)  # read from raw logs (history.*, profile.*)
# Computed at the cut from the cut time and the views' timestamps, on the phone as in training.
CUT_GROUPS = (Group.CONTEXT,)


@dataclass(frozen=True)
class FeatureSpec:
    """One row of Table 3."""

    name: str
    group: Group
    kind: Kind
    vocab_size: int  # the paper's "Dictionary Dim"
    embed_dim: int  # the paper's "Embedding Dim"
    source: str  # raw column it is computed from (for a reader of the manifest)
    categories: tuple[str, ...] = ()  # for Kind.CATEGORY: raw value of id 1, 2, ...

    @property
    def num_embeddings(self) -> int:
        """Rows of the embedding table: padding + values (+ OOV for vocabularies)."""
        return self.vocab_size + (2 if self.kind is Kind.VOCABULARY else 1)


SWIPE_ACTIONS = ("open_page", "leave_page", "swipe", "tap")
TAP_EVENTS = ("page", "button")
BROWSE_ACTIONS = ("browse", "search", "collect", "cart", "purchase")

S, T, B, H, P, C = Group.SWIPE, Group.TAP, Group.BROWSE, Group.HISTORY, Group.PROFILE, Group.CONTEXT
RECENCY_BUCKETS = 21  # the step function's 20 buckets, then "no event of this view yet"
# Kinds whose ids depend on the moment of the cut: the per-event encoders leave them at padding and
# ``dipn.features.inputs_at_cut`` fills them in (``dipn.features.cut``).
AT_CUT_KINDS = frozenset({Kind.AGE})


@dataclass(frozen=True)
class PiecewiseRule:
    """A step function of elapsed ms with several uniform pieces (the section 3.1 function has two):
    ``pieces`` = ((upper_ms, step_ms), ...) from 0 up; value = the buckets of the earlier pieces +
    floor((x - lower) / step) inside a piece, one open bucket at and beyond the last upper edge.
    Negative x (clock skew) -> 0."""

    pieces: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        lower = 0.0
        for upper, step in self.pieces:
            if not (upper > lower and step > 0 and ((upper - lower) / step).is_integer()):
                raise ValueError(f"piece up to {upper} ms in steps of {step} ms does not tile [{lower}, {upper})")
            lower = upper

    @property
    def buckets(self) -> int:
        """Values 0..buckets-1, the last one the open bucket (beyond the last edge)."""
        return len(self.edges) + 1

    @property
    def edges(self) -> tuple[float, ...]:
        """Every bucket edge in ms, from the first step up to the last upper edge."""
        lower, edges = 0.0, []
        for upper, step in self.pieces:
            edges += [lower + step * (k + 1) for k in range(int((upper - lower) / step))]
            lower = upper
        return tuple(edges)

    def values_below(self, ms: float) -> int:
        """How many values lie wholly below ``ms``, which must be a bucket edge (a horizon cannot
        split a bucket: the ids would not say on which side of it an event was)."""
        edges = self.edges
        if ms not in edges:
            hours = ", ".join(f"{e / 3_600_000:g}" for e in edges)
            raise ValueError(f"{ms / 3_600_000:g} h is not a bucket edge; the edges in hours: {hours}")
        return edges.index(ms) + 1


_S, _MIN, _H, _D = 1_000.0, 60_000.0, 3_600_000.0, 86_400_000.0
# Step ages: 10 s steps within the minute, then minutes to 10 min, 10 min to the hour, hours to the
# day, days to 10 days (the public logs span 9); 53 values. Resolution where intent changes fast.
STEP_AGE = PiecewiseRule(((60 * _S, 10 * _S), (10 * _MIN, _MIN), (_H, 10 * _MIN), (_D, _H), (10 * _D, _D)))
# Time since the last purchase, cart, collect, browse: hours within the day, then days; 33 values.
ACTION_AGE = PiecewiseRule(((_D, _H), (10 * _D, _D)))
BROWSE_ACTION_AGES = ("purchase", "cart", "collect", "browse")  # the context's since_<action> columns, in order

# Table 3, in the paper's order; the order within a group is the column order of the tensors.
TABLE3: tuple[FeatureSpec, ...] = (
    # (a) swipe-interactive behaviour
    FeatureSpec("page", S, Kind.VOCABULARY, 224, 32, "page"),
    FeatureSpec("action", S, Kind.CATEGORY, 4, 4, "type", SWIPE_ACTIONS),
    FeatureSpec("time_gap", S, Kind.STEP, 20, 8, "ts"),
    FeatureSpec("tap_x", S, Kind.SCREEN_X, 17, 8, "x"),
    FeatureSpec("tap_y", S, Kind.SCREEN_Y, 25, 8, "y"),
    FeatureSpec("swipe_start_x", S, Kind.SCREEN_X, 17, 8, "x0"),
    FeatureSpec("swipe_start_y", S, Kind.SCREEN_Y, 25, 8, "y0"),
    FeatureSpec("swipe_end_x", S, Kind.SCREEN_X, 17, 8, "x1"),
    FeatureSpec("swipe_end_y", S, Kind.SCREEN_Y, 25, 8, "y1"),
    FeatureSpec("swipe_length_x", S, Kind.SWIPE_LENGTH_X, 34, 8, "x1 - x0"),
    FeatureSpec("swipe_length_y", S, Kind.SWIPE_LENGTH_Y, 50, 16, "y1 - y0"),
    FeatureSpec("swipe_right_left", S, Kind.DIRECTION, 2, 2, "x1 - x0"),
    FeatureSpec("swipe_up_down", S, Kind.DIRECTION, 2, 2, "y1 - y0"),
    FeatureSpec("swipe_duration", S, Kind.STEP, 20, 8, "duration_ms"),
    # (b) tap-interactive behaviour
    FeatureSpec("event", T, Kind.CATEGORY, 2, 2, "event", TAP_EVENTS),
    FeatureSpec("page", T, Kind.VOCABULARY, 200, 16, "page"),
    FeatureSpec("button", T, Kind.VOCABULARY, 500, 32, "button"),
    # (c) browse-interactive behaviour
    FeatureSpec("type", B, Kind.CATEGORY, 6, 4, "action", BROWSE_ACTIONS),
    FeatureSpec("leaf_category", B, Kind.VOCABULARY, 19011, 32, "leaf_category"),
    FeatureSpec("top_category", B, Kind.VOCABULARY, 102, 16, "top_category"),
    FeatureSpec("page", B, Kind.VOCABULARY, 181, 16, "page"),
    FeatureSpec("stay_time", B, Kind.STAY_TIME, 179, 16, "stay_ms"),
    FeatureSpec("hour", B, Kind.HOUR, 25, 4, "ts"),
    # (d) user history: collect (C.F.), add-to-cart (A.F.), purchase (P.F.) frequencies
    FeatureSpec("collect_week", H, Kind.COUNT, 20, 8, "collect_7d"),
    FeatureSpec("collect_year", H, Kind.COUNT, 100, 16, "collect_365d"),
    FeatureSpec("cart_week", H, Kind.COUNT, 20, 8, "cart_7d"),
    FeatureSpec("cart_year", H, Kind.COUNT, 100, 16, "cart_365d"),
    FeatureSpec("purchase_week", H, Kind.COUNT, 20, 8, "purchase_7d"),
    FeatureSpec("purchase_year", H, Kind.COUNT, 100, 16, "purchase_365d"),
    # (e) user profile
    FeatureSpec("age_level", P, Kind.LEVEL, 9, 4, "age_level"),
    FeatureSpec("gender", P, Kind.LEVEL, 3, 2, "gender"),
    FeatureSpec("buyer_star", P, Kind.LEVEL, 17, 8, "buyer_star"),
    FeatureSpec("tm_level", P, Kind.LEVEL, 6, 4, "tm_level"),
    FeatureSpec("vip_level", P, Kind.LEVEL, 8, 4, "vip_level"),
    FeatureSpec("phone_price", P, Kind.LEVEL, 11, 4, "phone_price_level"),
)

# Not in Table 3: what a phone knows at the moment it scores (docs/models.md, "Recency"). The paper
# cuts samples at events only; a timer trigger also scores idle moments, where "how long since
# the last event" is the strongest signal on real logs.
CONTEXT_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("recency_swipe", C, Kind.RECENCY, RECENCY_BUCKETS, 8, "cut_ts - last swipe ts"),
    FeatureSpec("recency_tap", C, Kind.RECENCY, RECENCY_BUCKETS, 8, "cut_ts - last tap ts"),
    FeatureSpec("recency_browse", C, Kind.RECENCY, RECENCY_BUCKETS, 8, "cut_ts - last browse ts"),
    FeatureSpec("cut_hour", C, Kind.HOUR, 24, 4, "cut_ts"),
    # Time since the last browse-view event of each action (issue 25), computed at the cut from the
    # browse window: "none" (the last value) when the window holds no such event.
    *(FeatureSpec(f"since_{a}", C, Kind.SINCE, ACTION_AGE.buckets + 1, 8, f"cut_ts - last browse ts with action {a}")
      for a in BROWSE_ACTION_AGES),
)

# Time at every step (issue 25): the last column of each view, how long before the cut the event
# happened. Filled at the cut (``AT_CUT_KINDS``), never by the per-event encoders.
STEP_AGES: tuple[FeatureSpec, ...] = tuple(
    FeatureSpec("age", g, Kind.AGE, STEP_AGE.buckets, 8, "cut_ts - ts") for g in SEQUENCE_GROUPS
)

# Every feature, group by group (the manifest's order), each view's age column after its Table 3 ones.
FEATURES: tuple[FeatureSpec, ...] = tuple(
    f for g in (S, T, B, H, P, C) for f in TABLE3 + STEP_AGES + CONTEXT_FEATURES if f.group is g
)


@dataclass(frozen=True)
class StepRule:
    """Parameters of the section 3.1 step function."""

    f_s: float
    f_b: float


@dataclass(frozen=True)
class FeatureConfig:
    """Everything the encoder needs besides vocabularies; defaults are the paper's."""

    features: tuple[FeatureSpec, ...] = FEATURES
    sequence_length: int = SEQUENCE_LENGTH
    screen_segments_x: int = 17
    screen_segments_y: int = 25
    time_gap: StepRule = StepRule(f_s=100.0, f_b=1000.0)
    duration: StepRule = StepRule(f_s=25.0, f_b=250.0)
    # Recency: 1-minute steps below 10 min, 10-minute steps below 100 min, then one bucket; the
    # paper's step function with the scale of the 1-hour label horizon.
    recency: StepRule = StepRule(f_s=60_000.0, f_b=600_000.0)
    step_age: PiecewiseRule = STEP_AGE
    action_age: PiecewiseRule = ACTION_AGE
    # Hour of day is read in this fixed offset from UTC (the logs' market: UTC+8 for Taobao).
    utc_offset_minutes: int = 0
    groups: tuple[Group, ...] = field(default=(S, T, B, H, P, C))

    def group(self, group: Group | str) -> tuple[FeatureSpec, ...]:
        group = Group(group)
        return tuple(f for f in self.features if f.group is group)

    def spec(self, group: Group | str, name: str) -> FeatureSpec:
        for f in self.group(group):
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in group {Group(group).value!r}")

    def width(self, group: Group | str) -> int:
        """Number of id columns of a group's tensor."""
        return len(self.group(group))

    def at_cut_columns(self, group: Group | str) -> tuple[int, ...]:
        """Columns of a group filled at the cut (``AT_CUT_KINDS``), not by the per-event encoders."""
        return tuple(i for i, spec in enumerate(self.group(group)) if spec.kind in AT_CUT_KINDS)


def value_to_id(values: np.ndarray) -> np.ndarray:
    """The one place where a 0-based value becomes a 1-based id, keeping 0 free for padding."""
    return np.asarray(values, dtype=np.int32) + 1


# The names every layer agrees on, declared once: samples are batched under them, models read them,
# artifacts are exported with them as their signature and the device feeds its runner by them.
VIEWS = tuple(g.value for g in SEQUENCE_GROUPS)  # ("swipe", "tap", "browse"): the behaviour sequences
STATICS = tuple(g.value for g in (*STATIC_GROUPS, *CUT_GROUPS))  # ("history", "profile", "context")
MERGED = "merged"  # early fusion: the three views merged by timestamp, columns swipe|tap|browse
TASKS = ("realtime", "longterm")  # a sample's labels, in order; the order of a model's logits
OUTPUTS = ("p_realtime", "p_longterm")  # an artifact's outputs: each task's probability
TASK_OF_OUTPUT = dict(zip(OUTPUTS, TASKS, strict=True))


# The column whose id is non-zero exactly on real (non-padded) steps of each view: the one fact every
# reader of a window (the cut, the models, the GBDT summaries, inspect) asks for padding.
MASK_FEATURE = {Group.SWIPE: "action", Group.TAP: "event", Group.BROWSE: "type"}


def mask_column(config: FeatureConfig, group: Group | str) -> int:
    """Column of a view whose id is non-zero exactly on real (non-padded) steps."""
    group = Group(group)
    return [spec.name for spec in config.group(group)].index(MASK_FEATURE[group])


def merged_layout(config: FeatureConfig) -> tuple[tuple[str, int, int], ...]:
    """Where each view's columns sit in the early-fusion input ``MERGED``: (view, start, stop) in
    ``VIEWS`` order, swipe|tap|browse, the order ``dipn.features.inputs.merge_by_time`` writes them."""
    layout, start = [], 0
    for view in VIEWS:
        layout.append((view, start, start + config.width(view)))
        start += config.width(view)
    return tuple(layout)


def input_shape(config: FeatureConfig, name: str, batch: int | str = 1) -> list[int | str]:
    """Shape of the int32 tensor of the input group ``name`` (a view, ``MERGED`` or a static group):
    what exporters declare, manifests list and ports allocate."""
    if name in STATICS:
        return [batch, config.width(name)]
    width = merged_layout(config)[-1][2] if name == MERGED else config.width(name)
    return [batch, config.sequence_length, width]


def mask_columns(config: FeatureConfig, sequence: str) -> tuple[int, ...]:
    """Columns of a sequence input (a view, or ``MERGED``: one per view) of which one is non-zero
    exactly on real steps."""
    if sequence != MERGED:
        return (mask_column(config, sequence),)
    return tuple(start + mask_column(config, view) for view, start, _ in merged_layout(config))
