"""One review: the source's items in review order, the decisions so far (:class:`~.labels.Labels`), and what the
page shows of an item: its audio with ``context_s`` seconds either side, and its log-mel spectrogram (the toolkit's
own front end) with time and frequency axes and the item's span marked."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data.audio import audio_duration, load_span
from fewshot_audio.errors import DataError
from fewshot_audio.review.density import precision_fit, stratified_estimate
from fewshot_audio.review.items import Item
from fewshot_audio.review.labels import Labels
from fewshot_audio.review.order import ORDERS

SPECTROGRAM = FeatureConfig(sample_rate=22050, n_fft=1024, hop_length=256, n_mels=96)
MAX_SEGMENT_S = 30.0  # an item longer than this (a whole file) is shown and played from its start, this long


class Session:
    """One review: the items, their order and strata, the labels file, and the audio and images of each item."""
    def __init__(self, items: list[Item], labels_path: str | Path, *, order: str = "score", context_s: float = 1.0,
                 seed: int = 0):
        if not items:
            raise DataError("the review source has no items")
        if context_s < 0:
            raise DataError(f"context {context_s}: give seconds of audio either side, 0 or more")
        self.items = items
        reviewer = ORDERS.get(order)()
        self.order = [int(n) for n in reviewer.order(items, seed=seed)]
        self.strata = [int(h) for h in reviewer.strata(items)]
        self.order_name, self.context_s = order, context_s
        self.labels = Labels(labels_path, items, self.strata)

    def state(self) -> dict:
        """The progress the page shows: totals, counts per label, the first unreviewed item in the order."""
        decided = {r["item"]: r["label"] for r in self.labels.rows}
        current = next((i for i, n in enumerate(self.order) if n not in decided), len(self.order))
        return {"total": len(self.items), "reviewed": len(decided), "counts": self.labels.counts(),
                "order": self.order, "current": current, "labels": {str(n): lab for n, lab in decided.items()},
                "last": self.labels.rows[-1]["item"] if self.labels.rows else None}

    def describe(self, n: int) -> dict:
        """What the page shows of item ``n``: file, tag, score, span, its label, whether its audio is missing, its
        stratum."""
        it = self.items[n]
        return {"item": n, "file": Path(it.path).name, "path": it.path, "tag": it.tag,
                "score": None if not math.isfinite(it.score) else it.score, "start": it.start, "end": it.end,
                "label": self.labels.label_of(n), "missing": not Path(it.path).is_file(), "stratum": self.strata[n]}

    def segment(self, n: int) -> tuple[np.ndarray, float, float, float]:
        """``(audio, segment start s, item start s, item end s)`` at the spectrogram's rate."""
        it = self.items[n]
        if not Path(it.path).is_file():
            raise DataError(f"{it.path} does not exist")
        end = it.end if it.end is not None else min(audio_duration(it.path, decode=True), it.start + MAX_SEGMENT_S)
        lo = max(0.0, it.start - self.context_s)
        hi = min(end + self.context_s, lo + MAX_SEGMENT_S + 2 * self.context_s)
        y = load_span(it.path, sample_rate=SPECTROGRAM.sample_rate, start_s=lo, duration_s=hi - lo)
        return y, lo, it.start, min(end, hi)

    def audio_wav(self, n: int) -> bytes:
        """A WAV of item ``n`` with its context."""
        from fewshot_audio.review.media import wav_bytes

        y, *_ = self.segment(n)
        return wav_bytes(y, SPECTROGRAM.sample_rate)

    def spectrogram_png(self, n: int) -> bytes:
        """The spectrogram PNG of item ``n`` with its context, its span shaded."""
        from fewshot_audio.review.media import spectrogram_png

        y, lo, start, end = self.segment(n)
        return spectrogram_png(y, SPECTROGRAM, offset_s=lo, span=(start, end), title=self.describe(n)["file"])

    def summary(self) -> dict:
        """Counts, the precision-against-score fit (where there are both kinds), and the stratified estimate (with
        the stratified order)."""
        rows = [r for r in self.labels.rows if r["label"] in ("positive", "negative")]
        out = {"counts": self.labels.counts(), "order": self.order_name}
        if not rows:
            return out
        positive = np.array([r["label"] == "positive" for r in rows])
        scores = np.array([self.items[r["item"]].score for r in rows], float)
        if np.isfinite(scores).all() and positive.any() and not positive.all():
            fit = precision_fit(scores, positive)
            grid = np.linspace(np.nanmin([i.score for i in self.items]), np.nanmax([i.score for i in self.items]), 25)
            out["precision_curve"] = {"score": grid.round(4).tolist(), "precision": fit(grid).round(4).tolist()}
        if self.order_name == "stratified":
            e = stratified_estimate(np.array(self.strata), np.array([self.strata[r["item"]] for r in rows]), positive)
            out["estimate"] = {"total": round(e.total, 1), "low": round(e.low, 1), "high": round(e.high, 1),
                               "items": e.items, "reviewed": e.reviewed, "unreviewed_strata": e.unreviewed_strata}
        return out
