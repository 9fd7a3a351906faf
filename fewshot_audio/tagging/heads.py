"""Tagger heads: how one tag is fitted from its clip embeddings and how clips are scored against it.

A head is a registered class (:func:`register_head`); the tagger and its files name it and never branch
on the name. Embeddings come in the tagger's space (centred on the support mean, L2-normalised).
"""

from __future__ import annotations

import torch

from fewshot_audio.errors import ConfigError
from fewshot_audio.fewshot.strategies.embedding import cosine_scores, logistic_regression


class Head:
    """One tag's parameters ``(width(d),)`` from clip embeddings ``zs (n, d)`` and a positive mask ``(n,)``,
    and the scores ``(n, n_tags)`` of clips against stacked parameters ``(n_tags, width(d))``."""

    name = ""

    @staticmethod
    def width(dim: int) -> int:
        return dim

    def fit(self, zs: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, zs: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


HEADS: dict[str, type[Head]] = {}


def register_head(cls: type[Head]) -> type[Head]:
    HEADS[cls.name] = cls
    return cls


def get_head(name: str) -> Head:
    """The head registered as ``name`` (one line listing the valid ones otherwise)."""
    if name not in HEADS:
        raise ConfigError(f"--head {name!r} is not valid; use {' or '.join(HEADS)}")
    return HEADS[name]()


@register_head
class PrototypeHead(Head):
    """The mean of the tag's examples; a clip's score is its cosine to it."""

    name = "prototypes"

    def fit(self, zs, positives):
        return zs[positives].mean(0)

    def scores(self, zs, params):
        return cosine_scores(zs, params)


@register_head
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
