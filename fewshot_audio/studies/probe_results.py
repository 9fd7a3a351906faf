"""The probe's outputs: ``results.csv`` (one row per architecture and classifier), ``results.md`` and a bar chart
``results.png`` with each row's 95% CI, all written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fewshot_audio.util.io import atomic_write_text
from fewshot_audio.util.plots import pyplot, save_png

COLUMNS = ["architecture", "classifier", "accuracy", "ci95", "best_cv_accuracy", "n_features", "seeds", "folds",
           "n_scores", "feature_seconds", "feature_seconds_per_1000_clips", "seconds"]


def write_table(path: Path, rows: list[dict], columns: list[str]) -> None:
    """``rows`` as a CSV of ``columns`` (other keys, such as the per-clip answers, left out), written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def write_results(out: Path, rows: list[dict], *, title: str) -> None:
    """Write the probe's ``results.csv``, ``results.md`` and the accuracy chart into ``out``."""
    write_table(out / "results.csv", rows, COLUMNS)
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
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(rows) + 2), 4))
    names = [r["architecture"] for r in rows]
    ax.bar(names, [100 * r["accuracy"] for r in rows], yerr=[100 * r["ci95"] for r in rows], capsize=4,
           color=["#888888" if n == "mfcc" else "#3b6ea8" for n in names])
    ax.set(ylabel="accuracy (%)", title=title, ylim=(0, 100))
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def write_ranking(out: Path, agreement: dict, *, title: str) -> None:
    """``ranking.json``, ``ranking.md`` and a scatter ``ranking.png`` of random against trained accuracy."""
    from fewshot_audio.util.io import atomic_write_json

    atomic_write_json(out / "ranking.json", agreement)
    lo, hi = agreement["ci95"]
    lines = [f"{title}: Spearman rho {agreement['spearman']:.2f} (95% CI {lo:.2f} to {hi:.2f}, paired bootstrap over "
             f"clips; permutation p = {agreement['p_value']:.3g}), {len(agreement['architectures'])} architectures.",
             "", "| architecture | random | trained |", "|---|---|---|"]
    lines += [f"| {n} | {100 * r:.1f} | {100 * t:.1f} |" for n, r, t in
              zip(agreement["architectures"], agreement["random_accuracy"], agreement["trained_accuracy"])]
    atomic_write_text(out / "ranking.md", "\n".join(lines) + "\n")
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 5))
    xs, ys = [100 * v for v in agreement["random_accuracy"]], [100 * v for v in agreement["trained_accuracy"]]
    ax.scatter(xs, ys, color="#3b6ea8")
    for name, x, y in zip(agreement["architectures"], xs, ys):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel="random weights + classifier, accuracy (%)", ylabel="trained, accuracy (%)",
           title=f"{title}\nSpearman {agreement['spearman']:.2f} [{lo:.2f}, {hi:.2f}]")
    fig.tight_layout()
    save_png(fig, out / "ranking.png", dpi=110)
