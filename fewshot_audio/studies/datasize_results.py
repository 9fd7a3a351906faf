"""The data-size study's outputs: ``results.csv`` (one row per model and training size), ``results.md`` (the table
and the crossover sentence) and ``results.png`` (accuracy against training clips per class, 95% CIs over draws), all
written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.studies.probe_results import write_table
from fewshot_audio.util.io import atomic_write_text
from fewshot_audio.util.plots import pyplot, save_png

COLUMNS = ["model", "size", "accuracy", "ci95", "draws", "train_clips", "train_seconds"]


def summarize(rows: list[dict]) -> list[dict]:
    """Per (model, size): mean accuracy, its 95% CI over draws, and the mean training clips, sizes in order."""
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        sizes = sorted({r["size"] for r in mine}, key=lambda s: (s == "all", int(s) if s != "all" else 0))
        for size in sizes:
            runs = [r for r in mine if r["size"] == size]
            mean, ci = mean_ci95(np.array([r["accuracy"] for r in runs]))
            out.append({"model": name, "size": size, "accuracy": round(float(mean), 5), "ci95": round(float(ci), 5),
                        "draws": len(runs), "train_clips": int(np.mean([r["train_clips"] for r in runs])),
                        "per_class": round(float(np.mean([r["train_clips"] / r["classes"] for r in runs])), 1),
                        "train_seconds": round(float(np.mean([r["train_seconds"] for r in runs])), 1)})
    return out


def crossover(summary: list[dict], *, waveform: str = "samplecnn", spectrogram: str = "musically-motivated") -> str:
    """One sentence: the first training size at which the waveform model's mean reaches the spectrogram model's, or
    that it does not up to the largest size run."""
    wave = {s["size"]: s for s in summary if s["model"] == waveform}
    spec = {s["size"]: s for s in summary if s["model"] == spectrogram}
    shared = [s["size"] for s in summary if s["model"] == waveform and s["size"] in spec]
    if not shared:
        return f"no training size has both {waveform} and {spectrogram} rows yet"
    for size in shared:
        if wave[size]["accuracy"] >= spec[size]["accuracy"]:
            return (f"{waveform} reaches {spectrogram} at {size} clips per class ({100 * wave[size]['accuracy']:.1f}% "
                    f"against {100 * spec[size]['accuracy']:.1f}%)")
    last = shared[-1]
    gap = 100 * (spec[last]["accuracy"] - wave[last]["accuracy"])
    return (f"no crossover up to {last} clips per class ({spec[last]['train_clips']} training clips): {spectrogram} "
            f"leads by {gap:.1f} points there")


def write_results(out: Path, rows: list[dict], *, title: str) -> None:
    """Write the study's ``results.csv``, ``results.md`` (with the crossover sentence) and ``results.png`` into
    ``out``."""
    summary = summarize(rows)
    write_table(out / "results.csv", summary, COLUMNS)
    lines = [f"{title}; accuracy % ± 95% CI over draws.", "", crossover(summary) + ".", "",
             "| model | clips per class | training clips | accuracy | draws | training s |", "|---|---|---|---|---|---|"]
    lines += [f"| {s['model']} | {s['size']} | {s['train_clips']} | {100 * s['accuracy']:.1f} ± {100 * s['ci95']:.1f} "
              f"| {s['draws']} | {s['train_seconds']:.0f} |" for s in summary]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    _plot(out / "results.png", summary, title=title)


def _plot(path: Path, summary: list[dict], *, title: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name in dict.fromkeys(s["model"] for s in summary):
        mine = [s for s in summary if s["model"] == name]
        ax.errorbar([s["per_class"] for s in mine], [100 * s["accuracy"] for s in mine], yerr=[100 * s["ci95"] for s in mine], marker="o",
                    capsize=3, label=name)
    ax.set_xscale("log")
    ax.set(xlabel="training clips per class ('all': the pool's mean)", ylabel="test accuracy (%)", title=title, ylim=(0, 100))
    ax.legend()
    fig.tight_layout()
    save_png(fig, path, dpi=110)
