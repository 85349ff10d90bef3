"""Weight-only int8 for ONNX recurrent ops (``convert.onnx_recurrent``), on a real exported GRU run by
onnxruntime: the weights shrink to a quarter, each within half a row's quantization step, and the
outputs stay close to the fp32 file's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from convert.onnx_recurrent import quantize_recurrent_weights  # noqa: E402


class _BiGru(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(24, 32, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


def _export(tmp_path: Path) -> tuple[Path, np.ndarray]:
    torch.manual_seed(0)
    model = _BiGru().eval()
    x = torch.randn(3, 40, 24)
    path = tmp_path / "gru.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    return path, x.numpy()


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_gru_weights_are_stored_int8_and_the_gru_still_matches(tmp_path: Path) -> None:
    path, x = _export(tmp_path)
    proto = onnx.load(str(path))
    gru = next(n for n in proto.graph.node if n.op_type == "GRU")
    originals = {n: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer for n in gru.input[1:3] if i.name == n}
    assert len(originals) == 2  # W and R are constant initializers in the exported file

    info = quantize_recurrent_weights(proto)
    onnx.checker.check_model(proto)
    int8 = tmp_path / "gru.int8.onnx"
    onnx.save(proto, str(int8))

    assert info["recurrent_weights_int8"] == sum(w.size for w in originals.values())
    assert int8.stat().st_size < 0.4 * path.stat().st_size
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for name, weight in originals.items():
        assert name not in inits  # the fp32 copy is gone
        rows = weight.reshape(-1, weight.shape[-1])
        q, scale = inits[f"{name}_int8_quantized"], inits[f"{name}_int8_scale"]
        assert q.dtype == np.int8 and q.shape == rows.shape and scale.shape == (rows.shape[0],)
        assert np.all(np.abs(q * scale[:, None] - rows) <= scale[:, None] * 0.5 + 1e-7)  # per-row rounding only

    reference, quantized = _run(path, x), _run(int8, x)
    assert quantized.shape == reference.shape
    assert np.abs(quantized - reference).max() < 0.02


def test_a_file_without_recurrent_ops_is_left_as_it_is(tmp_path: Path) -> None:
    model = nn.Linear(8, 4).eval()
    path = tmp_path / "linear.onnx"
    torch.onnx.export(model, (torch.randn(2, 8),), str(path), opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    before = proto.SerializeToString()
    assert quantize_recurrent_weights(proto)["recurrent_weights_int8"] == 0
    assert proto.SerializeToString() == before
