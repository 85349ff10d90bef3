"""Score when training did: a real log slice replayed through the device scorer, with the bundle's
scoring policy and the idle timer driven from event time, scores at exactly the moments
``dipn build-samples`` cuts at, and its scores equal ``dipn evaluate --predictions-out`` on those
cuts within the bundle's fp32 tolerance. Real data: the Taobao tail slice in ../shared/data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("onnxruntime")

TAIL = Path(__file__).resolve().parents[2] / "shared" / "data" / "taobao-userbehavior-tail" / "UserBehavior_tail.csv.gz"
SMALL = ("999482", "999502", "999543", "999662", "999702", "999707")  # 15 to 27 events each
pytestmark = pytest.mark.skipif(not TAIL.exists(), reason=f"the real Taobao tail slice is not at {TAIL}")


def slice_of(users: tuple[str, ...] | None, out: Path) -> Path:
    """The published lines of these users (None: all), as ``dipn import`` reads them."""
    lines = gzip.decompress(TAIL.read_bytes()).decode().splitlines()
    kept = [line for line in lines if users is None or line.split(",", 1)[0] in users]
    out.write_text("\n".join(kept) + "\n")
    return out


def device_against_evaluate(tmp_path: Path, users: tuple[str, ...] | None) -> None:
    from convert.bundle import ConvertOptions, build_bundle
    from dipn.cli import main as dipn
    from dipn.samples.build import BuildConfig, build_samples
    from dipn.samples.store import SampleStore
    from dipn.evaluation.report import evaluate_checkpoint
    from dipn.features import FeatureManifest
    from dipn.training.config import TrainConfig
    from dipn.training.loop import Trainer
    from mobile_demo.replay import replay

    raw, samples, run, bundle = (tmp_path / name for name in ("raw", "samples", "run", "bundle"))
    assert dipn(["import", "taobao-userbehavior", str(slice_of(users, tmp_path / "UserBehavior.csv")),
                 "--out", str(raw)]) == 0  # fmt: skip
    build_samples(raw, samples, BuildConfig(cuts_per_day=8, seed=1), progress=False)
    config = TrainConfig(epochs=1, batch_size=16, max_steps=2, max_eval_samples=48, threads=1, seed=3)
    Trainer(SampleStore(samples), config, run, progress=False).fit()
    manifest = build_bundle(run / "last.pt", samples, bundle, ConvertOptions(
        formats=("onnx",), quantize=None, parity_samples=48, max_auc_drop=0.5), progress=lambda _: None)  # fmt: skip
    assert manifest["scoring_policy"] == {"on_event": True, "timer_ms": 60_000, "idle_limit_ms": 1_800_000}

    # Every moment build-samples may cut at (a quota no user-day reaches), all in one split.
    every = tmp_path / "every-moment"
    features = FeatureManifest.load(bundle / "features.json")
    built = build_samples(raw, every, BuildConfig(cuts_per_day=1e9, eval_days=60, val_days=0), manifest=features,
                          progress=False)  # fmt: skip
    predictions = tmp_path / "predictions.csv"
    evaluate_checkpoint(run / "last.pt", every, "eval", tmp_path / "evaluation", predictions_out=predictions)
    expected = pl.read_csv(predictions, schema_overrides={"user_id": pl.Utf8})

    scores: dict[tuple[str, int], tuple[float, float]] = {}
    summary = replay(bundle, raw, None, None, allow_unsigned=True, format="onnx", precision="fp32",
                     sink=lambda user, s: scores.__setitem__((user, s.ts), (s.p_realtime, s.p_longterm)))  # fmt: skip
    assert summary["dropped"] == {} and summary["scoring_policy"]["source"] == "bundle"
    window = built["window"]
    inside = {key: value for key, value in scores.items() if window["start_ms"] <= key[1] < window["end_ms"]}
    cuts = {(u, t): (r, lt) for u, t, r, lt in expected.iter_rows()}
    assert len(cuts) == built["splits"]["eval"]["samples"] > 0 and summary["scores_by_trigger"]["idle"] > 0
    assert set(inside) == set(cuts), (len(set(inside) - set(cuts)), len(set(cuts) - set(inside)))
    tolerance = json.loads((bundle / "golden.json").read_text())["tolerance"]["fp32"]
    diff = np.abs(np.array([inside[key] for key in cuts]) - np.array(list(cuts.values())))
    assert diff.max() <= tolerance, diff.max()


def test_the_device_scores_a_real_log_slice_at_the_cuts_and_with_the_scores_of_evaluate(tmp_path: Path) -> None:
    device_against_evaluate(tmp_path, SMALL)


@pytest.mark.slow
def test_the_device_scores_the_whole_real_tail_slice_at_the_cuts_and_with_the_scores_of_evaluate(
    tmp_path: Path,
) -> None:
    device_against_evaluate(tmp_path, None)
