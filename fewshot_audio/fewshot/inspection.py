"""``fewshot-audio datasets inspect``: classes, clip counts, durations and problems."""

from __future__ import annotations

from collections import Counter

import numpy as np

from fewshot_audio.fewshot.dataset import resolve_manifest


def inspect_dataset(path: str | None, *, format: str | None = None, label: str | None = None, quiet: bool = False) -> dict:
    """A summary of the dataset at ``path`` (the built-in one for ``None``): classes with clip counts, durations,
    sample rates and every problem found."""
    manifest = resolve_manifest(path, format=format, label=label, quiet=quiet, param="path")
    counts = manifest.class_counts()
    durations = np.array([c.duration for c in manifest.clips if c.duration is not None])
    rates = Counter(c.sample_rate for c in manifest.clips if c.sample_rate)
    multi = sum(len(c.labels) > 1 for c in manifest.clips)
    problems = list(manifest.problems)
    lines = [f"dataset {manifest.name} at {manifest.root}",
             f"{len(manifest)} clips, {len(counts)} classes"
             + (f", {multi} multi-label clips" if multi else ""),
             (f"duration: total {durations.sum() / 60:.1f} min, per clip min {durations.min():.2f} s, "
              f"median {np.median(durations):.2f} s, max {durations.max():.2f} s" if durations.size else "duration: unknown"),
             "sample rates: " + ", ".join(f"{sr} Hz ({n})" for sr, n in rates.most_common()),
             "clips per class: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items()))]
    lines.append(f"{len(problems)} problem(s)" + (":" if problems else ""))
    lines += [f"  {p}" for p in problems]
    return {"name": manifest.name, "root": manifest.root, "clips": len(manifest), "classes": dict(sorted(counts.items())),
            "total_seconds": float(durations.sum()) if durations.size else None,
            "problems": problems, "text": "\n".join(lines)}
