"""The toolkit's one logistic regression (scikit-learn's, L-BFGS): strategies, tagger heads and detectors fit it
through :func:`fit_logistic`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class LogisticModel:
    """A fitted logistic regression: ``coef (k, d)``, ``intercept (k,)`` (``k = 1`` for two classes), and the
    standardisation fitted with it (``scaler``, ``None`` without one)."""

    estimator: Any
    scaler: Any = None

    @property
    def coef(self) -> np.ndarray:
        """The weights ``(k, d)`` (of standardised inputs when fitted with ``standardize``)."""
        return self.estimator.coef_

    @property
    def intercept(self) -> np.ndarray:
        """The intercepts ``(k,)``."""
        return self.estimator.intercept_

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` of inputs ``x (n, d)``."""
        return self.estimator.predict_proba(self.scaler.transform(x) if self.scaler is not None else x)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, C: float = 10.0, balanced: bool = False, max_iter: int = 2000,
                 seed: int | None = None, standardize: bool = False) -> LogisticModel:
    """A logistic regression of labels ``y (n,)`` on ``x (n, d)``; ``balanced`` weights classes inversely to their
    counts, ``standardize`` z-scores the inputs first (the scaler is kept with the model).

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> model = fit_logistic(x, np.array([0, 0, 1, 1]))
    >>> bool(model.probability(np.array([[3.0]]))[0, 1] > 0.5)
    True
    """
    from sklearn.linear_model import LogisticRegression  # imported on use: heavy, only fitting needs it
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x) if standardize else None
    estimator = LogisticRegression(C=C, class_weight="balanced" if balanced else None, max_iter=max_iter,
                                   random_state=seed)
    estimator.fit(scaler.transform(x) if scaler is not None else x, y)
    return LogisticModel(estimator, scaler)
