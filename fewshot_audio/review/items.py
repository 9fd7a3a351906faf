"""What there is to review: the items of a ``detect`` or ``tag`` output, one span of one file with a tag and a score.

Readers, one per layout, registered in :data:`LAYOUTS` and told apart by their first bytes: ``detect --json`` (a
list of ``file, class, start, end, score``), ``tag --json`` (a list of ``path, scores``: one item per file and tag,
the whole file), ``index suggest --json`` (the files to label next for one tag), a Raven selection table
(``detect --raven`` or ``tag --raven``: ``Begin File``/``Begin Path``, the
span, ``Annotation``/``Tag``, ``Score``; ``File Offset (s)`` places a row of a table of several files), and the
official detection CSV (``Audiofilename,Starttime,Endtime``: no score). A file named by its name alone is looked
for beside the source, else under ``audio_root``.
"""

from __future__ import annotations

import abc
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from fewshot_audio.data.raven import raven_selections
from fewshot_audio.detection.episodes import resolve_audio
from fewshot_audio.errors import DataError
from fewshot_audio.util.registry import Registry


@dataclass(frozen=True)
class Item:
    """One thing to listen to: ``path`` from ``start`` to ``end`` seconds (``end`` None: to the file's end)."""

    path: str
    start: float
    end: float | None
    tag: str
    score: float

    def key(self) -> tuple[str, float, float | None, str]:
        """What identifies the item across restarts (its labels row is matched on it)."""
        return (self.path, round(self.start, 4), None if self.end is None else round(self.end, 4), self.tag)


class Layout(abc.ABC):
    """A reader of one output layout."""

    @abc.abstractmethod
    def recognises(self, head: str) -> bool:
        """Whether a file starting with ``head`` is of this layout."""

    @abc.abstractmethod
    def read(self, path: Path) -> list[tuple[str, float, float | None, str, float]]:
        """``(file, start, end, tag, score)`` rows."""


LAYOUTS: Registry[type[Layout]] = Registry("review source layout", base=Layout)


@LAYOUTS.register("detect-json")
class DetectJSON(Layout):
    """``detect --json``: a list of ``file, class, start, end, score`` objects."""
    def recognises(self, head):
        return head.lstrip().startswith("[") and '"start"' in head

    def read(self, path):
        return [(r["file"], float(r["start"]), float(r["end"]), str(r.get("class", "")), float(r.get("score", "nan")))
                for r in json.loads(path.read_text())]


@LAYOUTS.register("tag-json")
class TagJSON(Layout):
    """``tag --json``: one object per file with its ``scores`` per tag; each (file, tag) is a whole-file item."""
    def recognises(self, head):
        return head.lstrip().startswith("[") and '"scores"' in head

    def read(self, path):
        return [(r["path"], 0.0, None, tag, float(score)) for r in json.loads(path.read_text()) if not r.get("error")
                for tag, score in r["scores"].items()]


@LAYOUTS.register("suggest-json")
class SuggestJSON(Layout):
    """``index suggest --json``: the files to label next for one tag (whole files)."""

    def recognises(self, head):
        return head.lstrip().startswith("[") and '"threshold"' in head and '"scores"' not in head

    def read(self, path):
        return [(r["path"], 0.0, None, r["tag"], float(r["score"])) for r in json.loads(path.read_text())]


@LAYOUTS.register("raven")
class Raven(Layout):
    """The toolkit's one Raven reader (:func:`~fewshot_audio.detection.annotations.raven_selections`)."""

    def recognises(self, head):
        first = (head.splitlines() or [""])[0]
        return "\t" in first and "Begin Time (s)" in first

    def read(self, path):
        return [(s.file, s.start, s.end, s.label, s.score) for s in raven_selections(path)]


@LAYOUTS.register("dcase-csv")
class DetectCSV(Layout):
    """The official prediction CSV ``Audiofilename,Starttime,Endtime`` (no scores; the class is the file's)."""
    def recognises(self, head):
        return (head.splitlines() or [""])[0].strip().startswith("Audiofilename")

    def read(self, path):
        with open(path, newline="") as fh:
            return [(r["Audiofilename"], float(r["Starttime"]), float(r["Endtime"]), "", float("nan"))
                    for r in csv.DictReader(fh)]


def read_items(source: str | Path, *, audio_root: str | Path | None = None) -> list[Item]:
    """Every item of ``source`` in its order; a one-line :class:`DataError` naming the file when it is missing,
    empty or of no known layout."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"review source {path} does not exist; give a detect or tag output (CSV, JSON or Raven)")
    head = path.read_text(errors="replace")[:4096]
    if not head.strip():
        raise DataError(f"review source {path} is empty")
    layout = next((layout for layout in (cls() for _, cls in LAYOUTS.items()) if layout.recognises(head)), None)
    if layout is None:
        raise DataError(f"review source {path}: not a detect or tag output (their JSON, a Raven selection "
                        "table, or the Audiofilename,Starttime,Endtime CSV)")
    try:
        rows = layout.read(path)
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"review source {path}: unreadable row ({exc}); is it the output of detect or tag?") from None
    return [Item(locate(f, path.parent, audio_root), s, e, t, sc) for f, s, e, t, sc in rows]


def locate(file: str, beside: Path, audio_root: str | Path | None) -> str:
    """``file`` as a path: as given when it exists, else beside the source, else under ``audio_root`` (as given
    when found nowhere: the page shows it missing)."""
    for candidate in (Path(file), beside / file, *([Path(audio_root) / file] if audio_root else [])):
        if candidate.is_file():
            return str(resolve_audio(candidate).resolve())  # a link checked out as a text file: its target
    return file


def has_scores(items: list[Item]) -> bool:
    """Whether any item has a finite score (orders and estimates that need scores check it)."""
    return any(math.isfinite(i.score) for i in items)
