"""Training: the loss falls, checkpoints load, a killed run resumes, DDP matches one process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dipn.samples.store import SampleStore
from dipn.models import multitask_loss
from dipn.training import checkpoint
from dipn.training.batches import epoch_batches, to_tensors
from dipn.training.config import TrainConfig
from dipn.training.loop import Trainer

QUICK = TrainConfig(epochs=1, batch_size=16, max_train_samples=96, max_eval_samples=64, seed=11, threads=1)


def _loss_on(model: torch.nn.Module, store: SampleStore, indices: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        t = to_tensors(store, indices, tuple(model.input_names))
        return float(multitask_loss(model(**{n: t[n] for n in model.input_names}), t))


def test_one_epoch_lowers_the_loss_and_writes_a_loadable_checkpoint(tiny_samples: Path, tmp_path: Path) -> None:
    store = SampleStore(tiny_samples)
    trainer = Trainer(store, replace(QUICK, lr=3e-3), tmp_path, progress=False)
    probe = trainer.train_indices[:64]
    before = _loss_on(trainer.model, store, probe)
    result = trainer.fit()
    after = _loss_on(trainer.model, store, probe)
    assert after < before
    model, manifest, ckpt = checkpoint.load_model(tmp_path / "best.pt")
    assert manifest == store.manifest
    steps = -(-len(trainer.train_indices) // QUICK.batch_size)
    assert ckpt["train_state"]["global_step"] == result["global_step"] == steps
    assert set(ckpt["metrics"]) >= {"realtime", "longterm"} and ckpt["git_revision"]
    assert _loss_on(model, store, probe) == pytest.approx(after, rel=1e-6)


def test_rows_beyond_an_action_age_horizon_stay_tied_to_none_through_training(tiny_samples: Path, tmp_path: Path) -> None:
    """``--action-age-horizon-hours``: every step is followed by ``tie_rows``, so best.pt (and all
    exported from it) reads the ids beyond the horizon as "none", after rows that were trained."""
    trainer = Trainer(SampleStore(tiny_samples), replace(QUICK, action_age_horizon_hours=24.0), tmp_path, progress=False)
    start = {c: trainer.model.embeddings["context"].tables[c].weight.detach().clone()
             for c, _, _ in trainer.model.embeddings["context"].ties}  # fmt: skip
    trainer.fit()
    model, _, _ = checkpoint.load_model(tmp_path / "best.pt")
    context = model.embeddings["context"]
    assert context.ties and model.config.action_age_horizon_hours == 24.0
    for column, first, none in context.ties:
        table = context.tables[column].weight
        assert not torch.equal(table[none], start[column][none])  # the none row trained ...
        assert torch.equal(table[first:none], table[none].expand(none - first, -1))  # ... and its copies follow


def test_shorter_epochs_split_each_pass_and_validate_within_it(tiny_samples: Path, tmp_path: Path) -> None:
    indices = np.arange(100, 197)
    parts = [epoch_batches(indices, 8, 5, epoch, epoch_samples=40) for epoch in range(6)]
    assert [sum(map(len, p)) for p in parts] == [40, 40, 17, 40, 40, 17]  # two passes of three epochs
    for first in (0, 3):  # each pass holds every sample once, in its own order
        seen = np.concatenate([b for p in parts[first : first + 3] for b in p])
        assert sorted(seen.tolist()) == indices.tolist()
    assert not np.array_equal(np.concatenate(parts[0]), np.concatenate(parts[3]))
    assert [len(b) for b in epoch_batches(indices, 8, 5, 0)] == [8] * 12 + [1]  # default: the whole set
    store = SampleStore(tiny_samples)
    trainer = Trainer(store, replace(QUICK, epochs=3, patience=5, epoch_samples=32, max_train_samples=64), tmp_path,
                      progress=False)  # fmt: skip
    trainer.fit()
    assert [h["step"] for h in trainer.state.history] == [2, 4, 6]  # val after every 32 samples (2 batches), into a second pass


def test_resume_after_interruption_continues_from_the_saved_step(tiny_samples: Path, tmp_path: Path) -> None:
    store = SampleStore(tiny_samples)
    cfg = replace(QUICK, epochs=2, max_train_samples=64, checkpoint_every=1)
    straight = Trainer(store, replace(cfg, max_steps=6), tmp_path / "a", progress=False)
    straight.fit()
    killed = Trainer(store, replace(cfg, max_steps=3), tmp_path / "b", progress=False)
    killed.fit()  # stops mid-epoch, as a kill after the third checkpoint would leave it
    resumed = Trainer(store, replace(cfg, max_steps=6), tmp_path / "b", progress=False)
    resumed.resume(tmp_path / "b" / "last.pt")
    assert resumed.state.global_step == 3 and resumed.state.step_in_epoch == 3
    resumed.fit()
    assert resumed.state.global_step == 6
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_weight_averaging_scores_and_saves_the_moving_average_of_the_trained_weights(tiny_samples: Path,
                                                                                    tmp_path: Path) -> None:  # fmt: skip
    store = SampleStore(tiny_samples)
    cfg = replace(QUICK, epochs=2, patience=5, max_train_samples=48, lr=3e-3)
    plain = Trainer(store, cfg, tmp_path / "plain", progress=False)
    averaged = Trainer(store, replace(cfg, ema_decay=0.6), tmp_path / "averaged", progress=False)
    expected: dict[str, torch.Tensor] = {}
    for epoch in range(2):  # the same batches: averaging does not change what trains
        for batch in epoch_batches(plain.train_indices, cfg.batch_size, cfg.seed, epoch):
            plain.train_step(batch)
            averaged.train_step(batch)
            for name, value in plain.model.named_parameters():
                value = value.detach()
                expected[name] = value.clone() if name not in expected else 0.6 * expected[name] + 0.4 * value
    for (name, a), b in zip(plain.model.state_dict().items(), averaged.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)  # the trained weights: as without
    for name, value in averaged.scored.named_parameters():
        torch.testing.assert_close(value, expected[name], msg=name)
        assert not torch.equal(value, dict(plain.model.named_parameters())[name]) or "embeddings" in name

    run = tmp_path / "run"
    trainer = Trainer(store, replace(cfg, ema_decay=0.6), run, progress=False)
    trainer.fit()
    ckpt = checkpoint.load(run / "best.pt")
    assert ckpt["averaged_steps"] == ckpt["train_state"]["global_step"] > 0
    for (name, a), b in zip(trainer.scored.state_dict().items(), ckpt["model_state"].values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)  # best.pt (the last, best epoch) holds the average
    model, _, _ = checkpoint.load_model(run / "best.pt")
    probe = trainer.eval_indices[:32]
    assert _loss_on(model, store, probe) == pytest.approx(_loss_on(trainer.scored, store, probe), rel=1e-6)
    assert _loss_on(model, store, probe) != pytest.approx(_loss_on(trainer.model, store, probe), rel=1e-6)


def test_a_run_averaging_weights_resumes_with_its_average(tiny_samples: Path, tmp_path: Path) -> None:
    store = SampleStore(tiny_samples)
    cfg = replace(QUICK, epochs=2, max_train_samples=64, checkpoint_every=1, ema_decay=0.7)
    straight = Trainer(store, replace(cfg, max_steps=6), tmp_path / "a", progress=False)
    straight.fit()
    Trainer(store, replace(cfg, max_steps=3), tmp_path / "b", progress=False).fit()
    resumed = Trainer(store, replace(cfg, max_steps=6), tmp_path / "b", progress=False)
    resumed.resume(tmp_path / "b" / "last.pt")
    resumed.fit()
    for model in ("model", "scored"):
        a, b = getattr(straight, model).state_dict(), getattr(resumed, model).state_dict()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=f"{model}: {name}")


def test_ema_decay_outside_zero_to_one_is_refused_by_name() -> None:
    from dipn.errors import DipnValidationError

    for decay in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(DipnValidationError, match="ema_decay must be in"):
            replace(QUICK, ema_decay=decay)


def test_dropout_and_weight_decay_options_reach_the_model_and_the_optimizer(tiny_samples: Path, tmp_path: Path) -> None:
    from dipn.errors import DipnValidationError

    store = SampleStore(tiny_samples)
    trainer = Trainer(store, replace(QUICK, dropout=0.25, weight_decay=1e-4), tmp_path, progress=False)
    assert trainer.model.config.dropout == 0.25 and trainer.optimizer.param_groups[0]["weight_decay"] == 1e-4
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.25 for m in trainer.model.modules())
    assert Trainer(store, QUICK, tmp_path, progress=False).model.config.dropout == 0.0  # the paper's
    with pytest.raises(DipnValidationError, match="dropout in"):
        replace(QUICK, dropout=1.0)


def test_dry_run_prints_parameters_by_component(tiny_samples: Path, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "dipn.cli", "train", str(tiny_samples), "--out", str(tmp_path),
                          "--dry-run"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "embeddings.browse" in out and "int8 estimate" in out and "grus" in out


def test_two_process_ddp_matches_one_process_on_the_same_global_batch(tiny_samples: Path, tmp_path: Path) -> None:
    args = ["train", str(tiny_samples), "--batch-size", "16", "--max-steps", "3", "--max-train-samples", "96",
            "--max-eval-samples", "32", "--seed", "5", "--threads", "1", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "dipn.cli", *args, "--out", str(tmp_path / "one")], check=True, env=env)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    subprocess.run([*torchrun, "-m", "dipn.cli", *args, "--out", str(tmp_path / "two")], check=True, env=env)
    one = checkpoint.load(tmp_path / "one" / "last.pt")["model_state"]
    two = checkpoint.load(tmp_path / "two" / "last.pt")["model_state"]
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_evaluate_writes_metrics_and_plots_for_a_checkpoint(tiny_samples: Path, tmp_path: Path) -> None:
    import json

    store = SampleStore(tiny_samples)
    Trainer(store, replace(QUICK, max_steps=2), tmp_path, progress=False).fit()
    out = subprocess.run([sys.executable, "-m", "dipn.cli", "evaluate", str(tmp_path / "best.pt"), str(tiny_samples),
                          "--out", str(tmp_path / "ev"), "--predictions-out", str(tmp_path / "p.csv")],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "realtime  AUC" in out
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "user_id,ts,p_realtime,p_longterm" and len(rows) == 1 + len(store.indices("eval"))
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["tasks"]["longterm"]["samples"] == len(store.indices("eval"))
    assert sum(row["count"] for row in report["calibration"]["longterm"]) == len(store.indices("eval"))
    for png in ("reliability.png", "scores.png"):
        assert (tmp_path / "ev" / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("model", ["gbdt", "gbdt_touch"])
def test_train_fits_each_gbdt_row_on_val_and_evaluate_scores_it(tiny_samples: Path, tmp_path: Path, model: str) -> None:
    import json

    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-m", "dipn.cli", "train", str(tiny_samples), "--out", str(run), "--model",
                          model, "--threads", "1", "--quiet"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert f"model {model}: summaries of " + ("swipe, tap, browse" if model == "gbdt_touch" else "browse,") in out
    assert "val: realtime AUC" in out
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["train_samples"] == len(SampleStore(tiny_samples).indices("train"))
    ev = subprocess.run([sys.executable, "-m", "dipn.cli", "evaluate", str(run / "gbdt.json"), str(tiny_samples),
                         "--split", "val", "--out", str(tmp_path / "ev")], capture_output=True, text=True,
                        check=True).stdout  # fmt: skip
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    for task in ("realtime", "longterm"):  # the val AUC of the fit is the one evaluate measures
        for metric in ("auc", "mean_score", "logloss"):
            assert report["tasks"][task][metric] == pytest.approx(record[task][metric], abs=1e-6, nan_ok=True)
    assert "realtime  AUC" in ev
    again = subprocess.run([sys.executable, "-m", "dipn.cli", "train", str(tiny_samples), "--out", str(run), "--model",
                            model, "--quiet"], capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2 and "holds a training run" in again.stderr  # nothing lost without --overwrite


class _CreatesAFile:
    """Unpickling this calls ``open(path, "w")``: what a crafted checkpoint could do with any code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path: Path) -> None:
    import pickle

    from dipn.errors import DipnValidationError

    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted.pt"
    torch.save({"format": checkpoint.CHECKPOINT_FORMAT, "model_name": "dipn", "payload": _CreatesAFile(marker)},
               crafted)  # fmt: skip
    legacy = tmp_path / "legacy.pt"  # a plain pickle, torch's legacy format
    legacy.write_bytes(pickle.dumps({"format": checkpoint.CHECKPOINT_FORMAT, "payload": _CreatesAFile(marker)},
                                    protocol=2))
    for path in (crafted, legacy):
        with pytest.raises(DipnValidationError, match="refused, not unpickled"):
            checkpoint.load(path)
    for command in (["evaluate", str(crafted), str(tmp_path)], ["convert", str(crafted), "--samples", str(tmp_path)]):
        done = subprocess.run([sys.executable, "-m", "dipn.cli", *command], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "refused, not unpickled" in done.stderr.strip().splitlines()[-1]
    assert not marker.exists()
    torch.load(crafted, weights_only=False)  # what the loader did before: the file is really dangerous
    assert marker.exists()


def test_checkpoints_hold_only_tensors_and_plain_data(tmp_path: Path) -> None:
    from dipn.errors import DipnValidationError

    with pytest.raises(DipnValidationError, match="store plain data"):
        checkpoint.save(tmp_path / "bad.pt", {"metrics": {"auc": np.float64(0.7)}, "path": tmp_path})
    assert not list(tmp_path.iterdir())
    saved = checkpoint.save(tmp_path / "good.pt", {"metrics": {"auc": 0.7}, "weights": torch.ones(2)})
    assert checkpoint.load(saved)["metrics"] == {"auc": 0.7}


@pytest.mark.parametrize("ema_decay", [None, 0.5], ids=["trained weights", "averaged weights"])
def test_a_retired_task_keeps_its_best_epochs_scores_while_the_other_branch_trains_on(
    tiny_samples: Path, tmp_path: Path, ema_decay: float | None
) -> None:
    """Issue 25, item 3: one model, each task at its best val epoch (dipn.training.task_epochs);
    with weight averaging the average is what is scored, saved and frozen."""
    from dipn.training.predict import predict

    store = SampleStore(tiny_samples)
    trainer = Trainer(store, replace(QUICK, epochs=3, patience=1, lr=3e-3, ema_decay=ema_decay), tmp_path, progress=False)
    trainer.train_epoch()
    # epoch 1: both tasks at their best (the tiny val split has no buyer: its AUCs are given here)
    trainer.checkpoint_and_earlystop({"realtime": {"auc": 0.6}, "longterm": {"auc": 0.7}})
    assert (tmp_path / "best_realtime.pt").exists() and (tmp_path / "best_longterm.pt").exists()
    trainer.train_epoch()  # epoch 2 moves the whole model; longterm does not improve: back to epoch 1
    assert not trainer.checkpoint_and_earlystop({"realtime": {"auc": 0.62}, "longterm": {"auc": 0.65}})
    assert trainer.task_epochs.retired == ["longterm"] and trainer.task_epochs.active(trainer.tasks) == ("realtime",)
    at_best = predict(trainer.scored, store, trainer.eval_indices)
    best_longterm, _, _ = checkpoint.load_model(tmp_path / "best_longterm.pt")
    assert np.array_equal(at_best["p_longterm"], predict(best_longterm, store, trainer.eval_indices)["p_longterm"])
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train_epoch()
    after = predict(trainer.scored, store, trainer.eval_indices)
    assert np.array_equal(after["p_longterm"], at_best["p_longterm"])  # bit for bit: frozen
    assert not np.array_equal(after["p_realtime"], at_best["p_realtime"])
    moved = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(n.startswith("heads.branches.realtime.") for n in moved)
    assert not trainer.checkpoint_and_earlystop({"realtime": {"auc": 0.62}, "longterm": {"auc": 0.7}})
    trainer.train_epoch()  # realtime's branch moves on, does not improve, gets its best weights back
    assert trainer.checkpoint_and_earlystop({"realtime": {"auc": 0.61}, "longterm": {"auc": 0.7}})  # all retired
    final = predict(trainer.scored, store, trainer.eval_indices)
    assert np.array_equal(final["p_realtime"], after["p_realtime"]) and np.array_equal(final["p_longterm"], at_best["p_longterm"])
    assert np.array_equal(predict(checkpoint.load_model(tmp_path / "best.pt")[0], store, trainer.eval_indices)["p_realtime"],
                          after["p_realtime"])  # best.pt: the mean val AUC chose this model


def test_task_records_retire_a_task_after_patience_and_score_it_at_its_best() -> None:
    from dipn.training.task_epochs import TaskEpochs

    tasks, records = ("realtime", "longterm"), TaskEpochs()
    assert records.record(1, {"realtime": 0.60, "longterm": 0.70}, tasks) == ["realtime", "longterm"]
    assert records.record(2, {"realtime": 0.62, "longterm": 0.65}, tasks) == ["realtime"]
    assert records.due(tasks, patience=1) == ["longterm"]
    history = [{"epoch": 1, "realtime": {"auc": 0.60}, "longterm": {"auc": 0.70}}]
    records.freeze_trunk(history, 1, tasks, at_best=["longterm"])
    assert records.trunk_epoch == 1 and records.best == {"realtime": 0.60, "longterm": 0.70}
    assert records.active(tasks) == ("realtime",)
    assert records.score({"realtime": 0.64, "longterm": 0.50}, tasks) == pytest.approx((0.64 + 0.70) / 2)
