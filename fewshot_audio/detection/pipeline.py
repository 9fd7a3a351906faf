"""Few-shot detection of one sound in long recordings: fit a detector on a recording's first examples and the
unlabelled audio around them, then find every later occurrence.

The protocol's rule is built into the types: :class:`Episode` holds the recording, the examples and the time up
to which the recording counts as annotated (the last example's end), nothing else. Windows before that time
that do not overlap an example are the negatives; the band levels of the whole recording (unlabelled) set the
reference of every band. No annotation after the examples can reach a detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewshot_audio.data.audio import audio_duration
from fewshot_audio.detection.detectors import Detector, decode_events, make_detector
from fewshot_audio.detection.frames import N_MELS, FrameSpec, band_medians, stream_frames, windows
from fewshot_audio.errors import DataError

MAX_NEGATIVES = 30_000
NEGATIVE_IOU = 0.1  # windows overlapping an example less than this are negatives


@dataclass(frozen=True)
class Episode:
    """A recording, its example events ``(k, 2)`` (seconds, in order) and the end of its annotated part."""

    recording: Path
    label: str
    examples: np.ndarray
    name: str = ""  # the file name predictions use (the annotated one; default: the recording's)

    @property
    def audio_name(self) -> str:
        return self.name or Path(self.recording).name

    @property
    def known_until(self) -> float:
        return float(self.examples[-1, 1])


@dataclass
class Fitted:
    """A detector fitted on one episode, with the frames and lengths it was fitted for."""

    detector: Detector
    spec: FrameSpec
    length: float  # the examples' mean length (s): the length of a peak's event
    min_length: float


@dataclass
class Detections:
    events: np.ndarray  # (m, 2) seconds
    scores: np.ndarray  # (m,)


def _window_iou(starts: np.ndarray, spec: FrameSpec, examples: np.ndarray) -> np.ndarray:
    a, b = starts[:, None] / spec.fps, (starts[:, None] + spec.window) / spec.fps
    inter = np.maximum(0.0, np.minimum(b, examples[None, :, 1]) - np.maximum(a, examples[None, :, 0]))
    union = np.maximum(b, examples[None, :, 1]) - np.minimum(a, examples[None, :, 0])
    return (inter / union).max(axis=1)


def _reference(det: Detector, recording: Path, spec: FrameSpec) -> np.ndarray:
    return band_medians(recording, spec) if det.band_reference else np.zeros(N_MELS, np.float32)


def fit(episode: Episode, detector: str, *, seed: int = 0) -> Fitted:
    """The detector fitted on ``episode``: its examples (shifted by up to the detector's ``shift``) against the
    windows of the annotated part that do not overlap them."""
    det = make_detector(detector)
    spec = FrameSpec.for_examples(episode.examples)
    medians = _reference(det, episode.recording, spec)
    need = int(np.ceil(episode.known_until * spec.fps)) + spec.window + 1
    blocks, have = [], 0
    for block in stream_frames(episode.recording, spec):
        blocks.append(block)
        have += len(block)
        if have >= need:
            break
    x = windows(np.concatenate(blocks) - medians, spec.window, det.segments)
    onsets = np.round(episode.examples[:, 0] * spec.fps).astype(np.int64)
    shift = int(round(det.shift * spec.window))
    pos = np.unique((onsets[:, None] + np.arange(-shift, shift + 1)[None, :]).ravel())
    pos = pos[(pos >= 0) & (pos < len(x))]
    before = np.arange(len(x))
    before = before[(before + spec.window) / spec.fps <= episode.known_until]
    neg = before[_window_iou(before, spec, episode.examples) < NEGATIVE_IOU]
    if not len(pos) or not len(neg):
        raise DataError(f"{episode.recording} ({episode.label}): no {'example' if not len(pos) else 'unannotated'} "
                        "windows before the last example's end; the examples must lie inside the recording with "
                        "some audio between or before them")
    if len(neg) > MAX_NEGATIVES:
        neg = np.sort(np.random.default_rng(seed).choice(neg, MAX_NEGATIVES, replace=False))
    det.fit(x[pos], x[neg], seed=seed)
    lengths = episode.examples[:, 1] - episode.examples[:, 0]
    return Fitted(det, spec, float(lengths.mean()), float(lengths.min()))


def detect(fitted: Fitted, recording: Path, *, after: float = 0.0) -> Detections:
    """Every event ``fitted`` finds in ``recording`` (block by block: memory bounded by one block), those
    ending after ``after`` seconds."""
    spec, det = fitted.spec, fitted.detector
    medians = _reference(det, recording, spec)
    stride = max(1, int(round(det.stride * spec.window))) if det.stride else 1
    carry = np.zeros((0, medians.shape[0]), np.float32)
    first = 0  # frame index of carry[0]
    scores, starts = [], []
    for block in stream_frames(recording, spec):
        frames = np.concatenate([carry, block - medians])
        x = windows(frames, spec.window, det.segments)
        idx = np.arange(len(x))
        idx = idx[(first + idx) % stride == 0]
        if len(idx):
            scores.append(det.scores(x[idx]))
            starts.append(first + idx)
        keep_from = len(x)  # the next window starts here
        carry, first = frames[keep_from:], first + keep_from
    s = np.concatenate(scores) if scores else np.zeros(0, np.float32)
    k = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    events, ev_scores = decode_events(s, k, det, fps=spec.fps, window=spec.window, length=fitted.length,
                                      min_length=fitted.min_length)
    keep = events[:, 1] > after
    return Detections(events[keep], ev_scores[keep])


def run_episode(episode: Episode, detector: str, *, seed: int = 0) -> Detections:
    """Fit on the episode's examples, detect in the rest of its recording."""
    duration = audio_duration(episode.recording)
    if duration <= 0:
        raise DataError(f"{episode.recording} is empty; remove it or its annotation")
    return detect(fit(episode, detector, seed=seed), episode.recording, after=episode.known_until)
