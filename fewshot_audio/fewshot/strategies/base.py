"""The one interface every strategy implements; the harness drives all of them the same way.

Shapes: an episode batch holds ``support`` ``(E, n_way, n_shot, *x)`` and ``query``
``(E, n_way, n_query, *x)`` inputs; ``classes`` ``(E, n_way)`` are the global class
indices of the ways (for strategies that learn a classifier over all training classes).
Multi-label episodes add ``targets = (support_targets (E, n_way, n_shot, n_way),
query_targets (E, n_way, n_query, n_way))``: each clip's tags among the episode's ways (float
0/1); single-label episodes pass ``None`` (clip ``[e, w, k]`` is way ``w`` alone). Losses go
through :func:`classification_loss`, which takes either kind of target.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F

from fewshot_audio.models.backbones.base import Backbone
from fewshot_audio.util.registry import Registry

InputsFn = Callable[[torch.Tensor], torch.Tensor]
"""Maps clip indices ``(...,)`` to model inputs ``(..., *x)`` (one window per clip) on the strategy's device.
The harness passes a :class:`fewshot_audio.fewshot.dataset.DeviceData`, whose ``embed(fn, clips)`` also pools the
embeddings of every window of each clip; strategies with an embedding use that for clip embeddings."""


class Strategy(abc.ABC):
    """The interface of every strategy; subclasses implement ``fit``/``predict`` and may override the rest.

    * ``prepare(train_inputs)``: once before training, with the training clips' inputs.
    * ``train_step(support, query, classes, targets=None) -> (loss, accuracy)``: one optimisation
      step on an episode batch; returns detached scalar tensors (no host sync). Strategies that
      do not meta-train set ``trains = False`` and are never stepped.
    * ``fit(support_x, support_y)`` then ``predict(query_x) -> scores (n_query, n_way)``.
    * ``score_episodes(inputs, support, query) -> scores (E, n_way * n_query, n_way)``: the
      evaluation entry point; the default fits and predicts episode by episode, strategies with
      a frozen embedding override it to embed every clip once.

    Declared: ``name`` (its registry name), ``trains``, ``backbone_name`` (a strategy tied to one backbone names
    it; ``None``: the configured one), ``training_key`` (strategies with equal keys share one trained state;
    ``None``: the name) and ``optimizer`` (saved with its state; ``None``: nothing to save).
    """

    name: ClassVar[str] = "base"
    trains: bool = True
    backbone_name: ClassVar[str | None] = None
    training_key: ClassVar[str | None] = None
    optimizer: torch.optim.Optimizer | None = None

    def __init__(self, *, backbone: Backbone, device: torch.device, lr: float = 1e-3,
                 weight_decay: float = 0.0, n_classes: int = 0, n_way: int = 5, episodes: int = 0, seed: int = 0):
        self.backbone = backbone.to(device)
        self.device = device
        self.lr, self.weight_decay, self.n_classes, self.seed = lr, weight_decay, n_classes, seed
        self.n_way, self.episodes = n_way, episodes

    # -- training ---------------------------------------------------------------------------
    def prepare(self, train_inputs: torch.Tensor) -> None:
        """See the training clips' inputs ``(n, *x)`` once before training (default: the backbone's statistics)."""
        self.backbone.prepare(train_inputs)

    def train_step(self, support: torch.Tensor, query: torch.Tensor, classes: torch.Tensor,
                   targets: tuple[torch.Tensor, torch.Tensor] | None = None):
        """One optimisation step on an episode batch (strategies with ``trains = False`` are never stepped)."""
        raise NotImplementedError(f"strategy {self.name!r} does not meta-train")

    def train_mode(self, training: bool) -> None:
        """Switch training-time layers (batch norm, dropout) on or off."""
        self.backbone.train(training)

    # -- adaptation and inference -----------------------------------------------------------
    @abc.abstractmethod
    def fit(self, support_x: torch.Tensor, support_y: torch.Tensor) -> None:
        """Adapt to one task: support inputs ``(n_way * n_shot, *x)`` and their way indices ``(n_way * n_shot,)``."""

    @abc.abstractmethod
    def predict(self, query_x: torch.Tensor) -> torch.Tensor:
        """Scores ``(n_query, n_way)`` of query inputs ``(n_query, *x)`` after :meth:`fit`."""

    def embed(self, x: torch.Tensor) -> torch.Tensor | None:
        """Embeddings ``(n, d)`` of inputs ``(n, *x)``, or ``None`` for a strategy without an embedding."""
        return None

    @torch.no_grad()
    def score_episodes(self, inputs: InputsFn, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Scores ``(E, n_way * n_query, n_way)`` of every episode: the support clips ``support (E, n_way, n_shot)``
        (indices) fitted, then the queries ``query (E, n_way, n_query)`` predicted, episode by episode."""
        n_ep, n_way, n_shot = support.shape
        y = torch.arange(n_way, device=self.device).repeat_interleave(n_shot)
        out = []
        with full_precision(self.device):  # each task changes the weights: no autocast weight cache
            for e in range(n_ep):
                with torch.enable_grad():
                    self.fit(inputs(support[e].flatten()).float(), y)
                out.append(self.predict(inputs(query[e].flatten()).float()))
        return torch.stack(out)

    # -- persistence ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The weights (and optimiser state) a checkpoint saves."""
        state = {"backbone": self.backbone.state_dict()}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict, *, with_optimizer: bool = True) -> None:
        """Restore :meth:`state_dict` (the optimiser too unless ``with_optimizer`` is false)."""
        self.backbone.load_state_dict(state["backbone"])
        if with_optimizer and "optimizer" in state and self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])


def way_targets(clips_shape: torch.Size | tuple[int, ...], targets: torch.Tensor | None,
                device: torch.device) -> torch.Tensor:
    """Targets of clips laid out ``(E, n_way, k)`` by way, flattened in that order: way indices ``(E*n_way*k,)``
    for single-label episodes (``targets`` None), else the multi-hot rows ``(E*n_way*k, n_way)``."""
    if targets is None:
        n_ep, n_way, k = clips_shape[:3]
        return torch.arange(n_way, device=device).repeat_interleave(k).repeat(n_ep)
    return targets.reshape(-1, targets.shape[-1])


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits (N, C)`` against class indices ``y (N,)``, or against multi-label targets
    ``y (N, C)`` (0/1 floats) taken as a uniform distribution over each row's tags (the softmax
    multi-label loss of Mahajan et al., 2018, which equals cross-entropy for one tag and needs no
    decision bias, so distance-based logits can use it as they are)."""
    if not y.is_floating_point():
        return F.cross_entropy(logits, y)
    dist = y / y.sum(-1, keepdim=True).clamp_min(1)
    return -(dist * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def hit_rate(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose best-scoring class is their class (multi-label: one of their tags); the
    training accuracy of either kind of target."""
    best = logits.argmax(-1)
    if not y.is_floating_point():
        return (best == y).float().mean()
    return y.gather(-1, best.unsqueeze(-1)).squeeze(-1).gt(0).float().mean()


def full_precision(device: torch.device):
    """A region without autocast, for optimisation loops that run inside evaluation.

    Autocast caches the low-precision copies of leaf weights for as long as its region lasts, so
    weights updated in place inside one region (a per-task fit) would keep being read stale.
    """
    return torch.autocast(device_type=device.type, enabled=False)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(..., n, m)`` between ``a (..., n, d)`` and ``b (..., m, d)``, in float32."""
    a, b = a.float(), b.float()
    return (a.pow(2).sum(-1, keepdim=True) - 2 * a @ b.transpose(-1, -2) + b.pow(2).sum(-1).unsqueeze(-2)).clamp_min(0)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", base=Strategy)
"""Every strategy by name; each module registers its own with ``@STRATEGIES.register(NAME)``."""
