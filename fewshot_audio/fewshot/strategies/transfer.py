"""Transfer learning: a backbone pretrained with ordinary cross-entropy on all training classes
(the "good embedding" baseline), then a simple classifier on its frozen embeddings.

All ``transfer-*`` strategies share the same pretraining (``training_key = "transfer"``), so a
comparison trains the backbone once and reuses it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fewshot_audio.fewshot.strategies.base import STRATEGIES, classification_loss, full_precision, hit_rate
from fewshot_audio.fewshot.strategies.embedding import (
    EmbeddingStrategy,
    centred_l2,
    logistic_regression,
    per_episode,
    proto_loss_step,
    prototype_scores,
)


@STRATEGIES.register()
class Pretrained(EmbeddingStrategy):
    """Cross-entropy pretraining over all training classes; nearest prototype on the frozen embedding."""

    name = "transfer-proto"
    training_key = "transfer"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        dim = self.backbone.embedding_dim
        self.head = torch.nn.Linear(dim, max(1, self.n_classes)).to(self.device)
        params = [p for p in self.backbone.parameters() if p.requires_grad] + list(self.head.parameters())
        self.optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        self.trains = self.backbone.trainable  # a frozen embedding (pretrained, MFCC statistics) is used as is
        self.base_mean: torch.Tensor | None = None
        self._base_inputs: torch.Tensor | None = None

    def prepare(self, train_inputs: torch.Tensor) -> None:
        super().prepare(train_inputs)
        self._base_inputs = train_inputs
        self.base_mean = None  # recomputed from these inputs when next needed

    def train_mode(self, training: bool) -> None:
        super().train_mode(training)
        self.head.train(training)
        if training:
            self.base_mean = None  # the embedding changes: recompute the base mean when next needed

    def ce_step(self, support: torch.Tensor, query: torch.Tensor, classes: torch.Tensor, targets=None):
        """Cross-entropy over all training classes on every clip of the batch (multi-label: the clip's tags
        among its episode's, placed at those tags' columns)."""
        x = torch.cat([support.flatten(0, 2), query.flatten(0, 2)])
        if targets is None:
            y = torch.cat([classes.unsqueeze(-1).expand(*support.shape[:3]).flatten(),
                           classes.unsqueeze(-1).expand(*query.shape[:3]).flatten()])
        else:
            columns = [classes[:, None, None, :].expand(*t.shape) for t in targets]  # (E, W, k, W) global tags
            y = torch.zeros(len(x), max(1, self.n_classes), device=x.device).scatter_(
                1, torch.cat([c.reshape(-1, c.shape[-1]) for c in columns]),
                torch.cat([t.reshape(-1, t.shape[-1]) for t in targets]))
        logits = self.head(self.backbone(x)).float()
        loss = classification_loss(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), hit_rate(logits, y).detach()

    def train_step(self, support: torch.Tensor, query: torch.Tensor, classes: torch.Tensor, targets=None):
        return self.ce_step(support, query, classes, targets)

    def mean_base_embedding(self) -> torch.Tensor:
        """The mean embedding ``(d,)`` of the training clips (SimpleShot centres on it), computed once per trained
        state."""
        if self.base_mean is None:
            if self._base_inputs is None:
                raise RuntimeError("prepare() was not called with the training clips")
            self.base_mean = self.embed(self._base_inputs).mean(0)
        return self.base_mean

    def state_dict(self) -> dict:
        return {**super().state_dict(), "head": self.head.state_dict()}

    def load_state_dict(self, state: dict, *, with_optimizer: bool = True) -> None:
        super().load_state_dict(state, with_optimizer=with_optimizer)
        self.head.load_state_dict(state["head"])
        self.base_mean = None


@STRATEGIES.register()
class SimpleShot(Pretrained):
    """SimpleShot (Wang et al., 2019): pretrained embedding, centred-L2 normalised, nearest prototype."""

    name = "transfer-simpleshot"

    def classify(self, zs: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        mean = self.mean_base_embedding()
        return prototype_scores(centred_l2(zs, mean), centred_l2(zq, mean))


@STRATEGIES.register()
class LogisticTransfer(Pretrained):
    """Pretrained embedding + scikit-learn logistic regression fitted on each support set (L2-normalised)."""

    name = "transfer-logreg"
    C = 10.0

    def classify(self, zs: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        def fit_score(xs, y, xq):
            coef, intercept = logistic_regression(xs, y, C=self.C, max_iter=1000)
            s = xq @ coef.T + intercept  # multinomial logits: the same argmax as the log-probabilities
            return np.concatenate([-s, s], axis=1) if s.shape[1] == 1 else s  # two classes: one decision function

        return per_episode(F.normalize(zs, dim=-1), F.normalize(zq, dim=-1), fit_score)


@STRATEGIES.register()
class FinetuneTransfer(Pretrained):
    """Pretrained embedding, then its last layer (a new linear classifier initialised from the prototypes) fine-tuned on the support set."""

    name = "transfer-finetune"
    steps = 100
    finetune_lr = 0.01
    finetune_weight_decay = 1e-3

    def classify(self, zs: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        """All episodes' classifiers are fine-tuned together as one batched problem (they are independent)."""
        mean = self.mean_base_embedding()
        zs, zq = centred_l2(zs.float(), mean.float()), centred_l2(zq.float(), mean.float())
        n_ep, n_way, n_shot, dim = zs.shape
        with torch.enable_grad(), full_precision(zs.device):
            weight = (2 * zs.mean(2)).clone().requires_grad_(True)  # (E, W, d): prototype init
            bias = (-zs.mean(2).pow(2).sum(-1)).clone().requires_grad_(True)  # (E, W)
            opt = torch.optim.Adam([weight, bias], lr=self.finetune_lr, weight_decay=self.finetune_weight_decay)
            x = zs.reshape(n_ep, n_way * n_shot, dim)
            y = torch.arange(n_way, device=zs.device).repeat_interleave(n_shot).expand(n_ep, -1)
            for _ in range(self.steps):
                logits = torch.einsum("emd,ewd->emw", x, weight) + bias.unsqueeze(1)
                loss = F.cross_entropy(logits.flatten(0, 1), y.flatten()) * n_ep
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return (torch.einsum("emd,ewd->emw", zq, weight) + bias.unsqueeze(1)).detach()


@STRATEGIES.register()
class ProtoTransfer(Pretrained):
    """Prototypical meta-training initialised from the transfer backbone: cross-entropy first, then episodes."""

    name = "proto-transfer"
    training_key = "proto-transfer"
    pretrain_fraction = 0.5

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.switch_at = int(self.pretrain_fraction * self.episodes)
        self.step = 0

    def train_step(self, support: torch.Tensor, query: torch.Tensor, classes: torch.Tensor, targets=None):
        self.step += 1
        if self.step <= self.switch_at:
            return self.ce_step(support, query, classes, targets)
        return proto_loss_step(self, support, query, targets)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "step": self.step}

    def load_state_dict(self, state: dict, *, with_optimizer: bool = True) -> None:
        super().load_state_dict(state, with_optimizer=with_optimizer)
        self.step = int(state.get("step", 0))
