"""Search an archive index by example: exact (batched matrix products over the shards) or approximate
(the index's search graph, :mod:`fewshot_audio.archive.ann`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fewshot_audio.archive import ann as approx
from fewshot_audio.archive.store import ArchiveStore, model_difference, row_numbers
from fewshot_audio.data.audio import audio_files
from fewshot_audio.embedding import Backbone, embed_examples, load_backbone, pool_by_owner
from fewshot_audio.errors import ConfigError
from fewshot_audio.util.runtime import pick_device

SEARCH_METHODS = ("auto", "exact", "approximate")


def index_backbone(index: ArchiveStore, *, device: torch.device) -> Backbone:
    """The index's embedding model, checked to be the very model the index was built with."""
    meta = index.meta
    bb = load_backbone(meta["backbone"], device=device)
    differs = model_difference(meta, bb)
    if differs:
        raise ConfigError(f"backbone {meta['backbone']!r} is no longer the model index {index.root} was built "
                          f"with ({differs}); rebuild the index")
    return bb


@torch.no_grad()
def search(index_dir: str | Path, examples: list[str | Path], *, k: int = 10, device: str = "cpu",
           method: str = "auto", quiet: bool = False, chunk: int = 1 << 16) -> list[dict]:
    """The ``k`` indexed windows nearest (cosine) to the mean of the examples' clip embeddings:
    ``[{"path", "start", "end", "score"}]``, best first. ``method``: ``exact``, ``approximate`` or ``auto``
    (the graph when the index has an up-to-date one, else exact)."""
    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    if method not in SEARCH_METHODS:
        raise ConfigError(f"method={method!r} is not valid; use {', '.join(SEARCH_METHODS)}", param="method")
    index = ArchiveStore.open(index_dir)
    graph = approx.ann_ready(index)
    if method == "approximate" and not graph:
        why = ("USearch is not installed (pip install 'fewshot-audio[archive]')" if not approx.available() else
               "it has no up-to-date search graph (fewshot-audio index build, resume=True ann=yes)")
        raise ConfigError(f"index {index_dir} cannot be searched approximately: {why}; or use method=exact", param="method")
    dev = pick_device(device)
    bb = index_backbone(index, device=dev)
    emb = embed_examples(bb, audio_files(list(examples)), device=dev, hop_s=index.meta["hop"], quiet=quiet)
    clips = torch.cat([pool_by_owner(torch.from_numpy(z), torch.zeros(len(z), dtype=torch.long), 1,
                                     pooling=bb.features.pooling, levels=torch.from_numpy(lv),
                                     margin=bb.features.signal_db)
                       for z, lv in zip(emb.windows, emb.levels)])
    if graph and method != "exact":
        return approx.ann_nearest(index, clips.mean(0).numpy(), k=k)
    return nearest(index, clips.mean(0), k=k, device=dev, chunk=chunk)


@torch.no_grad()
def nearest(index: ArchiveStore, query: torch.Tensor, *, k: int, device: torch.device = torch.device("cpu"),
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
