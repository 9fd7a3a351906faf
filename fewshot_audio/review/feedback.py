"""The labels go back into the models: a review's positive and negative decisions join a tagger as examples of their
tag (each span cut from its recording and embedded as the tagger embeds; a whole-file item is the file)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fewshot_audio.data.audio import load_span
from fewshot_audio.embedding import default_hop_s, embed_examples
from fewshot_audio.errors import DataError
from fewshot_audio.review.labels import read_labels
from fewshot_audio.review.media import wav_bytes
from fewshot_audio.tagging.tagger import Tagger

CUT_RATE = 48000  # spans are cut at this rate (the tagger resamples to its own)


def span_name(row: dict) -> str:
    """The example's name in the tagger: the file, or the file and the span (``rec.wav@5.125-5.375``)."""
    return row["path"] if not row["end"] else f"{row['path']}@{float(row['start']):.3f}-{float(row['end']):.3f}"


def add_reviewed(tagger: Tagger, labels_path: str | Path, *, tag: str | None = None,
                 quiet: bool = False) -> dict[str, tuple[int, int]]:
    """Fold the positive and negative rows of ``labels_path`` (of ``tag`` only, when given) into ``tagger``;
    ``{tag: (positives, negatives)}`` added. A tag the tagger lacks, or a file that is gone, is a one-line error."""
    rows = [r for r in read_labels(labels_path) if r["label"] in ("positive", "negative") and
            (tag is None or r["tag"] == tag or not r["tag"])]
    if not rows:
        raise DataError(f"{labels_path}: no positive or negative decision{f' of tag {tag!r}' if tag else ''} to add")
    added = {}
    for name in dict.fromkeys(tag or r["tag"] for r in rows):
        tagger.column(name, hint=" (add it with add-tag, or give tag=)")
        mine = [r for r in rows if (tag or r["tag"]) == name]
        with tempfile.TemporaryDirectory() as tmp:
            files = [_cut(r, Path(tmp) / f"{i}.wav") for i, r in enumerate(mine)]
            windows, _, levels, _ = embed_examples(tagger.backbone, files, device=tagger.device,
                                                   hop_s=default_hop_s(tagger.backbone), quiet=quiet)
        tagger.add_examples(name, windows, [span_name(r) for r in mine], [r["label"] == "positive" for r in mine],
                            levels=levels)
        added[name] = (sum(r["label"] == "positive" for r in mine), sum(r["label"] == "negative" for r in mine))
    return added


def _cut(row: dict, out: Path) -> Path:
    path = Path(row["path"])
    if not path.is_file():
        raise DataError(f"reviewed file {path} does not exist; restore it or remove its rows from the labels")
    if not row["end"]:
        return path
    start, end = float(row["start"]), float(row["end"])
    out.write_bytes(wav_bytes(load_span(path, sample_rate=CUT_RATE, start_s=start, duration_s=end - start), CUT_RATE))
    return out
