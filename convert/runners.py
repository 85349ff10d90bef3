"""One interface over every backend: ``runner.scores(inputs) -> (N, 2)`` probabilities.

``inputs`` maps the signature's input names to int32 arrays with a leading batch axis; columns of
the result are ``p_realtime``, ``p_longterm``. Each runner imports only its own runtime, when it is
built. LiteRT artifacts have batch 1 and are run sample by sample; ONNX takes any batch.

LiteRT interpreters, in order of preference: ``ai_edge_litert`` (LiteRT), ``tflite_runtime`` (what
many apps still ship; needs numpy < 2, so it is not in this project's environment, but runs where
it is installed), ``tensorflow.lite``. An interpreter older than the artifact's minimum runtime
version (manifest.json) is refused with a message that says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from convert.errors import RuntimeTooOldError, RuntimeUnavailableError

OUTPUTS = ("p_realtime", "p_longterm")  # as convert.signature (kept import-free of torch here)
LITERT_RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")


class Runner(Protocol):
    label: str

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray: ...


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in str(version).split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_runtime_version(artifact: str, runtime: str, installed: str, required: str | None) -> None:
    """Refuse a runtime older than ``required`` with a message naming both versions."""
    if required and version_tuple(installed) < version_tuple(required):
        raise RuntimeTooOldError(
            f"{artifact} needs {runtime} >= {required} (the versions of the ops it uses); "
            f"{runtime} {installed} is installed: upgrade it, or use another artifact of the bundle"
        )


def _rows(inputs: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(inputs.values())))


class OnnxRunner:
    def __init__(self, path: Path, threads: int = 1, min_version: str | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeUnavailableError("onnxruntime is not installed: pip install onnxruntime") from exc
        check_runtime_version(Path(path).name, "onnxruntime", ort.__version__, min_version)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.label = f"onnxruntime {ort.__version__}"

    def scores(self, inputs: Mapping[str, np.ndarray], batch_size: int = 64) -> np.ndarray:
        n = _rows(inputs)
        parts = []
        for start in range(0, n, batch_size):
            feeds = {k: np.ascontiguousarray(inputs[k][start : start + batch_size], np.int32) for k in self.input_names}
            parts.append(np.stack(self.session.run(list(OUTPUTS), feeds), axis=1))
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 2), np.float32)

    def run_one(self, feeds: Mapping[str, np.ndarray]) -> Any:
        return self.session.run(list(OUTPUTS), dict(feeds))


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
        return self.runner(**feeds)

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        n = _rows(inputs)
        out = np.zeros((n, 2), np.float32)
        for i in range(n):
            result = self.runner(**{k: np.ascontiguousarray(inputs[k][i : i + 1], np.int32) for k in self.input_names})
            out[i] = [float(np.ravel(result[k])[0]) for k in OUTPUTS]
        return out


class CoremlRunner:
    """Real CoreML prediction: macOS only (``RuntimeUnavailableError`` elsewhere, with the reason)."""

    def __init__(self, path: Path) -> None:
        from convert.coreml_export import coreml_available

        available, reason = coreml_available()
        if not available:
            raise RuntimeUnavailableError(reason)
        self.path = Path(path)
        self.label = "coreml"

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        from convert.coreml_export import predict_coreml

        return predict_coreml(self.path, dict(inputs))


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
