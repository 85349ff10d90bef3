"""Converters: a small trained DIPN to ONNX, TFLite and CoreML, int8, each checked against PyTorch;
the bundle refuses corrupted files; the manifest is complete; the TF re-expression matches torch."""

from __future__ import annotations

import argparse
import ast
import json
import platform
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")
pytest.importorskip("coremltools")

from convert import parity  # noqa: E402
from convert.bundle import ConvertOptions, build_bundle, size_parity_table  # noqa: E402
from convert.errors import ParityGateError  # noqa: E402
from convert.signature import model_inputs, torch_scores  # noqa: E402
from dipn.bundle.errors import BundleIntegrityError, RuntimeTooOldError  # noqa: E402
from dipn.bundle.manifest import load_bundle, sha256_file  # noqa: E402
from dipn.bundle.runners import runner_for  # noqa: E402
from dipn.bundle.runners.litert import TfliteRunner  # noqa: E402
from dipn.bundle.runners.onnx import OnnxRunner  # noqa: E402
from dipn.bundle.runners.versions import check_runtime_version  # noqa: E402
from dipn.bundle.selftest import self_test  # noqa: E402
from dipn.samples.store import SampleStore  # noqa: E402
from dipn.features.spec import FeatureConfig  # noqa: E402
from dipn.models import DIPN, VARIANTS  # noqa: E402
from dipn.training import checkpoint  # noqa: E402
from dipn.training.config import TrainConfig  # noqa: E402
from dipn.training.loop import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUICK = TrainConfig(epochs=1, batch_size=16, max_train_samples=96, max_eval_samples=64, seed=11, threads=1, lr=3e-3)
PARITY_SAMPLES = 48
# The tiny eval set has few positives: one swapped pair moves AUC by a few thousandths, so the
# end-to-end gate here is loose; the gate itself is pinned by the unit tests below.
TINY_MAX_AUC_DROP = 0.05


@pytest.fixture(scope="module")
def trained(tiny_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("convert-run")
    Trainer(SampleStore(tiny_samples), QUICK, run, progress=False).fit()
    return run / "best.pt"


@pytest.fixture(scope="module")
def bundle(trained: Path, tiny_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("convert-out") / "bundle"
    options = ConvertOptions(parity_samples=PARITY_SAMPLES, max_auc_drop=TINY_MAX_AUC_DROP)
    build_bundle(trained, tiny_samples, out, options, progress=lambda _: None)
    return out


def _eval_inputs(tiny_samples: Path, model: torch.nn.Module, n: int = 24) -> dict[str, np.ndarray]:
    store = SampleStore(tiny_samples)
    return model_inputs(store, store.indices("eval")[:n], model.input_names)


# ---- the bundle -----------------------------------------------------------------------------
def test_bundle_manifest_is_complete(bundle: Path, trained: Path) -> None:
    def not_a_number(constant: str) -> None:
        pytest.fail(f"manifest.json holds {constant}, which strict JSON parsers (a port's) refuse")

    manifest = json.loads((bundle / "manifest.json").read_text(), parse_constant=not_a_number)
    assert manifest["status"] == "ok" and manifest["parity"]["passed"]
    assert manifest["model_version"].startswith("dipn-")
    ckpt = checkpoint.load(trained)
    # a metric that is not a number (an AUC over one class) is written as null
    assert manifest["model"]["checkpoint"]["metrics"] == json.loads(json.dumps(ckpt["metrics"]),
                                                                    parse_constant=lambda _: None)  # fmt: skip
    assert manifest["model"]["checkpoint"]["sha256"] == sha256_file(trained)
    assert [i["name"] for i in manifest["inputs"]] == ["swipe", "tap", "browse", "history", "profile", "context"]
    assert all(i["dtype"] == "int32" for i in manifest["inputs"])
    assert manifest["inputs"][0]["shape"] == [1, 256, 14 + 1]  # Table 3a and the step age
    assert [o["name"] for o in manifest["outputs"]] == ["p_realtime", "p_longterm"]
    kinds = {(a["format"], a["precision"]) for a in manifest["artifacts"]}
    assert kinds == {(f, p) for f in ("onnx", "tflite", "coreml") for p in ("fp32", "int8")}
    for artifact in manifest["artifacts"]:
        assert artifact["min_runtime"] and artifact["bytes"] > 0
        figures = artifact["parity"]
        assert figures["samples"] == PARITY_SAMPLES and figures["nan_scores"] == 0
        assert set(figures["auc_artifact"]) == {"realtime", "longterm"} and figures["max_abs_diff"] is not None
        listed = [f for f in manifest["files"] if f == artifact["path"] or f.startswith(artifact["path"] + "/")]
        assert listed and sum(manifest["files"][f]["bytes"] for f in listed) == artifact["bytes"]
    for relative, entry in manifest["files"].items():
        assert sha256_file(bundle / relative) == entry["sha256"]
    assert {"features.json", "golden.json"} <= set(manifest["files"])
    golden = json.loads((bundle / "golden.json").read_text())
    assert [c["name"] for c in golden["cases"]] == ["session", "long", "unknown_values", "no_events"]
    for case in golden["cases"]:
        assert set(case["scores"]) == {"pytorch"} | {a["path"] for a in manifest["artifacts"]}
    assert "model.int8.tflite" in size_parity_table(manifest)
    one_class = manifest | {"parity": manifest["parity"] | {"reference_auc": {"realtime": None, "longterm": 0.5}}}
    assert "| PyTorch (checkpoint) | torch | fp32 |  | 0 | n/a | 0.5000 |" in size_parity_table(one_class)


def test_onnx_and_tflite_artifacts_score_real_samples_like_pytorch(
    bundle: Path, trained: Path, tiny_samples: Path
) -> None:
    model, _, _ = checkpoint.load_model(trained)
    inputs = _eval_inputs(tiny_samples, model)
    reference = torch_scores(model, inputs)
    loaded = load_bundle(bundle)
    tolerance = {"fp32": 1e-4, "int8": 0.03}
    for fmt in ("onnx", "tflite"):
        for precision in ("fp32", "int8"):
            entry = loaded.artifact(fmt, precision)
            scores = runner_for(entry, bundle).scores(inputs)
            assert np.isfinite(scores).all()
            np.testing.assert_allclose(scores, reference, atol=tolerance[precision], rtol=0, err_msg=entry["path"])


def test_tflite_keeps_all_recurrences_in_one_while_loop(bundle: Path) -> None:
    manifest = load_bundle(bundle).manifest
    for precision in ("fp32", "int8"):
        entry = next(a for a in manifest["artifacts"] if a["format"] == "tflite" and a["precision"] == precision)
        assert entry["route"] == "tf-while" and entry["while_loops"] == 1
        assert entry["op_count"] < 1000  # the unrolled litert-torch route: tens of thousands
        assert entry["min_runtime"]["tflite_runtime"]  # the converter's min_runtime_version
    int8 = next(a for a in manifest["artifacts"] if a["path"] == "model.int8.tflite")
    assert "FULLY_CONNECTED v12" not in int8["op_versions"]  # per-channel FC: tflite-runtime 2.14 refuses it
    onnx = next(a for a in manifest["artifacts"] if a["path"] == "model.int8.onnx")
    assert onnx["recurrent_ops"] == {"GRU": 3} and onnx["quantization"]["integer_matmuls"] > 0
    # the GRUs' W and R too (onnxruntime's quantizer skips GRU): int8 initializers, dequantized in front
    assert onnx["quantization"]["recurrent_weights_int8"] > 0 and onnx["quantization"]["kept_float"] == []
    import onnx as onnx_lib

    graph = onnx_lib.load(str(bundle / "model.int8.onnx")).graph
    floats = {i.name: i for i in graph.initializer if i.data_type == onnx_lib.TensorProto.FLOAT}
    for node in (n for n in graph.node if n.op_type == "GRU"):
        assert node.input[1] not in floats and node.input[2] not in floats, node.input


def test_int8_artifacts_are_about_a_quarter_of_fp32(bundle: Path) -> None:
    """Every weight of every format is int8 (the GRUs included), so what is left above a quarter is
    graph and scales. On the demo DIPN (1.9 MB fp32) this is the 0.6 MB target; the tiny model here
    is smaller and its graph a larger share, hence 0.35 (the demo measured 0.31, 0.29 and 0.29)."""
    manifest = load_bundle(bundle).manifest
    size = {(a["format"], a["precision"]): a["bytes"] for a in manifest["artifacts"]}
    for fmt in ("onnx", "tflite", "coreml"):
        assert size[(fmt, "int8")] < 0.35 * size[(fmt, "fp32")], (fmt, size[(fmt, "int8")] / size[(fmt, "fp32")])


def test_coreml_package_is_saved_quantized_and_inspected(bundle: Path, trained: Path) -> None:
    from convert.coreml_export import dequantized_parameters, inspect_package

    fp32, int8 = inspect_package(bundle / "model.mlpackage"), inspect_package(bundle / "model.int8.mlpackage")
    for info in (fp32, int8):
        assert [(i["name"], i["dtype"], i["shape"]) for i in info["inputs"]][:2] == [
            ("swipe", "int32", [1, 256, 15]), ("tap", "int32", [1, 256, 4])]  # fmt: skip
        assert [o["name"] for o in info["outputs"]] == ["p_realtime", "p_longterm"]
        assert info["while_loops"] == 6  # 3 views x 2 directions
    assert fp32["compressed_weights"] == 0
    assert any(k.startswith("constexpr_affine_dequantize:int8") for k in int8["weight_elements"])
    model, _, _ = checkpoint.load_model(trained)
    weights = dequantized_parameters(bundle / "model.int8.mlpackage", model)
    state = model.state_dict()
    for name in ("embeddings.browse.tables.1.weight",  # leaf category: the largest table
                 "grus.browse.weight_hh_l0", "grus.swipe.weight_ih_l0_reverse"):  # split into gates by the converter
        original = state[name].numpy()
        assert not np.array_equal(weights[name], original), name  # quantized, and found by the check
        # per-tensor int8 rounding, no more (a GRU weight: per gate matrix, each its own tensor)
        blocks = original.reshape(-1, model.grus.browse.hidden_size, original.shape[-1]) if "grus" in name else original[None]
        scale = np.abs(blocks).max(axis=(1, 2), keepdims=True) / 127
        assert np.all(np.abs(weights[name].reshape(blocks.shape) - blocks) <= scale * 0.5 + 1e-6), name
    entry = next(a for a in json.loads((bundle / "manifest.json").read_text())["artifacts"]
                 if a["path"] == "model.int8.mlpackage")  # fmt: skip
    if platform.system() != "Darwin":
        assert entry["check"]["prediction"].startswith("skipped: CoreML prediction runs only on macOS")
        assert entry["check"]["dequantized_weights_loaded"] >= 10


@pytest.mark.skipif(platform.system() != "Darwin", reason="CoreML prediction runs only on macOS (coremltools)")
def test_coreml_prediction_matches_pytorch(bundle: Path, trained: Path, tiny_samples: Path) -> None:
    from dipn.bundle.runners.coreml import predict_coreml

    model, _, _ = checkpoint.load_model(trained)
    inputs = _eval_inputs(tiny_samples, model, 8)
    reference = torch_scores(model, inputs)
    np.testing.assert_allclose(predict_coreml(bundle / "model.mlpackage", inputs), reference, atol=1e-3)
    np.testing.assert_allclose(predict_coreml(bundle / "model.int8.mlpackage", inputs), reference, atol=0.03)


def test_golden_vectors_pass_the_self_test(bundle: Path) -> None:
    loaded = load_bundle(bundle)
    for fmt in ("onnx", "tflite"):
        for precision in ("fp32", "int8"):
            entry = loaded.artifact(fmt, precision)
            report = self_test(loaded, entry, runner_for(entry, bundle))
            assert report["cases"] == 4 and report["max_abs_diff"] <= report["tolerance"]
    golden = json.loads((bundle / "golden.json").read_text())
    long = next(c for c in golden["cases"] if c["name"] == "long")
    assert len(long["ids"]["swipe"]) == 256 and len(long["raw"]["events"]["swipe"]) > 256
    empty = next(c for c in golden["cases"] if c["name"] == "no_events")
    assert empty["ids"]["swipe"] == [] and all(np.isfinite(s).all() for s in empty["scores"].values())


# ---- integrity ------------------------------------------------------------------------------
@pytest.fixture
def bundle_copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "bundle"))


def test_a_corrupted_artifact_is_refused_with_a_sha256_mismatch(bundle_copy: Path) -> None:
    path = bundle_copy / "model.int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=r"model\.int8\.onnx: sha256 mismatch: expected [0-9a-f]{64}, got"):
        load_bundle(bundle_copy)


def test_a_truncated_artifact_is_refused(bundle_copy: Path) -> None:
    path = bundle_copy / "model.int8.tflite"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(BundleIntegrityError, match=r"model\.int8\.tflite: .*truncated.*sha256 mismatch"):
        load_bundle(bundle_copy)


def test_a_modified_file_inside_the_coreml_package_is_refused(bundle_copy: Path) -> None:
    weights = next((bundle_copy / "model.int8.mlpackage").rglob("weight.bin"))
    data = bytearray(weights.read_bytes())
    data[100] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="weight.bin: sha256 mismatch"):
        load_bundle(bundle_copy)


def test_a_missing_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "golden.json").unlink()
    with pytest.raises(BundleIntegrityError, match="golden.json: missing"):
        load_bundle(bundle_copy)


def test_an_older_runtime_than_the_artifact_needs_is_refused(bundle: Path) -> None:
    with pytest.raises(RuntimeTooOldError, match=r"needs tflite_runtime >= 2\.9\.0.*2\.8\.4 is installed"):
        check_runtime_version("model.int8.tflite", "tflite_runtime", "2.8.4", "2.9.0")
    check_runtime_version("model.int8.tflite", "tflite_runtime", "2.14.0", "2.9.0")
    with pytest.raises(RuntimeTooOldError, match="onnxruntime >= 99.0"):
        OnnxRunner(bundle / "model.onnx", min_version="99.0")
    with pytest.raises(RuntimeTooOldError, match="ai_edge_litert >= 99.0"):
        TfliteRunner(bundle / "model.tflite", runtime="ai_edge_litert", min_versions={"ai_edge_litert": "99.0"})


# ---- the gate -------------------------------------------------------------------------------
def test_auc_matches_scikit_learn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.2
    scores = np.round(rng.random(300) + labels * 0.3, 1)  # many ties
    assert parity.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert np.isnan(parity.auc(np.zeros(5), np.arange(5.0)))


def test_gate_fails_on_nan_scores_and_on_an_auc_drop_above_the_threshold() -> None:
    rng = np.random.default_rng(1)
    labels = {"realtime": (rng.random(400) < 0.3).astype(float), "longterm": (rng.random(400) < 0.5).astype(float)}
    reference = np.stack([labels["realtime"] * 0.5 + rng.random(400) * 0.6, rng.random(400)], axis=1)
    same = parity.compare("a", "test", reference, reference + 1e-6, labels, ("realtime", "longterm"))
    assert parity.gate([same], 0.003) == []
    noisy = parity.compare(
        "b", "test", reference, reference + rng.normal(0, 0.2, reference.shape), labels, ("realtime",)
    )
    assert noisy.auc_drop["realtime"] > 0.003 and "realtime AUC" in parity.gate([noisy], 0.003)[0]
    broken = reference.copy()
    broken[3, 1] = np.nan
    nan = parity.compare("c", "test", reference, broken, labels, ("realtime", "longterm"))
    with pytest.raises(ParityGateError, match="c: 1 NaN score"):
        parity.enforce([same, nan], 0.003)


def test_the_gate_judges_score_differences_first_and_an_auc_drop_only_where_samples_measure_one() -> None:
    """Issue 17, item 15: an fp32 artifact 5e-7 from PyTorch was rejected on 200 near-tied samples."""
    rng = np.random.default_rng(3)
    labels = {"realtime": (rng.random(400) < 0.3).astype(float), "longterm": (rng.random(400) < 0.5).astype(float)}
    first = {t: v[:200] for t, v in labels.items()}
    near_tied = 0.4 + rng.random((200, 2)) * 1e-6
    fp32 = parity.compare("fp32", "test", near_tied, near_tied + rng.uniform(-5e-7, 5e-7, (200, 2)), first,
                          ("realtime", "longterm"))  # fmt: skip
    assert fp32.worst_auc_drop > 0.003 and fp32.max_abs_diff < 1e-6  # what the old gate rejected
    assert parity.gate([fp32], 0.003) == []

    scores = np.stack([labels["realtime"] * 0.3 + rng.random(400) * 0.6, rng.random(400)], axis=1)
    few = {t: v[:40] for t, v in labels.items()}  # 40 samples: about 12 x 28 pairs, below 30 / 0.003
    close = parity.compare("int8", "test", scores[:40], scores[:40] + 2e-3, few, ("realtime",), "int8")
    assert close.pairs["realtime"] < parity.measurable_pairs(0.003) and parity.gate([close], 0.003) == []
    apart = parity.compare("int8", "test", scores[:40], scores[:40] + rng.normal(0, 0.05, (40, 2)), few,
                           ("realtime",), "int8")  # fmt: skip
    assert "too few to measure an AUC drop" in parity.gate([apart], 0.003)[0]
    many = parity.compare("int8", "test", scores, scores + rng.normal(0, 0.3, scores.shape), labels,
                          ("realtime",), "int8")  # fmt: skip
    assert many.pairs["realtime"] >= parity.measurable_pairs(0.003) and many.auc_drop["realtime"] > 0.003
    assert "realtime AUC" in parity.gate([many], 0.003)[0]


def _convert_command(argv: list[str]) -> int:
    """``dipn convert ...`` as dipn.cli.main runs it (errors -> exit 2)."""
    from dipn.commands import convert as command
    from dipn.errors import DipnValidationError

    parser = argparse.ArgumentParser(prog="dipn")
    command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["convert", *argv])
    try:
        return args.run(args)
    except DipnValidationError:
        return 2


def test_convert_command_exits_non_zero_and_marks_the_bundle_rejected_on_nan(
    trained: Path, tiny_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real_scores = OnnxRunner.scores

    def nan_for_int8(self: OnnxRunner, inputs: dict, batch_size: int = 64) -> np.ndarray:
        scores = real_scores(self, inputs, batch_size)
        if "int8" in self.session._model_path:
            scores[0, 0] = np.nan  # a broken runtime or kernel
        return scores

    monkeypatch.setattr(OnnxRunner, "scores", nan_for_int8)
    out = tmp_path / "bundle"
    argv = [str(trained), "--samples", str(tiny_samples), "--out", str(out), "--to", "onnx", "--parity-samples", "32"]
    assert _convert_command(argv) == 2
    captured = capsys.readouterr().out
    assert "model.int8.onnx" in captured and "| artifact |" in captured
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "rejected" and "NaN" in manifest["parity"]["failures"][0]
    with pytest.raises(BundleIntegrityError, match="rejected when it was converted"):
        load_bundle(out)
    monkeypatch.setattr(OnnxRunner, "scores", real_scores)
    assert _convert_command([*argv, "--max-auc-drop", "0.5", "--quiet"]) == 0
    assert load_bundle(out).manifest["status"] == "ok"


# ---- the TF re-expression -------------------------------------------------------------------
def _random_inputs(model: DIPN, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Ids in range, each view left-padded with its own random number of real steps (some none)."""
    from dipn.models.embeddings import table_configs

    fc = model.feature_config
    out = {}
    for name in model.input_names:
        groups = ("swipe", "tap", "browse") if name == "merged" else (name,)
        parts = []
        for group in groups:
            tables = table_configs(fc, group)
            shape = (n, fc.sequence_length, len(tables)) if group in ("swipe", "tap", "browse") else (n, len(tables))
            ids = np.stack([rng.integers(1, t.num_embeddings, shape[:-1]) for t in tables], axis=-1)
            if len(shape) == 3:
                real = rng.integers(0, fc.sequence_length + 1, n)
                real[0] = 0  # an all-padding view
                ids[np.arange(fc.sequence_length)[None, :] < (fc.sequence_length - real)[:, None]] = 0
            parts.append(ids)
        out[name] = np.concatenate(parts, axis=-1).astype(np.int32)
    return out


@pytest.mark.parametrize(
    "variant", ["early_fusion", "no_attention", "no_multitask", "only_profile", "dipn_paper", "browse_history",
                "browse_history_wide"]
)  # dipn: the bundle; dipn_paper: no table for the age columns, no action ages read; _wide: the wide path
def test_tf_graph_matches_torch_on_every_kind_of_variant(variant: str) -> None:
    from convert.tf_graph import DipnTF

    torch.manual_seed(0)
    model = DIPN(VARIANTS[variant], replace(FeatureConfig(), sequence_length=12)).eval()
    inputs = _random_inputs(model, 9, np.random.default_rng(3))
    expected = torch_scores(model, inputs)
    got = DipnTF(model).jit_scores(inputs)
    np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)


def test_tf_graph_matches_torch_with_the_ordinal_wide_path() -> None:
    from convert.tf_graph import DipnTF

    torch.manual_seed(0)
    config = replace(VARIANTS["browse_history"], wide_ordinal=True)
    model = DIPN(config, replace(FeatureConfig(), sequence_length=12)).eval()
    with torch.no_grad():  # a term large enough that a missing or mis-scaled path would show
        for layer in model.ordinal.values():
            layer.weight.normal_(0.0, 2.0)
    inputs = _random_inputs(model, 9, np.random.default_rng(4))
    np.testing.assert_allclose(DipnTF(model).jit_scores(inputs), torch_scores(model, inputs), atol=2e-6, rtol=0)


def test_tf_graph_reads_action_ages_beyond_a_horizon_as_none_like_torch() -> None:
    """The horizon lives in the weights (tied rows), so the TensorFlow re-expression, which looks the
    tables up as they are, must score ids beyond it as "none", as torch does."""
    from convert.tf_graph import DipnTF

    torch.manual_seed(0)
    model = DIPN(replace(VARIANTS["browse_history"], action_age_horizon_hours=24.0),
                 replace(FeatureConfig(), sequence_length=12)).eval()  # fmt: skip
    inputs = _random_inputs(model, 9, np.random.default_rng(5))
    names = [spec.name for spec in model.feature_config.group("context")]
    since = [i for i, name in enumerate(names) if name.startswith("since_")]
    none = model.feature_config.spec("context", "since_purchase").num_embeddings - 1
    beyond, as_none = (dict(inputs, context=inputs["context"].copy()) for _ in range(2))
    beyond["context"][:, since], as_none["context"][:, since] = 30, none  # 6-7 days ago, and "none"
    tf_model = DipnTF(model)
    np.testing.assert_allclose(tf_model.jit_scores(beyond), tf_model.jit_scores(as_none), atol=1e-6, rtol=0)
    np.testing.assert_allclose(tf_model.jit_scores(beyond), torch_scores(model, beyond), atol=2e-6, rtol=0)


# The commands that drive the converter or the device side import them inside ``run`` only.
ORCHESTRATORS = {"dipn/commands/convert.py", "dipn/commands/demo.py", "dipn/commands/keygen.py"}


def test_nothing_in_dipn_imports_convert_or_mobile_demo_except_inside_orchestrating_commands() -> None:
    for path in (ROOT / "dipn").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
            if any(n.split(".")[0] in ("convert", "mobile_demo") for n in names):
                relative = path.relative_to(ROOT).as_posix()
                assert relative in ORCHESTRATORS and node.col_offset > 0, f"{relative} imports {names}"


@pytest.mark.slow
def test_litert_torch_fallback_route_converts_and_matches_torch(tmp_path: Path) -> None:
    """The unrolled fallback (litert-torch, not part of dipn[convert]) on a short sequence."""
    pytest.importorskip("litert_torch")
    from convert.tflite_export import convert_tflite

    torch.manual_seed(0)
    model = DIPN(VARIANTS["dipn"], replace(FeatureConfig(), sequence_length=8)).eval()
    inputs = _random_inputs(model, 5, np.random.default_rng(0))
    info = convert_tflite(model, tmp_path / "a.tflite", tmp_path / "b.tflite", route="litert-torch")
    assert info["fp32"]["while_loops"] == 0 and info["fp32"]["op_count"] > 1000  # unrolled
    reference = torch_scores(model, inputs)
    np.testing.assert_allclose(TfliteRunner(tmp_path / "a.tflite").scores(inputs), reference, atol=1e-5)
    np.testing.assert_allclose(TfliteRunner(tmp_path / "b.tflite").scores(inputs), reference, atol=0.03)
