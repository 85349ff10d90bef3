"""A public log end to end: Taobao UserBehavior in its published layout -> dipn import -> samples
-> a DIPN that reads only the groups the log has -> ONNX -> the device wrapper, which encodes the
same browse events to the very tensors training saw."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dipn.errors import DipnValidationError
from dipn.features import FeatureManifest
from dipn.logs.importers import ImportConfig, import_logs
from dipn.models import VARIANTS, build_model_for_data
from dipn.samples.build import BuildConfig, build_samples
from dipn.samples.store import SampleStore
from dipn.training.config import TrainConfig
from dipn.training.loop import Trainer

CHINA_DAY0 = 1_511_539_200  # 2017-11-25 00:00 UTC+8: the first day of the published window


def write_userbehavior(path: Path, users: int = 30, seed: int = 0) -> Path:
    """UserBehavior.csv as published: no header; user, item, category, behaviour, unix seconds."""
    rng = random.Random(seed)
    lines = []
    for user in range(1, users + 1):
        for day in range(9):
            for _ in range(rng.randint(4, 12)):
                r = rng.random()
                behavior = "buy" if r < 0.06 else "cart" if r < 0.12 else "fav" if r < 0.15 else "pv"
                ts = CHINA_DAY0 + day * 86_400 + rng.randint(0, 86_399)
                lines.append(f"{user},{rng.randint(1, 200)},{rng.randint(1, 25)},{behavior},{ts}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def public_samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("taobao")
    meta = import_logs("taobao-userbehavior", [write_userbehavior(root / "UserBehavior.csv")], root / "raw",
                       ImportConfig(progress=False)).meta  # fmt: skip
    config = BuildConfig(cuts_per_day=6, seed=2, utc_offset_minutes=meta["utc_offset_minutes"])
    build_samples(root / "raw", root / "samples", config, progress=False)
    return root / "raw", root / "samples"


def test_the_samples_record_which_input_groups_the_log_holds(public_samples: tuple[Path, Path]) -> None:
    _, samples = public_samples
    store = SampleStore(samples)
    assert store.groups_present == ("browse", "history", "context")
    assert json.loads((samples / "dataset.json").read_text())["groups_present"] == ["browse", "history", "context"]


def test_default_models_keep_only_the_groups_the_data_has() -> None:
    present = ["browse", "history", "context"]
    assert VARIANTS["dipn"].restricted_to(present) == VARIANTS["browse_history"]
    assert build_model_for_data("dipn", None, None, present).input_names == ("browse", "history", "context")
    assert build_model_for_data("rnn_dnn", None, None, present).input_names == ("browse", "history", "context")
    full = build_model_for_data("dipn", None, None, ["swipe", "tap", "browse", "history", "profile", "context", "merged"])
    assert full.input_names == build_model_for_data("dipn", "dipn", None, full.input_names).input_names


@pytest.mark.parametrize(("model", "variant"), [("dipn", "only_swipe"), ("dipn", "dipn"), ("rnn_dnn", "rnn_dnn")])
def test_a_model_that_needs_an_absent_group_is_refused_by_name(model: str, variant: str | None) -> None:
    with pytest.raises(DipnValidationError, match="the samples hold no") as info:
        build_model_for_data(model, variant, None, ["browse", "history", "context"])
    assert "browse_history" in str(info.value)


def test_import_build_train_convert_and_score_on_the_device(
    public_samples: tuple[Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    from convert.bundle import ConvertOptions, build_bundle
    from mobile_demo import IntentScorer, IntentScorerOptions, Page, event_from_row

    raw, samples = public_samples
    store = SampleStore(samples)
    config = TrainConfig(epochs=1, batch_size=16, max_steps=2, max_eval_samples=48, threads=1, seed=3)
    trainer = Trainer(store, config, tmp_path / "run", progress=False)
    assert trainer.input_names == ("browse", "history", "context")
    trainer.fit()

    bundle = tmp_path / "bundle"
    # TFLite goes through our TF re-expression of DIPN, which must drop the absent views too.
    formats = ("onnx", "tflite") if importlib.util.find_spec("tensorflow") else ("onnx",)
    manifest = build_bundle(tmp_path / "run" / "last.pt", samples, bundle,
                            ConvertOptions(formats=formats, parity_samples=48, max_auc_drop=0.5),
                            progress=lambda _: None)  # fmt: skip
    assert [i["name"] for i in manifest["inputs"]] == ["browse", "history", "context"]
    assert {a["format"] for a in manifest["artifacts"]} == set(formats) and manifest["status"] == "ok"

    index = int(store.indices("eval")[0])
    batch = store.batch(np.array([index]))
    user, cut = str(store.users[batch["user_index"][0]]), int(batch["cut_ts"][0])
    browse = pl.read_parquet(raw / "browse.parquet").filter((pl.col("user_id") == user) & (pl.col("ts") <= cut))
    history = (pl.read_parquet(raw / "history.parquet")
               .filter((pl.col("user_id") == user) & (pl.col("as_of_ts") <= cut)).sort("as_of_ts"))  # fmt: skip

    # A browse-only model needs no screen size.
    runtime = IntentScorer.create_from_options(IntentScorerOptions(bundle, format="onnx", allow_unsigned=True,
                                                                   strict=True))  # fmt: skip
    runtime.set_user(history.row(len(history) - 1, named=True) if len(history) else None)
    scores = [runtime.on_event(event_from_row("browse", row)) for row in browse.iter_rows(named=True)]
    # Every event is a scoring moment.
    assert len(scores) == len(browse) and all(s is not None and 0 <= s.p_realtime <= 1 for s in scores)
    runtime.on_event(Page(ts=cut, page="home", action="leave"))
    status = runtime.status()
    assert status["inputs"] == ["browse", "history", "context"] and status["counts"]["events_unused"] == 1

    inputs = runtime.inputs(at=cut)
    assert sorted(inputs) == ["browse", "context", "history"]
    for name in inputs:
        np.testing.assert_array_equal(inputs[name][0], batch[name][0], err_msg=name)
    expected = runtime.model.runner.scores({n: batch[n].astype(np.int32) for n in inputs})[0]
    assert runtime.score(cut).p_realtime == pytest.approx(float(expected[0]), abs=1e-6)


def test_the_real_data_benchmark_prints_aucs_over_seeds_and_users(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    from benchmarks import real_data

    log = write_userbehavior(tmp_path / "UserBehavior.csv", users=24, seed=5)
    report = real_data.main(["--slice", "custom", "--format", "taobao-userbehavior", "--path", str(log), "--work",
                             str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--train-samples", "300",
                             "--eval-samples", "200", "--val-samples", "200", "--epochs", "1", "--bootstrap", "40",
                             "--threads", "1", "--seeds", "2", "--no-tune", "--only", "DIPN with time",
                             "Recency rule", "--no-render"])  # fmt: skip
    # the references always run; the recency rule is fitted to nothing: one run stands for every seed
    assert [r["label"] for r in report["rows"]] == ["GBDT", "Recency rule", "DIPN with time", "ATRank"]
    assert report["seeds"] == [0, 1]
    for row in report["rows"]:
        for task in ("realtime", "longterm"):
            m = row["metrics"][task]
            assert len(m["auc_seeds"]) == (1 if row["model"] == "recency" else 2)
            assert m["auc"] == pytest.approx(np.mean(m["auc_seeds"]))
            assert m["auc_low"] <= m["auc_high"] or m["auc"] != m["auc"]
            assert set(m["by_cut_type"]) <= {"event", "idle"} and m["by_cut_type"]
            assert {f"vs_{r}" for r in ("GBDT", "ATRank") if r != row["label"]} <= set(m)
    text = (tmp_path / "out" / "real_data-taobao-userbehavior.md").read_text()
    assert "--slice custom --format taobao-userbehavior" in text and "| DIPN with time | browse_history (min count 1" in text
    assert "Δ vs GBDT" in text and "Δ vs ATRank" in text and "By cut type" in text


def test_the_recency_rule_ranks_by_the_last_browse_and_scores_as_its_auc(public_samples: tuple[Path, Path]) -> None:
    from sklearn.metrics import roc_auc_score

    from benchmarks import real_data
    from dipn.training.metrics import task_metrics

    store = SampleStore(public_samples[1])
    indices = store.indices()
    scores = real_data.recency_scores(store, indices, ("realtime", "longterm"))
    column = [s.name for s in store.manifest.config.group("context")].index("recency_browse")
    ids = store.batch(indices)["context"][:, column]
    assert ((scores["realtime"] > 0) & (scores["realtime"] < 1)).all()  # metrics clip to (0, 1): ranks must survive
    labels = store.labels[indices, 0]
    assert task_metrics(labels, scores["realtime"])["auc"] == pytest.approx(roc_auc_score(labels, -ids))


def test_rows_of_the_real_data_benchmark_name_presets_of_the_registry() -> None:
    from benchmarks import real_data
    from dipn.presets import PRESETS

    names = {p.name for p in PRESETS}
    assert real_data.DIPN_WITH_TIME_PRESET in names
    assert [label for label, _, _ in real_data.ROWS] == ["GBDT", "Recency rule", "RNN+DNN",
                                                           "DIPN paper-literal (browse + history)", "DIPN with time",
                                                           "ATRank", "RIB"]  # fmt: skip
    for _, model, preset in real_data.ROWS:
        assert preset is None or not real_data.defined(preset) or next(p for p in PRESETS if p.name == preset).model == model


# ---- the real Taobao slice in ../shared (skipped where it is absent) ------------------------------
SHARED_TAOBAO = Path(__file__).resolve().parents[2] / "shared" / "data" / "taobao-userbehavior-tail" / "UserBehavior_tail.csv.gz"
needs_real_slice = pytest.mark.skipif(not SHARED_TAOBAO.exists(),
                                      reason=f"the real Taobao slice is absent ({SHARED_TAOBAO}): no ../shared here")  # fmt: skip


@pytest.fixture(scope="module")
def real_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("taobao-real")
    import_logs("taobao-userbehavior", [SHARED_TAOBAO], root / "raw", ImportConfig(progress=False))
    build_samples(root / "raw", root / "samples", BuildConfig(seed=3), progress=False)
    return root / "raw", root / "samples"


@needs_real_slice
def test_on_the_real_slice_no_input_of_a_cut_changes_when_the_log_ends_at_the_cut(
    real_slice: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue 16's leak, end to end on real data: the importer's stays and history snapshots and the
    builder's windows see nothing after the cut (the published file cut at t, re-imported)."""
    import gzip

    raw, samples = real_slice
    store = SampleStore(samples)
    lines = gzip.decompress(SHARED_TAOBAO.read_bytes()).decode().splitlines()
    rng = np.random.default_rng(16)
    picks = [rng.choice(store.indices(split)[store.cut_type[store.indices(split)] == kind])
             for split in ("train", "eval") for kind in (0, 1) for _ in range(3)]  # fmt: skip
    users, times = store.cuts(np.array(picks))
    for n, (u, cut) in enumerate(zip(users, times, strict=True)):
        user, cut = str(store.users[u]), int(cut)
        cuts = tmp_path / f"cut{n}.csv"
        pl.DataFrame({"user_id": [user], "ts": [cut], "split": ["eval"]}).write_csv(cuts)
        known = [line for line in lines if line.split(",")[0] == user and int(line.split(",")[4]) * 1000 <= cut]
        (tmp_path / f"known{n}.csv").write_text("\n".join(known) + "\n")
        import_logs("taobao-userbehavior", [tmp_path / f"known{n}.csv"], tmp_path / f"raw{n}", ImportConfig(progress=False))
        manifest = FeatureManifest.load(samples / "features.json")
        for name, source in (("full", raw), ("known", tmp_path / f"raw{n}")):
            build_samples(source, tmp_path / f"{name}{n}", BuildConfig(), manifest, progress=False, cuts_file=cuts)
        full, short = (SampleStore(tmp_path / f"{name}{n}").batch(np.array([0])) for name in ("full", "known"))
        for group in ("browse", "history", "context"):
            np.testing.assert_array_equal(full[group], short[group], err_msg=f"{group} at {cut} of user {user}")


@needs_real_slice
def test_the_real_data_benchmark_runs_by_default_on_the_real_slice(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    from benchmarks import real_data

    report = real_data.main(["--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--train-samples",
                             "600", "--eval-samples", "800", "--val-samples", "300", "--epochs", "1", "--bootstrap",
                             "30", "--threads", "1", "--seeds", "1", "--no-tune", "--only", "DIPN with time",
                             "--no-render"])  # fmt: skip
    assert report["args"]["path"] == [str(SHARED_TAOBAO)] and report["data"]["users"] == 114
    assert [r["label"] for r in report["rows"]] == ["GBDT", "DIPN with time", "ATRank"]
    dipn = report["rows"][1]["metrics"]
    assert {"delta", "low", "high"} <= set(dipn["realtime"]["vs_GBDT"]) and "vs_ATRank" in dipn["longterm"]
    assert set(dipn["longterm"]["by_cut_type"]) == {"event", "idle"}
    text = (tmp_path / "out" / "real_data-tail.md").read_text()
    assert text.startswith("## Real data: Taobao UserBehavior, tail slice") and "--slice tail" in text


SHARED_WINDOW = SHARED_TAOBAO.parents[1] / "taobao-userbehavior-window" / "UserBehavior_window.csv.gz"


@pytest.mark.skipif(not SHARED_WINDOW.exists(), reason=f"the real window slice is absent ({SHARED_WINDOW})")
def test_the_window_slice_builds_the_1h_task_on_seeded_user_splits_and_refuses_24h(tmp_path: Path) -> None:
    from benchmarks import real_data

    import_logs("taobao-userbehavior", [SHARED_WINDOW], tmp_path / "raw", ImportConfig(progress=False))
    refusal = real_data.refusal_of_24h(tmp_path / "raw")
    assert "events span 2.2 h, not more than the 24 h label horizon" in refusal and "\n" not in refusal
    facts = real_data.window_cuts(tmp_path / "raw", tmp_path / "cuts.csv", 2.0, seed=1)
    cuts = pl.read_csv(tmp_path / "cuts.csv", schema_overrides={"user_id": pl.Utf8})
    assert len(cuts) == facts["cuts"] and cuts["ts"].max() < facts["cuts_end_ms"]
    assert cuts.group_by("user_id").agg(pl.col("split").n_unique())["split"].max() == 1  # a user is in one split
    users = cuts.unique("user_id")
    assert 0.68 < (users["split"] == "train").mean() < 0.72 and 0.13 < (users["split"] == "eval").mean() < 0.17
    info = build_samples(tmp_path / "raw", tmp_path / "samples", BuildConfig(longterm_hours=1.0), progress=False,
                         cuts_file=tmp_path / "cuts.csv")  # fmt: skip
    assert info["splits"]["train"]["samples"] and info["splits"]["val"]["samples"] and info["splits"]["eval"]["samples"]
