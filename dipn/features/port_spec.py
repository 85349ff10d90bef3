"""What a port of the encoder reads in the manifest beyond Table 3's sizes: for each feature the rule
that computes it, the raw columns it reads (in the rule's order) and the events it applies to;
and the rules' parameters in a form a program can read (``FeatureManifest.to_dict`` writes them).

The Python encoders (``swipe``, ``tap``, ``browse``, ``user``, ``cut``) implement these rules; the
TypeScript port (``mobile_demo/web``) implements them from the manifest alone and reproduces the
golden cases through ``dipn check-port``, which is what proves this table and the encoders agree.
A feature added to Table 3 or to the context group gets its row here (a port refuses a manifest
feature whose rule it does not know).
"""

from __future__ import annotations

from typing import Any

from dipn.features.buckets import STAY_TIME_BUCKETS, STEP_BUCKETS
from dipn.features.spec import AT_CUT_KINDS, FeatureSpec, Kind

# The rules entry of each kind (step features name theirs below).
RULE_OF_KIND = {
    Kind.SCREEN_X: "screen", Kind.SCREEN_Y: "screen", Kind.SWIPE_LENGTH_X: "swipe_length",
    Kind.SWIPE_LENGTH_Y: "swipe_length", Kind.DIRECTION: "direction", Kind.CATEGORY: "category",
    Kind.VOCABULARY: "vocabulary", Kind.STAY_TIME: "stay_time", Kind.HOUR: "hour", Kind.COUNT: "count",
    Kind.LEVEL: "level", Kind.RECENCY: "recency", Kind.AGE: "step_age", Kind.SINCE: "action_age",
}  # fmt: skip
STEP_RULE = {("swipe", "time_gap"): "time_gap", ("swipe", "swipe_duration"): "swipe_duration"}

_TAP = {"column": "type", "in": ["tap"]}
_SWIPE = {"column": "type", "in": ["swipe"]}
# (group, feature) -> (raw columns read, in the rule's order; the events it applies to, None: all).
# Differences read (end, start); screen rules read (coordinate, extent).
READS: dict[tuple[str, str], tuple[list[str], dict[str, Any] | None]] = {
    ("swipe", "tap_x"): (["x", "screen_w"], _TAP),
    ("swipe", "tap_y"): (["y", "screen_h"], _TAP),
    ("swipe", "swipe_start_x"): (["x0", "screen_w"], _SWIPE),
    ("swipe", "swipe_start_y"): (["y0", "screen_h"], _SWIPE),
    ("swipe", "swipe_end_x"): (["x1", "screen_w"], _SWIPE),
    ("swipe", "swipe_end_y"): (["y1", "screen_h"], _SWIPE),
    ("swipe", "swipe_length_x"): (["x1", "x0", "screen_w"], _SWIPE),
    ("swipe", "swipe_length_y"): (["y1", "y0", "screen_h"], _SWIPE),
    ("swipe", "swipe_right_left"): (["x1", "x0"], _SWIPE),
    ("swipe", "swipe_up_down"): (["y1", "y0"], _SWIPE),
    ("swipe", "swipe_duration"): (["duration_ms"], _SWIPE),
    ("tap", "button"): (["button"], {"column": "event", "in": ["button"]}),
    ("context", "cut_hour"): (["cut_ts"], None),
}
# Kinds whose x is the scoring time t minus an event's ts: they read (end, start) = (cut_ts, ts).
ELAPSED_KINDS = frozenset({Kind.AGE, Kind.SINCE})

# Stay time (``buckets.stay_time_bucket``): from_s <= s < below_s -> first + floor((s - from_s) / step_s).
STAY_PIECES = [
    {"from_s": 0, "below_s": 120, "step_s": 1, "first": 0},
    {"from_s": 120, "below_s": 600, "step_s": 10, "first": 120},
    {"from_s": 600, "below_s": 1200, "step_s": 60, "first": 168},
]


def feature_port_fields(spec: FeatureSpec) -> dict[str, Any]:
    """``rule``, ``reads``, ``applies_when`` and the fields of a rule of the cut: ``at_cut`` (left 0
    by the per-event encoder, filled at the scoring time), ``view`` (the window a recency or an
    action age reads) and ``last_event_when`` (which of its events an action age measures from)."""
    key = (spec.group.value, spec.name)
    # A feature without its row here still gets a manifest: a rule named after it, which a port
    # that does not know it refuses by name (so adding a feature never breaks writing manifests).
    rule = STEP_RULE.get(key, spec.name) if spec.kind is Kind.STEP else RULE_OF_KIND.get(spec.kind, spec.kind.value)
    reads, applies = READS.get(key, ([spec.source], None))
    if spec.kind is Kind.RECENCY:
        reads = ["ts"]
    elif spec.kind in ELAPSED_KINDS:
        reads = ["cut_ts", "ts"]
    out: dict[str, Any] = {"rule": rule, "reads": reads}
    if applies is not None:
        out["applies_when"] = applies
    if spec.kind in AT_CUT_KINDS:
        out["at_cut"] = True
    if spec.kind is Kind.RECENCY:
        out["view"] = spec.name.removeprefix("recency_")
    if spec.kind is Kind.SINCE:
        out["view"] = "browse"
        out["last_event_when"] = {"column": "action", "in": [spec.name.removeprefix("since_")]}
    return out


def port_rules() -> dict[str, Any]:
    """Machine-readable parameters added to the manifest's ``rules`` (beside their prose)."""
    return {
        # what each step rule's x is: ms since the previous event of the view, the raw value, ms since
        # the view's last event (recency)
        "step_x": {"time_gap": "gap", "swipe_duration": "value", "recency": "since_last_event"},
        "recency_none_value": STEP_BUCKETS,
        "stay_time_pieces": STAY_PIECES,
        "stay_time_last": STAY_TIME_BUCKETS - 1,
        "category": "id = 1 + index of the raw value in the feature's categories; any other or absent value "
        "is refused",
        "vocabulary": "id = 2 + index of the raw string in vocabularies[group.name]; a string not in it -> oov "
        "(1); an absent value (null or empty string) -> 0",
        "not_applicable": "a feature with applies_when is computed only on events whose column holds one of "
        "the values (it must then be present); 0 on the others",
        "screen_default": "an event without screen_w / screen_h takes the device's screen size",
        "open_page": {
            "group": "browse", "feature": "stay_time", "applies_when": {"column": "action", "in": ["browse"]},
            "rule": "at scoring time t, a row of such an event whose stay_ms is absent, or whose stay_ms "
            "(truncated to integer ms) > t - ts, has stay_time = stay bucket of max(t - ts, 0)",
        },
        "at_cut_feature": "a feature with at_cut true is 0 in the row the per-event encoder writes; at the "
        "scoring time t every real row of its view's window gets value + 1 of its rule at x = t - the row's ts "
        "(it reads (cut_ts, ts)); padding rows stay 0. Fill these before anything else of the cut (at_cut)",
        "last_event_when": "an action_age feature of the context measures x = t - ts of the last row of the "
        "window of its view (the newest in the window's order, which is arrival order, not the greatest ts) "
        "whose event had its column in the values: on a row, the view's category feature that reads that "
        "column holds the value's id; no such row -> the rule's none_value",
        "merged": "the early-fusion input (when a model reads 'merged'): the swipe, tap and browse windows "
        "(each left-padded to the sequence length, padding rows at timestamp -infinity) put side by side in "
        "columns swipe|tap|browse with zeros in the other views' columns, their rows stably sorted by timestamp "
        "(swipe rows before tap rows before browse rows at equal times), the last rows kept",
    }
