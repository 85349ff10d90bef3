"""The feature manifest: the complete, machine-readable spec of the encoding that travels with a model.

A port of the encoder to Kotlin or Swift reads this file and nothing else: bucket rules, screen
segmentation, vocabularies, padding and OOV ids, tensor names, dtypes, shapes and column order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dipn import __version__
from dipn.errors import DipnValidationError
from dipn.features.buckets import STAY_TIME_BUCKETS, STEP_BUCKETS
from dipn.features.port_spec import feature_port_fields, port_rules
from dipn.features.spec import (
    MASK_FEATURE,
    OOV_ID,
    PAD_ID,
    SEQUENCE_GROUPS,
    FeatureConfig,
    FeatureSpec,
    Group,
    Kind,
    PiecewiseRule,
    StepRule,
)
from dipn.features.vocabulary import Vocabulary

MANIFEST_FORMAT = 3  # 3: step ages and action ages (issue 25); 2: the context group (recency, cut hour) and open-page stays

def vocab_key(spec: FeatureSpec) -> str:
    return f"{spec.group.value}.{spec.name}"


@dataclass(frozen=True)
class FeatureManifest:
    """Encoder configuration plus the vocabularies built from training logs."""

    config: FeatureConfig = field(default_factory=FeatureConfig)
    vocabularies: dict[str, Vocabulary] = field(default_factory=dict)

    def vocabulary(self, spec: FeatureSpec) -> Vocabulary:
        try:
            return self.vocabularies[vocab_key(spec)]
        except KeyError:
            raise DipnValidationError(
                f"the manifest has no vocabulary for {vocab_key(spec)}; build it from training logs"
            ) from None

    def with_vocabularies(self, vocabularies: dict[str, Vocabulary]) -> FeatureManifest:
        for key, vocab in vocabularies.items():
            group, name = key.split(".", 1)
            capacity = self.config.spec(group, name).vocab_size
            if len(vocab) > capacity:
                raise DipnValidationError(
                    f"vocabulary {key} has {len(vocab)} values, Table 3 allows {capacity}"
                )
        return replace(self, vocabularies=dict(vocabularies))

    def sized_to_vocabularies(self) -> FeatureManifest:
        """Each vocabulary feature's ``vocab_size`` set to its vocabulary's length, so its
        embedding table has exactly padding + OOV + the values built (Table 3's Dictionary Dim is
        the cap the vocabulary was built under, not the table's size). Ids do not change: a
        value keeps id 2 + its index, anything else is OOV, and every model, the store's checks
        and a port read the table sizes from here (``features[].vocab_size``, ``num_embeddings``)."""
        features = tuple(
            replace(spec, vocab_size=len(self.vocabularies[vocab_key(spec)]))
            if spec.kind is Kind.VOCABULARY and vocab_key(spec) in self.vocabularies
            else spec
            for spec in self.config.features
        )
        return replace(self, config=replace(self.config, features=features))

    # ---- serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        cfg = self.config
        features = []
        for group in cfg.groups:
            for column, spec in enumerate(cfg.group(group)):
                features.append(
                    {
                        "group": spec.group.value,
                        "name": spec.name,
                        "column": column,
                        "kind": spec.kind.value,
                        "source": spec.source,
                        "vocab_size": spec.vocab_size,
                        "num_embeddings": spec.num_embeddings,
                        "embed_dim": spec.embed_dim,
                        **({"categories": list(spec.categories)} if spec.categories else {}),
                        **feature_port_fields(spec),
                    }
                )
        inputs = [
            {
                "name": g.value,
                "dtype": "int32",
                "shape": [cfg.sequence_length, cfg.width(g)] if g in SEQUENCE_GROUPS else [cfg.width(g)],
                "columns": [s.name for s in cfg.group(g)],
                **({"mask_column": MASK_FEATURE[g]} if g in SEQUENCE_GROUPS else {}),
            }
            for g in cfg.groups
        ]
        return {
            "format": MANIFEST_FORMAT,
            "dipn_version": __version__,
            "ids": {
                "padding": PAD_ID,
                "oov": OOV_ID,
                "value_to_id": "id = value + 1 for buckets and categories; "
                "vocabularies: id = 2 + index in the vocabulary list, unknown = oov",
                "vocabulary_size": "a vocabulary feature's vocab_size is the length of its vocabulary "
                "(num_embeddings = vocab_size + 2); values seen fewer than min_count times in the "
                "training logs are not in it and encode as oov",
                "not_applicable": "a field that does not apply to an event (tap position of a "
                "swipe, button of a page tap) has id 0",
            },
            "sequence": {
                "length": cfg.sequence_length,
                "padding": "left: the most recent event is the last row",
                "order": "the order events are encoded: arrival order on a device (time gaps are to the "
                "previous arrival), ascending timestamp in a log (ties keep the log's order)",
            },
            "rules": {
                "time_gap": {
                    "rule": "step",
                    "f_s": cfg.time_gap.f_s,
                    "f_b": cfg.time_gap.f_b,
                    "buckets": STEP_BUCKETS,
                    "input": "ms since the previous event of the same view and user; none -> "
                    "infinite (bucket 19); negative -> bucket 0",
                },
                "swipe_duration": {
                    "rule": "step",
                    "f_s": cfg.duration.f_s,
                    "f_b": cfg.duration.f_b,
                    "buckets": STEP_BUCKETS,
                },
                "step": "floor(x / f_s) if x < f_b; floor(x / f_b + 9) if x < 10 * f_b; else 19",
                "screen": {
                    "segments_x": cfg.screen_segments_x,
                    "segments_y": cfg.screen_segments_y,
                    "rule": "clip(floor(coord / extent * segments), 0, segments - 1)",
                },
                "swipe_length": "clip(floor(abs(end - start) / extent * segments), 0, segments - 1) + segments "
                "if end < start; else clip(floor(abs(end - start) / extent * segments), 0, segments - 1)",
                "direction": "1 if end < start; else 0",
                "stay_time": {
                    "buckets": STAY_TIME_BUCKETS,
                    "rule": "floor(s) if s < 120; 120 + floor((s - 120) / 10) if s < 600; "
                    "168 + floor((s - 600) / 60) if s < 1200; else 178",
                    "input": "s: the stay in seconds, negative read as 0",
                },
                "hour": {"rule": "hour of day of ts", "utc_offset_minutes": cfg.utc_offset_minutes},
                "recency": {
                    "rule": "step",
                    "f_s": cfg.recency.f_s,
                    "f_b": cfg.recency.f_b,
                    "input": "ms from the view's last event at or before the scoring time t (the last row of "
                    "its window) to t; no event of the view yet -> value 20",
                },
                "step_age": _piecewise(cfg.step_age, "ms from the step's event ts to the scoring time t (t - ts); "
                                       "computed at t for every real step of every view (its 'age' column, the "
                                       "last); padded steps keep id 0"),
                "action_age": {**_piecewise(cfg.action_age, "ms from the last event with action A in the browse "
                                            "window (the last sequence.length browse events at or before t) to t"),
                               "none_value": cfg.action_age.buckets,
                               "none": "the browse window holds no event with action A (or the model has no browse "
                                       "window): value none_value"},
                "at_cut": "inputs as known at the scoring time t, computed from the windows (ids, ts, and the "
                "browse stays as logged) and t alone, in this order: (1) every real step's age column: "
                "step_age of t - ts; (2) a browse page still open at t (action browse and no stay_ms, or "
                "ts + stay_ms > t) has stay t - ts; (3) the context group, column by column: recency_V from "
                "the last event of view V, cut_hour the hour of day of t (same utc offset as hour), "
                "since_A the action_age of t minus the ts of the last browse-window row (in the window's order) whose "
                "type is A (rules.last_event_when). "
                "The per-event encoding leaves the age columns at 0 until then",
                "count": "clip(count, 0, vocab_size - 1)",
                "level": "clip(level, 0, vocab_size - 1)",
                "formulas": "each formula above is 'value if condition; ...; else value', read left to right, "
                "with floor, abs and clip(x, low, high) as usual; the value before the +1 of ids.value_to_id",
                **port_rules(),
            },
            "features": features,
            "inputs": inputs,
            "vocabularies": {k: v.to_json() for k, v in sorted(self.vocabularies.items())},
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureManifest:
        """The manifest ``to_dict`` wrote; anything else (a file of another kind, a field missing or
        of the wrong type) is a ``DipnValidationError``, never a ``KeyError`` deep in the parse."""
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            older = isinstance(found, int) and 0 < found < MANIFEST_FORMAT
            why = " (written by an older dipn: no step ages; retrain, or rebuild the samples)" if older else ""
            raise DipnValidationError(f"not a feature manifest of format {MANIFEST_FORMAT} (found {found!r}){why}")
        try:
            return cls._parse(data)
        except DipnValidationError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DipnValidationError(f"not a complete feature manifest ({exc.__class__.__name__}: {exc})") from None

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> FeatureManifest:
        rules = data["rules"]
        features = tuple(
            FeatureSpec(
                name=f["name"],
                group=Group(f["group"]),
                kind=Kind(f["kind"]),
                vocab_size=f["vocab_size"],
                embed_dim=f["embed_dim"],
                source=f["source"],
                categories=tuple(f.get("categories", ())),
            )
            for f in data["features"]
        )
        groups = tuple(Group(i["name"]) for i in data["inputs"])
        config = FeatureConfig(
            features=features,
            sequence_length=data["sequence"]["length"],
            screen_segments_x=rules["screen"]["segments_x"],
            screen_segments_y=rules["screen"]["segments_y"],
            time_gap=StepRule(rules["time_gap"]["f_s"], rules["time_gap"]["f_b"]),
            duration=StepRule(rules["swipe_duration"]["f_s"], rules["swipe_duration"]["f_b"]),
            recency=StepRule(rules["recency"]["f_s"], rules["recency"]["f_b"]),
            step_age=_piecewise_rule(rules["step_age"]),
            action_age=_piecewise_rule(rules["action_age"]),
            utc_offset_minutes=rules["hour"]["utc_offset_minutes"],
            groups=groups,
        )
        vocabs = {k: Vocabulary.from_json(v) for k, v in data["vocabularies"].items()}
        return cls(config=config, vocabularies=vocabs)

    @classmethod
    def load(cls, path: str | Path) -> FeatureManifest:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, DipnValidationError) as exc:
            raise DipnValidationError(f"{path}: not a readable feature manifest ({exc})") from None


def _piecewise(rule: PiecewiseRule, input_: str) -> dict[str, Any]:
    """A piecewise rule as a port reads it: each piece's edges, step and first value."""
    pieces, lower, first = [], 0.0, 0
    for upper, step in rule.pieces:
        pieces.append({"from_ms": lower, "to_ms": upper, "step_ms": step, "first_value": first})
        first += int((upper - lower) / step)
        lower = upper
    return {
        "rule": "piecewise",
        "pieces": pieces,
        "open_value": first,
        "buckets": rule.buckets,
        "formula": "x < 0 -> 0; from_ms <= x < to_ms -> first_value + floor((x - from_ms) / step_ms); "
        "x >= the last to_ms -> open_value",
        "input": input_,
    }


def _piecewise_rule(data: dict[str, Any]) -> PiecewiseRule:
    try:
        return PiecewiseRule(tuple((float(p["to_ms"]), float(p["step_ms"])) for p in data["pieces"]))
    except ValueError as exc:
        raise DipnValidationError(f"a piecewise rule of the manifest is not valid ({exc})") from None
