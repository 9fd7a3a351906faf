"""Plots and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewshot_audio.util.plots import pyplot, save_png


def plot_training_curve(path: Path, history, *, title: str) -> None:
    """Training loss (per step, smoothed) and validation accuracy with its 95% CI."""
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    if history.steps:
        loss = np.asarray(history.train_loss)
        k = max(1, len(loss) // 50)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax1.plot(history.steps[k - 1 :], smooth)
    ax1.set(xlabel="episode", ylabel="training loss", title="meta-training")
    if history.val_steps:
        v, c = np.asarray(history.val_acc), np.asarray(history.val_ci95)
        ax2.plot(history.val_steps, v, marker="o")
        ax2.fill_between(history.val_steps, v - c, v + c, alpha=0.25)
        ax2.axvline(history.best_step, color="grey", linestyle=":", label=f"best (step {history.best_step})")
        ax2.legend(loc="lower right")
    ax2.set(xlabel="episode", ylabel="validation accuracy", title="validation (frozen episodes)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=110)
