"""``golden.json``'s layout: what a bundle stores of its golden cases, and how ids are stored.

Each case holds its raw event streams, the ids they encode to (real rows only: ``real_rows``
strips a sequence's left padding, ``pad_rows`` puts it back) and each artifact's scores. Numpy and
the standard library only, in Python 3.9 syntax: ``dipn.bundle.litert_golden`` reads it under old
runtimes (tflite-runtime needs numpy < 2) where the rest of dipn does not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

GOLDEN_FORMAT = 2  # 2: score_ts, open-page stays and the context group


def read_golden(root: Path, manifest: Dict[str, Any]) -> Dict[str, Any]:
    """The golden cases of the bundle at ``root`` whose manifest is ``manifest``."""
    return json.loads((Path(root) / manifest["golden"]).read_text())


def input_shapes(manifest: Dict[str, Any]) -> Dict[str, List[int]]:
    """Each input's shape without its batch axis, as the manifest declares it."""
    return {i["name"]: i["shape"][1:] for i in manifest["inputs"]}


def real_rows(ids: np.ndarray) -> List[List[int]]:
    """A (1, T, F) sequence without its left padding (leading all-zero rows); (1, F) as one row."""
    array = np.asarray(ids)[0]
    if array.ndim == 1:
        return [array.tolist()]
    real = np.flatnonzero(array.any(axis=1))
    return array[real[0] :].tolist() if real.size else []


def pad_rows(rows: Sequence[Sequence[int]], shape: Sequence[int]) -> np.ndarray:
    """Inverse of ``real_rows``: (1, T, F) or (1, F) int32."""
    out = np.zeros((1, *shape), np.int32)
    if len(shape) == 1:
        out[0] = rows[0]
    elif rows:
        out[0, shape[0] - len(rows) :] = np.asarray(rows, np.int32)
    return out


def stored_inputs(case: Dict[str, Any], shapes: Dict[str, List[int]]) -> Dict[str, np.ndarray]:
    """A case's stored ids as model inputs, batch 1."""
    return {name: pad_rows(case["ids"][name], shape) for name, shape in shapes.items()}
