"""Dataset adapters: turn a folder in a known layout into a :class:`Manifest`.

One ``prepare_<format>(root, label=...)`` per layout, each wrapped in a :class:`DatasetLayout` registered in
:data:`LAYOUTS`; :func:`detect_format` asks each layout, in ``detect_order``, whether ``root`` is in it;
:func:`build_manifest` does both.
"""

from __future__ import annotations

import abc
import csv
import json
import re
import warnings
from pathlib import Path
from typing import ClassVar

import soundfile as sf

from fewshot_audio.data.audio import AUDIO_EXTENSIONS
from fewshot_audio.data.manifest import Clip, Manifest, check_duplicates
from fewshot_audio.errors import DataError
from fewshot_audio.util.registry import Registry


def _is_audio(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS


LABEL_CHOICES: dict[str, tuple[str, ...]] = {
    "folder": ("folder",), "csv": ("labels",), "esc50": ("category",), "urbansound8k": ("class",),
    "fsdd": ("digit", "speaker", "digit-speaker"), "nsynth": ("family", "instrument"), "mtt": ("top50", "all"),
}
"""What ``label`` may name in each layout (the first: the default); each layout's ``labels``."""


def _check_label_choice(fmt: str, label: str | None) -> str:
    """``label``, or layout ``fmt``'s default when ``None``; a one-line error when ``fmt`` has no such labels."""
    valid = LABEL_CHOICES[fmt]
    if label is None:
        return valid[0]
    if label not in valid:
        raise DataError(f"label {label!r} is not valid for format {fmt}; choose one of {', '.join(valid)}",
                        param="label")
    return label


def prepare_folder(root: Path, label: str | None = None) -> Manifest:
    """``root/<class>/<clip>.wav``: one sub-folder per class (audio may be nested deeper)."""
    _check_label_choice("folder", label)
    clips = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(class_dir.rglob("*")):
            if _is_audio(f):
                rel = f.relative_to(root).as_posix()
                clips.append(Clip(id=rel, path=str(f), labels=(class_dir.name,)))
    return Manifest(root.name, str(root), clips)


def _find_csv(root: Path) -> Path:
    if root.is_file():
        return root
    csvs = sorted(root.glob("*.csv"))
    if len(csvs) != 1:
        raise DataError(f"{root} holds {len(csvs)} CSV files; pass the CSV file itself as dataset=", param="dataset")
    return csvs[0]


def prepare_csv(root: Path, label: str | None = None) -> Manifest:
    """A CSV with a ``path`` column and ``label`` (one) or ``labels`` (``;``-separated) column.

    Optional ``fold`` and ``id`` columns. Paths are relative to the CSV's folder.
    """
    _check_label_choice("csv", label)
    path = _find_csv(root)
    base = path.parent
    with open(path, newline="", encoding="utf-8-sig") as fh:  # a spreadsheet's UTF-8 CSV starts with a BOM
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if "path" not in cols or not ({"label", "labels"} & set(cols)):
            raise DataError(f"CSV {path} needs columns 'path' and 'label' or 'labels'; found {', '.join(cols) or 'none'}")
        col = "labels" if "labels" in cols else "label"
        clips = []
        for line, row in enumerate(reader, start=2):
            raw = (row.get(col) or "").strip()
            labels = tuple(t.strip() for t in raw.split(";") if t.strip()) if col == "labels" else ((raw,) if raw else ())
            if not labels:
                raise DataError(f"CSV {path} line {line}: empty {col} for {row['path']!r}; give at least one label")
            file = Path(row["path"])
            full = file if file.is_absolute() else base / file
            clips.append(Clip(id=row.get("id") or row["path"], path=str(full), labels=labels,
                              fold=(row.get("fold") or None)))
    return Manifest(path.stem, str(base), clips)


def prepare_esc50(root: Path, label: str | None = None) -> Manifest:
    """ESC-50: ``meta/esc50.csv`` (filename, fold, category) and ``audio/``; 5 official folds."""
    _check_label_choice("esc50", label)
    clips = []
    with open(root / "meta" / "esc50.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            clips.append(Clip(id=row["filename"], path=str(root / "audio" / row["filename"]),
                              labels=(row["category"],), fold=row["fold"]))
    return Manifest("esc50", str(root), clips)


def prepare_urbansound8k(root: Path, label: str | None = None) -> Manifest:
    """UrbanSound8K: ``metadata/UrbanSound8K.csv`` and ``audio/fold1..10/``; 10 official folds."""
    _check_label_choice("urbansound8k", label)
    clips = []
    with open(root / "metadata" / "UrbanSound8K.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            fold = row["fold"]
            clips.append(Clip(id=row["slice_file_name"], path=str(root / "audio" / f"fold{fold}" / row["slice_file_name"]),
                              labels=(row["class"],), fold=fold))
    return Manifest("urbansound8k", str(root), clips)


_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


def prepare_fsdd(root: Path, label: str | None = None) -> Manifest:
    """Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{i}.wav``.

    ``label``: ``digit`` (10 classes, default), ``speaker`` or ``digit-speaker`` (60 classes).
    """
    label = _check_label_choice("fsdd", label)
    rec = root / "recordings" if (root / "recordings").is_dir() else root
    clips = []
    for f in sorted(rec.glob("*.wav")):
        m = _FSDD_NAME.match(f.stem)
        if not m:
            continue
        digit, speaker, _ = m.groups()
        tag = {"digit": digit, "speaker": speaker, "digit-speaker": f"{digit}-{speaker}"}[label]
        clips.append(Clip(id=f.name, path=str(f), labels=(tag,)))
    return Manifest(f"fsdd-{label}", str(root), clips)


def prepare_nsynth(root: Path, label: str | None = None) -> Manifest:
    """NSynth: ``examples.json`` and ``audio/{note}.wav``; label by ``family`` (default) or ``instrument``."""
    label = _check_label_choice("nsynth", label)
    try:
        meta = json.loads((root / "examples.json").read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{root / 'examples.json'} is not valid JSON: {exc}") from None
    key = "instrument_family_str" if label == "family" else "instrument_str"
    clips = [Clip(id=note, path=str(root / "audio" / f"{note}.wav"), labels=(str(info[key]),))
             for note, info in sorted(meta.items())]
    return Manifest(f"nsynth-{label}", str(root), clips)


def prepare_mtt(root: Path, label: str | None = None) -> Manifest:
    """MagnaTagATune: tab-separated ``annotations_final.csv`` (clip_id, one 0/1 column per tag, mp3_path)
    and the mp3 folders. Multi-label. ``label``: ``top50`` (the 50 most frequent tags, default) or ``all``
    (188). Clips with none of the kept tags stay in the manifest with no labels (negatives)."""
    label = _check_label_choice("mtt", label)
    with open(root / "annotations_final.csv", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader)
        rows = list(reader)
    if header[0] != "clip_id" or header[-1] != "mp3_path":
        raise DataError(f"{root / 'annotations_final.csv'} does not look like MagnaTagATune's annotations "
                        "(expected clip_id ... mp3_path, tab-separated)")
    tags = header[1:-1]
    counts = [sum(r[1 + j] == "1" for r in rows) for j in range(len(tags))]
    keep = sorted(range(len(tags)), key=lambda j: -counts[j])[:50] if label == "top50" else list(range(len(tags)))
    keep = sorted(keep)
    clips = [Clip(id=r[0], path=str(root / r[-1]), labels=tuple(tags[j] for j in keep if r[1 + j] == "1"))
             for r in rows if r[-1]]
    return Manifest(f"mtt-{label}", str(root), clips)


class DatasetLayout(abc.ABC):
    """A reader for one dataset layout: whether a folder is in it (:meth:`matches`) and its manifest
    (:meth:`prepare`, which reads labels by ``label``, one of ``labels``; ``None``: the first)."""

    name: ClassVar[str] = ""
    labels: ClassVar[tuple[str, ...]] = ()
    detect_order: ClassVar[int] = 50  # layouts are tried from the lowest: specific layouts before general ones

    @abc.abstractmethod
    def matches(self, root: Path) -> bool:
        """Whether ``root`` (a folder, or a file) looks like this layout."""

    @abc.abstractmethod
    def prepare(self, root: Path, label: str | None = None) -> Manifest:
        """The manifest of the dataset at ``root``, labels read by ``label``."""


LAYOUTS: Registry[type[DatasetLayout]] = Registry("dataset format", base=DatasetLayout)
"""Every dataset layout by name (the ``format`` of :func:`build_manifest`)."""


@LAYOUTS.register()
class FolderLayout(DatasetLayout):
    """``root/<class>/<clip>.wav``: one sub-folder per class."""

    name, labels, detect_order = "folder", LABEL_CHOICES["folder"], 80

    def matches(self, root):
        return root.is_dir() and any(p.is_dir() and any(_is_audio(f) for f in p.rglob("*")) for p in root.iterdir())

    def prepare(self, root, label=None):
        return prepare_folder(root, label)


@LAYOUTS.register()
class CSVLayout(DatasetLayout):
    """A CSV with ``path,label`` columns (or a folder holding one CSV)."""

    name, labels, detect_order = "csv", LABEL_CHOICES["csv"], 90

    def matches(self, root):
        if root.is_file():
            return root.suffix.lower() == ".csv"
        return len(list(root.glob("*.csv"))) == 1

    def prepare(self, root, label=None):
        return prepare_csv(root, label)


@LAYOUTS.register()
class ESC50Layout(DatasetLayout):
    """ESC-50: ``meta/esc50.csv`` and ``audio/``."""

    name, labels, detect_order = "esc50", LABEL_CHOICES["esc50"], 10

    def matches(self, root):
        return (root / "meta" / "esc50.csv").is_file()

    def prepare(self, root, label=None):
        return prepare_esc50(root, label)


@LAYOUTS.register()
class UrbanSound8KLayout(DatasetLayout):
    """UrbanSound8K: ``metadata/UrbanSound8K.csv`` and ``audio/foldN/`` (its ten folds kept)."""

    name, labels, detect_order = "urbansound8k", LABEL_CHOICES["urbansound8k"], 10

    def matches(self, root):
        return (root / "metadata" / "UrbanSound8K.csv").is_file()

    def prepare(self, root, label=None):
        return prepare_urbansound8k(root, label)


@LAYOUTS.register()
class FSDDLayout(DatasetLayout):
    """The Free Spoken Digit Dataset: ``[recordings/]DIGIT_SPEAKER_I.wav``."""

    name, labels, detect_order = "fsdd", LABEL_CHOICES["fsdd"], 70

    def matches(self, root):
        rec = root / "recordings" if (root / "recordings").is_dir() else root
        wavs = list(rec.glob("*.wav"))[:50]
        return bool(wavs) and all(_FSDD_NAME.match(w.stem) for w in wavs)

    def prepare(self, root, label=None):
        return prepare_fsdd(root, label)


@LAYOUTS.register()
class NSynthLayout(DatasetLayout):
    """NSynth: ``examples.json`` and ``audio/``."""

    name, labels, detect_order = "nsynth", LABEL_CHOICES["nsynth"], 10

    def matches(self, root):
        return (root / "examples.json").is_file()

    def prepare(self, root, label=None):
        return prepare_nsynth(root, label)


@LAYOUTS.register()
class MTTLayout(DatasetLayout):
    """MagnaTagATune: ``annotations_final.csv`` (multi-label tags)."""

    name, labels, detect_order = "mtt", LABEL_CHOICES["mtt"], 10

    def matches(self, root):
        return (root / "annotations_final.csv").is_file()

    def prepare(self, root, label=None):
        return prepare_mtt(root, label)


FORMATS = tuple(LAYOUTS.names())
"""The layout names, in registration order."""


def detect_format(root: Path) -> str:
    """Guess the layout of ``root`` from the files it holds (the first layout, by ``detect_order``, that matches)."""
    if root.is_file() and root.suffix.lower() != ".csv":
        raise DataError(f"dataset path {root} is a file but not a CSV; pass a folder or a CSV manifest")
    layouts = sorted((LAYOUTS.get(name)() for name in LAYOUTS), key=lambda layout: layout.detect_order)
    for layout in layouts:
        if layout.matches(root):
            return layout.name
    raise DataError(
        f"cannot tell the layout of {root}: expected one sub-folder of audio per class, a CSV with path,label "
        f"columns, or a known dataset layout; name one with format= ({', '.join(FORMATS)})", param="format"
    )


def build_manifest(path: str | Path, *, format: str | None = None, label: str | None = None,
                   param: str = "dataset") -> Manifest:
    """Build (without validating audio) the manifest of the dataset at ``path``; messages name ``flag``, the
    option that gave the path."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{param}={root} does not exist; pass a folder of audio or a CSV", param=param)
    if root.is_dir() and not any(root.iterdir()):
        raise DataError(f"{param}={root} is an empty folder; it needs audio in one sub-folder per class or a CSV", param=param)
    fmt = format or detect_format(root)
    if fmt not in LAYOUTS:
        raise DataError(LAYOUTS.unknown(fmt), param="format")
    try:
        manifest = LAYOUTS.get(fmt)().prepare(root, label)
    except FileNotFoundError as exc:
        raise DataError(f"{fmt} dataset at {root} is missing {exc.filename}; is format={fmt} right?") from None
    except (KeyError, csv.Error) as exc:
        raise DataError(f"{fmt} metadata under {root} lacks the expected column or key {exc}") from None
    if not manifest.clips:
        raise DataError(f"no audio clips found in {root} (format {fmt}); audio extensions read: {', '.join(AUDIO_EXTENSIONS)}")
    check_duplicates(manifest.clips)
    return manifest


def validate_manifest(manifest: Manifest, *, strict: bool = False) -> Manifest:
    """Probe every file's header; drop missing, unreadable or empty files, noting each in ``problems``.

    With ``strict`` the first such problem raises :class:`DataError` instead.
    """

    keep, problems = [], list(manifest.problems)
    for clip in manifest.clips:
        problem = None
        if not Path(clip.path).is_file():
            problem = f"{clip.path}: file not found"
        else:
            try:
                info = sf.info(clip.path)
                if info.frames == 0:
                    problem = f"{clip.path}: zero-length audio"
                else:
                    clip = Clip(clip.id, clip.path, clip.labels, clip.fold, info.frames / info.samplerate, info.samplerate)
            except Exception:
                try:
                    import librosa  # imported on use: its first import compiles numba code

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        dur = librosa.get_duration(path=clip.path)
                    clip = Clip(clip.id, clip.path, clip.labels, clip.fold, dur, None)
                    if dur <= 0:
                        problem = f"{clip.path}: zero-length audio"
                except Exception as exc:
                    problem = f"{clip.path}: unreadable audio ({type(exc).__name__})"
        if problem:
            if strict:
                raise DataError(f"{problem}; fix or remove the file, or drop strict=True to skip it", param="strict")
            problems.append(problem)
        else:
            keep.append(clip)
    if not keep:
        raise DataError(f"none of the {len(manifest.clips)} clips in {manifest.root} could be read; first problem: {problems[0]}")
    return Manifest(manifest.name, manifest.root, keep, problems)
