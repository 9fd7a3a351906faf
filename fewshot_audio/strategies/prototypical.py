"""Prototypical networks (Snell et al., 2017): classify by squared Euclidean distance to class means."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import InputsFn, Strategy, squared_distances


def embed_in_batches(model: torch.nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([model(chunk) for chunk in x.split(batch)]).float()


class Prototypical(Strategy):
    """Prototypical network: episodic meta-training, nearest class prototype at test time."""

    name = "prototypical"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        params = [p for p in self.backbone.parameters() if p.requires_grad]
        self.trains = bool(params) and getattr(self.backbone, "trainable", True)
        self.optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay) if self.trains else None
        self.prototypes: torch.Tensor | None = None

    def train_step(self, support: torch.Tensor, query: torch.Tensor, classes: torch.Tensor):
        n_ep, n_way, n_shot = support.shape[:3]
        n_query = query.shape[2]
        x = torch.cat([support.flatten(0, 2), query.flatten(0, 2)])
        z = self.backbone(x).float()
        protos = z[: n_ep * n_way * n_shot].view(n_ep, n_way, n_shot, -1).mean(2)
        zq = z[n_ep * n_way * n_shot :].view(n_ep, n_way * n_query, -1)
        logits = -squared_distances(zq, protos)  # (E, W*Q, W)
        y = torch.arange(n_way, device=z.device).repeat_interleave(n_query).expand(n_ep, -1)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        acc = (logits.argmax(-1) == y).float().mean()
        return loss.detach(), acc.detach()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return embed_in_batches(self.backbone, x)

    @torch.no_grad()
    def fit(self, support_x: torch.Tensor, support_y: torch.Tensor) -> None:
        z = self.embed(support_x)
        n_way = int(support_y.max()) + 1
        self.prototypes = torch.zeros(n_way, z.shape[1], device=z.device).index_add_(0, support_y, z)
        self.prototypes /= torch.bincount(support_y, minlength=n_way).unsqueeze(1)

    @torch.no_grad()
    def predict(self, query_x: torch.Tensor) -> torch.Tensor:
        return -squared_distances(self.embed(query_x), self.prototypes)

    @torch.no_grad()
    def score_episodes(self, inputs: InputsFn, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Embed every clip of all episodes once, then score every episode in one batched step."""
        clips, inverse = torch.unique(torch.cat([support.flatten(), query.flatten()]), return_inverse=True)
        z = self.embed(inputs(clips))
        zs = z[inverse[: support.numel()]].view(*support.shape, -1)
        zq = z[inverse[support.numel() :]].view(query.shape[0], -1, z.shape[-1])
        return -squared_distances(zq, zs.mean(2))
