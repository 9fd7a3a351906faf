"""Where a detector's window descriptors come from: log-mel windows as long as the examples (the default), or a
pretrained model's embeddings at a fine hop (a detector with ``embedding = "MODEL[:LAYER]"``).

A source numbers its descriptors ``k = 0, 1, ...`` at ``fps`` per second. Descriptor ``k`` stands for an event
starting at ``(k + offset) / fps`` and lasting ``window`` frames (the examples' mean length); it reads the audio
from ``k / fps`` to ``(k + reach) / fps``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.detection.detectors import Detector
from fewshot_audio.detection.frames import N_MELS, FrameSpec, band_medians, stream_frames, windows
from fewshot_audio.embedding import embed_files, load_backbone, patch_framing
from fewshot_audio.errors import DataError

MIN_EMBED_HOP, MAX_EMBED_HOP = 0.02, 0.25  # seconds between a pretrained model's windows


class LogMelSource:
    """Log-mel windows as long as the examples' mean length, one per frame (:mod:`.frames`)."""

    def __init__(self, det: Detector, examples: np.ndarray):
        self.det, self.spec = det, FrameSpec.for_examples(examples)
        self.fps, self.window, self.offset, self.reach = self.spec.fps, self.spec.window, 0.0, self.spec.window
        self._reference: tuple[Path, np.ndarray] | None = None

    def reference(self, recording: Path) -> np.ndarray:
        """Each band's median level over ``recording`` (or zeros without ``band_reference``), kept for the next
        call on the same recording: fitting, detecting and self-training read one recording several times."""
        if not self.det.band_reference:
            return np.zeros(N_MELS, np.float32)
        if self._reference is None or self._reference[0] != Path(recording):
            self._reference = (Path(recording), band_medians(recording, self.spec))
        return self._reference[1]

    def blocks(self, recording: Path) -> Iterator[tuple[int, np.ndarray]]:
        """``(index of the first descriptor, descriptors)`` of consecutive blocks (memory bounded by one block)."""
        spec = self.spec
        ref = self.reference(recording)
        carry, first = np.zeros((0, N_MELS), np.float32), 0  # first: frame index of carry[0]
        for block in stream_frames(recording, spec):
            frames = np.concatenate([carry, block - ref])
            x = windows(frames, spec.window, self.det.segments)
            yield first, x
            carry, first = frames[len(x):], first + len(x)  # the next window starts at frames[len(x)]


class EmbeddingSource:
    """A pretrained model's window embeddings every quarter of the examples' mean length (20-250 ms), each standing
    for an event of the examples' length centred in the model's window."""

    def __init__(self, det: Detector, examples: np.ndarray, device: str = "cpu"):
        self.det = det
        self.backbone = load_backbone(det.embedding, device=torch.device(device))
        self.device = device
        length = float(np.mean(examples[:, 1] - examples[:, 0]))
        hop = float(np.clip(length / 4, MIN_EMBED_HOP, MAX_EMBED_HOP))
        f = self.backbone.features
        framing = patch_framing(f)
        step = framing.frame_hop / f.sample_rate if framing else 1 / f.sample_rate  # where windows can start
        self.hop = max(1, round(hop / step)) * step
        self.fps = 1.0 / self.hop
        self.window = max(1, int(round(length * self.fps)))
        self.offset = (self.backbone.window - length) / 2 * self.fps
        self.reach = self.backbone.window * self.fps
        self._last: tuple[Path, np.ndarray] | None = None

    def blocks(self, recording: Path) -> Iterator[tuple[int, np.ndarray]]:
        """One block: the whole recording's embeddings (kept for the next call on the same recording, as fitting
        and detecting in one recording read it twice; an hour at a 20 ms hop of 1024-d embeddings is 0.7 GB)."""
        if self._last is not None and self._last[0] == Path(recording):
            yield 0, self._last[1]
            return
        emb = embed_files(self.backbone, [Path(recording)], device=torch.device(self.device), hop=self.hop, quiet=True)
        if emb.errors[0]:
            raise DataError(emb.errors[0])
        z, start = emb.windows[0], emb.times[0][:, 0]
        k = np.round(start * self.fps).astype(np.int64)
        on_grid = (np.abs(k / self.fps - start) < 0.5 / self.fps) & (k == np.arange(len(k)))
        z = z[on_grid]  # the clip policy's last window (ending at the file's end) is off the grid
        if self.det.band_reference:
            z = z - np.median(z, axis=0)
        self._last = (Path(recording), z.astype(np.float32))
        yield 0, self._last[1]


def make_source(det: Detector, examples: np.ndarray):
    return EmbeddingSource(det, examples) if det.embedding else LogMelSource(det, examples)
