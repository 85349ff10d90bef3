"""Reliability diagram and score histograms by label, as PNG files (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dipn.evaluation.metrics import calibration_table  # noqa: E402


def reliability_plot(labels: dict[str, np.ndarray], scores: dict[str, np.ndarray], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for task in labels:
        rows = calibration_table(labels[task], scores[task])
        ax.plot([r["mean_score"] for r in rows], [r["observed_rate"] for r in rows], marker="o", label=task)
    ax.set(xlabel="mean predicted probability", ylabel="observed purchase rate", xlim=(0, 1), ylim=(0, 1),
           title="Reliability")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def score_histograms(labels: dict[str, np.ndarray], scores: dict[str, np.ndarray], path: Path) -> Path:
    fig, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 4), squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, task in zip(axes[0], labels, strict=True):
        y, s = labels[task], scores[task]
        ax.hist(s[y == 0], bins=bins, alpha=0.6, density=True, label="no purchase")
        ax.hist(s[y == 1], bins=bins, alpha=0.6, density=True, label="purchase")
        ax.set(title=f"{task} scores by label", xlabel="score", ylabel="density")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
