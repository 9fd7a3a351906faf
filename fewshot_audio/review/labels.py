"""LABELS.csv: one row per decision, rewritten whole and atomically after each (a kill at any moment leaves the
previous, whole file), in the order the decisions were made; undo removes the last one. A restart with the same file
reads the decisions back and matches them to the source's items by file, span and tag."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

from fewshot_audio.errors import DataError
from fewshot_audio.review.items import Item
from fewshot_audio.util.io import atomic_write_text

LABELS = ("positive", "negative", "uncertain")
COLUMNS = ["path", "start", "end", "tag", "score", "label", "reviewed_at", "item", "stratum"]


class Labels:
    """The decisions of one review, keyed by item number."""

    def __init__(self, path: str | Path, items: list[Item], strata: list[int]):
        self.path = Path(path)
        self.items, self.strata = items, strata
        self.rows: list[dict] = []  # in decision order
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        by_key = {it.key(): n for n, it in enumerate(self.items)}
        with open(self.path, newline="", errors="replace") as fh:
            reader = csv.DictReader(fh)
            if self.path.stat().st_size and not set(COLUMNS[:6]) <= set(reader.fieldnames or []):
                raise DataError(f"{self.path} exists and is not a review labels file (columns {','.join(COLUMNS[:6])}); "
                                "give another out=, or move that file away", param="out")
            for r in reader:
                try:
                    end = None if r["end"] in ("", "None") else float(r["end"])
                    key = (r["path"], round(float(r["start"]), 4), None if end is None else round(end, 4), r["tag"])
                except (KeyError, ValueError):
                    raise DataError(f"{self.path} is not a review labels file (path,start,end,tag,label,...); give "
                                    "another out=", param="out") from None
                if key in by_key and r["label"] in LABELS:
                    self.rows = [x for x in self.rows if x["item"] != by_key[key]]
                    self.rows.append({**r, "item": by_key[key]})

    def label_of(self, n: int) -> str | None:
        """The label decided for item ``n``, or ``None`` when it is not reviewed."""
        return next((r["label"] for r in self.rows if r["item"] == n), None)

    def decide(self, n: int, label: str) -> None:
        """Record ``label`` (positive, negative or uncertain) for item ``n``, replacing an earlier decision, and
        rewrite the file atomically."""
        if label not in LABELS:
            raise DataError(f"label {label!r}: give one of {', '.join(LABELS)}")
        it = self.items[n]
        self.rows = [r for r in self.rows if r["item"] != n]
        self.rows.append({"path": it.path, "start": f"{it.start:.4f}", "end": "" if it.end is None else f"{it.end:.4f}",
                          "tag": it.tag, "score": f"{it.score:.5f}", "label": label,
                          "reviewed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "item": n,
                          "stratum": self.strata[n]})
        self._write()

    def undo(self) -> int | None:
        """Remove the last decision; its item number (None when there is none)."""
        if not self.rows:
            return None
        n = self.rows.pop()["item"]
        self._write()
        return n

    def counts(self) -> dict[str, int]:
        """How many items carry each label."""
        return {label: sum(r["label"] == label for r in self.rows) for label in LABELS}

    def _write(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())


def read_labels(path: str | Path) -> list[dict]:
    """The rows of a LABELS.csv (a one-line error when it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"review labels {path} do not exist; write them with 'fewshot-audio review'")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"path", "start", "end", "tag", "label"} <= set(rows[0]):
        raise DataError(f"{path} is not a review labels file (columns path,start,end,tag,label)")
    return rows
