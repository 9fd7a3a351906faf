"""Event decoders: how a detector's window scores become events. Each implements :class:`EventDecoder` and is
registered in :data:`EVENT_DECODERS` (a detector's ``decoder`` names one)."""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from fewshot_audio.detection.settings import DetectorSettings
from fewshot_audio.util.registry import Registry

PEAK_DIP = 0.2  # how far the score must fall between two peaks for both to be events


class EventDecoder(abc.ABC):
    """Events ``(m, 2)`` (seconds) and their scores ``(m,)`` from window ``scores (n,)`` at window ``starts (n,)``
    (in descriptor frames, ``fps`` per second), windows ``window_frames`` long; ``length_s`` is the examples' mean
    length and ``min_length_s`` the shortest example's."""

    name: ClassVar[str] = ""

    def __init__(self, settings: DetectorSettings):
        self.settings = settings

    @abc.abstractmethod
    def decode(self, scores: np.ndarray, starts: np.ndarray, *, threshold: float, fps: float, window_frames: int,
               length_s: float, min_length_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``(events (m, 2) seconds, scores (m,) float32)``."""


EVENT_DECODERS: Registry[type[EventDecoder]] = Registry("event decoder", base=EventDecoder)


@EVENT_DECODERS.register()
class PeakEvents(EventDecoder):
    """One event of the examples' mean length per score peak above the threshold; peaks at least ``separation``
    of that length apart whose scores dip by :data:`PEAK_DIP` between them are separate events
    (:func:`score_peaks`), so hits closer than their own length (rolls, flams) are each found."""

    name = "peaks"

    def decode(self, scores, starts, *, threshold, fps, window_frames, length_s, min_length_s):
        peaks = score_peaks(scores, starts, threshold, fps=fps, separation_s=length_s * self.settings.separation)
        onsets = starts[peaks] / fps
        events = np.stack([onsets, onsets + length_s], axis=1).reshape(-1, 2)
        return events, scores[peaks].astype(np.float32)


@EVENT_DECODERS.register()
class MergedEvents(EventDecoder):
    """Windows above the threshold joined into one event; events shorter than half the shortest example dropped."""

    name = "merge"

    def decode(self, scores, starts, *, threshold, fps, window_frames, length_s, min_length_s):
        above = scores > threshold
        runs = np.flatnonzero(np.diff(np.r_[0, above.astype(np.int8), 0])).reshape(-1, 2)
        events = np.array([[starts[a] / fps, (starts[b - 1] + window_frames) / fps] for a, b in runs]).reshape(-1, 2)
        best = np.array([scores[a:b].max() for a, b in runs], np.float32)
        keep = events[:, 1] - events[:, 0] >= min_length_s / 2
        return events[keep], best[keep]


def score_peaks(scores: np.ndarray, starts: np.ndarray, threshold: float, *, fps: float, separation_s: float,
                dip: float = PEAK_DIP) -> np.ndarray:
    """Indices of the peaks of ``scores`` (at window ``starts``, frames) above ``threshold``: local maxima at least
    ``separation_s`` seconds from a higher one and standing at least ``dip`` above the lowest score between them
    (their prominence), so that one event's plateau gives one peak while hits closer than their own length (a
    roll, a flam) each give theirs.

    Examples
    --------
    >>> score_peaks(np.array([0.1, 0.9, 0.2, 0.95, 0.1]), np.arange(5), 0.5, fps=1.0, separation_s=1.0)
    array([1, 3])
    """
    from scipy.signal import find_peaks  # optional at import time: heavy

    if not len(scores):
        return np.zeros(0, np.int64)
    step = float(np.median(np.diff(starts))) if len(starts) > 1 else 1.0
    distance = max(1, int(round(separation_s * fps / step)))
    padded = np.r_[-np.inf, scores.astype(np.float64), -np.inf]  # a peak at either end counts
    found, _ = find_peaks(padded, height=threshold + 1e-12, distance=distance, prominence=dip)
    return (found - 1).astype(np.int64)
