"""Accuracy and confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import torch


def episode_accuracies(scores: torch.Tensor, n_query: int) -> torch.Tensor:
    """Accuracy of each episode from ``scores (E, n_way * n_query, n_way)``; queries ordered by way."""
    n_way = scores.shape[-1]
    y = torch.arange(n_way, device=scores.device).repeat_interleave(n_query)
    return (scores.argmax(-1) == y).float().mean(-1)


def mean_ci95(values) -> tuple[float, float]:
    """Mean and 95% confidence half-width ``1.96 * std / sqrt(n)`` (sample std, ddof=1)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), 0.0
    return float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(v.size))
