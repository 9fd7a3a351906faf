"""Episodes from a folder in the DCASE layout (recordings with an annotation CSV of the same name beside them,
at any depth) or from a user's recordings and one examples table.

Only the first ``first`` POS events of each (recording, class) leave this module, as an
:class:`~fewshot_audio.detection.pipeline.Episode`; the rest of an annotation is never passed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fewshot_audio.data.audio import AUDIO_EXTENSIONS, audio_duration, load_audio
from fewshot_audio.detection.annotations import examples, read_dcase, read_examples_table
from fewshot_audio.detection.pipeline import Episode
from fewshot_audio.errors import DataError

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


def dataset_episodes(root: str | Path, *, first: int = 5) -> Found:
    """Every (recording, class of interest) under ``root``: the table ``X.csv`` beside the recording ``X.*``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass a folder of recordings with annotation CSVs beside them, or "
                        "recordings with --examples TABLE")
    audio = {p.with_suffix(""): p for p in sorted(root.rglob("*")) if p.suffix.lower() in AUDIO_EXTENSIONS}
    tables = {p.with_suffix(""): p for p in sorted(root.rglob("*.csv"))}
    found = Found([], [])
    for stem, rec in audio.items():
        if stem not in tables:
            found.problems.append(f"{rec}: no annotation {stem.name}.csv beside it; annotate its first {first} events "
                                  "or move it out of the dataset")
    for stem, table in tables.items():
        if stem not in audio:
            found.problems.append(f"{table}: no recording of the same name beside it ({stem.name}.wav or another audio "
                                  "type); add it or move the table out")
            continue
        try:
            recording = resolve_audio(audio[stem])
            duration = _checked(recording)
            for ann in read_dcase(table):
                found.episodes.append(Episode(recording, ann.label, examples(ann, first=first, duration=duration),
                                              name=audio[stem].name))
        except DataError as exc:
            found.problems.append(str(exc))
    if not found.episodes and not found.problems:
        raise DataError(f"no recordings with annotation CSVs under {root}")
    return found


def table_episodes(recordings: list[Path], table: str | Path, *, first: int = 5) -> tuple[list[Episode], Path]:
    """The examples of ``table`` (its first ``first`` events per class), in the recording the table names (its
    ``Audiofilename``) or else the first recording. Returns the episodes and the recording they are in."""
    anns = read_examples_table(table)
    named = {a.audio for a in anns if a.audio}
    home = next((r for r in recordings if r.name in named), recordings[0])
    duration = _checked(resolve_audio(home))
    return [Episode(resolve_audio(home), a.label, examples(a, first=first, duration=duration)) for a in anns], home
