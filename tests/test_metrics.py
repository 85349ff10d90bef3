"""Evaluation metrics beyond scikit-learn's: the user-level bootstrap interval of the AUC."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from dipn.training.metrics import bootstrap_auc_interval


def test_bootstrap_interval_brackets_the_auc_and_narrows_with_more_users() -> None:
    rng = np.random.default_rng(0)

    def sample(users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        user = np.repeat(np.arange(users), 20)
        labels = rng.random(len(user)) < 0.3
        scores = labels * 0.3 + rng.random(len(user))
        return labels, scores, user

    small, large = sample(30), sample(600)
    lo_s, hi_s = bootstrap_auc_interval(*small, rounds=300)
    lo_l, hi_l = bootstrap_auc_interval(*large, rounds=300)
    assert lo_s < roc_auc_score(small[0], small[1]) < hi_s
    assert lo_l < roc_auc_score(large[0], large[1]) < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 2


def test_resampling_users_is_wider_than_resampling_samples_when_users_differ() -> None:
    """Samples of one user share that user's base rate: treating them as independent understates
    the spread, which is why the interval resamples users."""
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(40), 50)
    base = rng.random(40)[users]
    labels = rng.random(len(users)) < base
    scores = base + rng.normal(0, 0.3, len(users))
    by_user = bootstrap_auc_interval(labels, scores, users, rounds=300)
    by_sample = bootstrap_auc_interval(labels, scores, np.arange(len(users)), rounds=300)
    assert by_user[1] - by_user[0] > 1.5 * (by_sample[1] - by_sample[0])


def test_a_single_class_gives_no_interval() -> None:
    low, high = bootstrap_auc_interval(np.zeros(10), np.linspace(0, 1, 10), np.arange(10))
    assert low != low and high != high
