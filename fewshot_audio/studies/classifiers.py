"""The probe's classifiers, one registered class each: the estimator (standardised features first) and the grid
its hyperparameters are chosen from, inside the training folds (:func:`~fewshot_audio.studies.probe.nested_scores`)."""

from __future__ import annotations

import abc

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from fewshot_audio.util.registry import Registry


class ProbeClassifier(abc.ABC):
    """``estimator(seed)``: a scikit-learn pipeline; ``grid(n_features)``: its parameter grid (pipeline names)."""

    @abc.abstractmethod
    def estimator(self, seed: int):
        """A fresh scikit-learn pipeline (standardisation, the classifier) seeded with ``seed``."""
        ...

    @abc.abstractmethod
    def grid(self, n_features: int) -> list[dict] | dict:
        """The hyperparameter grid searched by cross-validation for ``n_features`` features (pipeline parameter names)."""
        ...


CLASSIFIERS: Registry[type[ProbeClassifier]] = Registry("probe classifier", base=ProbeClassifier)

def _pipeline(model):
    from sklearn.pipeline import make_pipeline  # optional at import time: heavy
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), model)


@CLASSIFIERS.register("svm")
class SVM(ProbeClassifier):
    """A support vector machine, RBF or linear kernel, C in {0.1, 2, 8, 32}, the RBF's gamma 0.25, 1 or 4 over the
    number of features (the paper's grid)."""

    def estimator(self, seed: int):
        from sklearn.svm import SVC  # optional at import time: heavy

        return _pipeline(SVC(random_state=seed))

    def grid(self, n_features: int) -> list[dict]:
        cs = [0.1, 2.0, 8.0, 32.0]
        return [{"svc__kernel": ["rbf"], "svc__C": cs, "svc__gamma": [g / n_features for g in (0.25, 1.0, 4.0)]},
                {"svc__kernel": ["linear"], "svc__C": cs}]


@CLASSIFIERS.register("logreg")
class LogReg(ProbeClassifier):
    """A multinomial logistic regression, C in {0.01, 0.1, 1, 10}."""

    def estimator(self, seed: int):
        from sklearn.linear_model import LogisticRegression  # optional at import time: heavy

        return _pipeline(LogisticRegression(max_iter=2000, random_state=seed))

    def grid(self, n_features: int) -> dict:
        return {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}


class ExtremeLearningMachine(ClassifierMixin, BaseEstimator):
    """An extreme learning machine: a fixed random hidden layer (``hidden`` tanh units, seeded) and a ridge
    regression (``alpha``) from it to one-hot targets."""

    def __init__(self, hidden: int = 1000, alpha: float = 1.0, random_state: int = 0):
        self.hidden, self.alpha, self.random_state = hidden, alpha, random_state

    def _hidden(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ self.w_ + self.b_)

    def fit(self, x: np.ndarray, y: np.ndarray) -> ExtremeLearningMachine:
        """Fit the random hidden layer's output weights to ``x (n, d)`` and labels ``y (n,)`` by ridge regression."""
        rng = np.random.default_rng(self.random_state)
        self.classes_ = np.unique(y)
        self.w_ = rng.standard_normal((x.shape[1], self.hidden)) / np.sqrt(x.shape[1])
        self.b_ = rng.standard_normal(self.hidden)
        h = self._hidden(x)
        t = (y[:, None] == self.classes_[None]).astype(np.float64)
        if len(x) < self.hidden:  # the dual form: an n x n system instead of hidden x hidden
            self.beta_ = h.T @ np.linalg.solve(h @ h.T + self.alpha * np.eye(len(x)), t)
        else:
            self.beta_ = np.linalg.solve(h.T @ h + self.alpha * np.eye(self.hidden), h.T @ t)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The labels of ``x (n, d)``."""
        return self.classes_[(self._hidden(x) @ self.beta_).argmax(1)]


@CLASSIFIERS.register("elm")
class ELM(ProbeClassifier):
    """An extreme learning machine, 1,000 or 3,000 hidden units, ridge alpha in {0.1, 1, 10}."""

    def estimator(self, seed: int):
        return _pipeline(ExtremeLearningMachine(random_state=seed))

    def grid(self, n_features: int) -> dict:
        return {"extremelearningmachine__hidden": [1000, 3000], "extremelearningmachine__alpha": [0.1, 1.0, 10.0]}
