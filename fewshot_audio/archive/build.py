"""Build an archive index: embed every audio file of an archive once into an index folder
(:mod:`fewshot_audio.archive.store`), resumable and incremental, in one process, several worker
processes or the ranks of a torchrun job.

A build embeds files in small groups and commits a shard, atomically, every ``files_per_shard`` files or every
:data:`SHARD_SECONDS`, whichever comes first, and once more when it is interrupted (Ctrl-C). A build killed at any
point (even ``kill -9``) leaves the database naming only complete shards; ``--resume`` deletes shard files
the database does not name and goes on with the files it has not recorded. On a changed archive,
``--resume`` embeds new files and files whose size or modification time changed, and forgets files that
are gone.

Files become windows by the same framing as ``tag`` (:func:`~fewshot_audio.embedding.embed_files`, read
block by block, so memory stays bounded whatever a file's length), ``hop_s`` seconds apart (default: half a
window, as ``tag``), so ``index tag`` gives what ``tag`` gives, up to float16 storage.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import torch

from fewshot_audio.archive import ann as approx
from fewshot_audio.archive.store import FORMAT_VERSION, ArchiveStore, NewFile, model_fingerprint
from fewshot_audio.data.audio import audio_duration, audio_files
from fewshot_audio.embedding import Embedded, checked_hop_s, embed_files, load_backbone
from fewshot_audio.errors import CollectiveError, ConfigError, DataError
from fewshot_audio.fewshot import distributed
from fewshot_audio.util.progress import progress, set_quiet
from fewshot_audio.util.runtime import pick_device

logger = logging.getLogger(__name__)

ANN_CHOICES = ("auto", "yes", "no")
SHARD_SECONDS = 30.0  # a shard is committed at least this often, so that an interrupted build keeps its work
INDEX_BACKBONE = "aisfx"  # index build's default: a general sound-effects embedding (docs/models.md)


def build_index(archive: list[str | Path], *, backbone: str, out: str | Path, hop_s: float | None = None,
                workers: int = 1, resume: bool = False, files_per_shard: int = 256, shard_s: float = SHARD_SECONDS,
                device: str = "cpu", ann: str = "auto", quiet: bool = False) -> dict:
    """Embed every audio file under ``archive`` into the index folder ``out`` (see the module docstring).
    ``ann``: write the approximate-search graph (:mod:`fewshot_audio.archive.ann`) from ``ANN_MIN_WINDOWS`` live
    windows on (``auto``), always (``yes``) or never (``no``).
    Returns counts: files embedded, unchanged, forgotten, unreadable; windows stored; seconds."""
    t0 = time.perf_counter()
    out = Path(out)
    if workers < 1:
        raise ConfigError(f"workers={workers}: must be >= 1", param="workers")
    hop_s = checked_hop_s(hop_s)
    if ann not in ANN_CHOICES:
        raise ConfigError(f"ann={ann!r} is not valid; use {', '.join(ANN_CHOICES)}", param="ann")
    files = sorted({p.resolve() for p in audio_files(list(archive))})
    dev = distributed.setup(device) or pick_device(device)
    rank, world = distributed.world()
    quiet = quiet or rank > 0
    _on_rank_0(lambda: _check_out(out, resume))
    bb = load_backbone(backbone, device=dev)
    step_s = hop_s if hop_s is not None else bb.window / 2
    meta = {"backbone": backbone, "model": bb.record, "features": asdict(bb.features), "window": bb.window,
            "hop": step_s, "weights": model_fingerprint(bb.model), "format": FORMAT_VERSION}  # hop: seconds
    _on_rank_0(lambda: _set_up(out, meta))  # sets the index up (or checks it) and removes what a killed build left
    index = ArchiveStore(out)
    stats, todo, gone = _changes(index, files)
    unchanged = len(files) - len(todo)
    distributed.barrier()  # every rank has read what is indexed before any rank changes it
    if gone and rank == 0:
        index.forget(gone)
    if not quiet and (unchanged or gone):
        logger.info(f"index {out}: {unchanged} file(s) unchanged, {len(todo)} to embed, {len(gone)} gone (forgotten)")
    mine = todo[rank::world]  # each rank embeds every world-th file and commits its own shards
    embedder = _Embedder(bb, backbone=backbone, device=dev, hop_s=step_s, workers=workers)
    try:
        n_windows, n_bad = _embed_into(index, embedder, mine, stats, files_per_shard=files_per_shard, shard_s=shard_s,
                                       workers=workers, desc=f"indexing {len(todo)} files", quiet=quiet)
    finally:
        embedder.close()
    if world > 1:
        done = distributed.gather((n_windows, n_bad))  # also waits for every rank's last commit
        n_windows, n_bad = sum(d[0] for d in done), sum(d[1] for d in done)
    counts = {"index": str(out), "embedded": len(todo), "unchanged": unchanged, "forgotten": len(gone),
              "unreadable": n_bad, "windows": n_windows, "rank": rank, "processes": world}
    counts["ann_windows"] = _update_ann(index, ann, quiet=quiet) if rank == 0 else None
    counts["audio_hours"] = round(index.audio_seconds() / 3600, 3) if rank == 0 else None  # all the index holds
    counts["seconds"] = round(time.perf_counter() - t0, 2)
    return counts


def _changes(index: ArchiveStore, files: list[Path]) -> tuple[dict[str, tuple[int, int]], list[Path], list[str]]:
    """``(size and mtime of each file, files to embed (new or changed), indexed files that are gone)``."""
    known = index.known_files()
    stats = {}
    for f in files:
        st = f.stat()
        stats[str(f)] = (st.st_size, st.st_mtime_ns)
    gone = sorted(set(known) - set(stats))
    todo = [f for f in files if known.get(str(f)) != stats[str(f)]]
    return stats, todo, gone


def _embed_into(index: ArchiveStore, embedder, files: list[Path], stats: dict[str, tuple[int, int]], *,
                files_per_shard: int, shard_s: float, workers: int, desc: str, quiet: bool) -> tuple[int, int]:
    """Embed ``files`` a group at a time and commit a shard every ``files_per_shard`` files or ``shard_s`` seconds
    (and on Ctrl-C: every file embedded so far is kept, so a resumed build goes on from there). Returns
    ``(windows stored, unreadable files)``."""
    n_windows = n_bad = 0
    pending: list[NewFile] = []
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal last_commit
        if pending:
            index.commit_shard(list(pending))
            pending.clear()
        last_commit = time.monotonic()

    chunk = min(files_per_shard, max(8, 4 * workers))  # files embedded together
    try:
        groups = [files[i : i + chunk] for i in range(0, len(files), chunk)]
        for group in progress(groups, desc=desc, quiet=quiet or len(groups) < 2):
            windows, times, levels, errors = embedder(group, quiet=quiet or len(groups) > 1)
            pending += [NewFile(str(f), *stats[str(f)], audio_duration(f, decode=True) if z is not None else 0.0,
                                z, t, lv, e) for f, z, t, lv, e in zip(group, windows, times, levels, errors)]
            n_windows += sum(len(w) for w in windows if w is not None)
            n_bad += sum(e is not None for e in errors)
            if len(pending) >= files_per_shard or time.monotonic() - last_commit >= shard_s:
                commit()
        commit()
    except KeyboardInterrupt:
        commit()
        raise
    return n_windows, n_bad


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
        if problem is not None:  # every rank stops on it together; rank 0 prints it, the others only stop
            problem = CollectiveError(problem, reported_elsewhere=rank > 0)
    if problem is not None:
        raise problem


def _check_out(out: Path, resume: bool) -> None:
    exists = ArchiveStore.exists(out)
    if exists and not resume:
        raise ConfigError(f"out={out} already holds an index; pass resume=True to continue or update it, or choose another out=")
    if out.exists() and not exists and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an index; choose an empty or new out=")


def _set_up(out: Path, meta: dict) -> None:
    """Record ``meta`` in a new index, or check that an existing one was built the same way; then remove
    shard files a killed build wrote but never committed."""
    out.mkdir(parents=True, exist_ok=True)
    index = ArchiveStore(out)
    old = index.meta
    if old:
        for key in ("backbone", "model", "features", "window", "hop", "weights"):
            if old.get(key) != meta[key]:
                raise ConfigError(f"index {index.root} was built with {key} {old.get(key)!r}, not {meta[key]!r}; "
                                  "resume it with the same backbone= and hop_s=, or build a new index")
    else:
        index.set_up(meta)
    index.remove_orphans()


def _update_ann(index: ArchiveStore, ann: str, *, quiet: bool) -> int | None:
    """Rewrite the approximate-search graph when ``ann`` asks for one and it is stale; its window count."""
    live = index.window_count()
    wanted = ann == "yes" or (ann == "auto" and live >= approx.ANN_MIN_WINDOWS)
    if not wanted:
        return None
    if not approx.available():
        if ann == "yes" or not quiet:
            (logger.warning if ann == "yes" else logger.info)(f"{live} windows: install USearch (pip install 'fewshot-audio[archive]') "
                                             "for approximate search; search stays exact")
        return None
    if approx.ann_ready(index):
        return index.ann_state()["windows"]
    return approx.build_ann(index, quiet=quiet)["windows"]


class _Embedder:
    """Window embeddings of a group of files: in this process (``workers=1``, files batched together) or
    in ``workers`` processes, each decoding and embedding its share with one thread."""

    def __init__(self, bb, *, backbone: str, device: torch.device, hop_s: float, workers: int):
        self.bb, self.device, self.hop_s, self.pool = bb, device, hop_s, None
        if workers > 1:
            self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                            initargs=(backbone, str(device)))
            self.workers = workers

    def __call__(self, files: list[Path], *, quiet: bool):
        if self.pool is None:
            return embed_files(self.bb, files, device=self.device, hop_s=self.hop_s, quiet=quiet)
        parts = [files[i :: self.workers] for i in range(self.workers)]
        results = list(self.pool.map(_worker_embed, parts, [self.hop_s] * len(parts)))
        merged = Embedded(*([None] * len(files) for _ in Embedded._fields))
        for w, part in enumerate(results):
            for field, values in zip(merged, part):
                field[w :: self.workers] = values
        return merged

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


_WORKER: dict = {}


def _worker_init(backbone: str, device: str) -> None:
    torch.set_num_threads(1)
    set_quiet(True)
    _WORKER["device"] = torch.device(device)
    _WORKER["bb"] = load_backbone(backbone, device=_WORKER["device"])


def _worker_embed(files: list[Path], hop_s: float):
    if not files:
        return Embedded([], [], [], [])
    return embed_files(_WORKER["bb"], files, device=_WORKER["device"], hop_s=hop_s, quiet=True)
