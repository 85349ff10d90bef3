"""PyTorch -> TFLite, fp32 and int8, with the recurrence kept as one ``WHILE`` loop.

Routes (measured on the demo DIPN in docs/convert.md):
  ``tf-while`` (shipped)  the inference graph re-expressed in TensorFlow (``convert.tf_graph``),
      weights copied from the checkpoint, saved as a SavedModel with a ``serving_default``
      signature and converted by ``tf.lite.TFLiteConverter.from_saved_model``: all GRUs in one
      ``WHILE`` op, about 420 ops in all, a few seconds to convert. ``from_concrete_functions``
      writes no signature (``get_signature_runner`` then fails), hence the SavedModel.
  ``litert-torch`` (fallback)  ``litert_torch.convert`` of the PyTorch module itself: works for
      any torch model (the RNN+DNN baseline too) but unrolls every GRU over all steps (tens of
      thousands of ops, minutes to convert, several MB of graph); int8 through
      ``quant_recipes.full_dynamic_recipe()``. litert-torch is its own extra, ``dipn[tflite-fallback]``.

Inputs have batch 1 (what a device feeds; a fixed shape lets the converter fold the shape
arithmetic, about 3x faster than a dynamic batch here); parity runs sample by sample.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from convert.errors import ConversionError
from convert.quantize import TFLITE_INT8, TfliteInt8, tflite_converter_options
from convert.signature import example_inputs

ROUTES = ("tf-while", "litert-torch")
# LiteRT (ai-edge-litert) releases all postdate TF Lite 2.16, so any of them loads what the
# converter's min_runtime_version asks of TF Lite 2.x runtimes.
MIN_AI_EDGE_LITERT = "1.0.1"


def convert_tflite(
    model: nn.Module,
    fp32_path: Path | None,
    int8_path: Path | None,
    route: str = "tf-while",
    recipe: TfliteInt8 = TFLITE_INT8,
) -> dict[str, dict[str, Any]]:
    """Write the fp32 and/or int8 ``.tflite`` files; return {"fp32": info, "int8": info}."""
    if route not in ROUTES:
        raise ConversionError(f"unknown TFLite route {route!r}; choose one of {ROUTES}")
    convert = _tf_while if route == "tf-while" else _litert_torch
    return convert(model, fp32_path, int8_path, recipe)


def _tf_while(model: nn.Module, fp32_path: Path | None, int8_path: Path | None, recipe: TfliteInt8) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the converter's INFO lines, before TF loads
    import tensorflow as tf

    from convert.tf_graph import DipnTF

    out: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    graph = DipnTF(model, batch_size=1)
    with tempfile.TemporaryDirectory(prefix="dipn-savedmodel-") as tmp:
        tf.saved_model.save(graph, tmp, signatures={"serving_default": graph.serving_function()})
        prepared = time.perf_counter() - start
        for precision, path in (("fp32", fp32_path), ("int8", int8_path)):
            if path is None:
                continue
            t0 = time.perf_counter()
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if precision == "int8":
                tflite_converter_options(converter, recipe)
            Path(path).write_bytes(converter.convert())
            info = describe_tflite(path)
            info["seconds"] = round(prepared + time.perf_counter() - t0, 2)
            info["route"] = "tf-while"
            out[precision] = info
    return out


def _litert_torch(model: nn.Module, fp32_path: Path | None, int8_path: Path | None, recipe: TfliteInt8) -> dict:
    try:
        import litert_torch
        from litert_torch.generative.quantize import quant_recipes
    except ImportError as exc:
        raise ConversionError("the litert-torch route needs litert-torch: pip install 'dipn[tflite-fallback]'") from exc
    import torch

    class Keyword(nn.Module):
        """Keyword inputs named as the signature, dict outputs: the LiteRT signature's names."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self, swipe=None, tap=None, browse=None, history=None, profile=None, merged=None, context=None
        ):  # noqa: ANN001, ANN202
            realtime, longterm = self.inner(swipe=swipe, tap=tap, browse=browse, history=history,
                                            profile=profile, merged=merged, context=context)  # fmt: skip
            return {"p_realtime": torch.sigmoid(realtime), "p_longterm": torch.sigmoid(longterm)}

    sample = dict(zip(model.input_names, example_inputs(model), strict=True))
    out = {}
    for precision, path in (("fp32", fp32_path), ("int8", int8_path)):
        if path is None:
            continue
        t0 = time.perf_counter()
        quant = quant_recipes.full_dynamic_recipe() if precision == "int8" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edge = litert_torch.convert(Keyword(model).eval(), sample_kwargs=sample, quant_config=quant)
        edge.export(str(path))
        info = describe_tflite(path)
        info["seconds"] = round(time.perf_counter() - t0, 2)
        info["route"] = "litert-torch"
        out[precision] = info
    return out


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def describe_tflite(path: Path) -> dict[str, Any]:
    """Ops per subgraph, op versions, WHILE loops, the converter's min_runtime_version."""
    schema = _schema()
    buf = Path(path).read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [(names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "CUSTOM"), c.version) for c in model.operatorCodes]
    ops: collections.Counter[str] = collections.Counter()
    per_subgraph = {}
    for graph in model.subgraphs:
        graph_ops = collections.Counter(codes[op.opcodeIndex][0] for op in graph.operators or [])
        per_subgraph[(graph.name or b"").decode() or f"subgraph{len(per_subgraph)}"] = sum(graph_ops.values())
        ops.update(graph_ops)
    metadata = {}
    for entry in model.metadata or []:
        data = model.buffers[entry.buffer].data
        metadata[entry.name.decode()] = bytes(np.asarray(data, np.uint8)) if data is not None else b""
    min_version = metadata.get("min_runtime_version", b"").split(b"\0")[0].decode() or None
    return {
        "ops": dict(sorted(ops.items())),
        "op_count": sum(ops.values()),
        "ops_per_subgraph": per_subgraph,
        "op_versions": sorted({f"{name} v{version}" for name, version in codes if version > 1}),
        "while_loops": ops.get("WHILE", 0),
        "min_runtime": {"tflite_runtime": min_version, "ai_edge_litert": MIN_AI_EDGE_LITERT},
    }
