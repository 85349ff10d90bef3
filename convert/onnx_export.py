"""PyTorch -> ONNX with the fixed signature (see ``convert.signature``).

The legacy TorchScript exporter (``dynamo=False``) at opset 17 keeps each Bi-GRU as one native
``GRU`` op, which onnxruntime runs fast (the dynamo exporter, which needs onnxscript, was not
used). The batch axis is dynamic (``batch``), so the parity check can score many samples per
call; a device feeds batch 1.
Minimum runtime: opset 17 and IR version 8 need onnxruntime >= 1.13.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convert.signature import ScoreModule, example_inputs
from dipn.features import OUTPUTS

OPSET = 17
# IR version -> first onnxruntime release that loads it (onnxruntime's compatibility table).
MIN_ORT_FOR_IR = {7: "1.10", 8: "1.13", 9: "1.15", 10: "1.18"}
MIN_ORT_FOR_OPSET = {15: "1.10", 16: "1.11", 17: "1.13", 18: "1.14", 19: "1.15"}


def export_onnx(model: nn.Module, path: Path, example: tuple[torch.Tensor, ...] | None = None) -> dict[str, Any]:
    """Write ``path``; return opset, IR version, op counts and the minimum onnxruntime."""
    import onnx

    start = time.perf_counter()
    module = ScoreModule(model).eval()
    names = list(model.input_names)
    example = example if example is not None else example_inputs(model)
    dynamic = {n: {0: "batch"} for n in [*names, *OUTPUTS]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on GRU with batch_first, deprecations
        torch.onnx.export(module, example, str(path), input_names=names, output_names=list(OUTPUTS),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)  # fmt: skip
    seconds = time.perf_counter() - start
    info = describe_onnx(path)
    info["seconds"] = round(seconds, 2)
    return info


def describe_onnx(path: Path) -> dict[str, Any]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    ops = Counter(n.op_type for n in proto.graph.node)
    min_ort = max(MIN_ORT_FOR_IR.get(proto.ir_version, "1.18"), MIN_ORT_FOR_OPSET.get(opset, "1.15"),
                  key=lambda v: tuple(int(x) for x in v.split(".")))  # fmt: skip
    return {
        "opset": opset,
        "ir_version": proto.ir_version,
        "ops": dict(sorted(ops.items())),
        "op_count": sum(ops.values()),
        "recurrent_ops": {op: ops[op] for op in ("GRU", "LSTM", "RNN", "Loop", "Scan") if ops.get(op)},
        "min_runtime": {"onnxruntime": min_ort},
    }
