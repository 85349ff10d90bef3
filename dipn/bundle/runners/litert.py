"""TFLite artifacts on a LiteRT interpreter: batch 1, run sample by sample.

Interpreters, in order of preference: ``ai_edge_litert`` (LiteRT), ``tflite_runtime`` (what many
apps still ship; needs numpy < 2, so it is not in this project's environment, but runs where it is
installed), ``tensorflow.lite``. An interpreter older than the artifact's minimum runtime version
(manifest.json) is refused with a message that says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dipn.bundle.errors import RuntimeUnavailableError
from dipn.bundle.runners.versions import check_runtime_version
from dipn.features import OUTPUTS

LITERT_RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")


def litert_interpreter(runtime: str = "auto") -> tuple[Any, str, str]:
    """(Interpreter class, runtime module name, its version) of the first LiteRT runtime found."""
    names = LITERT_RUNTIMES if runtime == "auto" else (runtime,)
    errors = []
    for name in names:
        try:
            if name == "tensorflow":
                tf = importlib.import_module("tensorflow")
                return tf.lite.Interpreter, name, tf.__version__
            module = importlib.import_module(f"{name}.interpreter")
            version = getattr(importlib.import_module(name), "__version__", "0")
            return module.Interpreter, name, version
        except (ImportError, AttributeError) as exc:  # tflite_runtime beside numpy 2: ImportError
            errors.append(f"{name}: {exc}")
    raise RuntimeUnavailableError("no LiteRT interpreter could be imported (" + "; ".join(errors) + ")")


class TfliteRunner:
    def __init__(self, path: Path, threads: int = 1, runtime: str = "auto",
                 min_versions: Mapping[str, str | None] | None = None) -> None:  # fmt: skip
        interpreter, name, version = litert_interpreter(runtime)
        # tensorflow.lite follows TF Lite's version numbers, as tflite_runtime does.
        required = (min_versions or {}).get("tflite_runtime" if name == "tensorflow" else name)
        check_runtime_version(Path(path).name, name, version, required)
        self.interpreter = interpreter(model_path=str(path), num_threads=threads)
        self.runner = self.interpreter.get_signature_runner()
        self.input_names = list(self.runner.get_input_details())
        self.label = f"{name} {version}"

    def run_one(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """One call of the runtime as it is, for timing: no conversion of inputs or outputs."""
        return self.runner(**feeds)

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(inputs.values())))
        out = np.zeros((n, 2), np.float32)
        for i in range(n):
            result = self.runner(**{k: np.ascontiguousarray(inputs[k][i : i + 1], np.int32) for k in self.input_names})
            out[i] = [float(np.ravel(result[k])[0]) for k in OUTPUTS]
        return out
