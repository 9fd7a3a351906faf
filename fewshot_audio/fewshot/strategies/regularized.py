"""Regularized baselines (Pons et al., 2019): models trained on the support set alone.

No meta-training and no other classes: for each task a freshly initialised model (always the
same seeded initialisation) is trained on the few support clips with weight decay, dropout and
data augmentation (random time shifts, SpecAugment masks, mixup). Plus the classic MFCC
statistics with an SVM and with 1-nearest-neighbour.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from fewshot_audio.fewshot.strategies.base import STRATEGIES, Strategy, full_precision, squared_distances
from fewshot_audio.fewshot.strategies.embedding import EmbeddingStrategy, per_episode


def augment(x: torch.Tensor, generator: torch.Generator, *, max_shift: float = 0.25, freq_mask: float = 0.15,
            time_mask: float = 0.15) -> torch.Tensor:
    """Random circular time shift plus one frequency and one time SpecAugment mask per clip.

    ``x``: ``(n, 1, n_mels, frames)`` log-mels (or ``(n, 1, samples)`` waveforms: shift only).
    """
    n, t = x.shape[0], x.shape[-1]
    shifts = torch.randint(-int(max_shift * t), int(max_shift * t) + 1, (n,), generator=generator)
    idx = (torch.arange(t)[None, :] - shifts[:, None]) % t
    x = torch.gather(x, -1, idx.to(x.device).view(n, *([1] * (x.ndim - 2)), t).expand_as(x))
    if x.ndim == 4:
        f = x.shape[2]
        fill = x.mean(dim=(1, 2, 3), keepdim=True)
        for size, axis_len, dim in ((int(freq_mask * f), f, 2), (int(time_mask * t), t, 3)):
            width = torch.randint(0, size + 1, (n,), generator=generator)
            start = (torch.rand(n, generator=generator) * (axis_len - width)).long()
            pos = torch.arange(axis_len)
            mask = (pos[None] >= start[:, None]) & (pos[None] < (start + width)[:, None])  # (n, axis_len)
            shape = [n, 1, 1, 1]
            shape[dim] = axis_len
            x = torch.where(mask.view(shape).to(x.device), fill, x)
    return x


class Regularized(Strategy):
    """Base: a fresh model per task, trained on the support set with regularization and augmentation."""

    trains = False
    steps = 40
    task_lr = 3e-3
    task_weight_decay = 1e-3
    mixup_alpha = 0.0
    dropout = 0.5

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.initial = copy.deepcopy(self.backbone.state_dict())
        self.generator = torch.Generator().manual_seed(self.seed)
        self.model: torch.nn.Module | None = None

    def fit(self, support_x: torch.Tensor, support_y: torch.Tensor) -> None:
        # every task starts from the same seeded state: the same support set gives the same model
        torch.manual_seed(self.seed)
        self.generator.manual_seed(self.seed)
        self.backbone.load_state_dict(self.initial)
        n_way = int(support_y.max()) + 1
        head = torch.nn.Sequential(torch.nn.Dropout(self.dropout),
                                   torch.nn.Linear(self.backbone.embedding_dim, n_way)).to(self.device)
        self.model = torch.nn.Sequential(self.backbone, head)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.task_lr, weight_decay=self.task_weight_decay)
        self.model.train()
        y = F.one_hot(support_y, n_way).float()
        with full_precision(self.device):
            self._train(opt, support_x.float(), y)
        self.model.eval()

    def _train(self, opt: torch.optim.Optimizer, support_x: torch.Tensor, y: torch.Tensor) -> None:
        for _ in range(self.steps):
            x, target = augment(support_x, self.generator), y
            if self.mixup_alpha > 0:
                lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=self.generator))).beta(
                    self.mixup_alpha, self.mixup_alpha))
                perm = torch.randperm(len(x), generator=self.generator).to(x.device)
                x, target = lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]
            loss = torch.sum(-target * F.log_softmax(self.model(x).float(), dim=-1), dim=-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    @torch.no_grad()
    def predict(self, query_x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(chunk).float() for chunk in query_x.split(256)])

    def train_mode(self, training: bool) -> None:  # per-task models set their own modes
        pass


@STRATEGIES.register()
class RegularizedTimbral(Regularized):
    """One-layer timbral CNN trained on the support set alone (weight decay, dropout, augmentation)."""

    name = "regularized-timbral"
    backbone_name = "timbral"


@STRATEGIES.register()
class RegularizedSBCNN(Regularized):
    """Small SB-CNN-like net trained on the support set alone (weight decay, dropout, augmentation)."""

    name = "regularized-sbcnn"
    backbone_name = "sbcnn"


@STRATEGIES.register()
class RegularizedVGG(Regularized):
    """VGG-style CNN with batch norm, dropout, weight decay, time shifts, SpecAugment and mixup, on the support set alone."""

    name = "regularized-vgg"
    backbone_name = "vgg"
    mixup_alpha = 0.4


@STRATEGIES.register()
class MFCCSVM(EmbeddingStrategy):
    """MFCC statistics + an RBF support vector machine fitted on each support set."""

    name = "mfcc-svm"
    backbone_name = "mfcc"
    trains = False

    def classify(self, zs: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        from sklearn.svm import SVC  # imported on use: heavy, only this path needs it

        def fit_score(xs, y, xq):
            with warnings.catch_warnings():  # one example per class reads to sklearn like a regression target
                warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
                svm = SVC(kernel="rbf", C=10.0, gamma="scale", decision_function_shape="ovr").fit(xs, y)
            scores = svm.decision_function(xq)
            return np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores

        return per_episode(zs, zq, fit_score)


@STRATEGIES.register()
class MFCCNearestNeighbour(EmbeddingStrategy):
    """MFCC statistics + 1-nearest-neighbour (score of a class: minus the Euclidean distance to its nearest support
    clip), every statistic standardised with the mean and standard deviation of the episode's labelled (support)
    clips, as the simplest recipe does, so that nothing outside the task's own examples sets the scale. Each
    statistic's variance is shrunk toward the mean variance (``variance + shrinkage * mean variance``): with a
    handful of examples a statistic that barely varies among them would otherwise weigh most (docs/results.md,
    "The MFCC floor", measures both)."""

    name = "mfcc-1nn"
    backbone_name = "mfcc"
    trains = False
    shrinkage = 0.25

    def prepare(self, train_inputs: torch.Tensor) -> None:
        """Nothing to fit: each episode is standardised with its own support statistics."""

    def classify(self, zs: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        n_ep, n_way, n_shot, dim = zs.shape
        flat = zs.reshape(n_ep, n_way * n_shot, dim).float()
        mean = flat.mean(1, keepdim=True)
        var = flat.var(1, unbiased=False, keepdim=True)  # (E, 1, D): the support set's own statistics
        std = (var + self.shrinkage * var.mean(-1, keepdim=True)).sqrt() + 1e-6
        d = squared_distances((zq.float() - mean) / std, (flat - mean) / std)  # (E, M, W*S)
        return -d.view(n_ep, -1, n_way, n_shot).amin(-1)
