"""The judge of a port of the device (TypeScript, Kotlin, Swift): its ids and scores for a bundle's
golden cases against ``golden.json``.

A port encodes each golden case's raw events with its own encoder, assembles the model inputs at
the case's ``score_ts``, runs the bundle's artifacts and writes what it got as PORT_RESULTS.json
(docs/device.md, "Porting and the port checker"):

    {"format": 1,
     "port": "free text: which port, which runtime",
     "model_version": "dipn-...",                     (optional; must be the bundle's when given)
     "cases": [{"name": "session",
                "ids": {"swipe": [[...], ...], ..., "context": [...]},
                "scores": {"model.onnx": [p_realtime, p_longterm], "model.int8.onnx": [...]}}]}

``ids`` holds every input the bundle's model reads, whole: a sequence as its T rows (left padding
included), a static group as one row; the batch axis may be kept. ``scores`` is keyed by the
artifact's path in the bundle. Ids must equal the golden ids exactly, scores lie within the
bundle's tolerance for the artifact's precision; each difference is reported by case, input, row
and field. Numpy only, like the rest of ``dipn.bundle``'s read side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dipn.bundle.golden import GOLDEN_FORMAT, input_shapes, pad_rows, read_golden
from dipn.bundle.manifest import Bundle
from dipn.errors import DipnValidationError
from dipn.features import MERGED, OUTPUTS, VIEWS

PORT_RESULTS_FORMAT = 1
PRECISIONS = ("fp32", "int8")
SHOWN_PER_INPUT = 12  # differing ids listed per case and input; the rest are counted


@dataclass
class PortReport:
    """What ``check_port`` found: one line per mismatch, and the largest score difference per artifact."""

    port: str
    model_version: str
    cases: list[str]
    inputs: list[str]
    artifacts: dict[str, float]  # checked artifact -> its tolerance
    mismatches: list[str] = field(default_factory=list)
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "port": self.port, "model_version": self.model_version, "cases": self.cases,
                "inputs": self.inputs, "tolerance": self.artifacts, "max_abs_diff": self.max_abs_diff,
                "mismatches": self.mismatches}  # fmt: skip


def read_port_results(path: str | Path) -> dict[str, Any]:
    """PORT_RESULTS.json, its layout checked; anything else is one ``DipnValidationError`` line."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DipnValidationError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DipnValidationError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PORT_RESULTS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DipnValidationError(f"{path}: not port results of format {PORT_RESULTS_FORMAT} (found {found!r}; "
                                  "see docs/device.md, Porting and the port checker, for the layout)")  # fmt: skip
    cases = data.get("cases")
    if not isinstance(cases, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in cases):
        raise DipnValidationError(f"{path}: 'cases' must be a list of objects, each with a 'name'")
    for case in cases:
        for key in ("ids", "scores"):
            if not isinstance(case.get(key, {}), dict):
                raise DipnValidationError(f"{path}: case {case['name']!r}: {key!r} must be an object")
    return data


def input_columns(features: Mapping[str, Any], input_names: list[str]) -> dict[str, list[str]]:
    """Each input's column names, from features.json (``merged``: the three views' side by side)."""
    columns = {entry["name"]: list(entry["columns"]) for entry in features.get("inputs", [])}
    if MERGED in input_names:
        columns[MERGED] = [f"{view}.{name}" for view in VIEWS for name in columns.get(view, [])]
    return columns


def check_port(bundle: Bundle, results: Mapping[str, Any], precision: str | None = None) -> PortReport:
    """Compare a port's results with the bundle's golden cases (ids exactly, scores within the
    tolerance of each artifact's precision). ``precision``: check only that precision's artifacts;
    None: every artifact the results hold scores of."""
    if precision is not None and precision not in PRECISIONS:
        raise DipnValidationError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    golden = read_golden(bundle.root, bundle.manifest)
    if golden.get("format") != GOLDEN_FORMAT:
        raise DipnValidationError(f"{bundle.root}: golden.json format {golden.get('format')!r} is not {GOLDEN_FORMAT}")
    features = json.loads((bundle.root / bundle.manifest["features"]).read_text())
    shapes = input_shapes(bundle.manifest)
    columns = input_columns(features, list(shapes))
    artifacts = _artifacts_to_check(bundle, results, precision, golden["tolerance"])
    port_cases = {c["name"]: c for c in results["cases"]}
    report = PortReport(str(results.get("port", "unnamed port")), str(bundle.manifest.get("model_version")),
                        [c["name"] for c in golden["cases"]], list(shapes), artifacts)  # fmt: skip
    given_version = results.get("model_version")
    if given_version is not None and given_version != report.model_version:
        report.mismatches.append(f"model_version: the port ran {given_version!r}, the bundle is {report.model_version!r}")
    for extra in sorted(set(port_cases) - set(report.cases)):
        report.mismatches.append(f"case {extra!r}: not a golden case of this bundle (it has {report.cases})")
    for case in golden["cases"]:
        name = case["name"]
        port = port_cases.get(name)
        if port is None:
            report.mismatches.append(f"case {name!r}: missing from the port's results")
            continue
        for input_name, shape in shapes.items():
            expected = pad_rows(case["ids"][input_name], shape)[0]
            report.mismatches += _compare_ids(name, input_name, port.get("ids", {}), expected, columns.get(input_name))
        for path, tolerance in artifacts.items():
            report.mismatches += _compare_scores(name, path, port.get("scores", {}), case["scores"][path], tolerance,
                                                 report.max_abs_diff)  # fmt: skip
    return report


def _artifacts_to_check(bundle: Bundle, results: Mapping[str, Any], precision: str | None,
                        tolerance: Mapping[str, float]) -> dict[str, float]:  # fmt: skip
    """Artifact path -> tolerance: the precision's artifacts, or every artifact the results score."""
    scored = {path for case in results["cases"] for path in case.get("scores", {})}
    have = {a["path"]: a["precision"] for a in bundle.artifacts}
    if precision is not None:
        chosen = [path for path, p in have.items() if p == precision]
        if not chosen:
            raise DipnValidationError(f"{bundle.root}: no {precision} artifact (it has {sorted(have)})")
    else:
        chosen = [path for path in have if path in scored]
        if not chosen:
            raise DipnValidationError(f"the results hold scores of none of the bundle's artifacts {sorted(have)} "
                                      f"(they score {sorted(scored) or 'nothing'})")  # fmt: skip
    return {path: float(tolerance[have[path]]) for path in chosen}


def _compare_ids(case: str, name: str, given: Mapping[str, Any], expected: np.ndarray,
                 columns: list[str] | None) -> list[str]:  # fmt: skip
    where = f"case {case!r} input {name!r}"
    if name not in given:
        return [f"{where}: missing from the port's ids"]
    try:
        port = np.asarray(given[name])
        if port.dtype.kind not in "iu":
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        return [f"{where}: not an array of integer ids"]
    if port.shape == (1, *expected.shape):
        port = port[0]  # the batch axis kept
    if port.shape != expected.shape:
        return [f"{where}: shape {list(port.shape)}, the model reads {list(expected.shape)} (write the whole input, "
                "left padding included)"]
    port2, expected2 = np.atleast_2d(port), np.atleast_2d(expected)
    rows, cols = np.nonzero(port2 != expected2)
    out = []
    for row, col in list(zip(rows.tolist(), cols.tolist(), strict=True))[:SHOWN_PER_INPUT]:
        label = columns[col] if columns and col < len(columns) else f"column {col}"
        out.append(f"{where} row {row} field {label!r} (column {col}): port {int(port2[row, col])}, "
                   f"golden {int(expected2[row, col])}")  # fmt: skip
    if len(rows) > SHOWN_PER_INPUT:
        out.append(f"{where}: {len(rows) - SHOWN_PER_INPUT} more differing ids in rows {sorted(set(rows.tolist()))[:20]}")
    return out


def _compare_scores(case: str, path: str, given: Mapping[str, Any], expected: list[float], tolerance: float,
                    worst: dict[str, float]) -> list[str]:  # fmt: skip
    where = f"case {case!r} artifact {path!r}"
    scores = given.get(path)
    if not isinstance(scores, list) or len(scores) != len(OUTPUTS) or not all(
        isinstance(s, int | float) and not isinstance(s, bool) for s in scores
    ):
        return [f"{where}: no scores [{', '.join(OUTPUTS)}] in the port's results"]
    out = []
    for output, got, want in zip(OUTPUTS, scores, expected, strict=True):
        diff = abs(float(got) - float(want)) if math.isfinite(got) else math.inf
        worst[path] = max(worst.get(path, 0.0), diff)
        if not diff <= tolerance:
            out.append(f"{where} field {output!r}: port {got}, golden {want} (|diff| {diff:.3g} > tolerance {tolerance:g})")
    return out
