"""Raven selection tables, written and read in one place: :func:`raven_table` writes the table that ``tag
--raven`` and ``detect --raven`` produce and :func:`raven_selections` reads it back (and tables exported from
Raven Pro itself): one row per selection, ``Begin Time (s)``/``End Time (s)`` running on across the files of the
table, ``Begin Path`` and ``File Offset (s)`` placing each row in its file, the class in ``Tag``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewshot_audio.errors import DataError

RAVEN_BEGIN, RAVEN_END = "Begin Time (s)", "End Time (s)"
RAVEN_CLASS = ("Annotation", "Species", "Label", "Class", "Tag")  # where a table's class is (the first found)
RAVEN_FILE = ("Begin File", "Begin Path")  # the recording a selection is in (a path or a file name)
COLUMNS = ["Selection", "View", "Channel", RAVEN_BEGIN, RAVEN_END, "Low Freq (Hz)", "High Freq (Hz)", "Begin Path",
           "File Offset (s)", "Tag", "Score", "Threshold"]


@dataclass(frozen=True)
class RavenRow:
    """One selection to write: ``path`` from ``start`` to ``end`` seconds (in that file), its ``tag``, ``score``
    and the ``threshold`` it passed (``None``: none)."""

    path: str
    start: float
    end: float
    tag: str
    score: float
    threshold: float | None = None


def raven_table(rows: Iterable[RavenRow], *, durations: dict[str, float], high_freq_hz: float) -> str:
    """The Raven selection table (tab-separated) of ``rows``, grouped by file in first-seen order, in time order
    within a file. ``durations`` (seconds per path) make Begin/End Time run on across files, as in a Raven table
    of several files; ``high_freq_hz`` is the selections' top (the band analysed).

    Examples
    --------
    >>> text = raven_table([RavenRow("a.wav", 1.0, 1.5, "bell", 0.9)], durations={"a.wav": 3.0}, high_freq_hz=8000)
    >>> text.splitlines()[1].split(chr(9))[3:11]
    ['1.000', '1.500', '0', '8000', 'a.wav', '1.000', 'bell', '0.90000']
    """
    by_file: dict[str, list[RavenRow]] = {}
    for r in rows:
        by_file.setdefault(r.path, []).append(r)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(COLUMNS)
    offset, n = 0.0, 0
    for path, mine in by_file.items():
        for r in sorted(mine, key=lambda r: r.start):
            n += 1
            w.writerow([n, "Spectrogram 1", 1, f"{offset + r.start:.3f}", f"{offset + r.end:.3f}", 0,
                        f"{high_freq_hz:.0f}", path, f"{r.start:.3f}", r.tag, f"{r.score:.5f}",
                        "" if r.threshold is None else f"{r.threshold:.5f}"])
        offset += durations.get(path, max((r.end for r in mine), default=0.0))
    return buf.getvalue()


def read_table(path: Path, *, delimiter: str = ",") -> tuple[list[str], list[dict]]:
    """The column names and rows of a CSV (or, with ``delimiter`` a tab, a Raven table); one-line errors."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            rows = list(reader)
            return [c.strip() for c in (reader.fieldnames or [])], rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as a table ({exc})") from None


def seconds(path: Path, row: int, column: str, value) -> float:
    """The cell ``value`` (row ``row`` of ``path``) as seconds >= 0, or a one-line error naming the row."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}: row {row + 2} has {column} {value!r}, not a number of seconds; fix that row") from None
    if not np.isfinite(t) or t < 0:
        raise DataError(f"{path}: row {row + 2} has {column} {value!r}; times must be seconds >= 0")
    return t


def spans(path: Path, rows: list[dict], begin: str, end: str) -> np.ndarray:
    """``(n, 2)`` seconds of the rows' ``begin`` and ``end`` cells, each ending after it starts."""
    out = np.zeros((len(rows), 2))
    for i, r in enumerate(rows):
        out[i] = seconds(path, i, begin, r.get(begin)), seconds(path, i, end, r.get(end))
        if out[i, 1] <= out[i, 0]:
            raise DataError(f"{path}: row {i + 2} ends at {out[i, 1]:g} s, not after its start {out[i, 0]:g} s; fix that row")
    return out



@dataclass(frozen=True)
class Selection:
    """One row of a Raven selection table: the recording it names (as written; ``""`` when the table names none),
    its span in that recording (seconds), its class (``""`` when none) and its ``Score`` (nan when none)."""

    file: str
    start: float
    end: float
    label: str
    score: float


def raven_selections(path: str | Path) -> list[Selection]:
    """Every spectrogram-view selection of a Raven table, in the table's order. Times are the table's ``File Offset
    (s)`` where it has one with a recording column (a table of several files: Begin Time runs on across them), else
    ``Begin Time``; a one-line :class:`DataError` names a bad row."""
    path = Path(path)
    columns, rows = read_table(path, delimiter="\t")
    if RAVEN_BEGIN not in columns or RAVEN_END not in columns:
        raise DataError(f"{path}: a Raven selection table needs '{RAVEN_BEGIN}' and '{RAVEN_END}' columns "
                        f"(found {', '.join(columns[:8]) or 'none'}); export the selections with their times")
    rows = [r for r in rows if (r.get("View") or "Spectrogram").startswith("Spectrogram") or "View" not in columns]
    events = spans(path, rows, RAVEN_BEGIN, RAVEN_END)
    file_col = next((c for c in RAVEN_FILE if c in columns), None)
    files = [(r.get(file_col) or "").strip().replace("\\", "/") for r in rows] if file_col else [""] * len(rows)
    if file_col and "File Offset (s)" in columns:  # Begin Time runs on across files: place each event in its file
        offsets = np.array([seconds(path, i, "File Offset (s)", r.get("File Offset (s)")) for i, r in enumerate(rows)])
        events = np.stack([offsets, offsets + events[:, 1] - events[:, 0]], axis=1).reshape(-1, 2)
    label_col = next((c for c in RAVEN_CLASS if c in columns), None)
    scores = []
    for i, r in enumerate(rows):
        text = (r.get("Score") or "").strip()
        try:
            scores.append(float(text) if text else float("nan"))
        except ValueError:
            raise DataError(f"{path}: row {i + 2} has Score {text!r}, not a number; fix that row") from None
    return [Selection(f, float(a), float(b), (r.get(label_col) or "").strip() if label_col else "", sc)
            for f, (a, b), r, sc in zip(files, events, rows, scores)]
