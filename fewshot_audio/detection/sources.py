"""Where a detector's window descriptors come from: each source implements :class:`DescriptorSource` and is
registered in :data:`DESCRIPTOR_SOURCES` (a detector's ``source`` names one): log-mel windows as long as the examples
(``logmel``), a meta-trained frame-level network's window embeddings (``network``, its weights from
``train-detector``), or a pretrained model's embeddings at a fine hop (``embedding``, the model in ``embedding``).

A source numbers its descriptors ``k = 0, 1, ...`` at ``fps`` per second. Descriptor ``k`` stands for an event
starting at ``(k + offset) / fps`` and lasting ``window`` frames (the examples' mean length); it reads the audio
from ``k / fps`` to ``(k + reach) / fps``.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from fewshot_audio.detection.frames import (
    N_MELS,
    NEGATIVE_IOU,
    FrameSpec,
    band_medians,
    max_iou,
    stream_frames,
    windows,
)
from fewshot_audio.detection.settings import SHIPPED_WEIGHTS, DetectorSettings
from fewshot_audio.embedding import embed_files, load_backbone, patch_framing
from fewshot_audio.errors import ConfigError, DataError
from fewshot_audio.models.backbones.frame_tcn import CONTEXT, window_means
from fewshot_audio.util.registry import Registry

MIN_EMBED_HOP_S, MAX_EMBED_HOP_S = 0.02, 0.25  # seconds between a pretrained model's windows


class DescriptorSource(abc.ABC):
    """Window descriptors of a recording for one set of examples ``(k, 2)`` (seconds).

    Declares ``fps`` (descriptors per second), ``window`` (an event's length in descriptor frames), ``offset``
    (descriptor ``k`` stands for an event starting at ``(k + offset) / fps``) and ``reach`` (it reads audio up to
    ``(k + reach) / fps``); ``uses_weights``: the source reads a meta-trained network (``settings.weights``)."""

    name: ClassVar[str] = ""
    uses_weights: ClassVar[bool] = False
    fps: float
    window: int
    offset: float
    reach: float

    def __init__(self, settings: DetectorSettings, examples: np.ndarray, *, device: str = "cpu"):
        self.settings, self.device = settings, device

    def adapt(self, recording: Path, examples: np.ndarray) -> None:
        """Adapt to the recording the examples are in, before anything is read (default: nothing to adapt)."""
        return None

    @abc.abstractmethod
    def blocks(self, recording: Path) -> Iterator[tuple[int, np.ndarray]]:
        """``(index of the first descriptor, descriptors (n, d))`` of consecutive blocks of ``recording``."""


DESCRIPTOR_SOURCES: Registry[type[DescriptorSource]] = Registry("descriptor source", base=DescriptorSource)


@DESCRIPTOR_SOURCES.register()
class LogMelSource(DescriptorSource):
    """Log-mel windows as long as the examples' mean length, one per frame (:mod:`.frames`)."""

    name = "logmel"

    def __init__(self, settings: DetectorSettings, examples: np.ndarray, *, device: str = "cpu"):
        super().__init__(settings, examples, device=device)
        self.spec = FrameSpec.for_examples(examples)
        self.fps, self.window, self.offset, self.reach = self.spec.fps, self.spec.window, 0.0, self.spec.window
        self._reference: tuple[Path, np.ndarray] | None = None

    def reference(self, recording: Path) -> np.ndarray:
        """Each band's median level over ``recording`` (or zeros without ``band_reference``), kept for the next
        call on the same recording: fitting, detecting and self-training read one recording several times."""
        if not self.settings.band_reference:
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
            x = windows(frames, spec.window, self.settings.segments)
            yield first, x
            carry, first = frames[len(x):], first + len(x)  # the next window starts at frames[len(x)]


@DESCRIPTOR_SOURCES.register()
class NetworkSource(LogMelSource):
    """The meta-trained :class:`~fewshot_audio.models.backbones.frame_tcn.FrameTCN`'s window embeddings, one window
    per frame as :class:`LogMelSource` numbers them: every frame's embedding from the band-referenced frames around it
    (the recording padded with ``CONTEXT`` frames at the median level), then each window's segment means."""

    name = "network"
    uses_weights = True

    def __init__(self, settings: DetectorSettings, examples: np.ndarray, *, device: str = "cpu"):
        super().__init__(settings, examples, device=device)
        from fewshot_audio.detection.network import load_detector_network  # torch strategies: only when used

        self.net = load_detector_network(settings.weights or SHIPPED_WEIGHTS).to(device)

    def adapt(self, recording: Path, examples: np.ndarray) -> None:
        """With ``settings.tune_steps``: fine-tune the network on the examples against the other windows of the annotated
        part (:func:`~fewshot_audio.detection.network.fine_tune`); only audio up to the last example's end is read."""
        if not self.settings.tune_steps:
            return
        from fewshot_audio.detection.network import fine_tune

        need, parts = int(np.ceil(examples[-1, 1] * self.fps)), []
        ref = self.reference(recording)
        for block in stream_frames(recording, self.spec):
            parts.append(block - ref)
            if sum(len(p) for p in parts) >= need:
                break
        frames = np.concatenate(parts)[:need]
        pos = np.round(examples[:, 0] * self.fps).astype(np.int64)
        k = np.arange(max(0, need - self.window + 1))
        neg = k[max_iou(k / self.fps, self.window / self.fps, examples) < NEGATIVE_IOU]
        self.net = fine_tune(self.net, frames, pos, neg, self.window, steps=self.settings.tune_steps,
                             device=torch.device(self.device))

    def blocks(self, recording: Path) -> Iterator[tuple[int, np.ndarray]]:
        ref, c = self.reference(recording), CONTEXT
        pad = np.zeros((c, N_MELS), np.float32)
        frames_in = itertools.chain((b - ref for b in stream_frames(recording, self.spec)), [pad])
        carry = pad  # frames from (the next frame to embed - CONTEXT) on
        h_carry, first = np.zeros((0, self.net.dim), np.float32), 0
        raw_carry = np.zeros((0, N_MELS), np.float32)  # the frames of h_carry (for with_shape)
        for block in frames_in:
            frames = np.concatenate([carry, block])
            if len(frames) <= 2 * c:
                carry = frames
                continue
            with torch.no_grad():
                x = torch.from_numpy(frames.T[None].copy()).to(self.device)
                h = self.net.frame_embeddings(x)[0].T.cpu().numpy()
            raw = np.concatenate([raw_carry, frames[c : c + len(h)]])
            carry = frames[len(frames) - 2 * c :]
            h = np.concatenate([h_carry, h])
            x = window_means(h, self.window)
            if self.settings.with_shape:  # the log-mel source's descriptors of the same windows beside the embeddings
                x = np.concatenate([x, windows(raw, self.window, self.settings.segments)], axis=1)
            if len(x):
                yield first, x
            h_carry, raw_carry, first = h[len(x) :], raw[len(x) :], first + len(x)


@DESCRIPTOR_SOURCES.register()
class EmbeddingSource(DescriptorSource):
    """A pretrained model's window embeddings every quarter of the examples' mean length (20-250 ms), each standing
    for an event of the examples' length centred in the model's window."""

    name = "embedding"

    def __init__(self, settings: DetectorSettings, examples: np.ndarray, *, device: str = "cpu"):
        super().__init__(settings, examples, device=device)
        if not settings.embedding:
            raise ConfigError("detector setting source='embedding' needs embedding=MODEL[:LAYER] (e.g. yamnet)")
        self.backbone = load_backbone(settings.embedding, device=torch.device(device))
        length = float(np.mean(examples[:, 1] - examples[:, 0]))
        hop_s = float(np.clip(length / 4, MIN_EMBED_HOP_S, MAX_EMBED_HOP_S))
        f = self.backbone.features
        framing = patch_framing(f)
        step_s = framing.frame_hop / f.sample_rate if framing else 1 / f.sample_rate  # where windows can start
        self.hop_s = max(1, round(hop_s / step_s)) * step_s
        self.fps = 1.0 / self.hop_s
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
        emb = embed_files(self.backbone, [Path(recording)], device=torch.device(self.device), hop_s=self.hop_s, quiet=True)
        if emb.errors[0]:
            raise DataError(emb.errors[0])
        z, start = emb.windows[0], emb.times[0][:, 0]
        k = np.round(start * self.fps).astype(np.int64)
        on_grid = (np.abs(k / self.fps - start) < 0.5 / self.fps) & (k == np.arange(len(k)))
        z = z[on_grid]  # the clip policy's last window (ending at the file's end) is off the grid
        if self.settings.band_reference:
            z = z - np.median(z, axis=0)
        self._last = (Path(recording), z.astype(np.float32))
        yield 0, self._last[1]


def make_source(settings: DetectorSettings, examples: np.ndarray, *, device: str = "cpu") -> DescriptorSource:
    """The descriptor source ``settings.source`` names, for ``examples (k, 2)`` seconds, computing on ``device``."""
    return DESCRIPTOR_SOURCES.get(settings.source)(settings, examples, device=device)
