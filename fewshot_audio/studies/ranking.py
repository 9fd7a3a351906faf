"""Does the random ranking predict the trained one? Spearman's rank correlation between the architectures'
random-weight and trained accuracies, with a 95% interval from a paired bootstrap over clips (each replicate
redraws the clips, with replacement, and scores every architecture on the same draw, random and trained), and the
exact permutation p-value of the observed correlation (no correlation as the null)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from fewshot_audio.errors import ConfigError

BOOTSTRAPS = 2000


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two score vectors (ties get average ranks); nan when either is constant."""
    from scipy.stats import rankdata  # scipy comes with scikit-learn

    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided p-value of ``spearman(a, b)`` under no correlation: the share of orderings of ``b`` whose
    correlation is at least the observed one (exact up to 8 architectures; else 20,000 seeded shuffles, counted with
    the observed ordering among them, so never below 1/20,001)."""
    observed = spearman(a, b)
    n = len(a)
    if math.factorial(n) <= 40320:
        perms = (np.array(p) for p in itertools.permutations(range(n)))
        values = [spearman(a, b[p]) for p in perms]
    else:
        rng = np.random.default_rng(0)
        values = [observed] + [spearman(a, b[rng.permutation(n)]) for _ in range(20000)]
    return float(np.mean(np.array(values) >= observed - 1e-12))


def rank_agreement(random: dict[str, np.ndarray], trained: dict[str, np.ndarray], *, boots: int = BOOTSTRAPS,
                   seed: int = 0) -> dict:
    """``random`` and ``trained``: per architecture, each clip's fraction of correct answers ``(n_clips,)`` (the
    same clips in the same order). Returns the architectures compared, their accuracies, ``spearman``, its
    ``ci95`` ``[low, high]`` over ``boots`` paired clip bootstraps, and ``p_value``."""
    names = [n for n in random if n in trained]
    if len(names) < 3:
        raise ConfigError(f"rank agreement needs at least 3 architectures with both random and trained rows, got "
                          f"{len(names)} ({', '.join(names) or 'none'})")
    r = np.stack([np.asarray(random[n], dtype=float) for n in names])  # (archs, clips)
    t = np.stack([np.asarray(trained[n], dtype=float) for n in names])
    if r.shape != t.shape:
        raise ConfigError(f"random rows score {r.shape[1]} clips but trained rows {t.shape[1]}; run both on the same "
                          "dataset and folds")
    rng = np.random.default_rng(seed)
    n = r.shape[1]
    draws = rng.integers(0, n, size=(boots, n))
    rhos = np.array([spearman(r[:, d].mean(1), t[:, d].mean(1)) for d in draws])
    rhos = rhos[np.isfinite(rhos)]
    ra, ta = r.mean(1), t.mean(1)
    return {"architectures": names, "random_accuracy": [round(float(v), 5) for v in ra],
            "trained_accuracy": [round(float(v), 5) for v in ta], "spearman": round(spearman(ra, ta), 4),
            "ci95": [round(float(np.quantile(rhos, 0.025)), 4), round(float(np.quantile(rhos, 0.975)), 4)],
            "p_value": float(f"{permutation_p(ra, ta):.3g}"), "bootstraps": int(len(rhos))}
