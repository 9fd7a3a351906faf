"""Taggram images: a file's spectrogram above its window scores for its top tags, bounded in size for any file
length and any vocabulary (a 6,522-class model, a two-hour recording), plus a CSV of the same scores.

Time runs from 0 to the file's end: each window covers ``[start, start + window]``; where there are more windows
than :data:`MAX_COLUMNS`, the windows are pooled into that many equal columns (the highest score of each column's
windows), and the spectrogram into as many columns (the mean power), computed block by block so that memory does
not grow with the file's length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data.audio import audio_duration, stream_audio
from fewshot_audio.errors import ConfigError, DataError
from fewshot_audio.features.frontends import LogMel
from fewshot_audio.util.io import atomic_write_text
from fewshot_audio.util.plots import pyplot, save_png

MAX_COLUMNS = 1200  # time columns of the image at most
DEFAULT_TAGS = 20  # tag rows shown by default
MAX_TAGS = 200  # tag rows at most (the image stays openable)
SPECTROGRAM = FeatureConfig(sample_rate=16000, n_fft=512, hop_length=160, n_mels=64, top_db=None)


def checked_tag_rows(n: int) -> int:
    """``n`` taggram rows, or a :class:`ConfigError` naming the bounds."""
    if not 1 <= n <= MAX_TAGS:
        raise ConfigError(f"taggram tags {n}: show between 1 and {MAX_TAGS} tags (the best-scoring ones)")
    return n


def top_tags(result, tags: list[str], *, n: int) -> list[str]:
    """The ``n`` tags of ``result`` whose best window scores highest above its threshold, best first."""
    th = np.array([result.thresholds[t] for t in tags])
    peak = (result.taggram - th).max(axis=0) if len(result.taggram) else np.zeros(len(tags))
    return [tags[j] for j in np.argsort(-peak, kind="stable")[:n]]


def column_edges(times: np.ndarray, *, window: float, duration: float) -> np.ndarray:
    """Edges ``(c + 1,)`` seconds of the image's columns: one per window (from its start to the next window's, the
    last to its end) while there are at most :data:`MAX_COLUMNS` windows, else that many equal columns."""
    end = max(duration, float(times[-1]) + 1e-3) if len(times) else duration
    if len(times) <= MAX_COLUMNS:
        last = min(float(times[-1]) + window, end) if duration > 0 else float(times[-1]) + window
        return np.r_[times, max(last, float(times[-1]) + 1e-3)].astype(np.float64)
    return np.linspace(0.0, end, MAX_COLUMNS + 1)


def pooled_scores(values: np.ndarray, times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``(c, k)``: the highest of ``values (n_windows, k)`` among the windows starting in each column (a column
    no window starts in repeats the one before it)."""
    if len(edges) - 1 == len(times):
        return values
    col = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, len(edges) - 2)
    out = np.full((len(edges) - 1, values.shape[1]), -np.inf)
    np.maximum.at(out, col, values)
    for i in range(1, len(out)):  # empty columns (windows sparser than columns) show the previous one
        if not np.isfinite(out[i]).any():
            out[i] = out[i - 1]
    return np.where(np.isfinite(out), out, np.nan)


def spectrogram_columns(path: str | Path, *, duration: float, columns: int) -> tuple[np.ndarray, float]:
    """A log-mel spectrogram ``(64, columns)`` dB of the whole file, each column the mean power of its frames, read
    block by block; and the seconds it covers."""
    mel = LogMel(SPECTROGRAM)
    fps = SPECTROGRAM.sample_rate / SPECTROGRAM.hop_length
    total = max(1, int(np.ceil(max(duration, 1e-3) * fps)))
    per = max(1, int(np.ceil(total / columns)))  # frames per column
    n_cols = int(np.ceil(total / per))
    sums, counts = np.zeros((SPECTROGRAM.n_mels, n_cols)), np.zeros(n_cols)
    frame = 0
    with torch.no_grad():
        for block, last in stream_audio(path, sample_rate=SPECTROGRAM.sample_rate):
            if not len(block):
                continue
            power = 10 ** (mel(torch.from_numpy(block)[None])[0, 0].numpy() / 10)  # (64, 1 + samples // hop)
            if not last:  # the next block's first frame starts where this one's last would
                power = power[:, :-1]
            col = np.minimum((frame + np.arange(power.shape[1])) // per, n_cols - 1)
            np.add.at(sums.T, col, power.T)
            np.add.at(counts, col, 1)
            frame += power.shape[1]
    db = 10 * np.log10(np.maximum(sums / np.maximum(counts, 1), 1e-10))
    return db, n_cols * per / fps


def write_taggram(png: Path, result, tags: list[str], *, window: float, n_tags: int = DEFAULT_TAGS,
                  calibrated: bool = True) -> None:
    """The taggram of one file: its spectrogram above the window scores of its ``n_tags`` best tags (score minus
    threshold with ``calibrated`` thresholds, else the model's probability), PNG + CSV (window start times and
    the shown tags' scores) beside it."""
    plt = pyplot()

    shown = top_tags(result, tags, n=n_tags)
    j = [tags.index(t) for t in shown]
    lines = ["time_s," + ",".join(shown)]
    lines += [f"{t:.3f}," + ",".join(f"{v:.5f}" for v in row[j]) for t, row in zip(result.times, result.taggram)]
    atomic_write_text(png.with_suffix(".csv"), "\n".join(lines) + "\n")
    duration = audio_duration(result.path) or (float(result.times[-1]) + window if len(result.times) else window)
    edges = column_edges(result.times, window=window, duration=duration)
    th = np.array([result.thresholds[t] for t in shown])
    values = result.taggram[:, j] - th if calibrated else result.taggram[:, j]
    grid = pooled_scores(values, result.times, edges)
    try:
        spec, spec_end = spectrogram_columns(result.path, duration=edges[-1], columns=MAX_COLUMNS)
    except DataError:
        spec, spec_end = None, edges[-1]  # the scores are still worth a picture
    width = float(np.clip(4 + 0.02 * len(grid), 8, 16))
    rows = len(shown)
    fig, axes = plt.subplots(2, 1, figsize=(width, 2.4 + 0.28 * rows + 1.2), sharex=True,
                             gridspec_kw={"height_ratios": [2.4, 0.28 * rows + 0.4]})
    top, bottom = axes
    if spec is not None:
        top.imshow(spec, aspect="auto", origin="lower", cmap="magma", extent=[0, spec_end, 0, SPECTROGRAM.n_mels],
                   vmin=float(spec.max()) - 80, vmax=float(spec.max()), interpolation="nearest")
    top.set(ylabel="mel band", title=f"{Path(result.path).name}: spectrogram and taggram")
    if calibrated:
        lim = max(1e-6, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0)
        mesh = bottom.pcolormesh(edges, np.arange(rows + 1) - 0.5, grid.T, cmap="RdBu_r", vmin=-lim, vmax=lim)
        label = "score - threshold"
    else:
        mesh = bottom.pcolormesh(edges, np.arange(rows + 1) - 0.5, grid.T, cmap="viridis", vmin=0, vmax=1)
        label = "probability"
    bottom.set_yticks(range(rows), shown, fontsize=8)
    bottom.invert_yaxis()  # the best tag on top
    bottom.set(xlabel="time (s)", xlim=(0, edges[-1]))
    fig.colorbar(mesh, ax=axes, label=label, fraction=0.03, pad=0.01)
    save_png(fig, png, dpi=100)
