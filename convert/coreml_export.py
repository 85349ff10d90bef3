"""PyTorch -> CoreML ``.mlpackage`` (ML program), fp32 and int8, and what can be checked off macOS.

Route: ``torch.jit.trace`` of the scoring module, then ``coremltools.convert(convert_to="mlprogram",
inputs=[ct.TensorType(name, shape, dtype=np.int32)], minimum_deployment_target=iOS16)``; each GRU
becomes a ``while_loop``. (coremltools warns that torch 2.13 is untested; the ``torch.export`` route
fails on ``gru``.) Compute precision is fp32: in fp16 the masked softmax's finite "minus infinity"
(-1e9) overflows to -inf, and a view that is all padding would then give NaN; fp32 also makes the
weight-level check below exact for everything but the quantized weights.

CoreML predicts only on macOS. Elsewhere ``inspect_package`` reads the saved package (inputs,
outputs, shapes, op counts, which weights are int8, size) and ``weight_parity`` loads the
package's dequantized weights back into the PyTorch model and compares scores: that covers weight
quantization, not the phone's own kernels (or fp16 on the Neural Engine, if a port enables it).
The real prediction check is ``dipn.bundle.runners.coreml.predict_coreml``; it runs on macOS and says why
it cannot elsewhere.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import io
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from convert.coreml_names import shorten_names
from convert.errors import ConversionError
from convert.quantize import COREML_INT8, CoremlWeights, quantize_coreml
from convert.signature import ScoreModule, example_inputs, input_shape
from dipn.bundle.runners.coreml import quiet_coremltools
from dipn.features import OUTPUTS

DEPLOYMENT_TARGET = "iOS16"  # also macOS 13: int32 inputs of an ML program, constexpr weights


@contextlib.contextmanager
def _progress_bars_hidden() -> Iterator[None]:
    """coremltools draws a progress bar per pass on stderr; keep it, and show it only on failure."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # untested torch version; "all-zero constant, scale 0"
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue()[-4000:])
        raise


def convert_coreml(
    model: nn.Module,
    fp32_path: Path | None,
    int8_path: Path | None,
    example: tuple[torch.Tensor, ...] | None = None,
    recipe: CoremlWeights = COREML_INT8,
) -> dict[str, dict[str, Any]]:
    """Write the fp32 and/or compressed ``.mlpackage`` directories; return {"fp32": info, "int8": info}."""
    quiet_coremltools()
    import coremltools as ct

    start = time.perf_counter()
    example = example if example is not None else example_inputs(model)
    pipeline = ct.PassPipeline.DEFAULT
    # One copy of each constant however small: the default (100 elements) kept hundreds of equal
    # shape and axis vectors, 54 kB of the demo DIPN's program file.
    pipeline.set_options("common::const_deduplication", {"const_threshold": 1})
    with _progress_bars_hidden(), torch.no_grad():
        traced = torch.jit.trace(ScoreModule(model).eval(), example)
        mlmodel = ct.convert(
            traced,
            convert_to="mlprogram",
            inputs=[ct.TensorType(name=n, shape=input_shape(model, n), dtype=np.int32) for n in model.input_names],
            outputs=[ct.TensorType(name=n) for n in OUTPUTS],
            minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
            compute_precision=ct.precision.FLOAT32,
            pass_pipeline=pipeline,
        )
    converted = time.perf_counter() - start
    out: dict[str, dict[str, Any]] = {}
    if fp32_path is not None:
        mlmodel.save(str(fp32_path))
        out["fp32"] = inspect_package(fp32_path) | {"seconds": round(converted, 2)}
    if int8_path is not None:
        t0 = time.perf_counter()
        with _progress_bars_hidden():  # warns of an all-zero constant: the GRU loop's output buffer
            compressed = quantize_coreml(mlmodel, recipe)
        spec = compressed.get_spec()
        renamed = shorten_names(spec)  # the fp32 package keeps the readable names, for debugging
        ct.models.MLModel(spec, weights_dir=compressed.weights_dir, skip_model_load=True).save(str(int8_path))
        out["int8"] = inspect_package(int8_path) | {"seconds": round(converted + time.perf_counter() - t0, 2),
                                                    "recipe": asdict(recipe), "names_shortened": renamed}  # fmt: skip
    return out


def _program(path: Path) -> tuple[Any, Any]:
    quiet_coremltools()
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_mil

    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    spec = mlmodel.get_spec()
    program = load_mil(spec, specification_version=spec.specificationVersion, file_weights_dir=mlmodel.weights_dir)
    return spec, program


def _operations(block: Any) -> Any:
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from _operations(inner)


def _feature(description: Any) -> dict[str, Any]:
    array = description.type.multiArrayType
    dtypes = {65568: "float32", 65552: "float16", 131104: "int32", 131080: "int8"}
    return {"name": description.name, "dtype": dtypes.get(array.dataType, str(array.dataType)),
            "shape": [int(s) for s in array.shape]}  # fmt: skip


def inspect_package(path: Path) -> dict[str, Any]:
    """What a saved package holds, read without running it: signature, ops, weight dtypes, size."""
    spec, program = _program(path)
    ops: collections.Counter[str] = collections.Counter()
    weights: collections.Counter[str] = collections.Counter()
    compressed: dict[str, dict[str, Any]] = {}
    for function in program.functions.values():
        for op in _operations(function):
            ops[op.op_type] += 1
            if op.op_type.startswith("constexpr"):
                stored = next(
                    (getattr(op, a).val for a in ("quantized_data", "indices", "data") if hasattr(op, a)), None
                )
                kind = np.asarray(stored).dtype if stored is not None else "?"
                weights[f"{op.op_type}:{kind}"] += int(np.prod(op.outputs[0].shape))
                compressed[op.name] = {"op": op.op_type, "shape": list(op.outputs[0].shape)}
            elif op.op_type == "const" and op.outputs[0].val is not None and np.size(op.outputs[0].val) >= 256:
                weights[f"const:{np.asarray(op.outputs[0].val).dtype}"] += int(np.size(op.outputs[0].val))
    files = sorted(p for p in Path(path).rglob("*") if p.is_file())
    return {
        "inputs": [_feature(d) for d in spec.description.input],
        "outputs": [_feature(d) for d in spec.description.output],
        "specification_version": spec.specificationVersion,
        "ops": dict(sorted((k, v) for k, v in ops.items() if k != "const")),
        "op_count": sum(v for k, v in ops.items() if k != "const"),
        "while_loops": ops.get("while_loop", 0),
        "weight_elements": dict(sorted(weights.items())),
        "compressed_weights": len(compressed),
        "bytes": sum(p.stat().st_size for p in files),
        "min_runtime": {"coreml": f"{DEPLOYMENT_TARGET} / macOS13"},
    }


def _candidates(model: nn.Module) -> dict[tuple[int, ...], list[tuple[str, slice, np.ndarray]]]:
    """Every tensor a compressed CoreML weight can stand for, by shape: each parameter, its
    transpose, and each gate block of a GRU weight (the converter splits ``weight_ih`` and
    ``weight_hh`` into (r, z, n) matrices of ``hidden_size`` rows)."""
    out: dict[tuple[int, ...], list[tuple[str, slice, np.ndarray]]] = collections.defaultdict(list)
    grus = {f"{name}.{p}": module.hidden_size for name, module in model.named_modules() if isinstance(module, nn.GRU)
            for p, _ in module.named_parameters()}  # fmt: skip
    for name, parameter in model.named_parameters():
        value = parameter.detach().numpy()
        whole = slice(None)
        out[value.shape].append((name, whole, value))
        if value.ndim == 2:
            out[value.T.shape].append((name + ".T", whole, value.T))
        hidden = grus.get(name)
        if hidden and value.ndim == 2:
            for gate in range(value.shape[0] // hidden):
                rows = slice(gate * hidden, (gate + 1) * hidden)
                out[value[rows].shape].append((name, rows, value[rows]))
    return out


def dequantized_parameters(path: Path, model: nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters with every one that the package stores compressed replaced by the
    package's dequantized values, keyed by the model's parameter names.

    The package's names say nothing (the int8 package's values are renamed, ``convert.coreml_names``,
    and the converter names a GRU's gate matrices after its own ops), so each compressed tensor is
    matched by value: among the parameters, their transposes and the GRUs' gate blocks of its
    shape, the one it is nearest to, which must be within half an int8 step of the largest
    magnitude (``max |w| / 254``; a k-means palette, half the tensor's range). All-zero constants
    that match nothing (the GRU loop's output buffer) are skipped; any other is an error, so no
    compressed weight escapes the check.
    """
    _, program = _program(path)
    candidates = _candidates(model)
    params = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    replaced: set[str] = set()
    for function in program.functions.values():
        for op in _operations(function):
            if not op.op_type.startswith("constexpr"):
                continue
            value = np.asarray(op.materialized_val_inference(), dtype=np.float32)
            best, error = None, np.inf
            for name, rows, original in candidates.get(value.shape, []):
                e = float(np.abs(value - original).max())
                if e < error:
                    best, error = (name, rows, original), e
            if best is not None:  # int8: half a step; a k-means palette has no fixed step, so half the range
                original = best[2]
                bound = (float(np.abs(original).max()) / 254 * 1.001 + 1e-7 if op.op_type == "constexpr_affine_dequantize"
                         else float(original.max() - original.min()) / 2 + 1e-7)  # fmt: skip
            if best is None or error > bound:
                if not value.any():
                    continue
                raise ConversionError(f"CoreML weight {op.name} {tuple(value.shape)} matches no parameter of the model "
                                      f"(nearest differs by {error:.3g}): the weights-only check cannot cover it")
            name, rows, _ = best
            if name.endswith(".T"):
                name, value = name[:-2], value.T
            params[name][rows] = value
            replaced.add(name)
    return {n: params[n] for n in sorted(replaced)}


def weight_quantized_model(path: Path, model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` with the package's dequantized weights in place of its own."""
    weights = dequantized_parameters(path, model)
    clone = copy.deepcopy(model).eval()
    state = clone.state_dict()
    for name, value in weights.items():
        if tuple(state[name].shape) != value.shape:
            raise ConversionError(f"CoreML weight {name}: shape {value.shape}, the model's {tuple(state[name].shape)}")
        state[name] = torch.from_numpy(value)
    clone.load_state_dict(state)
    return clone, len(weights)
