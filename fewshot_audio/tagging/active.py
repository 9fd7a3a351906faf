"""Which files to label next for a tag (active learning)."""

from __future__ import annotations

import numpy as np

from fewshot_audio.errors import ConfigError

SUGGEST_METHODS = ("uncertain", "top", "random")


def rank_for_labelling(scores: np.ndarray, threshold: float, *, method: str, k: int,
                       seed: int = 0) -> np.ndarray:
    """Indices of the ``k`` candidates to label next for one tag, from their clip-level ``scores``:
    ``uncertain`` (closest to the tag's threshold), ``top`` (highest scores) or ``random``."""
    if method not in SUGGEST_METHODS:
        raise ConfigError(f"method={method!r} is not valid; use {', '.join(SUGGEST_METHODS)}", param="method")
    scores = np.asarray(scores, dtype=np.float64)
    if method == "uncertain":
        order = np.argsort(np.abs(scores - threshold), kind="stable")
    elif method == "top":
        order = np.argsort(-scores, kind="stable")
    else:
        order = np.random.default_rng(seed).permutation(len(scores))
    return order[:k]
