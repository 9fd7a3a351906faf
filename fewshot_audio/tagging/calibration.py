"""Per-tag decision thresholds, calibrated on the support set by leave-one-out, so that "none of these
tags" is a possible answer."""

from __future__ import annotations

import numpy as np
import torch

from fewshot_audio.errors import ConfigError
from fewshot_audio.tagging.heads import Head

# how much a false tag costs against a missed one, per tag of the vocabulary; chosen by measurement
# (benchmarks/bench_real.py, docs/results.md)
STRICTNESS = 2.0


def checked_strictness(strictness: float | None) -> float:
    """``strictness`` (``None``: the default :data:`STRICTNESS`), or a one-line error when it is not > 0."""
    if strictness is None:
        return STRICTNESS
    if not strictness > 0:
        raise ConfigError(f"strictness={strictness}: must be > 0 (a false tag's cost, per vocabulary tag)", param="strictness")
    return float(strictness)


def calibrate_threshold(pos: np.ndarray, neg: np.ndarray, *, false_accept_weight: float = 1.0) -> float:
    """The threshold maximising ``TPR - false_accept_weight x FPR`` between leave-one-out positive scores and
    negative scores (weight 1: balanced accuracy); ties go to the higher (more conservative) threshold.
    Without negatives: the lowest positive."""
    pos, neg = np.sort(np.asarray(pos, dtype=np.float64)), np.sort(np.asarray(neg, dtype=np.float64))
    if len(neg) == 0:
        return float(pos.min())
    values = np.unique(np.concatenate([pos, neg]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    tpr = 1 - np.searchsorted(pos, candidates, side="left") / len(pos)
    fpr = 1 - np.searchsorted(neg, candidates, side="left") / len(neg)
    j = tpr - false_accept_weight * fpr
    best = np.nonzero(j >= j.max() - 1e-12)[0][-1]
    return float(candidates[best])


def loo_scores(head: Head, zs: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """The score of each positive ``(n_positives,)`` against the tag fitted without it (with one positive:
    against the tag fitted on it, the only estimate there is)."""
    pos = torch.nonzero(positives).flatten().tolist()
    if len(pos) < 2:
        return head.scores(zs[positives], head.fit(zs, positives).unsqueeze(0))[:, 0]
    loo = []
    for i in pos:
        keep = torch.ones(len(zs), dtype=torch.bool)
        keep[i] = False
        p = head.fit(zs[keep], positives[keep])
        loo.append(head.scores(zs[i : i + 1], p.unsqueeze(0))[0, 0])
    return torch.stack(loo)


def fit_tag(head: Head, zs: torch.Tensor, positives: torch.Tensor, *, strictness: float,
            n_tags: int) -> tuple[torch.Tensor, float]:
    """One tag's head parameters from clip embeddings ``zs (n, d)`` and the mask ``positives (n,)``, and its
    threshold, calibrated with each positive left out of its own tag's fit.

    The threshold maximises ``TPR - strictness x n_tags x FPR`` (:func:`calibrate_threshold`): a clip of
    none of the tags is answered "none of these" only if all ``n_tags`` tags reject it, so its chance of a
    false tag grows with the vocabulary (about ``n_tags x FPR``); ``strictness`` weighs that false tag
    against a missed one."""
    param = head.fit(zs, positives)
    scores = head.scores(zs, param.unsqueeze(0))[:, 0]
    pos_scores = loo_scores(head, zs, positives)
    threshold = calibrate_threshold(pos_scores.numpy(), scores[~positives].numpy(),
                                    false_accept_weight=strictness * n_tags)
    return param, threshold
