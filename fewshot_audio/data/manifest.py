"""Manifests: one validated record per clip, the contract between data
preparation and everything after it."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fewshot_audio.errors import DataError
from fewshot_audio.util.io import atomic_write_text


@dataclass(frozen=True)
class Clip:
    """One audio clip. ``labels`` is a tuple: tagging is multi-label."""

    id: str
    path: str
    labels: tuple[str, ...]
    fold: str | None = None
    duration: float | None = None
    sample_rate: int | None = None


@dataclass
class Manifest:
    """An ordered list of clips plus the dataset's name and root folder."""

    name: str
    root: str
    clips: list[Clip]
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def classes(self) -> list[str]:
        """The distinct labels of the clips, sorted."""
        return sorted({label for clip in self.clips for label in clip.labels})

    def class_counts(self) -> Counter:
        """Clips per label (a multi-label clip counts once for each of its labels)."""
        return Counter(label for clip in self.clips for label in clip.labels)

    def content_hash(self) -> str:
        """Hash of clip ids and labels: identifies the dataset for frozen episodes,
        independent of where the files lie and when they were copied."""
        h = hashlib.sha256()
        for clip in self.clips:
            h.update(clip.id.encode())
            h.update(b"\0")
            h.update("\x1f".join(clip.labels).encode())
            h.update(b"\n")
        return h.hexdigest()[:16]

    def files_hash(self) -> str:
        """Hash of ids, labels, paths, sizes and modification times: changes
        whenever a file changes, so cached features are rebuilt."""
        h = hashlib.sha256(self.content_hash().encode())
        for clip in self.clips:
            try:
                st = os.stat(clip.path)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            h.update(f"{clip.path}|{stamp}\n".encode())
        return h.hexdigest()[:16]

    def single_labels(self) -> list[str]:
        """The one label of each clip; errors on multi-label clips."""
        out = []
        for clip in self.clips:
            if len(clip.labels) != 1:
                raise DataError(
                    f"clip {clip.id} has {len(clip.labels)} labels {list(clip.labels)} but single-label "
                    "classification needs exactly one; pass multi_label=True to train on every tag, or pick one label "
                    "per clip in the CSV"
                )
            out.append(clip.labels[0])
        return out

    def subset(self, keep: list[int]) -> Manifest:
        """A manifest of the clips at positions ``keep`` (its problems kept)."""
        return Manifest(self.name, self.root, [self.clips[i] for i in keep], list(self.problems))

    def save(self, path: str | Path) -> None:
        """Write the manifest as JSON lines (a header, then one clip per line), atomically."""
        lines = [json.dumps({"name": self.name, "root": self.root})]
        lines += [json.dumps(asdict(c)) for c in self.clips]
        atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """The manifest :meth:`save` wrote at ``path``."""
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        head, body = rows[0], rows[1:]
        clips = [Clip(**{**r, "labels": tuple(r["labels"])}) for r in body]
        return cls(head["name"], head["root"], clips)


def check_duplicates(clips: list[Clip]) -> None:
    """Raise a one-line :class:`DataError` naming clip ids that appear more than once."""
    dup = [cid for cid, n in Counter(c.id for c in clips).items() if n > 1]
    if dup:
        raise DataError(f"clip id(s) {', '.join(dup[:5])} appear more than once in the dataset; ids must be unique")
