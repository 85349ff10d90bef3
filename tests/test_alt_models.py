"""The related behaviour models as alternatives to DIPN: ATRank, RIB, HEROES (dipn.models, docs/models.md).

Each is held to DIPN's contract: ``check_model`` (test_presets.py) for shapes, padding, gradients
and round trips; here, training on the tiny dataset, the models' own pieces, and ONNX export that
runs in onnxruntime and the device wrapper like the PyTorch model.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dipn.errors import DipnValidationError
from dipn.features.spec import FeatureConfig
from dipn.models import build_model, build_model_for_data, multitask_loss
from dipn.models.event_time import exponential_slices, gap_seconds_table, stay_seconds_table
from dipn.models.heroes import EntireSpaceHeads

try:  # tests/ is not a package; pytest puts it on sys.path (or, as a package, its parent)
    from synthetic_batches import make_batch, model_inputs
except ImportError:  # pragma: no cover
    from tests.synthetic_batches import make_batch, model_inputs

ALT_MODELS = ("atrank", "rib", "heroes")
SHORT = FeatureConfig(sequence_length=32)  # the models are length-agnostic; short = fast loops


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def batch() -> dict[str, np.ndarray]:
    return make_batch(batch_size=4, seq_len=SHORT.sequence_length, seed=5)


def _build(name: str, variant: str | None = None, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, variant, SHORT).eval()


@pytest.mark.parametrize("name", ALT_MODELS)
def test_training_on_the_tiny_dataset_lowers_the_loss(name: str, tiny_samples: Path, tmp_path: Path) -> None:
    from dipn.samples.store import SampleStore
    from dipn.training.batches import to_tensors
    from dipn.training.config import TrainConfig
    from dipn.training.loop import Trainer

    store = SampleStore(tiny_samples)
    trainer = Trainer(store, TrainConfig(model=name, batch_size=16, lr=3e-3, seed=2, threads=1), tmp_path,
                      progress=False)  # fmt: skip
    fixed = to_tensors(store, trainer.train_indices[:16], trainer.input_names)

    def loss() -> float:
        with torch.no_grad():
            logits = trainer.model(**{n: fixed[n] for n in trainer.input_names})
            return float(multitask_loss(logits, fixed))

    start = loss()
    for _ in range(6):
        trainer.train_step(trainer.train_indices[:16])
    assert loss() < start


def test_absent_groups_are_dropped_as_dipn_does() -> None:
    available = ["browse", "history", "context"]
    for name in ALT_MODELS:
        model = build_model_for_data(name, None, SHORT, available)
        assert model.input_names == ("browse", "history", "context")
        groups = {n.split(".")[1] for n, _ in model.named_parameters() if n.startswith("embeddings.")}
        assert groups == {"browse", "history", "context"}
    with pytest.raises(DipnValidationError, match="view"):
        build_model_for_data("atrank", None, SHORT, ["history", "profile"])


def test_heroes_realtime_never_exceeds_longterm_on_random_inputs() -> None:
    torch.manual_seed(0)
    heads = EntireSpaceHeads(24, (16,), 0.0)
    features = torch.randn(4096, 24) * torch.logspace(-2, 3, 4096).unsqueeze(1)  # up to saturated logits
    realtime, longterm = heads(features)
    assert torch.isfinite(realtime).all()
    assert (torch.sigmoid(realtime) <= torch.sigmoid(longterm)).all()
    model = _build("heroes")
    for seed in range(3):
        random = make_batch(batch_size=8, seq_len=SHORT.sequence_length, seed=100 + seed)
        with torch.no_grad():
            realtime, longterm = model(**model_inputs(random, model.input_names))
        assert (torch.sigmoid(realtime) <= torch.sigmoid(longterm)).all()


def test_time_decoding_follows_the_encoder_buckets() -> None:
    fc = FeatureConfig()
    gaps = gap_seconds_table(fc.time_gap, fc.spec("swipe", "time_gap").num_embeddings)
    assert gaps[0] == 0 and gaps[1] == pytest.approx(0.05) and gaps[11] == pytest.approx(1.5)
    assert np.all(np.diff(gaps[1:]) > 0)
    stays = stay_seconds_table(fc.spec("browse", "stay_time").num_embeddings)
    assert stays[1] == pytest.approx(0.5) and np.all(np.diff(stays[1:]) > 0)
    seconds = torch.tensor([0.0, 0.99, 1.0, 3.9, 4.0, 1e9])
    assert exponential_slices(seconds, 18).tolist() == [0, 0, 1, 2, 3, 17]


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("name", ALT_MODELS)
def test_onnx_export_runs_in_onnxruntime_like_pytorch(name: str, batch, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from convert.onnx_export import export_onnx
    from convert.signature import torch_scores
    from dipn.bundle.runners.onnx import OnnxRunner

    model = _build(name)
    inputs = {n: batch[n].astype(np.int32) for n in model.input_names}
    export_onnx(model, tmp_path / "model.onnx")
    scores = OnnxRunner(tmp_path / "model.onnx").scores(inputs)
    np.testing.assert_allclose(scores, torch_scores(model, inputs), atol=1e-5)
    if name == "heroes":
        assert (scores[:, 0] <= scores[:, 1]).all()


@pytest.fixture(scope="module")
def alt_bundles(tiny_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each model trained briefly on the tiny dataset and converted to an fp32 ONNX bundle (HEROES
    on its 64-event window: the unrolled loop of all 256 steps takes a minute to export)."""
    from convert.bundle import ConvertOptions, build_bundle
    from dipn.samples.store import SampleStore
    from dipn.training.config import TrainConfig
    from dipn.training.loop import Trainer

    out = {}
    for name in ALT_MODELS:
        run = tmp_path_factory.mktemp(f"tiny-{name}")
        variant = "heroes_window64" if name == "heroes" else None
        config = TrainConfig(model=name, variant=variant, epochs=1, batch_size=16, max_steps=1, max_eval_samples=16, seed=1,
                             threads=1)  # fmt: skip
        Trainer(SampleStore(tiny_samples), config, run, progress=False).fit()
        build_bundle(run / "best.pt", tiny_samples, run / "bundle",
                     ConvertOptions(formats=("onnx",), quantize=None, parity_samples=16, max_auc_drop=0.5), progress=lambda _: None)  # fmt: skip
        out[name] = run
    return out


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("name", ALT_MODELS)
def test_bundle_runs_in_the_device_wrapper_like_the_checkpoint(name: str, alt_bundles: dict[str, Path]) -> None:
    from convert.reference import TorchReference
    from mobile_demo import IntentScorer, IntentScorerOptions, event_from_row

    run = alt_bundles[name]
    manifest = json.loads((run / "bundle" / "manifest.json").read_text())
    assert manifest["model"]["name"] == name and manifest["status"] == "ok"
    options = IntentScorerOptions(run / "bundle", allow_unsigned=True, format="onnx", screen=(390.0, 844.0), strict=True)
    device = IntentScorer.create_from_options(options)
    reference = IntentScorer.create_from_options(replace(options, runner=TorchReference(run / "best.pt")))
    assert device.model.self_test["cases"] >= 4
    t = 1_790_000_000_000
    events = [("swipe", {"ts": t + i, "type": "swipe", "page": "Page_Home", "x0": 10, "y0": 500, "x1": 10,
                         "y1": 100, "duration_ms": 200}) for i in range(5)]  # fmt: skip
    events += [("browse", {"ts": t + 1_000, "action": "browse", "leaf_category": "L1", "top_category": "T1",
                           "page": "Page_Detail", "stay_ms": 30_000})]  # fmt: skip
    for view, event in events:
        device.on_event(event_from_row(view, event))
        reference.on_event(event_from_row(view, event))
    got, expected = device.score(t + 2_000), reference.score(t + 2_000)
    assert got.p_realtime == pytest.approx(expected.p_realtime, abs=1e-4)
    assert got.p_longterm == pytest.approx(expected.p_longterm, abs=1e-4)
    if name == "heroes":
        assert got.p_realtime <= got.p_longterm
