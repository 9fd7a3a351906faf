"""An archive index: embed every file of an archive once, then search by example and tag from the index.

Layout of an index folder::

    index.sqlite        meta (backbone, model record, features, window, hop), files (path, size, mtime,
                        duration, shard, first row, window count, error), shards (name, rows)
    shards/NNNNNN.emb.npy   float16 window embeddings (rows, d)
    shards/NNNNNN.win.npy   float32 (start, end) seconds of each row's window

A build embeds files in groups; each group becomes one shard, written to temporary files, renamed, and
only then recorded in the database in one transaction. A build killed at any point (even ``kill -9``)
leaves the database naming only complete shards; ``--resume`` deletes shard files the database does
not name and goes on with the files it has not recorded. On a changed archive, ``--resume`` embeds new
files and files whose size or modification time changed, and forgets files that are gone (their old
rows stay in their shard, unreferenced, and are never read).

Files become windows by the same clip policy as ``tag`` (:func:`~fewshot_audio.embedding.embed_files`,
streamed block by block, so memory stays bounded whatever a file's length), ``--hop`` seconds apart
(default: half a window, as ``tag``), so ``index tag`` gives what ``tag`` gives, up to float16 storage.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .data.audio import audio_duration
from .errors import ConfigError, DataError
from .progress import log, warn

ANN_CHOICES = ("auto", "yes", "no")
SEARCH_METHODS = ("auto", "exact", "approximate")
DB_NAME = "index.sqlite"
SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists shards (id integer primary key, name text not null, rows integer not null);
create table if not exists files (path text primary key, size integer, mtime_ns integer, duration real,
                                  shard integer, first integer, count integer, error text);
create index if not exists files_rows on files (shard, first);
"""


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights: an index and a tagger must embed with the very same model."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class ArchiveIndex:
    """An index folder (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.db = sqlite3.connect(str(self.root / DB_NAME), isolation_level=None,  # explicit transactions
                                  timeout=600)  # processes of one torchrun build wait for each other's commits
        self.db.executescript(SCHEMA)

    # ----------------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, root: str | Path) -> "ArchiveIndex":
        root = Path(root)
        if not (root / DB_NAME).is_file():
            raise DataError(f"{root} is not an index (no {DB_NAME}); build one with 'fewshot-audio index build'")
        index = cls(root)
        if not index.meta:
            raise DataError(f"{root} holds no finished index set-up; rebuild it with 'fewshot-audio index build'")
        return index

    @property
    def meta(self) -> dict:
        return {k: json.loads(v) for k, v in self.db.execute("select key, value from meta")}

    def backbone(self, *, device: torch.device):
        """The index's embedding model (:class:`~fewshot_audio.tagger.Backbone`)."""
        from .embedding import load_backbone

        meta = self.meta
        bb = load_backbone(meta["backbone"], device=device)
        differs = _difference(meta, bb)
        if differs:
            raise ConfigError(f"backbone {meta['backbone']!r} is no longer the model index {self.root} was built "
                              f"with ({differs}); rebuild the index")
        return bb

    # ----------------------------------------------------------------------------------- building
    def _cleanup_orphans(self) -> None:
        named = {n for (n,) in self.db.execute("select name from shards")}
        folder = self.root / "shards"
        for f in folder.glob("*") if folder.exists() else []:
            if f.name.split(".")[0] not in named:
                f.unlink()  # a shard written but never committed (the build was killed), or a temporary file

    def _commit(self, paths: list[Path], stats: list[tuple[int, int]], windows: list[np.ndarray | None],
                times: list[np.ndarray | None], errors: list[str | None]) -> None:
        ok = [i for i, w in enumerate(windows) if w is not None]
        folder = self.root / "shards"
        folder.mkdir(exist_ok=True)
        durations = [audio_duration(paths[i], decode=True) if windows[i] is not None else 0.0 for i in range(len(paths))]
        temps = {}
        if ok:
            emb = np.concatenate([windows[i] for i in ok]).astype(np.float16)
            starts_ends = np.concatenate([times[i] for i in ok])
            for suffix, arr in (("emb", emb), ("win", starts_ends)):
                tmp = temps[suffix] = folder / f".{os.getpid()}.{suffix}.tmp.npy"
                np.save(tmp, arr)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
        first = 0
        # the shard number is taken, and the shard files named, under the database's write lock: processes of
        # a torchrun build commit into one index
        self.db.execute("begin immediate")
        try:
            shard = self.db.execute("select coalesce(max(id), 0) + 1 from shards").fetchone()[0]
            name = f"{shard:06d}"
            for suffix, tmp in temps.items():
                os.replace(tmp, folder / f"{name}.{suffix}.npy")
            if ok:
                self.db.execute("insert into shards (id, name, rows) values (?, ?, ?)", (shard, name, len(emb)))
            for i, path in enumerate(paths):
                n = 0 if windows[i] is None else len(windows[i])
                self.db.execute("insert or replace into files values (?, ?, ?, ?, ?, ?, ?, ?)",
                                (str(path), stats[i][0], stats[i][1], durations[i], shard if n else None,
                                 first if n else None, n, errors[i]))
                first += n
            self._next_generation()
            self.db.execute("commit")
        except BaseException:
            self.db.execute("rollback")
            raise

    def _next_generation(self) -> None:
        """Inside a transaction that changes the files: raise the index's generation (a stale search graph
        is told from it, :mod:`fewshot_audio.ann`)."""
        self.db.execute("insert into meta values ('generation', '1') on conflict (key) do update set "
                        "value = cast(value as integer) + 1")

    # ----------------------------------------------------------------------------------- reading
    def files(self) -> list[tuple[str, int | None, int, int, str | None]]:
        """``(path, shard, first, count, error)`` of every indexed file, in path order."""
        return list(self.db.execute("select path, shard, first, count, error from files order by path"))

    def shard_arrays(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        """Memory-mapped ``(embeddings (rows, d) float16, times (rows, 2))`` of shard ``shard``."""
        name = f"{shard:06d}"
        folder = self.root / "shards"
        try:
            return (np.load(folder / f"{name}.emb.npy", mmap_mode="r"), np.load(folder / f"{name}.win.npy", mmap_mode="r"))
        except (OSError, ValueError) as exc:
            raise DataError(f"index shard {folder / name}.emb.npy is missing or damaged ({exc}); rebuild the "
                            "index with 'fewshot-audio index build ... --resume' after deleting it") from None

    def live_rows(self) -> dict[int, list[tuple[str, int, int]]]:
        """Per shard, the ``(path, first, count)`` of the files whose windows it holds (rows of forgotten or
        re-embedded files are left out)."""
        out: dict[int, list[tuple[str, int, int]]] = {}
        for path, shard, first, count, _ in self.files():
            if count:
                out.setdefault(shard, []).append((path, first, count))
        return out

    def windows_of(self, paths: list[str | Path]) -> list[np.ndarray]:
        """Window embeddings ``(n, d)`` float32 of the indexed files ``paths`` (one line naming a file the
        index does not hold, or holds without audio)."""
        out = []
        for p in paths:
            row = self.db.execute("select shard, first, count, error from files where path = ?",
                                  (str(Path(p).resolve()),)).fetchone()
            if row is None or not row[2]:
                why = "is not in it" if row is None else f"has no audio in it ({row[3]})"
                raise DataError(f"{p} {why}: index {self.root} holds the files of its archive; update it with "
                                "'fewshot-audio index build ... --resume' or pass the file without --index")
            emb, _ = self.shard_arrays(row[0])
            out.append(np.asarray(emb[row[1] : row[1] + row[2]], dtype=np.float32))
        return out

    def clip_windows(self) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Every file with audio: ``(paths, window embeddings (n_windows, d) float32, owner (n_windows,))``,
        window ``i`` belonging to ``paths[owner[i]]``."""
        paths, zs = [], []
        for path, z, _, _ in self.windows_of_files():
            if z is not None:
                paths.append(path)
                zs.append(torch.from_numpy(z))
        if not zs:
            raise DataError(f"index {self.root} holds no audio")
        owner = torch.cat([torch.full((len(z),), i) for i, z in enumerate(zs)])
        return paths, torch.cat(zs), owner

    def windows_of_files(self):
        """``(path, window embeddings float32 (n, d) or None, times (n, 2) or None, error)`` per indexed file."""
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for path, shard, first, count, error in self.files():
            if not count:
                yield path, None, None, error or "no audio"
                continue
            if shard not in cache:
                cache.clear()  # files of one shard are consecutive in most archives: keep one shard mapped
                cache[shard] = self.shard_arrays(shard)
            emb, times = cache[shard]
            yield path, np.asarray(emb[first : first + count], dtype=np.float32), np.asarray(times[first : first + count]), None


def row_numbers(owners: list[tuple[str, int, int]]) -> np.ndarray:
    """The shard rows of the files ``owners`` (``(path, first, count)`` from :meth:`ArchiveIndex.live_rows`), in order."""
    return np.concatenate([np.arange(first, first + count) for _, first, count in owners])


def build_index(archive: list[str | Path], *, backbone: str, out: str | Path, hop: float | None = None,
                workers: int = 1, resume: bool = False, files_per_shard: int = 256, device: str = "cpu",
                ann: str = "auto", quiet: bool = False) -> dict:
    """Embed every audio file under ``archive`` into the index folder ``out`` (see the module docstring).
    ``ann``: write the approximate-search graph (:mod:`fewshot_audio.ann`) from ``ANN_MIN_WINDOWS`` live
    windows on (``auto``), always (``yes``) or never (``no``).
    Returns counts: files embedded, unchanged, forgotten, unreadable; windows stored; seconds."""
    from .runtime import pick_device
    from .tagger import audio_files, load_backbone

    t0 = time.perf_counter()
    out = Path(out)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if hop is not None and hop <= 0:
        raise ConfigError(f"--hop must be > 0 seconds, got {hop}")
    if ann not in ANN_CHOICES:
        raise ConfigError(f"--ann {ann!r} is not valid; use {', '.join(ANN_CHOICES)}")
    files = sorted({p.resolve() for p in audio_files(list(archive))})
    dev = distributed.setup(device) or pick_device(device)
    rank, world = distributed.world()
    quiet = quiet or rank > 0
    _on_rank_0(lambda: _check_out(out, resume))
    bb = load_backbone(backbone, device=dev)
    step = hop if hop is not None else bb.window / 2
    meta = {"backbone": backbone, "model": bb.record, "features": asdict(bb.features), "window": bb.window,
            "hop": step, "weights": model_fingerprint(bb.model), "format": 1}
    _on_rank_0(lambda: _set_up(out, meta))  # sets the index up (or checks it) and removes what a killed build left
    index = ArchiveIndex(out)
    known = {p: (size, mtime) for p, size, mtime in index.db.execute("select path, size, mtime_ns from files")}
    stats = {}
    for f in files:
        st = f.stat()
        stats[str(f)] = (st.st_size, st.st_mtime_ns)
    gone = sorted(set(known) - set(stats))
    todo = [f for f in files if known.get(str(f)) != stats[str(f)]]
    unchanged = len(files) - len(todo)
    distributed.barrier()  # every rank has read what is indexed before any rank changes it
    if gone and rank == 0:
        index.db.execute("begin immediate")
        index.db.executemany("delete from files where path = ?", [(p,) for p in gone])
        index._next_generation()
        index.db.execute("commit")
    if not quiet and (unchanged or gone):
        log(f"index {out}: {unchanged} file(s) unchanged, {len(todo)} to embed, {len(gone)} gone (forgotten)")
    mine = todo[rank::world]  # each rank embeds every world-th file and commits its own shards
    embedder = _Embedder(bb, backbone=backbone, device=dev, hop=step, workers=workers)
    n_windows = n_bad = 0
    try:
        from .progress import progress

        groups = [mine[i : i + files_per_shard] for i in range(0, len(mine), files_per_shard)]
        for group in progress(groups, desc=f"indexing {len(todo)} files", quiet=quiet or len(groups) < 2):
            windows, times, errors = embedder(group, quiet=quiet or len(groups) > 1)
            index._commit(group, [stats[str(f)] for f in group], windows, times, errors)
            n_windows += sum(len(w) for w in windows if w is not None)
            n_bad += sum(e is not None for e in errors)
    finally:
        embedder.close()
    if world > 1:
        done = distributed.gather((n_windows, n_bad))  # also waits for every rank's last commit
        n_windows, n_bad = sum(d[0] for d in done), sum(d[1] for d in done)
    counts = {"index": str(out), "embedded": len(todo), "unchanged": unchanged, "forgotten": len(gone),
              "unreadable": n_bad, "windows": n_windows, "rank": rank, "processes": world}
    counts["ann_windows"] = _update_ann(index, ann, quiet=quiet) if rank == 0 else None
    counts["seconds"] = round(time.perf_counter() - t0, 2)
    return counts


def _on_rank_0(step) -> None:
    """Run ``step`` on rank 0 alone (every process outside torchrun); every rank raises what it raised."""
    rank, world = distributed.world()
    problem = None
    if rank == 0:
        try:
            step()
        except (ConfigError, DataError) as exc:
            problem = exc
    if world > 1:
        problem = next((p for p in distributed.gather(problem) if p is not None), None)
        if problem is not None:
            problem.collective = True  # every rank stops on it together (the CLI meets at a barrier after printing)
            problem.reported_elsewhere = rank > 0  # rank 0 prints it; the others only stop
    if problem is not None:
        raise problem


def _check_out(out: Path, resume: bool) -> None:
    exists = (out / DB_NAME).is_file()
    if exists and not resume:
        raise ConfigError(f"{out} already holds an index; pass --resume to continue or update it, or choose another --out")
    if out.exists() and not exists and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an index; choose an empty or new --out")


def _set_up(out: Path, meta: dict) -> None:
    """Record ``meta`` in a new index, or check that an existing one was built the same way; then remove
    shard files a killed build wrote but never committed."""
    out.mkdir(parents=True, exist_ok=True)
    index = ArchiveIndex(out)
    old = index.meta
    if old:
        for key in ("backbone", "model", "features", "window", "hop", "weights"):
            if old.get(key) != meta[key]:
                raise ConfigError(f"index {index.root} was built with {key} {old.get(key)!r}, not {meta[key]!r}; "
                                  "resume it with the same --backbone and --hop, or build a new index")
    else:
        index.db.execute("begin immediate")
        index.db.executemany("insert into meta values (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        index.db.execute("commit")
    index._cleanup_orphans()


def _update_ann(index: ArchiveIndex, ann: str, *, quiet: bool) -> int | None:
    """Rewrite the approximate-search graph when ``ann`` asks for one and it is stale; its window count."""
    from . import ann as approx

    live = index.db.execute("select coalesce(sum(count), 0) from files").fetchone()[0]
    wanted = ann == "yes" or (ann == "auto" and live >= approx.ANN_MIN_WINDOWS)
    if not wanted:
        return None
    if not approx.available():
        if ann == "yes" or not quiet:
            (warn if ann == "yes" else log)(f"{live} windows: install USearch (pip install 'fewshot-audio[archive]') "
                                             "for approximate search; search stays exact")
        return None
    if approx.ann_ready(index):
        return index.meta["ann"]["windows"]
    return approx.build_ann(index, quiet=quiet)["windows"]


class _Embedder:
    """Window embeddings of a group of files: in this process (``workers=1``, files batched together) or
    in ``workers`` processes, each decoding and embedding its share with one thread."""

    def __init__(self, bb, *, backbone: str, device: torch.device, hop: float, workers: int):
        self.bb, self.device, self.hop, self.pool = bb, device, hop, None
        if workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                            initargs=(backbone, str(device)))
            self.workers = workers

    def __call__(self, files: list[Path], *, quiet: bool):
        from .embedding import embed_files

        if self.pool is None:
            return embed_files(self.bb, files, device=self.device, hop=self.hop, quiet=quiet)
        parts = [files[i :: self.workers] for i in range(self.workers)]
        results = list(self.pool.map(_worker_embed, parts, [self.hop] * len(parts)))
        windows: list = [None] * len(files)
        times: list = [None] * len(files)
        errors: list = [None] * len(files)
        for w, (ws, ts, es) in enumerate(results):
            for j, (z, t, e) in enumerate(zip(ws, ts, es)):
                k = w + j * self.workers
                windows[k], times[k], errors[k] = z, t, e
        return windows, times, errors

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


_WORKER: dict = {}


def _worker_init(backbone: str, device: str) -> None:
    from .progress import set_quiet
    from .embedding import load_backbone

    torch.set_num_threads(1)
    set_quiet(True)
    _WORKER["device"] = torch.device(device)
    _WORKER["bb"] = load_backbone(backbone, device=_WORKER["device"])


def _worker_embed(files: list[Path], hop: float):
    from .embedding import embed_files

    if not files:
        return [], [], []
    return embed_files(_WORKER["bb"], files, device=_WORKER["device"], hop=hop, quiet=True)


@torch.no_grad()
def search(index_dir: str | Path, examples: list[str | Path], *, k: int = 10, device: str = "cpu",
           method: str = "auto", quiet: bool = False, chunk: int = 1 << 16) -> list[dict]:
    """The ``k`` indexed windows nearest (cosine) to the mean of the examples' clip embeddings:
    ``[{"path", "start", "end", "score"}]``, best first. ``method``: ``exact`` (batched matrix products
    over the shards), ``approximate`` (the index's search graph, :mod:`fewshot_audio.ann`) or ``auto``
    (the graph when the index has an up-to-date one, else exact)."""
    from . import ann as approx
    from .embedding import pool_by_owner
    from .runtime import pick_device
    from .embedding import embed_examples
    from .tagger import audio_files

    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    if method not in SEARCH_METHODS:
        raise ConfigError(f"--method {method!r} is not valid; use {', '.join(SEARCH_METHODS)}")
    index = ArchiveIndex.open(index_dir)
    graph = approx.ann_ready(index)
    if method == "approximate" and not graph:
        why = ("USearch is not installed (pip install 'fewshot-audio[archive]')" if not approx.available() else
               "it has no up-to-date search graph (run 'fewshot-audio index build ... --resume --ann yes')")
        raise ConfigError(f"index {index_dir} cannot be searched approximately: {why}; or use --method exact")
    dev = pick_device(device)
    bb = index.backbone(device=dev)
    emb = embed_examples(bb, audio_files(list(examples)), device=dev, hop=index.meta["hop"], quiet=quiet)
    clips = torch.cat([pool_by_owner(torch.from_numpy(z), torch.zeros(len(z), dtype=torch.long), 1,
                                     pooling=bb.features.pooling) for z in emb])
    if graph and method != "exact":
        return approx.ann_nearest(index, clips.mean(0).numpy(), k=k)
    return nearest(index, clips.mean(0), k=k, device=dev, chunk=chunk)


@torch.no_grad()
def nearest(index: ArchiveIndex, query: torch.Tensor, *, k: int, device: torch.device = torch.device("cpu"),
            chunk: int = 1 << 16) -> list[dict]:
    """The ``k`` live windows of ``index`` with the highest cosine to ``query (d,)``, best first (exact:
    one matrix-vector product per chunk of ``chunk`` rows, a running top-k across chunks and shards)."""
    query = torch.nn.functional.normalize(query.float(), dim=0).to(device)
    best_scores = torch.empty(0, device=device)
    best_ref: list[tuple[str, float, float]] = []
    for shard, owners in index.live_rows().items():
        emb_all, times = index.shard_arrays(shard)
        spans = [(first, count) for _, first, count in owners]
        contiguous = all(a[0] + a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[0][0] == 0
        rows = None if contiguous else row_numbers(owners)
        n = sum(c for _, c in spans)
        owner = np.repeat(np.arange(len(owners)), [c for _, c in spans])
        for s in range(0, n, chunk):
            r = np.arange(s, min(n, s + chunk)) if rows is None else rows[s : s + chunk]
            block = emb_all[s : s + chunk] if rows is None else emb_all[r]
            z = torch.from_numpy(np.array(block, dtype=np.float32)).to(device)
            scores = (z @ query) / z.norm(dim=1).clamp_min(1e-12)
            top = torch.topk(scores, min(k, len(scores)))
            refs = [(owners[owner[s + j]][0], float(times[r[j], 0]), float(times[r[j], 1])) for j in top.indices.tolist()]
            merged = torch.cat([best_scores, top.values])
            keep = torch.topk(merged, min(k, len(merged)))
            candidates = best_ref + refs
            best_scores, best_ref = keep.values, [candidates[j] for j in keep.indices.tolist()]
    return [{"path": p, "start": round(a, 3), "end": round(b, 3), "score": float(sc)}
            for (p, a, b), sc in zip(best_ref, best_scores.tolist())]


def _difference(meta: dict, bb) -> str:
    """How backbone ``bb`` differs from the one an index was built with ('' when it is the same model)."""
    if bb.record["backbone"] != meta["model"]["backbone"]:
        return f"backbone {bb.record['backbone']!r}, the index's {meta['model']['backbone']!r}"
    feats = asdict(bb.features)
    fields = [k for k in feats if feats[k] != meta["features"].get(k)]
    if fields:
        return ", ".join(f"features.{k} {feats[k]!r}, the index's {meta['features'].get(k)!r}" for k in fields[:3])
    if bb.record != meta["model"]:
        return f"model {bb.record}, the index's {meta['model']}"
    if model_fingerprint(bb.model) != meta["weights"]:
        return f"backbone {bb.name!r} with other weights"
    return ""


def _tagger_for(index: ArchiveIndex, tagger, *, device: str = "cpu"):
    """The tagger (a file or a loaded :class:`~fewshot_audio.tagger.Tagger`) if it embeds as ``index`` does."""
    from .tagger import Tagger

    model = tagger if isinstance(tagger, Tagger) else Tagger.load(tagger, device=device)
    meta = index.meta
    differs = _difference(meta, model.backbone)
    if differs:
        raise ConfigError(f"tagger {tagger} was built on another model than index {index.root} ({differs}); adapt a "
                          f"tagger with --backbone {meta['backbone']} or tag the files with 'fewshot-audio tag'")
    return model


def suggest(index_dir: str | Path, *, tagger, tag: str, k: int = 20, method: str = "uncertain",
            seed: int = 0) -> list[dict]:
    """The ``k`` indexed files to label next for ``tag`` (files already among the tagger's examples left
    out), ranked by :func:`~fewshot_audio.tagger.rank_for_labelling`: ``[{"path", "score", "threshold"}]``."""
    from .tagger import rank_for_labelling

    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    index = ArchiveIndex.open(index_dir)
    model = _tagger_for(index, tagger)
    j = model.column(tag)
    paths, z, owner = index.clip_windows()
    labelled = {str(Path(p).resolve()) for p in model.support_paths}
    keep = [i for i, p in enumerate(paths) if p not in labelled]
    scores = model.clip_scores(z, owner, len(paths))[:, j].numpy()[keep]
    threshold = float(model.thresholds[j])
    picks = rank_for_labelling(scores, threshold, method=method, k=k, seed=seed)
    return [{"path": paths[keep[i]], "score": float(scores[i]), "threshold": threshold} for i in picks]


def tag_index(index_dir: str | Path, *, tagger: str | Path, device: str = "cpu"):
    """``tag``'s results for every indexed file, from the stored embeddings (no audio decoded)."""
    from .tagger import TagResult

    index = ArchiveIndex.open(index_dir)
    model = _tagger_for(index, tagger, device=device)
    results = []
    for path, z, t, error in index.windows_of_files():
        if z is None:
            results.append(TagResult(path, [], {}, {}, np.zeros((0, len(model.tags))), np.zeros(0), error))
        else:
            results.append(model.result(path, z, times=t[:, 0]))
    return results, model.tags
