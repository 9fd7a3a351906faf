"""The results of ``compare``: ``results.csv`` (one row per strategy and shot count), the markdown table
``results.md`` and the plot ``accuracy_vs_shots.png``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from fewshot_audio.util.io import atomic_write_text
from fewshot_audio.util.plots import pyplot, save_png

COLUMNS = ["strategy", "backbone", "protocol", "ways", "shots", "accuracy", "ci95", "n", "train_seconds",
           "eval_seconds", "seed", "config_hash", "metric", "test_classes"]
"""``accuracy`` holds the row's ``metric``: accuracy, or mAP for a multi-label comparison (``metric`` empty in
results written before that column: accuracy); ``test_classes``: the classes the test episodes draw from
(empty in results written before that column)."""


def same_classes_note(n_classes: int, ways: int) -> str:
    """The note a comparison carries when its test split has no more classes than ways (every episode tests the same
    classes)."""
    return (f"the test (novel) split has {n_classes} classes, no more than the {ways} ways: every episode tests the "
            "same classes, so the scores say little about classes in general")


def read_results(path: Path) -> list[dict]:
    """The rows of a comparison's ``results.csv`` (none when it does not exist yet)."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_results(out: Path, rows: list[dict]) -> None:
    """Write ``results.csv`` and ``results.md`` of ``rows`` into ``out``, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    atomic_write_text(out / "results.md", results_table(rows))


def results_table(rows: list[dict]) -> str:
    """Markdown: one row per strategy, one column per shot count, ``acc ± ci95`` in percent."""
    shots = sorted({int(r["shots"]) for r in rows})
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    cell = {(r["strategy"], int(r["shots"])): r for r in rows}
    if not rows:
        return "(no results yet)\n"
    r0 = rows[0]
    unit = "episodes" if r0["protocol"] == "episodic" else "draws"
    metric = r0.get("metric") or "accuracy"
    lines = [f"Protocol {r0['protocol']}, {r0['ways']}-way; {metric} % ± 95% CI over {r0['n']} {unit}; "
             "train and eval seconds on this machine.", ""]
    if r0["protocol"] == "episodic" and r0.get("test_classes") and int(r0["test_classes"]) <= int(r0["ways"]):
        lines += [f"Note: {same_classes_note(int(r0['test_classes']), int(r0['ways']))}.", ""]
    lines += [
             "| strategy | backbone | " + " | ".join(f"{k}-shot" for k in shots) + " | train s | eval s |",
             "|---|---|" + "---|" * len(shots) + "---|---|"]
    for s in strategies:
        cells = [cell.get((s, k)) for k in shots]
        some = next(c for c in cells if c)
        text = [f"{100 * float(c['accuracy']):.1f} ± {100 * float(c['ci95']):.1f}" if c else "" for c in cells]
        eval_s = sum(float(c["eval_seconds"]) for c in cells if c)
        lines.append(f"| {s} | {some['backbone']} | " + " | ".join(text) + f" | {float(some['train_seconds']):.0f} | {eval_s:.0f} |")
    return "\n".join(lines) + "\n"


def draw_results(rows: list[dict]):
    """The accuracy-vs-shots figure of ``rows``: one colour, marker and line style per strategy; ticks at the shot counts run."""
    plt = pyplot()
    from matplotlib.ticker import NullLocator  # imported on use: only plots need it

    fig, ax = plt.subplots(figsize=(9, 5.5))
    markers, styles = "os^Dvp*hX<>", ("-", "--", ":", "-.")
    colours = [*plt.cm.tab10.colors, *plt.cm.Dark2.colors]  # distinct hues (tab20 pairs light and dark shades)
    for i, s in enumerate(dict.fromkeys(r["strategy"] for r in rows)):
        pts = sorted((int(r["shots"]), float(r["accuracy"]), float(r["ci95"])) for r in rows if r["strategy"] == s)
        k, a, c = (np.array(v) for v in zip(*pts))
        color = colours[i % len(colours)]  # one colour, marker and line style per strategy
        ax.plot(k, 100 * a, marker=markers[i % len(markers)], linestyle=styles[i % len(styles)], color=color, label=s)
        ax.fill_between(k, 100 * (a - c), 100 * (a + c), alpha=0.12, color=color)
    ax.set_xscale("log")
    shots = sorted({int(r["shots"]) for r in rows})
    ax.set_xticks(shots, [str(k) for k in shots])
    ax.xaxis.set_minor_locator(NullLocator())  # only the shot counts that were run are labelled
    ax.set(xlabel="examples per class (shots)", ylabel=f"{rows[0].get('metric') or 'accuracy'} (%)",
           title=f"{rows[0]['protocol']} protocol, {rows[0]['ways']}-way (bands: 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def plot_results(path: Path, rows: list[dict]) -> None:
    """Draw the accuracy-against-shots plot of ``rows`` to the PNG ``path``, atomically."""
    fig = draw_results(rows)
    save_png(fig, path, dpi=110)
