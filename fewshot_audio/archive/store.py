"""The archive store: an index folder's database and shard files. All SQL of the toolkit is here.

Layout of an index folder::

    index.sqlite        meta (backbone, model record, features, window, hop, weights, generation, ann),
                        files (path, size, mtime, duration, shard, first row, window count, error),
                        shards (name, rows)
    shards/NNNNNN.emb.npy   float16 window embeddings (rows, d)
    shards/NNNNNN.win.npy   float32 (start s, end s, level dB) of each row's window

One layout version is read (:data:`FORMAT_VERSION`, the ``format`` of ``meta``); an index of another is refused.

A shard is written to temporary files, renamed, and only then recorded, in one transaction
(:meth:`ArchiveStore.commit_shard`): a build killed at any point leaves the database naming only
complete shards, and :meth:`ArchiveStore.remove_orphans` deletes what it does not name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from fewshot_audio.errors import DataError
from fewshot_audio.specs import canonical_backbone

DB_NAME = "index.sqlite"
FORMAT_VERSION = 1  # the layout above; written as meta "format" and checked when an index is opened
SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists shards (id integer primary key, name text not null, rows integer not null);
create table if not exists files (path text primary key, size integer, mtime_ns integer, duration real,
                                  shard integer, first integer, count integer, error text);
create index if not exists files_rows on files (shard, first);
"""


class FileRow(NamedTuple):
    """One indexed file: its windows are rows ``first:first + count`` of shard ``shard`` (none when
    ``count`` is 0; ``error`` says why)."""

    path: str
    shard: int | None
    first: int | None
    count: int
    error: str | None


class NewFile(NamedTuple):
    """A file to record: its size and modification time (to tell a changed archive), its duration, its
    window embeddings ``(n, d)``, their times ``(n, 2)`` and levels ``(n,)`` (dB) (all ``None`` when it could
    not be read, with ``error``)."""

    path: str
    size: int
    mtime_ns: int
    duration: float
    windows: np.ndarray | None
    times: np.ndarray | None
    levels: np.ndarray | None
    error: str | None


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights: an index and a tagger must embed with the very same model."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def model_difference(meta: dict, bb) -> str:
    """How embedding model ``bb`` (an :class:`~fewshot_audio.embedding.Backbone`) differs from the one an index
    with settings ``meta`` was built with ('' when it is the same model)."""
    ours, theirs = canonical_backbone(bb.record["backbone"]), canonical_backbone(meta["model"]["backbone"])
    if ours != theirs:
        return f"backbone {ours!r}, the index's {theirs!r}"
    feats = asdict(bb.features)
    fields = [k for k in feats if feats[k] != meta["features"].get(k)]
    if fields:
        return ", ".join(f"features.{k} {feats[k]!r}, the index's {meta['features'].get(k)!r}" for k in fields[:3])
    if {**bb.record, "backbone": ours} != {**meta["model"], "backbone": theirs}:
        return f"model {bb.record}, the index's {meta['model']}"
    if model_fingerprint(bb.model) != meta["weights"]:
        return f"backbone {bb.name!r} with other weights"
    return ""


def row_numbers(owners: list[tuple[str, int, int]]) -> np.ndarray:
    """The shard rows of the files ``owners`` (``(path, first, count)`` from :meth:`ArchiveStore.live_rows`), in order."""
    return np.concatenate([np.arange(first, first + count) for _, first, count in owners])


class ArchiveStore:
    """An index folder (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._db = sqlite3.connect(str(self.root / DB_NAME), isolation_level=None,  # explicit transactions
                                   timeout=600)  # processes of one torchrun build wait for each other's commits
        self._db.executescript(SCHEMA)

    @classmethod
    def exists(cls, root: str | Path) -> bool:
        """Whether ``root`` holds an index database."""
        return (Path(root) / DB_NAME).is_file()

    @classmethod
    def open(cls, root: str | Path) -> ArchiveStore:
        """An existing, set-up index (one line saying how to build one otherwise)."""
        root = Path(root)
        if not cls.exists(root):
            raise DataError(f"{root} is not an index (no {DB_NAME}); build one with 'fewshot-audio index build'")
        store = cls(root)
        if not store.meta:
            raise DataError(f"{root} holds no finished index set-up; rebuild it with 'fewshot-audio index build'")
        if store.meta.get("format") != FORMAT_VERSION:
            raise DataError(f"index {root} has layout version {store.meta.get('format')}; this toolkit reads version "
                            f"{FORMAT_VERSION}: build it again with 'fewshot-audio index build' into a new folder")
        return store

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (holding the database's write lock from its start); committed when the block
        ends, rolled back on any error or interruption."""
        self._db.execute("begin immediate")
        try:
            yield self._db
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    # ----------------------------------------------------------------------------------- meta
    @property
    def meta(self) -> dict:
        """The index's settings (backbone, model record, features, window, hop, weights, format, ...) as a dict."""
        return {k: json.loads(v) for k, v in self._db.execute("select key, value from meta")}

    def set_up(self, meta: dict) -> None:
        """Record the settings of a new index."""
        with self.transaction() as db:
            db.executemany("insert into meta values (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])

    def generation(self) -> int:
        """A counter that every transaction changing the files raises (constant time, whatever the size)."""
        row = self._db.execute("select value from meta where key = 'generation'").fetchone()
        return int(json.loads(row[0])) if row else 0

    def _next_generation(self, db: sqlite3.Connection) -> None:
        db.execute("insert into meta values ('generation', '1') on conflict (key) do update set "
                   "value = cast(value as integer) + 1")

    def ann_state(self) -> dict | None:
        """What the approximate-search graph was written from (``generation``, ``windows``), or ``None``."""
        return self.meta.get("ann")

    def set_ann_state(self, state: dict) -> None:
        """Record the search graph's ``state`` (its generation and window count) in one transaction."""
        with self.transaction() as db:
            db.execute("insert or replace into meta values ('ann', ?)", (json.dumps(state),))

    # ----------------------------------------------------------------------------------- writing
    def known_files(self) -> dict[str, tuple[int, int]]:
        """``{path: (size, mtime_ns)}`` of every recorded file."""
        return {p: (size, mtime) for p, size, mtime in self._db.execute("select path, size, mtime_ns from files")}

    def forget(self, paths: list[str]) -> None:
        """Forget files that are gone from the archive (their rows stay in their shards, never read)."""
        with self.transaction() as db:
            db.executemany("delete from files where path = ?", [(p,) for p in paths])
            self._next_generation(db)

    def commit_shard(self, files: list[NewFile]) -> None:
        """Write the windows of ``files`` as one new shard and record the files, atomically."""
        ok = [f for f in files if f.windows is not None]
        folder = self.root / "shards"
        folder.mkdir(exist_ok=True)
        temps = {}
        if ok:
            emb = np.concatenate([f.windows for f in ok]).astype(np.float16)
            times = np.concatenate([np.column_stack([f.times, f.levels]) for f in ok]).astype(np.float32)
            for suffix, arr in (("emb", emb), ("win", times)):
                tmp = temps[suffix] = folder / f".{os.getpid()}.{suffix}.tmp.npy"
                np.save(tmp, arr)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
        # the shard number is taken, and the shard files named, under the database's write lock: processes of
        # a torchrun build commit into one index
        with self.transaction() as db:
            shard = db.execute("select coalesce(max(id), 0) + 1 from shards").fetchone()[0]
            name = f"{shard:06d}"
            for suffix, tmp in temps.items():
                os.replace(tmp, folder / f"{name}.{suffix}.npy")
            if ok:
                db.execute("insert into shards (id, name, rows) values (?, ?, ?)", (shard, name, len(emb)))
            first = 0
            for f in files:
                n = 0 if f.windows is None else len(f.windows)
                db.execute("insert or replace into files values (?, ?, ?, ?, ?, ?, ?, ?)",
                           (f.path, f.size, f.mtime_ns, f.duration, shard if n else None, first if n else None, n,
                            f.error))
                first += n
            self._next_generation(db)

    def shard_names(self) -> set[str]:
        """The names of the shards the database records (files on disk not named here are orphans)."""
        return {n for (n,) in self._db.execute("select name from shards")}

    def remove_orphans(self) -> None:
        """Delete shard files the database does not name (a build killed before its commit)."""
        named = self.shard_names()
        folder = self.root / "shards"
        for f in folder.glob("*") if folder.exists() else []:
            if f.name.split(".")[0] not in named:
                f.unlink()

    # ----------------------------------------------------------------------------------- reading
    def files(self) -> list[FileRow]:
        """Every indexed file, in path order."""
        return [FileRow(*r) for r in self._db.execute("select path, shard, first, count, error from files order by path")]

    def window_count(self) -> int:
        """Windows of the files the index holds now."""
        return self._db.execute("select coalesce(sum(count), 0) from files").fetchone()[0]

    def audio_seconds(self) -> float:
        """Seconds of audio in the files the index holds now."""
        return float(self._db.execute("select coalesce(sum(duration), 0) from files").fetchone()[0])

    def file_at(self, shard: int, row: int) -> str | None:
        """The path of the live file whose windows include row ``row`` of shard ``shard``."""
        found = self._db.execute("select path from files where shard = ? and first <= ? and first + count > ?",
                                 (shard, row, row)).fetchone()
        return None if found is None else found[0]

    def shard_arrays(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        """Memory-mapped ``(embeddings (rows, d) float16, windows (rows, 3))`` of shard ``shard``: each window's
        start and end seconds and its level in dB."""
        name = f"{shard:06d}"
        folder = self.root / "shards"
        try:
            return (np.load(folder / f"{name}.emb.npy", mmap_mode="r"), np.load(folder / f"{name}.win.npy", mmap_mode="r"))
        except (OSError, ValueError) as exc:
            raise DataError(f"index shard {folder / name}.emb.npy is missing or damaged ({exc}); rebuild the "
                            "index after deleting it (fewshot-audio index build, resume=True)") from None

    def live_rows(self) -> dict[int, list[tuple[str, int, int]]]:
        """Per shard, the ``(path, first, count)`` of the files whose windows it holds (rows of forgotten or
        re-embedded files are left out)."""
        out: dict[int, list[tuple[str, int, int]]] = {}
        for f in self.files():
            if f.count:
                out.setdefault(f.shard, []).append((f.path, f.first, f.count))
        return out

    def windows_of(self, paths: list[str | Path]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Window embeddings ``(n, d)`` float32 of the indexed files ``paths`` and their levels (dB); one line naming
        a file the index does not hold, or holds without audio."""
        out, levels = [], []
        for p in paths:
            row = self._db.execute("select path, shard, first, count, error from files where path = ?",
                                   (str(Path(p).resolve()),)).fetchone()
            f = None if row is None else FileRow(*row)
            if f is None or not f.count:
                why = "is not in it" if f is None else f"has no audio in it ({f.error})"
                raise DataError(f"{p} {why}: index {self.root} holds the files of its archive; update it "
                                "(fewshot-audio index build, resume=True) or pass the file without index=")
            emb, win = self.shard_arrays(f.shard)
            out.append(np.array(emb[f.first : f.first + f.count], dtype=np.float32))  # a copy: the map is read-only
            levels.append(_levels(win[f.first : f.first + f.count]))
        return out, levels

    def windows_of_files(self):
        """``(path, window embeddings float32 (n, d), times (n, 2), levels (n,) dB, error)`` per indexed file
        (arrays ``None`` for a file without audio)."""
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for f in self.files():
            if not f.count:
                yield f.path, None, None, None, f.error or "no audio"
                continue
            if f.shard not in cache:
                cache.clear()  # files of one shard are consecutive in most archives: keep one shard mapped
                cache[f.shard] = self.shard_arrays(f.shard)
            emb, times = cache[f.shard]
            span = slice(f.first, f.first + f.count)
            # copies out of the read-only shard map: the arrays are the caller's own
            yield f.path, np.array(emb[span], dtype=np.float32), np.array(times[span, :2]), _levels(times[span]), None

    def clip_windows(self) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Every file with audio: ``(paths, window embeddings (n_windows, d) float32, owner (n_windows,), levels
        (n_windows,) dB or None)``, window ``i`` belonging to ``paths[owner[i]]``."""
        paths, zs, levels = [], [], []
        for path, z, _, lv, _ in self.windows_of_files():
            if z is not None:
                paths.append(path)
                zs.append(torch.from_numpy(z))
                levels.append(torch.from_numpy(lv))
        if not zs:
            raise DataError(f"index {self.root} holds no audio")
        owner = torch.cat([torch.full((len(z),), i) for i, z in enumerate(zs)])
        return paths, torch.cat(zs), owner, torch.cat(levels)


def _levels(windows: np.ndarray) -> np.ndarray:
    """The level column (dB) of shard window rows."""
    return np.array(windows[:, 2], dtype=np.float32)
