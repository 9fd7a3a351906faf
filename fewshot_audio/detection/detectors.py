"""Detectors: how window descriptors become scores and scores become events. One class per variant,
registered by name (``detect --detector NAME``); :mod:`~fewshot_audio.detection.pipeline` never branches on it.

* ``protonet-shape`` (the default): ``shape``'s descriptors beside the window embeddings of the shipped
  meta-trained network fine-tuned on the recording's examples, one logistic regression on both, ``shape``'s events
  (details under ``protonet-tuned`` below).
* ``shape``: each window's band means over four equal parts of it (its shape in time) and its
  band standard deviations, a logistic regression of the examples (shifted by up to an eighth of a window)
  against the windows of the annotated part that do not overlap them, then peaks above 0.8, each one event
  of the examples' mean length: peaks at least half that length apart whose scores dip by 0.2 between them are
  separate events, so hits closer than their own length (rolls, flams) are each found (:func:`score_peaks`).
* ``stats``: the floor the issue measured: band mean and std of windows every quarter window, the same
  logistic regression with shifts up to a quarter window, probability 0.5, windows above it merged.
* ``template``: the other floor: cosine to the examples' mean descriptor minus cosine to the negatives', the
  threshold half-way between the two classes' mean scores, windows above it merged.
* ``shape-self``: ``shape``, then adapted to the unlabelled recording: its confident peaks (>= 0.95) join
  the examples and its confident negatives (< 0.05) the negatives, refitted once (:func:`.pipeline.self_train`).
* ``shape-cv``: ``shape`` with its threshold chosen per recording (each example held out in turn).
* ``yamnet``: ``shape``'s classifier and events on YAMNet's embeddings instead of log-mel windows
  (:class:`.sources.EmbeddingSource`).
* ``protonet``: a frame-level prototypical network meta-trained on detection episodes (``train-detector``;
  ``--weights``, by default the network shipped in ``weights/``): the window embeddings of
  :class:`.sources.NetworkSource`, a positive prototype (the examples' mean) and 32 negative ones (k-means of the
  negatives), the probability of the positive from the softmax of negative squared distances, ``shape``'s events.
* ``protonet-lr``: ``shape``'s logistic regression on the meta-trained network's window embeddings.
* ``protonet-tuned``: ``protonet-lr`` on the network fine-tuned first on the recording's five examples against the
  rest of its annotated part (prototypical steps, :func:`.network.fine_tune`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewshot_audio.errors import ConfigError

DETECTORS: dict[str, type[Detector]] = {}
PEAK_DIP = 0.2  # how far the score must fall between two peaks for both to be events
DEFAULT_DETECTOR = "protonet-shape"
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "frame_tcn_words.pt"
"""The frame-level network meta-trained on spoken-word mixtures (weights/NOTICE.md says how and under what licence)."""


def register_detector(cls: type[Detector]) -> type[Detector]:
    DETECTORS[cls.name] = cls
    return cls


def make_detector(name: str, *, weights: str | None = None) -> Detector:
    """A fresh detector ``name``; ``weights``: the meta-trained network of a detector with ``network = True``
    (default: :data:`SHIPPED_WEIGHTS`)."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown detector {name!r}; registered: {', '.join(DETECTORS)}")
    det = DETECTORS[name]()
    det.weights = str(weights or SHIPPED_WEIGHTS) if det.network else weights
    return det


class Detector:
    """A detector's settings and its classifier. ``segments``: parts of a window whose band means describe
    it; ``shift``: positive windows start up to this fraction of a window from an example's onset; ``stride``:
    windows are scored every this fraction of a window (0: every frame); ``decode``: ``peaks`` (one event of
    the examples' mean length per peak, overlaps suppressed) or ``merge`` (windows above the threshold joined);
    ``band_reference``: refer each band to the recording's median level (else raw log-mel)."""

    name = ""
    segments = 4
    shift = 0.125
    stride = 0.0
    decode = "peaks"
    threshold = 0.8
    band_reference = True
    self_training = 0  # rounds of adaptation to the unlabelled recording (pipeline.self_train)
    confident = 0.95
    embedding: str | None = None  # a pretrained model's embeddings instead of log-mel windows (sources.py)
    threshold_folds = False  # choose the threshold per recording, each example held out in turn (pipeline.fit)
    network = False  # descriptors from a meta-trained frame-level network (sources.NetworkSource; needs weights)
    weights: str | None = None
    separation = 0.5  # peaks (events) at least this fraction of the examples' length apart: rolls are found
    with_shape = False  # a network detector's descriptors: its embeddings and the default's log-mel descriptors
    tune_steps = 0  # fine-tune the network on the recording's examples first (sources.NetworkSource.adapt)

    def fit(self, pos: np.ndarray, neg: np.ndarray, seed: int = 0) -> None:
        from sklearn.linear_model import LogisticRegression  # optional at import time: heavy
        from sklearn.preprocessing import StandardScaler

        x = np.concatenate([pos, neg])
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        self.scaler = StandardScaler().fit(x)
        self.model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
        self.model.fit(self.scaler.transform(x), y)

    def scores(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0, np.float32)
        return self.model.predict_proba(self.scaler.transform(x))[:, 1].astype(np.float32)


@register_detector
class ShapeLogReg(Detector):
    name = "shape"


@register_detector
class ShapeSelfTrained(Detector):
    name = "shape-self"
    self_training = 1


@register_detector
class ShapeFoldedThreshold(Detector):
    name = "shape-cv"
    threshold_folds = True


@register_detector
class YamnetLogReg(Detector):
    """The default's classifier and events on YAMNet's window embeddings (0.975 s) every quarter example."""

    name = "yamnet"
    embedding = "yamnet"


@register_detector
class ProtoNet(Detector):
    """Prototypes in the meta-trained network's embedding space: the examples' mean, and ``negative_prototypes``
    k-means centres of the negatives (a recording's background is many sounds, not one); the probability of the
    examples' prototype from the softmax of negative squared distances."""

    name = "protonet"
    network = True
    threshold = 0.5
    negative_prototypes = 32

    def fit(self, pos: np.ndarray, neg: np.ndarray, seed: int = 0) -> None:
        from sklearn.cluster import KMeans  # optional at import time: heavy

        k = min(self.negative_prototypes, len(neg))
        centres = KMeans(k, n_init=3, random_state=seed).fit(neg.astype(np.float64)).cluster_centers_
        self.protos = np.concatenate([pos.mean(0, keepdims=True), centres]).astype(np.float64)

    def scores(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        d = (x * x).sum(1, keepdims=True) - 2 * x @ self.protos.T + (self.protos**2).sum(1)[None]  # (n, 1 + k)
        logits = -d - (-d).max(axis=1, keepdims=True)
        p = np.exp(logits)
        return (p[:, 0] / p.sum(axis=1)).astype(np.float32)


@register_detector
class ProtoNetLogReg(Detector):
    name = "protonet-lr"
    network = True


@register_detector
class ProtoNetTuned(Detector):
    """``protonet-lr`` after fine-tuning the network on the recording's examples and annotated part."""

    name = "protonet-tuned"
    network = True
    tune_steps = 50


@register_detector
class ProtoNetShape(Detector):
    """``protonet-tuned``'s embeddings beside ``shape``'s log-mel descriptors, one logistic regression on both."""

    name = "protonet-shape"
    network = True
    tune_steps = 50
    with_shape = True


@register_detector
class StatsLogReg(Detector):
    name = "stats"
    segments, shift, stride, decode, threshold = 1, 0.25, 0.25, "merge", 0.5


@register_detector
class Template(Detector):
    name = "template"
    segments, shift, stride, decode = 1, 0.0, 0.25, "merge"

    def fit(self, pos: np.ndarray, neg: np.ndarray, seed: int = 0) -> None:
        self.mu, self.sd = neg.mean(0), neg.std(0) + 1e-6
        unit = lambda v: v / (np.linalg.norm(v) + 1e-12)  # noqa: E731
        self.pos_proto = unit(((pos - self.mu) / self.sd).mean(0))
        self.neg_proto = unit(((neg - self.mu) / self.sd).mean(0))
        self.threshold = float((self.scores(pos).mean() + self.scores(neg).mean()) / 2)

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mu) / self.sd
        z = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)
        return (z @ self.pos_proto - z @ self.neg_proto).astype(np.float32)


def decode_events(scores: np.ndarray, starts: np.ndarray, det: Detector, *, fps: float, window: int,
                  length: float, min_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Events ``(m, 2)`` seconds and their scores from window ``scores`` at window ``starts`` (frames)."""
    if det.decode == "merge":  # windows above the threshold joined into one event
        above = scores > det.threshold
        runs = np.flatnonzero(np.diff(np.r_[0, above.astype(np.int8), 0])).reshape(-1, 2)
        events = np.array([[starts[a] / fps, (starts[b - 1] + window) / fps] for a, b in runs]).reshape(-1, 2)
        best = np.array([scores[a:b].max() for a, b in runs], np.float32)
        keep = events[:, 1] - events[:, 0] >= min_length / 2
        return events[keep], best[keep]
    peaks = score_peaks(scores, starts, det.threshold, fps=fps, separation=length * det.separation)
    onsets = starts[peaks] / fps
    events = np.stack([onsets, onsets + length], axis=1).reshape(-1, 2)
    return events, scores[peaks].astype(np.float32)


def score_peaks(scores: np.ndarray, starts: np.ndarray, threshold: float, *, fps: float, separation: float,
                dip: float = PEAK_DIP) -> np.ndarray:
    """Indices of the peaks of ``scores`` (at window ``starts``, frames) above ``threshold``: local maxima at least
    ``separation`` seconds from a higher one and standing at least ``dip`` above the lowest score between them
    (their prominence), so that one event's plateau gives one peak while hits closer than their own length (a
    roll, a flam) each give theirs."""
    from scipy.signal import find_peaks  # optional at import time: heavy

    if not len(scores):
        return np.zeros(0, np.int64)
    step = float(np.median(np.diff(starts))) if len(starts) > 1 else 1.0
    distance = max(1, int(round(separation * fps / step)))
    padded = np.r_[-np.inf, scores.astype(np.float64), -np.inf]  # a peak at either end counts
    found, _ = find_peaks(padded, height=threshold + 1e-12, distance=distance, prominence=dip)
    return (found - 1).astype(np.int64)
