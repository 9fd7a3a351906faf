"""Episodes from a folder in the DCASE layout (recordings with an annotation CSV of the same name beside them,
at any depth) or from a user's recordings and one examples table.

Only the first ``first`` POS events of each (recording, class) leave this module, as an
:class:`~fewshot_audio.detection.pipeline.Episode`; the rest of an annotation is never passed on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fewshot_audio.data.audio import AUDIO_EXTENSIONS, audio_duration, load_audio
from fewshot_audio.detection.annotations import examples, read_dcase, read_examples_table
from fewshot_audio.detection.pipeline import Episode
from fewshot_audio.errors import DataError

logger = logging.getLogger(__name__)

LINK_BYTES = 4096  # a git symlink checked out as a file holds the target's relative path


@dataclass
class Found:
    """Episodes that can run, and one line per recording or table that cannot."""

    episodes: list[Episode]
    problems: list[str]


def resolve_audio(path: Path) -> Path:
    """``path``, or the audio file it names when it is a small text file holding a relative path (a symbolic
    link checked out without link support, as git does on some systems)."""
    if path.is_file() and path.stat().st_size < LINK_BYTES:
        try:
            target = path.read_text(encoding="utf-8").strip()
        except (UnicodeDecodeError, OSError):
            return path
        if target and "\n" not in target and (path.parent / target).is_file():
            return path.parent / target
    return path


def _checked(path: Path) -> float:
    """The recording's duration; an empty or undecodable one is a one-line error naming it."""
    duration = audio_duration(path)
    if duration <= 0:  # no duration in the header: decode it (a DataError names an unreadable file)
        try:
            duration = len(load_audio(path, sample_rate=16000)) / 16000
        except DataError as exc:
            if "zero samples" not in str(exc):
                raise
            raise DataError(f"{path} is empty (no samples); replace it with the recording or remove it and its "
                            "annotation") from None
    return duration


@dataclass(frozen=True)
class DCASELayout:
    """A folder in the DCASE layout: each annotation table ``X.csv`` paired with the recording ``X.<audio>`` beside
    it (``pairs``, in table order), and what has no partner (``lone_recordings``, ``lone_tables``)."""

    pairs: list[tuple[Path, Path]]
    lone_recordings: list[Path]
    lone_tables: list[Path]


def dcase_layout(root: str | Path) -> DCASELayout:
    """The one walk of a DCASE-layout folder (every sub-folder): the tables and the recordings of the same stem,
    matched by audio extension (:data:`~fewshot_audio.data.audio.AUDIO_EXTENSIONS`)."""
    root = Path(root)
    audio = {p.with_suffix(""): p for p in sorted(root.rglob("*")) if p.suffix.lower() in AUDIO_EXTENSIONS}
    tables = {p.with_suffix(""): p for p in sorted(root.rglob("*.csv"))}
    return DCASELayout(pairs=[(audio[stem], table) for stem, table in tables.items() if stem in audio],
                       lone_recordings=[rec for stem, rec in audio.items() if stem not in tables],
                       lone_tables=[table for stem, table in tables.items() if stem not in audio])


def dataset_episodes(root: str | Path, *, first: int = 5) -> Found:
    """Every (recording, class of interest) under ``root``: the table ``X.csv`` beside the recording ``X.*``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass a folder of recordings with annotation CSVs beside them, or "
                        "recordings with examples=TABLE")
    layout = dcase_layout(root)
    found = Found([], [])
    for rec in layout.lone_recordings:
        stem = rec.with_suffix("")
        raven = sorted(rec.parent.glob(f"{stem.name}*.txt"))
        if raven:
            found.problems.append(f"{rec}: no annotation {stem.name}.csv beside it, but a selection table "
                                  f"{raven[0].name}: pass the recording with examples={raven[0]}")
            continue
        found.problems.append(f"{rec}: no annotation {stem.name}.csv beside it; annotate its first {first} events "
                              "or move it out of the dataset")
    for table in layout.lone_tables:
        found.problems.append(f"{table}: no recording of the same name beside it ({table.stem}.wav or another audio "
                              "type); add it or move the table out")
    for audio, table in layout.pairs:
        try:
            recording = resolve_audio(audio)
            duration = _checked(recording)
            for ann in read_dcase(table):
                found.episodes.append(Episode(recording, ann.label, examples(ann, first=first, duration=duration),
                                              name=audio.name))
        except DataError as exc:
            found.problems.append(str(exc))
    if not found.episodes and not found.problems:
        raise DataError(f"no recordings with annotation CSVs under {root}")
    return found


def table_home(recordings: list[Path], table: Path, named: str) -> Path:
    """The recording among ``recordings`` whose audio a table's examples were cut from: the one it ``named``
    (``Audiofilename``, Raven's ``Begin File``/``Begin Path``; the only one given where none has that name, with a
    warning), else the one the table is named after (``night.wav`` for ``night.csv`` or
    ``night.Table.1.selections.txt``), else the only one given."""
    if named:
        match = [r for r in recordings if r.name == named] or [r for r in recordings if r.stem == Path(named).stem]
        if not match and len(recordings) == 1:  # the user paired them: trust it, say so
            logger.warning("examples table %s names recording %r; its examples are cut from %s, the one given",
                           table, named, recordings[0].name)
            return recordings[0]
        if not match:
            raise DataError(f"examples table {table} names recording {named!r}, which is not among the recordings "
                            f"given ({', '.join(r.name for r in recordings[:5])}); pass it too")
        return match[0]
    stem = table.name.split(".")[0]
    match = [r for r in recordings if r.stem == stem or r.name.split(".")[0] == stem]
    if len(match) == 1:
        return match[0]
    if len(recordings) == 1:
        return recordings[0]
    raise DataError(f"examples table {table} does not say which of the {len(recordings)} recordings its examples are "
                    f"in; name the table after it (e.g. {recordings[0].stem}.selections.txt) or add a 'Begin File' column")


def table_episodes(recordings: list[Path], table: str | Path, *, first: int = 5) -> list[Episode]:
    """The examples of ``table`` (its first ``first`` events per recording and class), each in the recording it
    was cut from (:func:`table_home`); every episode's ``recording`` is that recording."""
    table = Path(table)
    out = []
    for a in read_examples_table(table):
        home = table_home(recordings, table, a.audio)
        recording = resolve_audio(home)
        out.append(Episode(recording, a.label, examples(a, first=first, duration=_checked(recording)), name=home.name))
    return out
