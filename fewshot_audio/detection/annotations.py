"""Annotation tables of long recordings: the DCASE few-shot detection layout, Raven selection tables (read by
:mod:`fewshot_audio.data.raven`) and review labels, as the examples and references of detection.

DCASE layout: one CSV per recording, of the same name beside it, with ``Audiofilename,Starttime,Endtime`` and
either a ``Q`` column (``POS``/``UNK``/``NEG``: one class of interest) or one ``CLASS_x`` column per class. Raven
selection tables are tab-separated with ``Begin Time (s)`` and ``End Time (s)`` (and, optionally, a class in
``Annotation``/``Species``/``Label``). Every problem is one line naming the file and the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fewshot_audio.data.raven import raven_selections
from fewshot_audio.data.raven import read_table as _rows
from fewshot_audio.data.raven import spans as _events
from fewshot_audio.errors import DataError

logger = logging.getLogger(__name__)

POS, UNK, NEG = "POS", "UNK", "NEG"


@dataclass
class Annotation:
    """The labelled events of one recording for one class: ``events`` ``(n, 2)`` seconds in the table's order,
    ``labels`` (``POS``/``UNK``/``NEG`` per event)."""

    table: Path
    audio: str
    label: str
    events: np.ndarray
    labels: list[str] = field(default_factory=list)

    def positives(self) -> np.ndarray:
        """The ``POS`` events ``(k, 2)`` seconds, in the table's order."""
        return self.events[[i for i, q in enumerate(self.labels) if q == POS]]


def read_dcase(path: str | Path) -> list[Annotation]:
    """The annotations of one DCASE table: one per class (``Q``: the file's one class, named after the table)."""
    path = Path(path)
    columns, rows = _rows(path)
    need = {"Starttime", "Endtime"}
    if not need <= set(columns):
        raise DataError(f"{path}: an annotation table needs columns Audiofilename,Starttime,Endtime and Q or "
                        f"CLASS_x (found {','.join(columns) or 'none'})")
    classes = ["Q"] if "Q" in columns else [c for c in columns if c.startswith("CLASS_")]
    if not classes:
        raise DataError(f"{path}: no Q column and no CLASS_x column; add Q (POS/UNK/NEG) or one CLASS_x column per class")
    events = _events(path, rows, "Starttime", "Endtime")
    order = np.arange(len(rows))
    audio = next((r.get("Audiofilename").strip() for r in rows if r.get("Audiofilename")), "")
    out = []
    for c in classes:
        labels = [(rows[i].get(c) or "").strip().upper() for i in order]
        bad = next((q for q in labels if q not in (POS, UNK, NEG)), None)
        if bad is not None:
            raise DataError(f"{path}: column {c} holds {bad!r}; use POS, UNK or NEG")
        keep = [k for k, q in enumerate(labels) if q != NEG]
        out.append(Annotation(path, audio, path.stem if c == "Q" else c[len("CLASS_"):],
                              events[order][keep], [labels[k] for k in keep]))
    return out


def read_raven(path: str | Path) -> list[Annotation]:
    """A Raven selection table (:func:`raven_selections`): every selection is a POS event; one annotation per
    (recording, class) when the table names recordings (``Begin File`` or ``Begin Path``), else per class (or one)."""
    path = Path(path)
    selections = raven_selections(path)
    keys = [(Path(s.file).name, s.label or path.stem) for s in selections]
    return _positives_by_key(path, keys, np.array([(s.start, s.end) for s in selections]).reshape(-1, 2))


def _positives_by_key(table: Path, keys: list[tuple[str, str]], events: np.ndarray) -> list[Annotation]:
    """One POS annotation per distinct ``(recording, class)`` key, in first-seen order, its events in time order."""
    out = []
    for audio, name in dict.fromkeys(keys):
        idx = [i for i, key in enumerate(keys) if key == (audio, name)]
        ev = events[idx][np.argsort(events[idx, 0], kind="stable")]
        out.append(Annotation(table, audio, name, ev, [POS] * len(ev)))
    return out


REVIEW_COLUMNS = {"path", "start", "end", "tag", "label"}  # the LABELS.csv that 'fewshot-audio review' writes


def read_review_labels(path: str | Path) -> list[Annotation]:
    """The confirmed events of a review's LABELS.csv: its ``positive`` rows, one annotation per (recording, tag), in
    time order (negative and uncertain rows are not examples)."""
    path = Path(path)
    _, rows = _rows(path)
    rows = [r for r in rows if (r.get("label") or "").strip() == "positive"]
    if not rows:
        raise DataError(f"{path}: no positive decision to use as an example; review some items first")
    keys = [(Path(r["path"]).name, r["tag"] or path.stem) for r in rows]
    return _positives_by_key(path, keys, _events(path, rows, "start", "end"))


def read_examples_table(path: str | Path) -> list[Annotation]:
    """``--examples TABLE``: a Raven selection table (tab-separated), a review's LABELS.csv (its positives), or a
    CSV in the DCASE layout."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"examples table {path} does not exist")
    head = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()[:1]
    if head and "\t" in head[0]:
        return read_raven(path)
    columns, _ = _rows(path)
    if REVIEW_COLUMNS <= set(columns):
        return read_review_labels(path)
    if "Starttime" not in columns and any(c in columns for c in ("start", "Start", "onset")):
        raise DataError(f"{path}: name the columns Starttime,Endtime (and Q) as in the DCASE layout, or pass a Raven table")
    return read_dcase(path)


def examples(annotation: Annotation, *, first: int = 5, duration: float | None = None) -> np.ndarray:
    """The first ``first`` POS events of ``annotation``, checked: enough of them, in order, inside the recording.
    Examples that overlap (a drum flam, calls over calls) are used as they are, with one warning."""
    pos = annotation.positives()
    where = f"{annotation.table}" + (f" (class {annotation.label})" if annotation.label != annotation.table.stem else "")
    if len(pos) < first:
        raise DataError(f"{where}: {len(pos)} POS event(s); detection needs the first {first} as examples: annotate "
                        f"{first - len(pos)} more or pass first={max(1, len(pos))}", param="first")
    back = np.flatnonzero(np.diff(pos[:, 0]) < 0)
    if len(back):
        k = int(back[0])
        raise DataError(f"{where}: the POS events are not in time order (the one at {pos[k + 1, 0]:g} s comes after the one "
                        f"at {pos[k, 0]:g} s), so the first {first} are not the earliest; sort the rows by Starttime")
    shots = pos[:first]
    overlap = np.nonzero(shots[1:, 0] < shots[:-1, 1])[0]
    if len(overlap):
        k = int(overlap[0])
        logger.warning("%s: examples %d and %d overlap (%g-%g s and %g-%g s); both are used", where, k + 1, k + 2,
                       shots[k, 0], shots[k, 1], shots[k + 1, 0], shots[k + 1, 1])
    if duration is not None and shots[:, 1].max() > duration + 1e-3:
        k = int(np.argmax(shots[:, 1] > duration + 1e-3))
        raise DataError(f"{where}: example {k + 1} ends at {shots[k, 1]:g} s, past the end of the recording "
                        f"({duration:.3f} s); fix its times or pair the table with the right recording")
    return shots
