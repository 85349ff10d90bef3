"""ONNX artifacts on onnxruntime (CPU): any batch, run in chunks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dipn.bundle.errors import RuntimeUnavailableError
from dipn.bundle.runners.versions import check_runtime_version
from dipn.features import OUTPUTS


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
        n = len(next(iter(inputs.values())))
        parts = []
        for start in range(0, n, batch_size):
            feeds = {k: np.ascontiguousarray(inputs[k][start : start + batch_size], np.int32) for k in self.input_names}
            parts.append(np.stack(self.session.run(list(OUTPUTS), feeds), axis=1))
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 2), np.float32)

    def run_one(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """One call of the runtime as it is, for timing: no conversion of inputs or outputs."""
        return self.session.run(list(OUTPUTS), dict(feeds))
