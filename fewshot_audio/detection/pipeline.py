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
from fewshot_audio.detection.detectors import Detector, DetectorSettings, make_detector
from fewshot_audio.detection.frames import NEGATIVE_IOU, max_iou
from fewshot_audio.detection.metric import iou_hits
from fewshot_audio.detection.sources import DescriptorSource, make_source
from fewshot_audio.errors import DataError

MAX_NEGATIVES = 30_000


@dataclass(frozen=True)
class Episode:
    """A recording, its example events ``(k, 2)`` (seconds, in order) and the end of its annotated part."""

    recording: Path
    label: str
    examples: np.ndarray
    name: str = ""  # the file name predictions use (the annotated one; default: the recording's)

    @property
    def audio_name(self) -> str:
        """The file name predictions are written under (the annotated one, else the recording's)."""
        return self.name or Path(self.recording).name

    @property
    def known_until(self) -> float:
        """Seconds up to which the recording counts as annotated: the end of the last example."""
        return float(self.examples[-1, 1])


@dataclass
class Fitted:
    """A detector fitted on one episode, with its descriptor source and the examples' lengths."""

    detector: Detector
    source: DescriptorSource
    length: float  # the examples' mean length (s): the length of a peak's event
    min_length: float
    pos: np.ndarray  # the descriptors it was fitted on
    neg: np.ndarray


@dataclass
class Detections:
    """Events found in one recording: ``events (m, 2)`` seconds and their ``scores (m,)``."""
    events: np.ndarray  # (m, 2) seconds
    scores: np.ndarray  # (m,)


def fit(episode: Episode, detector: str, *, seed: int = 0, weights: str | None = None,
        settings: DetectorSettings | None = None, device: str = "cpu") -> Fitted:
    """The detector fitted on ``episode``: its examples (shifted by up to the detector's ``shift``) against the
    descriptors of the annotated part whose events do not overlap them. ``weights``: a meta-trained network's, for a
    detector that uses one; ``settings``: instead of the registered detector's; ``device``: where networks run."""
    det = make_detector(detector, weights=weights, settings=settings)
    src = make_source(det.settings, episode.examples, device=device)
    src.adapt(episode.recording, episode.examples)
    need = int(np.ceil(episode.known_until * src.fps)) + 1
    parts, have = [], 0
    for _, x in src.blocks(episode.recording):
        parts.append(x)
        have += len(x)
        if have >= need:
            break
    x = np.concatenate(parts)
    onsets = np.round(episode.examples[:, 0] * src.fps - src.offset).astype(np.int64)
    shift = int(round(det.settings.shift * src.window))
    pos = np.unique((onsets[:, None] + np.arange(-shift, shift + 1)[None, :]).ravel())
    pos = pos[(pos >= 0) & (pos < len(x))]
    before = np.arange(len(x))
    before = before[(before + src.reach) / src.fps <= episode.known_until]  # reads annotated audio only
    neg = before[max_iou((before + src.offset) / src.fps, src.window / src.fps, episode.examples) < NEGATIVE_IOU]
    if not len(pos) or not len(neg):
        raise DataError(f"{episode.recording} ({episode.label}): no {'example' if not len(pos) else 'unannotated'} "
                        "windows before the last example's end; the examples must lie inside the recording with "
                        "some audio between or before them")
    if len(neg) > MAX_NEGATIVES:
        neg = np.sort(np.random.default_rng(seed).choice(neg, MAX_NEGATIVES, replace=False))
    lengths = episode.examples[:, 1] - episode.examples[:, 0]
    if det.settings.threshold_folds:
        det.threshold = _folded_threshold(det, src, x, pos, neg, before, episode.examples, lengths, seed)
    det.fit(x[pos], x[neg], seed=seed)
    return Fitted(det, src, float(lengths.mean()), float(lengths.min()), x[pos], x[neg])


def _folded_threshold(det: Detector, src, x: np.ndarray, pos: np.ndarray, neg: np.ndarray, before: np.ndarray,
                      examples: np.ndarray, lengths: np.ndarray, seed: int) -> float:
    """The threshold that maximises F over the annotated part, each example held out in turn: the windows nearest
    it (in time) are scored by a detector fitted on the other examples and their negatives."""
    centre = (before + src.offset + src.window / 2) / src.fps
    fold = np.argmin(np.abs(centre[:, None] - examples.mean(axis=1)[None, :]), axis=1)  # nearest example
    pos_fold = np.argmin(np.abs((pos[:, None] + src.offset) / src.fps - examples[None, :, 0]), axis=1)
    neg_fold = fold[np.searchsorted(before, neg)]  # the negatives are among ``before``
    grid = np.round(np.arange(0.5, 0.99, 0.02), 2)
    tp, fp, fn = np.zeros(len(grid)), np.zeros(len(grid)), np.zeros(len(grid))
    for i in range(len(examples)):
        held = Detector(det.name, det.settings)
        held.fit(x[pos[pos_fold != i]], x[neg[neg_fold != i]], seed=seed)
        k = before[fold == i]
        s = held.scores(x[k])
        for g, t in enumerate(grid):
            held.threshold = t
            ev, _ = held.decode(s, k + src.offset, fps=src.fps, window_frames=src.window,
                                length_s=float(lengths.mean()), min_length_s=float(lengths.min()))
            hit = bool(iou_hits(examples[i : i + 1], ev))  # the metric's IoU > 0.3
            tp[g] += hit
            fn[g] += not hit
            fp[g] += len(ev) - hit
    f = tp / np.maximum(tp + (fp + fn) / 2, 1e-9)
    return float(grid[np.flatnonzero(f == f.max())[-1]])  # the highest of the best


def window_scores(fitted: Fitted, recording: Path) -> tuple[np.ndarray, np.ndarray]:
    """The detector's score of every descriptor it scores (every ``stride``), and the descriptors' indices."""
    det, src = fitted.detector, fitted.source
    stride = max(1, int(round(det.settings.stride * src.window))) if det.settings.stride else 1
    scores, starts = [], []
    for first, x in src.blocks(recording):
        idx = np.arange(len(x))
        idx = idx[(first + idx) % stride == 0]
        if len(idx):
            scores.append(det.scores(x[idx]))
            starts.append(first + idx)
    return (np.concatenate(scores) if scores else np.zeros(0, np.float32),
            np.concatenate(starts) if starts else np.zeros(0, np.int64))


NO_EVENTS = np.zeros((0, 2))


def _decode(fitted: Fitted, s: np.ndarray, k: np.ndarray, after: float, known: np.ndarray) -> Detections:
    src = fitted.source
    events, ev_scores = fitted.detector.decode(s, k + src.offset, fps=src.fps, window_frames=src.window,
                                               length_s=fitted.length, min_length_s=fitted.min_length)
    keep = (events[:, 1] > after) & ~overlaps_any(events, known)
    return Detections(events[keep], ev_scores[keep])


def overlaps_any(events: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``(m,)`` whether each of ``events (m, 2)`` overlaps (shares any time with) one of ``known (k, 2)``."""
    if not len(events) or not len(known):
        return np.zeros(len(events), bool)
    return ((events[:, None, 0] < known[None, :, 1]) & (events[:, None, 1] > known[None, :, 0])).any(axis=1)


def detect(fitted: Fitted, recording: Path, *, after: float = 0.0, known: np.ndarray = NO_EVENTS) -> Detections:
    """Every event ``fitted`` finds in ``recording`` (block by block: memory bounded by one block), those
    ending after ``after`` seconds and overlapping none of the ``known`` events ``(k, 2)`` (the examples)."""
    return _decode(fitted, *window_scores(fitted, recording), after, known)


def self_train(fitted: Fitted, recording: Path, *, after: float, known: np.ndarray = NO_EVENTS,
               seed: int = 0) -> Detections:
    """Adapt to the unlabelled rest of the recording (``detector.self_training`` rounds): the peaks scoring at
    least ``detector.confident`` after ``after`` join the examples, windows scoring under ``1 - confident`` join
    the negatives, the detector is refitted, and the recording scored again."""
    det, src = fitted.detector, fitted.source
    s, k = window_scores(fitted, recording)
    rng = np.random.default_rng(seed)
    for _ in range(det.settings.self_training):
        found = _decode(fitted, s, k, after, known)
        onsets = np.round(found.events[found.scores >= det.settings.confident, 0] * src.fps - src.offset).astype(np.int64)
        low = k[(s < 1 - det.settings.confident) & (k / src.fps >= after)]
        low = np.sort(rng.choice(low, min(len(low), MAX_NEGATIVES), replace=False)) if len(low) else low
        if not len(onsets):
            break
        pos_x, neg_x = _rows_at(fitted, recording, onsets), _rows_at(fitted, recording, low)
        det.fit(np.concatenate([fitted.pos, pos_x]), np.concatenate([fitted.neg, neg_x]), seed=seed)
        s, k = window_scores(fitted, recording)
    return _decode(fitted, s, k, after, known)


def _rows_at(fitted: Fitted, recording: Path, index: np.ndarray) -> np.ndarray:
    """The descriptors numbered ``index`` (sorted)."""
    out = []
    for first, x in fitted.source.blocks(recording):
        take = index[(index >= first) & (index < first + len(x))]
        out.append(x[take - first])
    return np.concatenate(out)


def find(fitted: Fitted, recording: Path, *, after: float = 0.0, known: np.ndarray = NO_EVENTS,
         seed: int = 0) -> Detections:
    """The events of ``recording`` ending after ``after`` and overlapping none of ``known`` (the examples, in
    their own recording): :func:`detect`, or :func:`self_train` for a detector that adapts to the unlabelled
    recording."""
    if fitted.detector.settings.self_training:
        return self_train(fitted, recording, after=after, known=known, seed=seed)
    return detect(fitted, recording, after=after, known=known)


def run_episode(episode: Episode, detector: str, *, seed: int = 0, weights: str | None = None,
                settings: DetectorSettings | None = None, device: str = "cpu") -> Detections:
    """Fit on the episode's examples, find the later events in the rest of its recording."""
    duration = audio_duration(episode.recording)
    if duration <= 0:
        raise DataError(f"{episode.recording} is empty; remove it or its annotation")
    fitted = fit(episode, detector, seed=seed, weights=weights, settings=settings, device=device)
    return find(fitted, episode.recording, after=episode.known_until,
                known=episode.examples, seed=seed)
