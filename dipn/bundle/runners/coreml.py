"""CoreML ``.mlpackage`` artifacts: real prediction, on macOS only.

Elsewhere the runner refuses with the one-line reason (``RuntimeUnavailableError``) before anything
of coremltools is imported; what can be checked of a package off macOS is the converter's
business (``convert.coreml_export``).
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dipn.bundle.errors import RuntimeUnavailableError
from dipn.features import OUTPUTS

MACOS_ONLY = "CoreML prediction runs only on macOS (coremltools: 'Model prediction is only supported on macOS')"


def quiet_coremltools() -> None:
    """Before coremltools is imported: it logs, on import, every library version it has not been
    tested with, and that prediction needs macOS."""
    logging.getLogger("coremltools").setLevel(logging.ERROR)


def coreml_available() -> tuple[bool, str]:
    """(True, "") on macOS with a loadable coremltools; else (False, the reason)."""
    if platform.system() != "Darwin":
        return False, f"{MACOS_ONLY}; this is {platform.system()}"
    try:
        import coremltools  # noqa: F401
    except ImportError:
        return False, "coremltools is not installed"
    return True, ""


def predict_coreml(path: Path, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Real CoreML prediction, sample by sample (batch 1): (N, 2) probabilities. macOS only."""
    available, reason = coreml_available()
    if not available:
        raise RuntimeUnavailableError(reason)
    quiet_coremltools()
    import coremltools as ct

    mlmodel = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
    n = len(next(iter(inputs.values())))
    out = np.zeros((n, 2), np.float32)
    for i in range(n):
        result = mlmodel.predict({k: np.asarray(v[i : i + 1], np.int32) for k, v in inputs.items()})
        out[i] = [float(np.ravel(result[k])[0]) for k in OUTPUTS]
    return out


class CoremlRunner:
    """Real CoreML prediction: macOS only (``RuntimeUnavailableError`` elsewhere, with the reason)."""

    def __init__(self, path: Path) -> None:
        available, reason = coreml_available()
        if not available:
            raise RuntimeUnavailableError(reason)
        self.path = Path(path)
        self.label = "coreml"

    def scores(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return predict_coreml(self.path, inputs)
