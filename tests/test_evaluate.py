"""``dipn evaluate``'s numbers and its thread choice: the fast weighted metrics the bootstrap uses
equal scikit-learn's, reliability bins hold equal counts, scoring without autograd gives the
training path's scores, and the thread chooser keeps whichever thread count its batches run faster
with."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from torch import nn

from dipn.samples.store import SampleStore
from dipn.training.metrics import _Ranked, bootstrap_intervals, calibration_table, task_metrics
from dipn.training import checkpoint
from dipn.training.batches import to_tensors
from dipn.training.predict import predict
from dipn.training.runtime import ThreadChooser


def test_weighted_metrics_of_the_bootstrap_equal_scikit_learns_with_ties() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(2000) < 0.1).astype(np.float64)
    scores = np.round(rng.random(2000) * 0.3 + labels * 0.2, 2)  # rounded: many ties
    weights = rng.integers(0, 4, 2000).astype(np.float64)
    auc, ap, loss = _Ranked(labels, scores).metrics(weights)
    assert auc == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights), abs=1e-12)
    assert ap == pytest.approx(average_precision_score(labels, scores, sample_weight=weights), abs=1e-12)
    assert loss == pytest.approx(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), sample_weight=weights), abs=1e-12)


def test_intervals_of_auc_pr_auc_and_log_loss_bracket_the_point_values() -> None:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(200), 15)
    labels = (rng.random(len(users)) < 0.2).astype(np.float64)
    scores = np.clip(labels * 0.2 + rng.random(len(users)) * 0.6, 0, 1)
    point = task_metrics(labels, scores)
    intervals = bootstrap_intervals(labels, scores, users, rounds=300)
    for metric in ("auc", "pr_auc", "logloss"):
        low, high = intervals[metric]
        assert low < point[metric] < high, metric


def test_reliability_bins_hold_equal_counts_where_the_scores_are() -> None:
    """Fixed tenths put nearly every score of a rare event into the first bin; quantile bins
    spread them, with a count each, and keep tied scores together."""
    rng = np.random.default_rng(1)
    scores = rng.beta(1, 60, 5000)  # a 1 h task: almost all scores below 0.1
    labels = (rng.random(5000) < scores).astype(np.float64)
    rows = calibration_table(labels, scores)
    assert len(rows) == 10 and sum(r["count"] for r in rows) == 5000
    assert all(abs(r["count"] - 500) <= 1 for r in rows)
    assert rows[0]["score_high"] <= rows[1]["score_low"] and rows[-1]["score_high"] == scores.max()
    tied = calibration_table(np.r_[labels, [0.0] * 3000], np.r_[scores, [0.5] * 3000])
    holding = [r for r in tied if r["score_high"] == 0.5]
    assert len(holding) == 1 and holding[0]["count"] >= 3000  # one bin holds every tied score


def test_scoring_without_autograd_gives_the_training_paths_scores(tiny_checkpoint: Path, tiny_samples: Path) -> None:
    model, _, _ = checkpoint.load_model(tiny_checkpoint)
    store = SampleStore(tiny_samples)
    indices = store.indices("eval")[:48]
    scored = predict(model, store, indices, batch_size=16)
    tensors = to_tensors(store, indices, tuple(model.input_names))
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    with torch.enable_grad():  # the autograd path: _StackedGRU with its saved buffers
        logits = model(**{n: tensors[n] for n in model.input_names})
    for task, logit in zip(("realtime", "longterm"), logits, strict=True):
        np.testing.assert_allclose(scored[f"p_{task}"], torch.sigmoid(logit).detach().numpy(), atol=1e-6)


class _Slower(nn.Module):
    """A real module whose batches take longer with ``slow`` threads than with the other count."""

    def __init__(self, slow: int) -> None:
        super().__init__()
        self.slow = slow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.03 if torch.get_num_threads() == self.slow else 0.005)
        return x


@pytest.mark.parametrize(("start", "slow", "kept"), [(2, 2, 1), (1, 1, 2)])
def test_thread_chooser_keeps_the_faster_count(start: int, slow: int, kept: int) -> None:
    before = torch.get_num_threads()
    chooser = ThreadChooser(most=2, start=start)
    chooser.FIRST, chooser.SPARE = 3, 0.0  # check soon; try 2 threads whatever else runs on this machine
    module, used = _Slower(slow), []
    try:
        for _ in range(9):
            used.append(chooser.tick(False, 8))  # a batch starts: the time since the last tick was the last batch
            module(torch.zeros(8))
    finally:
        torch.set_num_threads(before)
    other = 3 - start
    assert used[:2] == [start, start]  # FIRST batches on the start count
    assert used[2:6] == [other, start, other, start]  # the check, interleaved
    assert used[6:] == [kept] * 3


def test_thread_chooser_never_tries_more_threads_without_a_spare_core() -> None:
    before = torch.get_num_threads()
    chooser = ThreadChooser(most=2, start=1)
    chooser.FIRST, chooser.SPARE = 2, float("inf")  # no machine has infinitely many idle cores
    try:
        assert {chooser.tick(False, 8) for _ in range(20)} == {1}
    finally:
        torch.set_num_threads(before)


def test_a_check_whose_first_probe_clearly_loses_ends_at_that_batch() -> None:
    """The machine got busy since the period began: one probe batch on more threads is all it costs."""
    before = torch.get_num_threads()
    chooser = ThreadChooser(most=2, start=1)
    chooser.FIRST, chooser.SPARE = 3, 0.0
    module, used = _Slower(slow=2), []
    try:
        for _ in range(9):
            used.append(chooser.tick(False, 8))
            module(torch.zeros(8))
    finally:
        torch.set_num_threads(before)
    assert used == [1, 1, 2, 1, 1, 1, 1, 1, 1]  # one probe, then a doubled period on one thread


def test_evaluate_reports_intervals_by_cut_type_with_a_progress_bar(tiny_checkpoint: Path, tiny_samples: Path,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "dipn.cli", "evaluate", str(tiny_checkpoint), str(tiny_samples),
                           "--out", str(tmp_path / "ev"), "--threads", "1", "--bootstrap-rounds", "50"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "scoring: 100%" in done.stderr  # the progress bar
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["model"] == "dipn" and report["bootstrap"]["unit"] == "user" and report["scoring"]["threads"] == 1
    eval_samples = len(SampleStore(tiny_samples).indices("eval"))
    for task, m in report["tasks"].items():
        for metric in ("auc", "pr_auc", "logloss"):
            assert metric in m and f"{metric}_low" in m and f"{metric}_high" in m, (task, metric)
        assert sum(c["samples"] for c in m["by_cut_type"].values()) == m["samples"] == eval_samples
        assert set(m["by_cut_type"]) <= {"event", "idle"}
        assert sum(r["count"] for r in report["calibration"][task]) == eval_samples
    assert "PR-AUC" in done.stdout and "log loss" in done.stdout and "event" in done.stdout
    for png in ("reliability.png", "scores.png"):
        assert (tmp_path / "ev" / png).read_bytes()[:4] == b"\x89PNG"
