"""Reliability diagrams and score histograms by label, as PNG files (matplotlib, no display).

Every plot is titled with the model, the split and the task's AUC, so a PNG passed around on its
own still says what it shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _title(model: str, split: str, task: str, auc: float) -> str:
    return f"{model}, {split} split\n{task}: AUC {auc:.4f}"


def reliability_plot(calibration: dict[str, list[dict[str, float]]], aucs: dict[str, float], model: str, split: str,
                     path: Path) -> Path:  # fmt: skip
    """One panel per task: mean score against observed purchase rate per equal-count score bin
    (``calibration_table`` rows), each point labelled with its sample count. The axes zoom to the
    scores' range: real-time scores of a rare event live far below 0.1."""
    fig, axes = plt.subplots(1, len(calibration), figsize=(5.5 * len(calibration), 5), squeeze=False)
    for ax, (task, rows) in zip(axes[0], calibration.items(), strict=True):
        x = np.array([r["mean_score"] for r in rows])
        y = np.array([r["observed_rate"] for r in rows])
        top = max(float(x.max(initial=0)), float(y.max(initial=0)), 1e-3) * 1.1
        ax.plot([0, top], [0, top], color="grey", linestyle=":", label="perfectly calibrated")
        ax.plot(x, y, marker="o", label="equal-count score bins")
        for r, xi, yi in zip(rows, x, y, strict=True):
            ax.annotate(f"{r['count']:,}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.set(xlabel="mean predicted probability", ylabel="observed purchase rate", xlim=(0, top), ylim=(0, top),
               title=_title(model, split, task, aucs[task]))  # fmt: skip
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def score_histograms(labels: dict[str, np.ndarray], scores: dict[str, np.ndarray], aucs: dict[str, float], model: str,
                     split: str, path: Path) -> Path:  # fmt: skip
    fig, axes = plt.subplots(1, len(labels), figsize=(5.5 * len(labels), 4.5), squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, task in zip(axes[0], labels, strict=True):
        y, s = labels[task], scores[task]
        ax.hist(s[y == 0], bins=bins, alpha=0.6, density=True, label=f"no purchase ({int((y == 0).sum()):,})")
        ax.hist(s[y == 1], bins=bins, alpha=0.6, density=True, label=f"purchase ({int((y == 1).sum()):,})")
        ax.set(title=_title(model, split, task, aucs[task]), xlabel="score", ylabel="density")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
