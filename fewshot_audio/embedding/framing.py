"""How a file becomes model inputs: clip-policy waveform windows, or, where the original frames in the feature
domain, patches cut from one whole-file front-end pass (:class:`PatchCutter`), each with its level; block by block,
so memory stays bounded whatever the file's length."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data.audio import (
    audio_duration,
    fit_short,
    level_db,
    stream_audio,
    stream_windows,
    window_energy_db,
    window_times,
    with_last_window,
)
from fewshot_audio.features.frontends import compute_features


def waveform_windows(path: Path, f: FeatureConfig, *, window_s: float, hop_s: float,
                      ) -> Iterator[tuple[np.ndarray, np.ndarray | None, float, np.ndarray | None]]:
    """Waveform framing: ``(features (k, *shape), None, peak, levels (k,))`` per batch of clip-policy windows;
    the last item's second value is the window times ``(n, 2)`` of the whole file."""
    length, step = int(round(window_s * f.sample_rate)), int(round(hop_s * f.sample_rate))
    n = 0
    for wins in stream_windows(path, sample_rate=f.sample_rate, length=length, hop_samples=step, short=f.short):
        n += len(wins)
        yield compute_features(wins, f), None, float(np.abs(wins).max()), window_energy_db(wins)
    yield None, window_times(n, duration_s=audio_duration(path), window_s=window_s, hop_s=hop_s), 0.0, None


class BlockEnergy:
    """Running sums of squares of a stream over whole blocks of ``block_samples`` (the last block zero-padded), so
    that the level of any window of whole blocks is one subtraction."""

    def __init__(self, block_samples: int):
        self.block = block_samples
        self.cumulative = np.zeros(1)
        self.rest, self.counted = np.zeros(0, np.float32), 0  # samples not yet in a whole block; samples counted

    def add(self, buf: np.ndarray, buf0: int, total: int, last: bool) -> None:
        """Count the samples of ``buf`` (which starts at stream sample ``buf0``) not counted yet, up to ``total``."""
        H = self.block
        seg = np.concatenate([self.rest, buf[self.counted - buf0 :]])
        whole = len(seg) // H if not last else -(-len(seg) // H)  # the last, partial block zero-padded
        blocks = np.pad(seg, (0, whole * H - len(seg))) if last else seg[: whole * H]
        energy = np.square(blocks, dtype=np.float64).reshape(whole, H).sum(1)
        self.cumulative = np.concatenate([self.cumulative, self.cumulative[-1] + np.cumsum(energy)])
        self.rest, self.counted = seg[whole * H :], total

    def level_db(self, first_blocks: np.ndarray, span_blocks: int, window_samples: int) -> np.ndarray:
        """The level (dB) of windows starting at blocks ``first_blocks``, ``span_blocks`` long."""
        first = np.minimum(first_blocks, len(self.cumulative) - 1)
        last = np.minimum(first + span_blocks, len(self.cumulative) - 1)
        return level_db((self.cumulative[last] - self.cumulative[first]) / window_samples)


class PatchCutter:
    """Patch framing of one file, fed block by block: the front end over the whole file (per block, with the frames
    of one whole-file pass), patches of ``framing.patch`` frames every ``hop_frames`` frames; a patch's level is
    that of the samples of its window (start to start + ``window_samples``).

    ``original``: the original's last patch (``framing.last``); otherwise the clip policy's (the last patch ends at
    the file's end, :func:`~fewshot_audio.data.audio.with_last_window`). A file shorter than one window is looped
    or padded first (``f.short``)."""

    def __init__(self, f: FeatureConfig, framing, front: torch.nn.Module, *, window_samples: int, hop_frames: int,
                 original: bool, device):
        self.f, self.framing, self.front, self.device = f, framing, front, device
        self.window_samples, self.hop_frames, self.original = window_samples, hop_frames, original
        self.H, self.n = framing.frame_hop, framing.patch
        self.pad_end = original and framing.last == "pad" and hop_frames == framing.hop  # another hop: drop it
        self.margin = self.H * -(-framing.reach // self.H)  # context kept before the next frame (a multiple of H)
        self.buf, self.buf0 = np.zeros(0, np.float32), 0  # samples from sample buf0 on (a multiple of H)
        self.feats, self.feat0 = None, 0  # frames (bins, T) from whole-file frame feat0 on
        self.next_frame, self.next_patch, self.total_frames = 0, 0, 0
        self.waiting: list[int] = []  # patch starts (frames) waiting for their frames
        self.emitted: list[int] = []
        self.energy = BlockEnergy(self.H)
        self.span_blocks = -(-window_samples // self.H)

    def feed(self, mono: np.ndarray, last: bool) -> tuple[np.ndarray | None, float, np.ndarray | None]:
        """``(patches (k, 1, bins, patch) or None, the block's peak, their levels (k,) or None)`` of the next block."""
        peak = float(np.abs(mono).max()) if len(mono) else 0.0
        total = self._append(mono, last)
        self.energy.add(self.buf, self.buf0, total, last)
        self._compute_frames(total, last)
        self._schedule(last)
        patches, levels = self._take_ready()
        self._trim(total)
        return patches, peak, levels

    def times(self) -> np.ndarray:
        """The start/end seconds ``(n, 2)`` of every patch cut."""
        begin = np.asarray(self.emitted, dtype=np.float64) * self.H / self.f.sample_rate
        return np.stack([begin, begin + self.window_samples / self.f.sample_rate], axis=1).astype(np.float32)

    def _append(self, mono: np.ndarray, last: bool) -> int:
        """Add a block to the buffer (a file shorter than one window fitted; with ``pad_end``, zeros up to a whole
        number of the original's hops after the first patch); returns the samples of the stream so far."""
        if last and self.buf0 == 0 and len(self.buf) + len(mono) < self.window_samples:
            mono = fit_short(np.concatenate([self.buf, mono]), length=self.window_samples,
                             short="pad" if self.pad_end else self.f.short)
            self.buf = np.zeros(0, np.float32)
        self.buf = np.concatenate([self.buf, mono])
        total = self.buf0 + len(self.buf)
        if last and self.pad_end:
            first, step = self.window_samples, self.hop_frames * self.H
            after = max(total, first) - first
            whole = after // step if 0 < after % step < self.framing.min_last * self.H else -(-after // step)
            self.buf = np.concatenate([self.buf, np.zeros(max(0, first + whole * step - total), np.float32)])
            total = self.buf0 + len(self.buf)
        return total

    def _compute_frames(self, total: int, last: bool) -> None:
        """Run the front end over the samples whose frames are complete (all of them at the end)."""
        H, framing = self.H, self.framing
        if framing.centred:
            f_end = total // H + 1 if last else max(0, (total - framing.reach // 2) // H + 1)
        else:
            f_end = 1 + (total - framing.reach) // H if total >= framing.reach else 0
        if f_end > self.next_frame:
            if framing.centred:
                a = max(0, self.next_frame * H - self.margin)
                b = total if last else min(total, f_end * H + self.margin)
            else:
                a, b = self.next_frame * H, (f_end - 1) * H + framing.reach
            chunk = torch.from_numpy(np.ascontiguousarray(self.buf[a - self.buf0 : b - self.buf0]))[None]
            with torch.no_grad():
                out = self.front(chunk.to(self.device))
            new = out[0, 0, :, self.next_frame - a // H : f_end - a // H].float().cpu().numpy()
            self.feats = new if self.feats is None else np.concatenate([self.feats, new], axis=1)
            self.next_frame = f_end
        if last:
            self.total_frames = self.next_frame

    def _schedule(self, last: bool) -> None:
        """Queue the patches whose frames are computed (and, at the end, the clip policy's last patch)."""
        while self.next_patch + self.n <= self.next_frame:
            self.waiting.append(self.next_patch)
            self.next_patch += self.hop_frames
        if last and not self.original:
            queued = np.asarray(self.emitted + self.waiting, dtype=np.int64)
            covered = with_last_window(queued, total=self.total_frames, length=self.n)
            self.waiting += covered[len(queued):].tolist()

    def _take_ready(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The queued patches whose frames are all computed, with their levels."""
        done = [s for s in self.waiting if s + self.n <= self.next_frame]
        self.emitted += done
        self.waiting = self.waiting[len(done):]
        if not done:
            return None, None
        levels = self.energy.level_db(np.asarray(done), self.span_blocks, self.window_samples)
        patches = np.stack([self.feats[:, s - self.feat0 : s - self.feat0 + self.n] for s in done])[:, None]
        return patches, levels

    def _trim(self, total: int) -> None:
        """Drop the frames and samples no patch to come needs."""
        keep_from = min([self.next_patch, *self.waiting])
        if self.feats is not None and keep_from > self.feat0:
            self.feats, self.feat0 = self.feats[:, keep_from - self.feat0 :], keep_from
        drop = max(0, min(self.next_frame * self.H - self.margin, total) - self.buf0) // self.H * self.H
        self.buf, self.buf0 = self.buf[drop:], self.buf0 + drop


def file_patches(path: Path, f: FeatureConfig, framing, front: torch.nn.Module, *, window_samples: int, hop_frames: int,
             original: bool, device, block_seconds: float = 60.0,
             ) -> Iterator[tuple[np.ndarray | None, np.ndarray | None, float, np.ndarray | None]]:
    """Patch framing of ``path`` (:class:`PatchCutter`): ``(patches (k, 1, bins, patch), None, peak, levels (k,))``
    per block read, then ``(None, times (n, 2), 0, None)``."""
    cutter = PatchCutter(f, framing, front, window_samples=window_samples, hop_frames=hop_frames, original=original,
                          device=device)
    for mono, last in stream_audio(path, sample_rate=f.sample_rate, block_seconds=block_seconds):
        patches, peak, levels = cutter.feed(mono, last)
        yield patches, None, peak, levels
    yield None, cutter.times(), 0.0, None
