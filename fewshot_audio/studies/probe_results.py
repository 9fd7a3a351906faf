"""The probe's outputs: ``results.csv`` (one row per architecture and classifier), ``results.md`` and a bar chart
``results.png`` with each row's 95% CI, all written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fewshot_audio.util.io import atomic_write, atomic_write_text

COLUMNS = ["architecture", "classifier", "accuracy", "ci95", "best_cv_accuracy", "n_features", "seeds", "folds",
           "n_scores", "feature_seconds", "feature_seconds_per_1000_clips", "seconds"]


def write_results(out: Path, rows: list[dict], *, title: str) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    lines = [f"{title}; accuracy % ± 95% CI over seeds x folds (nested: hyperparameters chosen inside the training "
             "folds); the paper's best cross-validation score beside it.", "",
             "| architecture | classifier | accuracy | best CV | features | feature s / 1000 clips | seconds |",
             "|---|---|---|---|---|---|---|"]
    per = lambda r: "n/a" if r.get("feature_seconds_per_1000_clips") is None else f"{r['feature_seconds_per_1000_clips']:.0f}"  # noqa: E731
    lines += [f"| {r['architecture']} | {r['classifier']} | {100 * r['accuracy']:.1f} ± {100 * r['ci95']:.1f} | "
              f"{100 * r['best_cv_accuracy']:.1f} | {r['n_features']} | {per(r)} | {r['seconds']:.0f} |" for r in rows]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    _plot(out / "results.png", rows, title=title)


def _plot(path: Path, rows: list[dict], *, title: str) -> None:
    import matplotlib  # imported on use: heavy, and only the chart needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # imported on use: only the chart needs it

    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(rows) + 2), 4))
    names = [r["architecture"] for r in rows]
    ax.bar(names, [100 * r["accuracy"] for r in rows], yerr=[100 * r["ci95"] for r in rows], capsize=4,
           color=["#888888" if n == "mfcc" else "#3b6ea8" for n in names])
    ax.set(ylabel="accuracy (%)", title=title, ylim=(0, 100))
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
