"""Strategies that classify in a fixed embedding space.

:class:`EmbeddingStrategy` embeds every clip of every episode once and hands the
embeddings to :meth:`classify`, which subclasses override (prototypes, normalised
prototypes, logistic regression, a fine-tuned last layer, SVM, 1-NN).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fewshot_audio.fewshot.strategies.base import (
    InputsFn,
    Strategy,
    classification_loss,
    hit_rate,
    squared_distances,
    way_targets,
)
from fewshot_audio.util.logreg import fit_logistic


def embed_in_batches(model: torch.nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Embeddings ``(n, d)`` float32 of inputs ``x (n, *x)``, ``batch`` at a time."""
    return torch.cat([model(chunk) for chunk in x.split(batch)]).float()


def embed_clips(embed, inputs: InputsFn, clips: torch.Tensor) -> torch.Tensor:
    """Clip embeddings ``(n, d)``: every window of each clip pooled when ``inputs`` knows the windows
    (:meth:`fewshot_audio.fewshot.dataset.DeviceData.embed`), else ``embed`` of its one input per clip."""
    pooled = getattr(inputs, "embed", None)
    return pooled(embed, clips) if pooled is not None else embed(inputs(clips))


def prototype_scores(zs: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
    """Negative squared distances ``(E, M, W)`` of queries ``zq (E, M, d)`` to the means of ``zs (E, W, S, d)``."""
    return -squared_distances(zq, zs.mean(2))


class EmbeddingStrategy(Strategy):
    """Base for strategies whose test-time model is a classifier on frozen embeddings."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return embed_in_batches(self.backbone, x)

    def classify(self, zs: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        """Scores ``(E, M, W)`` for query embeddings ``zq (E, M, d)`` given support ``zs (E, W, S, d)``."""
        return prototype_scores(zs, zq)

    @torch.no_grad()
    def fit(self, support_x: torch.Tensor, support_y: torch.Tensor) -> None:
        order = torch.argsort(support_y, stable=True)
        z = self.embed(support_x[order])
        self._support = z.view(1, int(support_y.max()) + 1, -1, z.shape[-1])  # equal shots per class

    @torch.no_grad()
    def predict(self, query_x: torch.Tensor) -> torch.Tensor:
        return self.classify(self._support, self.embed(query_x).unsqueeze(0))[0]

    @torch.no_grad()
    def score_episodes(self, inputs: InputsFn, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Embed every clip of all episodes once, then classify all episodes together."""
        clips, inverse = torch.unique(torch.cat([support.flatten(), query.flatten()]), return_inverse=True)
        z = embed_clips(self.embed, inputs, clips)
        zs = z[inverse[: support.numel()]].view(*support.shape, -1)
        zq = z[inverse[support.numel() :]].view(query.shape[0], -1, z.shape[-1])
        return self.classify(zs, zq)


def centred_l2(z: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """SimpleShot's embedding hygiene: ``z`` centred on ``mean`` (divided by a per-dimension ``scale`` when
    given), then L2-normalised. Prototypes and thresholds of frozen embeddings live in this space."""
    z = z - mean
    if scale is not None:
        z = z / scale
    return F.normalize(z, dim=-1)


def space_statistics(clips: torch.Tensor, *, standardize: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`centred_l2`'s ``mean`` and ``scale`` fitted on clip embeddings ``(n, d)``: their mean and, for a
    backbone whose outputs are statistics of unlike scales (``standardize``), their per-dimension std."""
    scale = clips.std(0) + 1e-6 if standardize and len(clips) > 1 else None
    return clips.mean(0), scale


def cosine_scores(zq: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``(..., M, W)`` of embeddings ``zq (..., M, d)`` to ``prototypes (..., W, d)``."""
    return F.normalize(zq, dim=-1) @ F.normalize(prototypes, dim=-1).transpose(-1, -2)


def logistic_regression(x: np.ndarray, y: np.ndarray, *, C: float = 10.0, balanced: bool = False,
                        max_iter: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The toolkit's logistic regression (:func:`~fewshot_audio.util.logreg.fit_logistic`) of labels ``y (n,)`` on
    ``x (n, d)``, as float32 ``(coef (k, d), intercept (k,))`` (``k = 1`` for two classes): the linear head of
    strategies and taggers."""
    model = fit_logistic(x, y, C=C, balanced=balanced, max_iter=max_iter)
    return model.coef.astype(np.float32), model.intercept.astype(np.float32)


def per_episode(zs: torch.Tensor, zq: torch.Tensor, fit_score) -> torch.Tensor:
    """Scores ``(E, M, W)`` from ``fit_score(x_support (W*S, d), y (W*S,), x_query (M, d)) -> (M, W)``, a
    classifier fitted on each episode's support embeddings in turn (numpy in, numpy out)."""
    n_ep, n_way, n_shot, _ = zs.shape
    xs, xq = zs.float().cpu().numpy(), zq.float().cpu().numpy()
    y = np.repeat(np.arange(n_way), n_shot)
    out = np.stack([fit_score(xs[e].reshape(n_way * n_shot, -1), y, xq[e]) for e in range(n_ep)]).astype(np.float32)
    return torch.from_numpy(out).to(zq.device)


def proto_loss_step(strategy: Strategy, support: torch.Tensor, query: torch.Tensor,
                    targets: tuple[torch.Tensor, torch.Tensor] | None = None):
    """One prototypical-network optimisation step; returns detached (loss, accuracy). A way's prototype is the
    mean of the support clips drawn for it; multi-label queries are scored against all their tags."""
    n_ep, n_way, n_shot = support.shape[:3]
    n_query = query.shape[2]
    x = torch.cat([support.flatten(0, 2), query.flatten(0, 2)])
    z = strategy.backbone(x).float()
    zs = z[: n_ep * n_way * n_shot].view(n_ep, n_way, n_shot, -1)
    zq = z[n_ep * n_way * n_shot :].view(n_ep, n_way * n_query, -1)
    logits = prototype_scores(zs, zq).flatten(0, 1)
    y = way_targets((n_ep, n_way, n_query), None if targets is None else targets[1], z.device)
    loss = classification_loss(logits, y)
    strategy.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    strategy.optimizer.step()
    return loss.detach(), hit_rate(logits, y).detach()
