"""The order items are reviewed in, one registered class each: by score (highest first), seeded random, or
stratified (score bins, a seeded random order within each bin, the bins taken
in turn), the order whose first ``n`` reviews estimate how many true items the whole source holds. The bins hold
about equal shares of the items (score quartiles): equal-width bins put 158 of the finch song's 172 detections of
one syllable in one bin, and the interval from 40 reviews was wider (53.6 against 48.2 detections on average over 50
draws, ``benchmarks/bench_review.py``)."""

from __future__ import annotations

import abc

import numpy as np

from fewshot_audio.review.items import Item
from fewshot_audio.util.registry import Registry

BINS = 4  # score bins of the stratified order


class ReviewOrder(abc.ABC):
    """The order items are reviewed in, and the strata a stratified estimate counts."""
    @abc.abstractmethod
    def order(self, items: list[Item], *, seed: int) -> np.ndarray:
        """A permutation of ``range(len(items))``."""

    def strata(self, items: list[Item]) -> np.ndarray:
        """Each item's stratum (all 0 unless the order samples within strata)."""
        return np.zeros(len(items), dtype=int)


ORDERS: Registry[type[ReviewOrder]] = Registry("review order", base=ReviewOrder)


def scores_of(items: list[Item]) -> np.ndarray:
    """The items' scores ``(n,)``, items without a finite score last (minus infinity)."""
    s = np.array([i.score for i in items], dtype=float)
    return np.where(np.isfinite(s), s, -np.inf)


@ORDERS.register("score")
class ByScore(ReviewOrder):
    """Highest score first (ties in file order)."""
    def order(self, items, *, seed):
        return np.argsort(-scores_of(items), kind="stable")


@ORDERS.register("random")
class Random(ReviewOrder):
    """A seeded random order."""
    def order(self, items, *, seed):
        return np.random.default_rng(seed).permutation(len(items))


@ORDERS.register("stratified")
class Stratified(ReviewOrder):
    """Score quartiles as strata, reviewed in turns across them (a seeded random order within each), so any prefix of
    the review samples every stratum."""
    def strata(self, items):
        s = scores_of(items)
        finite = s[np.isfinite(s)]
        if not len(finite) or finite.max() == finite.min():
            return np.zeros(len(items), dtype=int)
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
        return np.where(np.isfinite(s), np.searchsorted(edges, s, side="right"), 0)

    def order(self, items, *, seed):
        rng = np.random.default_rng(seed)
        strata = self.strata(items)
        queues = [list(rng.permutation(np.flatnonzero(strata == h))) for h in range(strata.max() + 1)]
        out = []
        while any(queues):  # round robin over the bins: any prefix samples every bin about equally
            for q in queues:
                if q:
                    out.append(q.pop(0))
        return np.array(out, dtype=int)
