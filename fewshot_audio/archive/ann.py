"""Approximate nearest-neighbour search over an archive index (an HNSW graph from USearch).

Exact search (:func:`fewshot_audio.archive.search.nearest`) reads every stored window, so its time grows
with the archive. From ``ANN_MIN_WINDOWS`` live windows on, ``index build`` also writes
``INDEX/ann.usearch``, a graph over the live windows (cosine, float16); its speed and recall against
exact search are measured in ``benchmarks/bench_index.py`` (docs/results.md). The graph records the
index's generation (raised by every change to its files); after the archive changes (or a build killed
before the graph was rewritten) it is stale, and search falls back to exact until the next
``index build --resume``.

USearch is an optional dependency (``pip install "fewshot-audio[archive]"``); without it search is exact.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from fewshot_audio.archive.store import ArchiveStore, row_numbers
from fewshot_audio.errors import ConfigError

logger = logging.getLogger(__name__)


ANN_FILE = "ann.usearch"
ANN_MIN_WINDOWS = 100_000  # where exact search becomes slow enough to matter (docs/results.md)
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 128, 128


def available() -> bool:
    """Whether USearch (the approximate-search library, ``pip install 'fewshot-audio[archive]'``) can be imported."""
    try:
        import usearch.index  # noqa: F401 - optional dependency (the archive extra)
    except ImportError:
        return False
    return True


def _keys(shard: int, rows: np.ndarray) -> np.ndarray:
    return (np.uint64(shard) << np.uint64(32)) | rows.astype(np.uint64)


def build_ann(index: ArchiveStore, *, threads: int | None = None, quiet: bool = False) -> dict:
    """(Re)write ``INDEX/ann.usearch`` over the live windows of ``index`` and record its state."""
    from usearch.index import Index  # optional dependency (the archive extra)

    threads = threads or os.cpu_count() or 1
    graph = None
    n = 0
    for shard, owners in index.live_rows().items():
        emb, _ = index.shard_arrays(shard)
        if graph is None:
            graph = Index(ndim=emb.shape[1], metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                          expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
        rows = row_numbers(owners)
        for s in range(0, len(rows), 1 << 16):
            r = rows[s : s + (1 << 16)]
            graph.add(_keys(shard, r), np.ascontiguousarray(emb[r], dtype=np.float16), threads=threads)
        n += len(rows)
    path = index.root / ANN_FILE
    tmp = index.root / f".{ANN_FILE}.tmp"
    if graph is None:
        path.unlink(missing_ok=True)
        return {"windows": 0}
    graph.save(str(tmp))
    os.replace(tmp, path)
    state = {"generation": str(index.generation()), "windows": n}
    index.set_ann_state(state)
    if not quiet:
        logger.info(f"approximate-search graph over {n} windows written to {path}")
    return state


def ann_ready(index: ArchiveStore) -> bool:
    """Whether ``index`` has a graph written at its current generation (and USearch is installed)."""
    state = index.ann_state()
    return (bool(state) and (index.root / ANN_FILE).is_file() and available()
            and state.get("generation") == str(index.generation()))


_OPEN: dict = {}  # the last graph opened, kept memory-mapped for the next query: {(path, mtime, size): graph}


def _graph(path):
    """The search graph at ``path``, memory-mapped (opening one costs about 0.1 us per window: kept open)."""
    from usearch.index import Index  # optional dependency (the archive extra)

    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _OPEN:
        graph = Index.restore(str(path), view=True)
        if graph is None:
            raise ConfigError(f"{path} is not a readable search graph; rebuild it "
                              "(fewshot-audio index build, resume=True ann=yes)")
        _OPEN.clear()
        _OPEN[key] = graph
    return _OPEN[key]


def ann_nearest(index: ArchiveStore, query: np.ndarray, *, k: int) -> list[dict]:
    """The ``k`` windows the graph finds nearest (cosine) to ``query (d,)``, best first, as
    :func:`fewshot_audio.archive.search.nearest` returns them."""
    graph = _graph(index.root / ANN_FILE)
    graph.expansion_search = max(EXPANSION_SEARCH, k)
    found = graph.search(np.asarray(query, dtype=np.float32), k)
    out = []
    times: dict[int, np.ndarray] = {}
    for key, distance in zip(np.asarray(found.keys, dtype=np.uint64), np.asarray(found.distances)):
        shard, row = int(key >> np.uint64(32)), int(key & np.uint64(0xFFFFFFFF))
        path = index.file_at(shard, row)
        if path is None:  # cannot happen on a fresh graph; skip rather than report a forgotten file
            continue
        if shard not in times:
            times[shard] = index.shard_arrays(shard)[1]
        start, end = times[shard][row, :2]
        out.append({"path": path, "start": round(float(start), 3), "end": round(float(end), 3),
                    "score": float(1 - distance)})
    return out
