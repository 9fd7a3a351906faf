"""Window classifiers: a detector's model of "example or not" over window descriptors. Each implements
:class:`WindowClassifier` and is registered in :data:`WINDOW_CLASSIFIERS` (a detector's ``classifier`` names one)."""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from fewshot_audio.detection.settings import DetectorSettings
from fewshot_audio.util.logreg import fit_logistic
from fewshot_audio.util.registry import Registry


class WindowClassifier(abc.ABC):
    """Fitted on the descriptors of the example windows ``pos (p, d)`` and of the other annotated windows
    ``neg (q, d)``; scores descriptors ``(n, d)`` as ``(n,)`` float32 (higher: more like the examples).

    ``threshold``: a classifier that chooses its own decision threshold when fitted sets it (``None``: the
    detector's setting applies)."""

    name: ClassVar[str] = ""
    threshold: float | None = None

    def __init__(self, settings: DetectorSettings):
        self.settings = settings

    @abc.abstractmethod
    def fit(self, pos: np.ndarray, neg: np.ndarray, *, seed: int = 0) -> None:
        """Fit on example descriptors ``pos (p, d)`` against ``neg (q, d)``."""

    @abc.abstractmethod
    def scores(self, x: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` float32 of descriptors ``x (n, d)``."""


WINDOW_CLASSIFIERS: Registry[type[WindowClassifier]] = Registry("window classifier", base=WindowClassifier)


@WINDOW_CLASSIFIERS.register()
class LogisticWindows(WindowClassifier):
    """The toolkit's logistic regression (standardised descriptors, class-balanced, C = 1): the probability of
    an example."""

    name = "logreg"

    def fit(self, pos, neg, *, seed=0):
        x = np.concatenate([pos, neg])
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        self.model = fit_logistic(x, y, C=1.0, balanced=True, max_iter=2000, seed=seed, standardize=True)

    def scores(self, x):
        if not len(x):
            return np.zeros(0, np.float32)
        return self.model.probability(x)[:, 1].astype(np.float32)


@WINDOW_CLASSIFIERS.register()
class PrototypeWindows(WindowClassifier):
    """Prototypes in the descriptor space: the examples' mean, and ``negative_prototypes`` k-means centres of the
    negatives (a recording's background is many sounds, not one); the probability of the examples' prototype from
    the softmax of negative squared distances."""

    name = "prototypes"

    def fit(self, pos, neg, *, seed=0):
        from sklearn.cluster import KMeans  # optional at import time: heavy

        k = min(self.settings.negative_prototypes, len(neg))
        centres = KMeans(k, n_init=3, random_state=seed).fit(neg.astype(np.float64)).cluster_centers_
        self.protos = np.concatenate([pos.mean(0, keepdims=True), centres]).astype(np.float64)

    def scores(self, x):
        x = x.astype(np.float64)
        d = (x * x).sum(1, keepdims=True) - 2 * x @ self.protos.T + (self.protos**2).sum(1)[None]  # (n, 1 + k)
        logits = -d - (-d).max(axis=1, keepdims=True)
        p = np.exp(logits)
        return (p[:, 0] / p.sum(axis=1)).astype(np.float32)


@WINDOW_CLASSIFIERS.register()
class TemplateWindows(WindowClassifier):
    """Cosine to the examples' mean descriptor minus cosine to the negatives' (both z-scored by the negatives); its
    threshold is half-way between the two classes' mean scores."""

    name = "template"

    def fit(self, pos, neg, *, seed=0):
        self.mu, self.sd = neg.mean(0), neg.std(0) + 1e-6
        unit = lambda v: v / (np.linalg.norm(v) + 1e-12)  # noqa: E731
        self.pos_proto = unit(((pos - self.mu) / self.sd).mean(0))
        self.neg_proto = unit(((neg - self.mu) / self.sd).mean(0))
        self.threshold = float((self.scores(pos).mean() + self.scores(neg).mean()) / 2)

    def scores(self, x):
        z = (x - self.mu) / self.sd
        z = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)
        return (z @ self.pos_proto - z @ self.neg_proto).astype(np.float32)
