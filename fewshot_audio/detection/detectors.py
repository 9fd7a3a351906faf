"""Detectors: a detector is a named composition of a descriptor source (:mod:`.sources`), a window classifier
(:mod:`.classifiers`) and an event decoder (:mod:`.decoders`), with its settings (:class:`DetectorSettings`).
Each is registered in :data:`DETECTORS` by name (``detect --detector NAME``) and can be read from YAML
(``detect --config``); :mod:`~fewshot_audio.detection.pipeline` never branches on a name.

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

from fewshot_audio.config import read_yaml
from fewshot_audio.detection.classifiers import WINDOW_CLASSIFIERS, WindowClassifier
from fewshot_audio.detection.decoders import EVENT_DECODERS, EventDecoder
from fewshot_audio.detection.settings import DetectorSettings
from fewshot_audio.errors import ConfigError
from fewshot_audio.util.registry import Registry

DEFAULT_DETECTOR = "protonet-shape"


DETECTORS: Registry[DetectorSettings] = Registry("detector", base=DetectorSettings)
"""Every detector by name; a new one is ``DETECTORS.add(NAME, DetectorSettings(...))``."""

DETECTORS.add("shape", DetectorSettings(description=(
    "each window's band means over four parts of it and band std, a logistic regression of the examples (shifted by "
    "up to an eighth of a window) against the other annotated windows, then peaks above 0.8, one event each")))
DETECTORS.add("shape-self", DetectorSettings(self_training=1, description=(
    "shape, refitted once with its confident peaks (>= 0.95) and negatives (< 0.05) of the unlabelled recording")))
DETECTORS.add("shape-cv", DetectorSettings(threshold_folds=True, description=(
    "shape with its threshold chosen per recording, each example held out in turn")))
DETECTORS.add("yamnet", DetectorSettings(source="embedding", embedding="yamnet", description=(
    "shape's classifier and events on YAMNet's window embeddings (0.975 s) every quarter example")))
DETECTORS.add("protonet", DetectorSettings(source="network", classifier="prototypes", threshold=0.5, description=(
    "prototypes (the examples' mean, 32 k-means centres of the negatives) in the meta-trained frame-level "
    "network's embedding space")))
DETECTORS.add("protonet-lr", DetectorSettings(source="network", description=(
    "shape's logistic regression on the meta-trained network's window embeddings")))
DETECTORS.add("protonet-tuned", DetectorSettings(source="network", tune_steps=50, description=(
    "protonet-lr after fine-tuning the network on the recording's examples and annotated part")))
DETECTORS.add(DEFAULT_DETECTOR, DetectorSettings(source="network", tune_steps=50, with_shape=True, description=(
    "protonet-tuned's embeddings beside shape's log-mel descriptors, one logistic regression on both (the default)")))
DETECTORS.add("stats", DetectorSettings(segments=1, shift=0.25, stride=0.25, decoder="merge", threshold=0.5,
                                        description=("a floor: band mean and std every quarter window, a logistic "
                                                     "regression, windows above 0.5 merged")))
DETECTORS.add("template", DetectorSettings(classifier="template", segments=1, shift=0.0, stride=0.25, decoder="merge",
                                           description=("a floor: cosine to the examples' mean minus cosine to the "
                                                        "negatives', windows above half-way merged")))


def check_parts(settings: DetectorSettings) -> DetectorSettings:
    """``settings``, once every part it names is registered (one line naming an unknown one otherwise)."""
    from fewshot_audio.detection.sources import DESCRIPTOR_SOURCES  # the sources read the network: only when used

    DESCRIPTOR_SOURCES.get(settings.source)
    WINDOW_CLASSIFIERS.get(settings.classifier)
    EVENT_DECODERS.get(settings.decoder)
    return settings


class Detector:
    """A detector made from its settings: its classifier and decoder, and the threshold in force (the settings',
    or the one its classifier chose when fitted)."""

    def __init__(self, name: str, settings: DetectorSettings):
        self.name, self.settings = name, settings
        self.classifier: WindowClassifier = WINDOW_CLASSIFIERS.get(settings.classifier)(settings)
        self.decoder: EventDecoder = EVENT_DECODERS.get(settings.decoder)(settings)
        self.threshold = settings.threshold

    def fit(self, pos: np.ndarray, neg: np.ndarray, seed: int = 0) -> None:
        """Fit the classifier on example descriptors ``pos (p, d)`` against ``neg (q, d)``."""
        self.classifier.fit(pos, neg, seed=seed)
        if self.classifier.threshold is not None:
            self.threshold = self.classifier.threshold

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` of descriptors ``x (n, d)``."""
        return self.classifier.scores(x)

    def decode(self, scores: np.ndarray, starts: np.ndarray, *, fps: float, window_frames: int, length_s: float,
               min_length_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Events ``(m, 2)`` seconds and their scores from window ``scores`` at window ``starts`` (frames)."""
        return self.decoder.decode(scores, starts, threshold=self.threshold, fps=fps, window_frames=window_frames,
                                   length_s=length_s, min_length_s=min_length_s)


def detector_settings(name: str, *, config: str | Path | None = None) -> DetectorSettings:
    """The settings of detector ``name``, changed by the YAML file ``config`` (a mapping of settings, optionally
    with ``detector: NAME`` naming the one it starts from), every part they name checked to be registered."""
    if config is not None:
        changes = read_detector_config(config)
        name = changes.pop("detector", name)
        settings = DETECTORS.get(name).replace(**changes)
    else:
        settings = DETECTORS.get(name)
    return check_parts(settings)


def read_detector_config(path: str | Path) -> dict:
    """The mapping of detector settings in the YAML file ``path`` (checked to be a mapping)."""
    data = read_yaml(path, what="detector config")
    if not isinstance(data, dict):
        raise ConfigError(f"detector config {path} must be a mapping of settings (e.g. 'threshold: 0.7'), "
                          f"got {type(data).__name__}")
    return dict(data)


def make_detector(name: str, *, weights: str | None = None, settings: DetectorSettings | None = None) -> Detector:
    """A fresh detector ``name`` (with ``settings`` instead of the registered ones when given); ``weights``: the
    meta-trained network of a network source."""
    settings = settings if settings is not None else DETECTORS.get(name)
    if weights is not None:
        settings = settings.replace(weights=str(weights))
    return Detector(name, settings)
