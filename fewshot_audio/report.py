"""Plots and tables."""

from __future__ import annotations

from pathlib import Path

from .io_utils import atomic_write


def plot_training_curve(path: Path, history, *, title: str) -> None:
    """Training loss (per step, smoothed) and validation accuracy with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

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
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def write_taggram(png: Path, result, tags: list[str]) -> None:
    """Taggram of one file: window scores minus each tag's threshold (positive: tag present), PNG + CSV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .io_utils import atomic_write_text

    th = np.array([result.thresholds[t] for t in tags])
    margin = result.taggram - th
    lines = ["time_s," + ",".join(tags)]
    lines += [f"{t:.3f}," + ",".join(f"{v:.5f}" for v in row) for t, row in zip(result.times, result.taggram)]
    atomic_write_text(png.with_suffix(".csv"), "\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(result.times) + 3), 0.35 * len(tags) + 1.5))
    lim = max(1e-6, float(np.abs(margin).max()))
    step = result.times[1] - result.times[0] if len(result.times) > 1 else 1.0
    im = ax.imshow(margin.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   extent=[result.times[0], result.times[-1] + step, -0.5, len(tags) - 0.5], interpolation="nearest")
    ax.set_yticks(range(len(tags)), tags)
    ax.set(xlabel="time (s)", title=f"taggram: {Path(result.path).name} (score - threshold)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)",
                 "Begin Path", "File Offset (s)", "Tag", "Score", "Threshold"]


def raven_table(results, tags: list[str], *, window: float, high_freq: float) -> str:
    """A Raven selection table (tab-separated) of every window whose score reaches its tag's threshold:
    one row per (window, tag), in file and time order. Begin/End Time run on across files, as in a
    Raven table of several files; ``Begin Path`` and ``File Offset (s)`` place each row in its file."""
    lines = ["\t".join(RAVEN_COLUMNS)]
    offset, n = 0.0, 0
    for r in results:
        if r.error is not None:
            continue
        from .data.audio import audio_duration

        # a format soundfile cannot read: the windows' extent
        duration = audio_duration(r.path) or (float(r.times[-1] + window) if len(r.times) else 0.0)
        for start, row in zip(r.times, r.taggram):
            end = min(float(start) + window, duration) if duration else float(start) + window
            for j, tag in enumerate(tags):
                if row[j] >= r.thresholds[tag]:
                    n += 1
                    lines.append("\t".join([str(n), "Spectrogram 1", "1", f"{offset + start:.3f}", f"{offset + end:.3f}",
                                            "0", f"{high_freq:.0f}", r.path, f"{start:.3f}", tag, f"{row[j]:.5f}",
                                            f"{r.thresholds[tag]:.5f}"]))
        offset += duration
    return "\n".join(lines) + "\n"
