"""The golden self-test: a bundle's golden cases through this device's encoder and one artifact.

The raw event streams of every case must encode to the stored ids exactly (the encoder here is the
one the model was trained with) and the artifact must reproduce its stored scores within the
tolerance of its precision (this runtime computes what the model computed). A device runs it on
every load and update, and refuses the bundle on the first disagreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dipn.bundle.errors import BundleIntegrityError
from dipn.bundle.golden import input_shapes, pad_rows, read_golden
from dipn.bundle.manifest import Bundle
from dipn.features import STATIC_ENCODERS, VIEWS, FeatureManifest, StreamEncoder, inputs_at_cut, left_pad, static_ids
from dipn.features.cut import NO_EVENT_TS, event_stays


def encode_case(case: Mapping[str, Any], manifest: FeatureManifest, input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """One case's raw events -> model inputs (1, T, F) / (1, F) int32, as a phone would build them
    at the case's ``score_ts``: one event at a time through ``StreamEncoder``, the last T kept."""
    length = manifest.config.sequence_length
    encoder = StreamEncoder(manifest, *case["screen"])
    windows, times = {}, {}
    for view in VIEWS:
        events = case["events"][view]
        rows = np.zeros((len(events), manifest.config.width(view)), np.int32)
        for i, event in enumerate(events):
            rows[i] = encoder.encode(view, event)
        windows[view] = left_pad(rows, length)[None]
        times[view] = left_pad(np.array([event["ts"] for event in events], np.int64), length, NO_EVENT_TS)[None]
    stay = left_pad(event_stays(case["events"]["browse"]), length)[None]
    statics = {group: static_ids(group, case[group], manifest) for group in STATIC_ENCODERS}
    score_ts = np.array([case["score_ts"]], np.int64)
    inputs = inputs_at_cut(windows, times, stay, score_ts, statics, manifest, merged="merged" in input_names)
    return {name: inputs[name] for name in input_names}


def self_test(bundle: Bundle, entry: Mapping[str, Any], runner: Any) -> dict[str, Any]:
    """Golden vectors through one artifact; raises ``BundleIntegrityError`` on the first disagreement."""
    golden = read_golden(bundle.root, bundle.manifest)
    features = FeatureManifest.load(bundle.root / bundle.manifest["features"])
    shapes = input_shapes(bundle.manifest)
    tolerance = golden["tolerance"][entry["precision"]]
    worst = 0.0
    for case in golden["cases"]:
        encoded = encode_case(case["raw"], features, list(shapes))
        for name, rows in case["ids"].items():
            stored = pad_rows(rows, shapes[name])
            if not np.array_equal(encoded[name], stored):
                raise BundleIntegrityError(
                    f"golden case {case['name']!r}: the encoder's {name} ids differ from golden.json"
                )
        expected = np.asarray(case["scores"][entry["path"]], np.float64)
        got = runner.scores(encoded)[0].astype(np.float64)
        diff = float(np.abs(got - expected).max())
        worst = max(worst, diff)
        if not np.isfinite(got).all() or diff > tolerance:
            raise BundleIntegrityError(
                f"golden case {case['name']!r}: {entry['path']} scores {got.tolist()}, golden.json "
                f"{expected.tolist()} (tolerance {tolerance}): this runtime does not reproduce the model"
            )
    return {"artifact": entry["path"], "cases": len(golden["cases"]), "max_abs_diff": worst, "tolerance": tolerance}
