"""Tagger heads: how one tag is fitted from its clip embeddings and how clips are scored against it.

A head implements :class:`Head` and is registered in :data:`HEADS`; the tagger and its files name it and never branch
on the name. Embeddings come in the tagger's space (centred on the support mean, L2-normalised).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch

from fewshot_audio.fewshot.strategies.embedding import cosine_scores, logistic_regression
from fewshot_audio.util.registry import Registry


class Head(abc.ABC):
    """One tag's parameters ``(width(d),)`` from clip embeddings ``zs (n, d)`` and a positive mask ``(n,)``,
    and the scores ``(n, n_tags)`` of clips against stacked parameters ``(n_tags, width(d))``."""

    name: ClassVar[str] = ""

    @staticmethod
    def width(dim: int) -> int:
        """The number of parameters per tag for embeddings of size ``dim``."""
        return dim

    @abc.abstractmethod
    def fit(self, zs: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """One tag's parameters ``(width(d),)`` from embeddings ``zs (n, d)`` and a boolean mask ``(n,)``."""

    @abc.abstractmethod
    def scores(self, zs: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Scores ``(n, n_tags)`` of embeddings ``zs (n, d)`` against parameters ``(n_tags, width(d))``."""


HEADS: Registry[type[Head]] = Registry("head", base=Head)
"""Every tagger head by name (a tagger's ``head``)."""


def get_head(name: str) -> Head:
    """A fresh head registered as ``name`` (one line listing the registered ones otherwise).

    Examples
    --------
    >>> get_head("prototypes").name
    'prototypes'
    """
    return HEADS.get(name)()


@HEADS.register()
class PrototypeHead(Head):
    """The mean of the tag's examples; a clip's score is its cosine to it."""

    name = "prototypes"

    def fit(self, zs, positives):
        return zs[positives].mean(0)

    def scores(self, zs, params):
        return cosine_scores(zs, params)


@HEADS.register()
class LinearHead(Head):
    """A one-vs-rest logistic regression (class-balanced, C = 10); a clip's score is its logit."""

    name = "linear"

    @staticmethod
    def width(dim: int) -> int:
        return dim + 1

    def fit(self, zs, positives):
        y = positives.numpy()
        if y.all() or not y.any():  # one class only: a constant head
            return torch.cat([torch.zeros(zs.shape[1]), torch.tensor([1.0 if y.all() else -1.0])])
        coef, intercept = logistic_regression(zs.numpy(), y, C=10.0, balanced=True)
        return torch.cat([torch.from_numpy(coef[0]), torch.from_numpy(intercept)])

    def scores(self, zs, params):
        return zs @ params[:, :-1].T + params[:, -1]
