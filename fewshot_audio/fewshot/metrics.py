"""Accuracy and confidence intervals; multi-label metrics (per tag, and per episode for the harness)."""

from __future__ import annotations

import math

import numpy as np
import torch


def episode_accuracies(scores: torch.Tensor, n_query: int) -> torch.Tensor:
    """Accuracy of each episode from ``scores (E, n_way * n_query, n_way)``; queries ordered by way."""
    n_way = scores.shape[-1]
    y = torch.arange(n_way, device=scores.device).repeat_interleave(n_query)
    return (scores.argmax(-1) == y).float().mean(-1)


def episode_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the ways of each tag's average precision among the episode's queries: ``(E,)`` from
    ``scores (E, M, W)`` and 0/1 ``targets (E, M, W)`` (every way has a positive query in a multi-label
    episode). The batched form of :func:`average_precision`, ties included: each positive counts the
    precision at the end of its run of equal scores (bf16 scores on a GPU tie often)."""
    s, order = scores.float().sort(dim=1, descending=True, stable=True)
    t = targets.float().gather(1, order)  # (E, M, W) in descending score order
    m = t.shape[1]
    starts = torch.ones_like(s, dtype=torch.bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    group = starts.long().cumsum(1) - 1  # run of equal scores of each position
    position = torch.arange(m, device=s.device).view(1, -1, 1).expand_as(group)
    last = torch.zeros_like(group).scatter_reduce(1, group, position, reduce="amax").gather(1, group)
    precision = t.cumsum(1).gather(1, last) / (last + 1).float()
    ap = (precision * t).sum(1) / t.sum(1).clamp_min(1)
    return ap.mean(-1)


def tag_probabilities(scores: torch.Tensor) -> torch.Tensor:
    """Each query's scores as a distribution over the episode's ways (softmax): the scale every strategy's
    scores share, on which one decision threshold is chosen (a query with two tags puts ~1/2 on each)."""
    return scores.float().softmax(-1)


def episode_f1(probabilities: torch.Tensor, targets: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Micro and macro F1 ``(E,)`` of each episode, a query being given every way whose probability is at least
    ``threshold``: ``probabilities``, 0/1 ``targets`` ``(E, M, W)``."""
    pred, t = probabilities >= threshold, targets.bool()
    tp, fp, fn = ((pred & t).sum(1).float(), (pred & ~t).sum(1).float(), (~pred & t).sum(1).float())  # (E, W)
    micro = 2 * tp.sum(-1) / (2 * tp.sum(-1) + fp.sum(-1) + fn.sum(-1)).clamp_min(1)
    macro = (2 * tp / (2 * tp + fp + fn).clamp_min(1)).mean(-1)
    return micro, macro


def best_threshold(probabilities: torch.Tensor, targets: torch.Tensor,
                   grid: np.ndarray = np.round(np.arange(0.05, 0.951, 0.025), 3)) -> float:
    """The threshold of ``grid`` with the best mean micro F1 on these (validation) episodes."""
    means = [float(episode_f1(probabilities, targets, float(g))[0].mean()) for g in grid]
    return float(grid[int(np.argmax(means))])


def mean_ci95(values) -> tuple[float, float]:
    """Mean and 95% confidence half-width ``1.96 * std / sqrt(n)`` (sample std, ddof=1)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), 0.0
    return float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(v.size))


# ----------------------------------------------------------------------------- multi-label
def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Average precision of one tag: ``scores (n,)``, binary ``targets (n,)`` (as scikit-learn's, no interpolation)."""
    targets = np.asarray(targets, dtype=bool)
    if not targets.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, t = np.asarray(scores)[order], targets[order]
    # ties: evaluate precision/recall only at the last position of each distinct score
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(t)[last]
    precision = tp / (last + 1)
    recall = tp / targets.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(scores: np.ndarray, targets: np.ndarray) -> float:
    """Area under the ROC curve of one tag (Mann-Whitney U with average ranks for ties)."""
    from scipy.stats import rankdata  # imported on use: heavy, only this metric needs it

    targets = np.asarray(targets, dtype=bool)
    n_pos, n_neg = targets.sum(), (~targets).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[targets].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
