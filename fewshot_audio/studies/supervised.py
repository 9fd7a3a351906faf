"""Plain supervised training for the studies: one model, trained from scratch on some clips of a dataset and scored
on others, with the same budget rule for every model compared.

Clips are read once through the probe's front end (:data:`~fewshot_audio.studies.probe.FRONT_END`): a
``(1, 96, frames)`` log-mel or a ``(1, samples)`` waveform each, of any length. Training draws random crops of
``crop`` frames (or samples) from each clip, a clip shorter than that looped to it (the toolkit's clip policy); a test
clip is classified whole, as the probe's features are the means over whole clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewshot_audio.errors import ConfigError
from fewshot_audio.studies.architectures import loop_to
from fewshot_audio.util.progress import progress


@dataclass(frozen=True)
class Budget:
    """How long a model trains: ``epochs`` passes over its training clips in batches of ``batch``, never fewer than
    ``min_steps`` nor more than ``max_steps`` optimiser steps (the same rule for every model compared); Adam with
    ``lr`` and ``weight_decay``, the rate decayed to zero on a cosine."""

    epochs: int = 20
    batch: int = 32
    min_steps: int = 100
    max_steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 1e-4

    def __post_init__(self):
        for name in ("epochs", "batch", "min_steps", "max_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"training budget {name} {getattr(self, name)}: give at least 1")
        if self.min_steps > self.max_steps:
            raise ConfigError(f"training budget min_steps {self.min_steps} is above max_steps {self.max_steps}")

    def steps(self, n_train: int) -> int:
        """Optimiser steps for ``n_train`` training clips."""
        return int(np.clip(math.ceil(self.epochs * n_train / self.batch), self.min_steps, self.max_steps))


def crop_batch(inputs: list[torch.Tensor], idx: np.ndarray, *, length: int, generator: torch.Generator) -> torch.Tensor:
    """``(len(idx), 1, ..., length)``: a random ``length``-long crop of each clip ``inputs[i] (1, ..., t)`` (looped
    to ``length`` first where shorter)."""
    out = []
    for i in idx:
        x = loop_to(inputs[int(i)], length)
        start = int(torch.randint(0, x.shape[-1] - length + 1, (1,), generator=generator))
        out.append(x[..., start:start + length])
    return torch.stack(out)


def train_classifier(model: nn.Module, inputs: list[torch.Tensor], labels: np.ndarray, train_idx: np.ndarray, *,
                     budget: Budget, crop: int, seed: int, device: torch.device, desc: str = "training",
                     quiet: bool = False) -> nn.Module:
    """``model`` (``(B, 1, ..., crop) -> (B, classes)`` logits) trained on ``inputs[train_idx]`` with cross-entropy,
    from a seeded batch order; returned in eval mode."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=budget.weight_decay)
    steps = budget.steps(len(train_idx))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    y_all = torch.from_numpy(np.asarray(labels)).long()
    order: list[int] = []
    for _ in progress(range(steps), desc=desc, quiet=quiet):
        if len(order) < budget.batch:  # seeded epochs: every clip once before any twice
            order += torch.randperm(len(train_idx), generator=generator).tolist()
        batch, order = train_idx[order[:budget.batch]], order[budget.batch:]
        x = crop_batch(inputs, batch, length=crop, generator=generator).to(device)
        loss = F.cross_entropy(model(x), y_all[batch].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def correct_clips(model: nn.Module, inputs: list[torch.Tensor], labels: np.ndarray, test_idx: np.ndarray, *,
                  min_length: int, device: torch.device) -> np.ndarray:
    """``(len(test_idx),)`` booleans: whether the model's best class for each whole test clip (looped to
    ``min_length`` where shorter) is its label."""
    out = []
    for i in test_idx:
        x = loop_to(inputs[int(i)], min_length)[None].to(device)
        out.append(int(model(x).argmax(-1)) == int(labels[int(i)]))
    return np.array(out, dtype=bool)


class Classifier(nn.Module):
    """An embedding network followed by dropout and a linear layer to ``classes`` logits."""

    def __init__(self, body: nn.Module, dim: int, classes: int, *, dropout: float = 0.3):
        super().__init__()
        self.body = body
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, n_classes)`` of inputs ``(B, 1, ...)``."""
        return self.head(self.body(x))

