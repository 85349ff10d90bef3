"""One interface over every backend: ``runner.scores(inputs) -> (N, 2)`` probabilities.

``inputs`` maps the signature's input names to int32 arrays with a leading batch axis; columns of
the result are ``OUTPUTS`` (``p_realtime``, ``p_longterm``). One module per runtime (``onnx``,
``litert``, ``coreml``); each imports its runtime only when a runner is built, so loading this
package costs numpy alone, and a runtime that is not installed (or CoreML off macOS) is refused
with ``RuntimeUnavailableError`` and its one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dipn.bundle.errors import RuntimeUnavailableError
from dipn.bundle.manifest import Bundle
from dipn.bundle.runners.coreml import CoremlRunner
from dipn.bundle.runners.litert import TfliteRunner
from dipn.bundle.runners.onnx import OnnxRunner


class Runner(Protocol):
    label: str

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray: ...


def runner_for(artifact: Mapping[str, Any], root: Path, threads: int = 1, litert_runtime: str = "auto") -> Runner:
    """A runner for one artifact entry of a bundle manifest."""
    path = Path(root) / artifact["path"]
    minimum = artifact.get("min_runtime", {})
    if artifact["format"] == "onnx":
        return OnnxRunner(path, threads, minimum.get("onnxruntime"))
    if artifact["format"] == "tflite":
        return TfliteRunner(path, threads, litert_runtime, minimum)
    if artifact["format"] == "coreml":
        return CoremlRunner(path)
    raise RuntimeUnavailableError(f"no runner for format {artifact['format']!r}")


def run_one_calls(bundle: Bundle, threads: int = 1) -> dict[str, Callable[[Mapping[str, np.ndarray]], Any]]:
    """"onnxruntime fp32", "LiteRT fp32", then int8 -> one raw batch-1 call of that artifact
    (``run_one``: no conversion of inputs or outputs), for latency tables; LiteRT is
    ``ai_edge_litert``, what phones run."""
    calls: dict[str, Callable[[Mapping[str, np.ndarray]], Any]] = {}
    for precision in ("fp32", "int8"):
        calls[f"onnxruntime {precision}"] = OnnxRunner(bundle.path(bundle.artifact("onnx", precision)), threads).run_one
        lite = TfliteRunner(bundle.path(bundle.artifact("tflite", precision)), threads, runtime="ai_edge_litert")
        calls[f"LiteRT {precision}"] = lite.run_one
    return calls
