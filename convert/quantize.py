"""The int8 recipe of each format, in one place, with the reason for every setting.

All three are weight quantization: weights stored in 8 bits, activations computed in float
(ONNX Runtime and TFLite quantize activations on the fly for their integer matmuls). No calibration
set is needed; the parity gate (``convert.parity``) on the eval split decides whether a recipe is
good enough for a given checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from convert.errors import ConversionError
from convert.onnx_recurrent import RECURRENT_OPS, quantize_recurrent_weights


@dataclass(frozen=True)
class OnnxInt8:
    """``onnxruntime.quantization.quantize_dynamic``.

    Embeddings (``Gather``) and every ``MatMul`` / ``Gemm`` with a constant weight are quantized;
    ``GRU`` is not (onnxruntime has no GRU quantization and leaves it fp32 silently: 56 k
    parameters, 0.22 MB of the demo DIPN's 0.77 MB int8 file), so with ``recurrent`` its ``W`` and
    ``R`` are then stored int8 per row and dequantized in front of the op
    (``convert.onnx_recurrent``). On AVX2 without VNNI the default u8s8 kernels saturate
    (max score diff 0.44 measured on random weights); ``per_channel`` with ``reduce_range`` (7-bit
    weights) does not (0.08 there, 0.004 on the trained demo model). ``reduce_range`` does not
    apply to the recurrent weights: they are dequantized to float, no integer kernel sees them.
    ``strip_value_info`` drops the exporter's intermediate shape annotations (``value_info``, 29 kB
    of the demo file): optional hints that onnxruntime infers again at load.
    """

    per_channel: bool = True
    reduce_range: bool = True
    weight_type: str = "QInt8"
    recurrent: bool = True
    strip_value_info: bool = True


@dataclass(frozen=True)
class TfliteInt8:
    """TFLite dynamic-range quantization (``Optimize.DEFAULT`` without a representative dataset).

    Per-tensor rather than per-channel: per-channel weights make ``FULLY_CONNECTED`` version 12,
    which tflite-runtime 2.14 (what many apps still ship) refuses; per-tensor is version 9 and
    loads there. Embedding tables become int8 ``GATHER`` + ``DEQUANTIZE``; the GRU's recurrent
    matmul inside the loop becomes a hybrid ``BATCH_MATMUL``.
    """

    per_channel: bool = False


@dataclass(frozen=True)
class CoremlWeights:
    """``coremltools.optimize.coreml``: ``int8`` = linear symmetric (``linear_quantize_weights``);
    ``palette6`` / ``palette4`` = k-means palettes of 64 / 16 values per tensor
    (``palettize_weights``; needs scikit-learn).

    ``weight_threshold`` (int8 only; the palettes keep coremltools' 2,048, as measured): tensors with
    fewer elements stay fp32. coremltools' default, 2,048, kept
    the GRUs' per-gate matrices (the converter splits each GRU into (32, 64) and (32, 32) gate
    matrices), the attention matrices and the small tables fp32: 0.22 MB of the demo DIPN's 0.90 MB
    int8 package. 256 quantizes every matrix and table of the model and keeps the biases (at most
    128 elements) fp32. ``granularity`` per tensor, as the TFLite recipe (which passes the gate the
    same way): per channel stores a scale and a zero point per row, 20 kB for the leaf-category
    table's rows alone, and the package then stays above 0.6 MB (docs/convert.md, "int8 size").
    """

    mode: str = "int8"
    weight_threshold: int = 256
    granularity: str = "per_tensor"

    def __post_init__(self) -> None:
        if self.mode not in ("int8", "palette6", "palette4"):
            raise ConversionError(f"CoreML weight mode must be int8, palette6 or palette4, got {self.mode!r}")


ONNX_INT8 = OnnxInt8()
TFLITE_INT8 = TfliteInt8()
COREML_INT8 = CoremlWeights()


def recipes() -> dict[str, dict[str, Any]]:
    """The recipes as recorded in a bundle's manifest."""
    return {"onnx": asdict(ONNX_INT8), "tflite": asdict(TFLITE_INT8), "coreml": asdict(COREML_INT8)}


def quantize_onnx(source: Path, target: Path, recipe: OnnxInt8 = ONNX_INT8) -> dict[str, Any]:
    """fp32 ONNX file -> int8 ONNX file; returns what was quantized and what was not."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing": shape inference adds nothing here
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            weight_type=getattr(QuantType, recipe.weight_type),
        )
    finally:
        root.setLevel(level)
    model = onnx.load(str(target))
    recurrent = quantize_recurrent_weights(model) if recipe.recurrent else {"recurrent_weights_int8": 0}
    if recipe.strip_value_info:
        del model.graph.value_info[:]
    onnx.save(model, str(target))
    ops = [n.op_type for n in model.graph.node]
    return {
        "recipe": asdict(recipe),
        "integer_matmuls": ops.count("MatMulInteger"),
        "dequantized_weights": ops.count("DequantizeLinear"),
        **recurrent,
        "kept_float": [] if recurrent["recurrent_weights_int8"] else sorted({op for op in ops if op in RECURRENT_OPS}),
    }


def tflite_converter_options(converter: Any, recipe: TfliteInt8 = TFLITE_INT8) -> None:
    """Set a ``tf.lite.TFLiteConverter`` up for the int8 recipe."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter._experimental_disable_per_channel = not recipe.per_channel


def quantize_coreml(mlmodel: Any, recipe: CoremlWeights = COREML_INT8) -> Any:
    """A converted CoreML model -> the same with compressed weights (a new MLModel)."""
    from coremltools.optimize import coreml as opt

    if recipe.mode == "int8":
        op = opt.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity=recipe.granularity,
                                         weight_threshold=recipe.weight_threshold)
        return opt.linear_quantize_weights(mlmodel, opt.OptimizationConfig(global_config=op))
    try:
        import sklearn  # noqa: F401  (palettization runs k-means)
    except ImportError as exc:
        raise ConversionError("CoreML palettization needs scikit-learn: pip install scikit-learn") from exc
    bits = {"palette6": 6, "palette4": 4}[recipe.mode]
    op = opt.OpPalettizerConfig(mode="kmeans", nbits=bits)  # coremltools' threshold: as measured
    return opt.palettize_weights(mlmodel, opt.OptimizationConfig(global_config=op))
