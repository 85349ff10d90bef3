"""``--compile``: the model under ``torch.compile``, and a clean way back to eager when that fails.

Compilation happens at the first call (and again when shapes change, as at an epoch's short last
batch), and can fail for reasons outside the model: no C++ compiler for inductor's CPU kernels,
an unsupported platform, a torch regression. A training run should not die of it: the step that
failed is run again eagerly, one line says why, and the run goes on without compiling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


class Forward:
    """The callable a training step runs: ``module`` compiled, or ``module`` itself."""

    def __init__(self, module: nn.Module, compile: bool) -> None:
        self.eager = module
        self.call: Callable[..., Any] = torch.compile(module) if compile else module

    @property
    def compiled(self) -> bool:
        return self.call is not self.eager

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def fall_back(self, error: BaseException) -> None:
        """Run eagerly from now on, saying why in one line."""
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        log.warning("torch.compile failed (%s: %s); training without it", type(error).__name__, reason)
        self.call = self.eager
