"""What tagging a file gives: :class:`TagResult` (tags, scores, thresholds, taggram), where its taggram goes, and
a Raven selection table of several (the image itself: :mod:`.taggram`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewshot_audio.data.audio import audio_duration
from fewshot_audio.data.raven import RavenRow
from fewshot_audio.data.raven import raven_table as write_raven
from fewshot_audio.errors import ConfigError
from fewshot_audio.util.io import check_new_output, check_writable


@dataclass
class TagResult:
    """Tags of one file: ``scores``/``thresholds`` per tag, ``tags`` at or above threshold (highest score first),
    ``taggram`` ``(n_windows, n_tags)`` window scores starting at ``times`` seconds; ``error`` says why a file
    could not be tagged."""

    path: str
    tags: list[str]
    scores: dict[str, float]
    thresholds: dict[str, float]
    taggram: np.ndarray
    times: np.ndarray
    error: str | None = None

    @classmethod
    def failed(cls, path: str, error: str, *, n_tags: int) -> TagResult:
        """The result of a file that could not be read: no tags, no scores, an empty taggram."""
        return cls(str(path), [], {}, {}, np.zeros((0, n_tags)), np.zeros(0), error)

    def to_dict(self) -> dict:
        """The result as ``tag --json`` writes it (path, tags, scores, thresholds, error)."""
        return {"path": self.path, "tags": self.tags, "scores": self.scores, "thresholds": self.thresholds,
                "error": self.error}


def taggram_paths(target: str | Path, files: list[str | Path], *, overwrite: bool = False) -> list[Path]:
    """Where ``--taggram target`` writes the taggram of each of ``files``, checked before any work: ``target``
    itself when it names one PNG for one file, else one PNG per file in the folder ``target`` (created; files
    of the same name numbered ``name-2.png``, ``name-3.png``, ... in input order). An existing PNG or CSV there
    is replaced only with ``overwrite``."""
    target = Path(target)
    if target.suffix.lower() == ".png":
        if len(files) != 1:
            raise ConfigError(f"taggram={target} names one PNG but {len(files)} files are tagged; give a folder, "
                              f"e.g. taggram={target.with_suffix('')}", param="taggram")
        _check_taggram(target, overwrite=overwrite)
        return [target]
    if target.exists() and not target.is_dir():
        raise ConfigError(f"taggram={target} is an existing file, not a folder; give a folder or a .png path", param="taggram")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"taggram={target}: cannot create the folder ({exc.strerror}); choose another path", param="taggram") from None
    check_writable(target / "x.png", param="taggram")
    seen: dict[str, int] = {}
    out = []
    for f in files:
        stem = Path(f).stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(target / (f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png"))
    for png in out:
        _check_taggram(png, overwrite=overwrite)
    return out


def _check_taggram(png: Path, *, overwrite: bool) -> None:
    """A taggram is a PNG and a CSV beside it: neither replaced without ``overwrite``."""
    check_new_output(png, kind="png", overwrite=overwrite, param="taggram")
    check_new_output(png.with_suffix(".csv"), kind="text", overwrite=overwrite, param="taggram")


def raven_table(results, tags: list[str], *, window: float, high_freq: float) -> str:
    """A Raven selection table (:func:`fewshot_audio.data.raven.raven_table`) of every window whose score reaches
    its tag's threshold: one row per (window, tag), in file and time order."""
    rows, durations = [], {}
    for r in results:
        if r.error is not None:
            continue
        # a format soundfile cannot read: the windows' extent
        duration = audio_duration(r.path) or (float(r.times[-1] + window) if len(r.times) else 0.0)
        durations[r.path] = duration
        for start, row in zip(r.times, r.taggram):
            end = min(float(start) + window, duration) if duration else float(start) + window
            rows += [RavenRow(r.path, float(start), end, tag, float(row[j]), float(r.thresholds[tag]))
                     for j, tag in enumerate(tags) if row[j] >= r.thresholds[tag]]
    return write_raven(rows, durations=durations, high_freq_hz=high_freq)
