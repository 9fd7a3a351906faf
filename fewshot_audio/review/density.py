"""How many are there? From the reviewed items: precision against score (a logistic regression of positive against
negative on the score; uncertain decisions left out), the number of true items in the whole source estimated from a
stratified sample (each score bin's share of positives times the bin's size, summed) with a 95% interval, and the
lowest score threshold whose items reach a precision the user asks for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fewshot_audio.errors import DataError
from fewshot_audio.util.logreg import fit_logistic

Z95 = 1.959964


@dataclass(frozen=True)
class Estimate:
    """``total`` true items in the source (``low``..``high``: 95%), from ``reviewed`` decisions over the strata;
    ``unreviewed_strata`` bins with items but no decision (their share is unknown: the interval spans 0 to all)."""

    total: float
    low: float
    high: float
    reviewed: int
    items: int
    unreviewed_strata: int


def stratified_estimate(strata: np.ndarray, reviewed_strata: np.ndarray, positive: np.ndarray) -> Estimate:
    """``strata`` ``(N,)``: every source item's bin; ``reviewed_strata``, ``positive`` ``(n,)``: the bin and the
    decision (True: positive) of each reviewed item, a random sample within its bin. Each bin's variance uses its
    share shrunk half a positive and half a negative toward a half, so that a bin of all positives (or none) keeps a
    width; the finite-population correction applies."""
    strata, reviewed_strata, positive = np.asarray(strata), np.asarray(reviewed_strata), np.asarray(positive, bool)
    if not len(reviewed_strata):
        raise DataError("no positive or negative decision yet: review some items first")
    total, var, high_add, blind = 0.0, 0.0, 0.0, 0
    for h in np.unique(strata):
        size = int((strata == h).sum())
        mine = positive[reviewed_strata == h]
        n = len(mine)
        if n == 0:
            blind += 1
            high_add += size
            continue
        share = mine.mean()
        shrunk = (mine.sum() + 0.5) / (n + 1)
        total += size * share
        fpc = max(0.0, 1 - n / size) if size > 1 else 0.0
        var += size**2 * fpc * shrunk * (1 - shrunk) / max(1, n - 1)  # N^2 (1 - n/N) s^2 / n, s^2 = n p(1-p)/(n-1)
    half = Z95 * var**0.5
    return Estimate(total=total, low=max(0.0, total - half), high=total + half + high_add,
                    reviewed=len(reviewed_strata), items=len(strata), unreviewed_strata=blind)


def precision_fit(scores: np.ndarray, positive: np.ndarray):
    """``p(score)``: the logistic regression of positive on score (a function of an array); a one-line error when
    the decisions are all of one kind."""
    scores, positive = np.asarray(scores, float).reshape(-1, 1), np.asarray(positive, bool)
    if positive.all() or not positive.any():
        raise DataError(f"precision against score needs both positive and negative decisions; {len(positive)} "
                        f"reviewed, all {'positive' if positive.all() else 'negative'}")
    mean, std = float(scores.mean()), float(scores.std()) or 1.0  # standardised: the same fit at any score scale
    model = fit_logistic((scores - mean) / std, positive, C=10.0, max_iter=100)
    return lambda s: model.probability((np.asarray(s, float).reshape(-1, 1) - mean) / std)[:, 1]


def threshold_for(precision: float, scores: np.ndarray, fit) -> tuple[float, int] | None:
    """The lowest score ``t`` whose source items (score at least ``t``) have an estimated precision (the mean of
    ``fit`` over them) of at least ``precision``, and how many items that keeps; None when no threshold does."""
    if not 0 < precision < 1:
        raise DataError(f"precision {precision}: give a fraction between 0 and 1, e.g. 0.9")
    s = np.sort(np.asarray(scores, float)[np.isfinite(scores)])[::-1]
    if not len(s):
        return None
    running = np.cumsum(fit(s)) / np.arange(1, len(s) + 1)  # precision of the top k, for every k
    ok = np.flatnonzero(running >= precision)
    if not len(ok):
        return None
    k = int(ok.max())
    return float(s[k]), k + 1
