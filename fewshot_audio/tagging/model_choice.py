"""``adapt --backbone auto``: the support set chooses the model.

Every candidate (``mfcc`` and the ``auto_layers`` of each registered model whose weights are fetched)
embeds the support set once; the examples of each tag are scored leave-one-out against the tags'
prototypes in the tagger's space (:func:`~fewshot_audio.fewshot.strategies.embedding.centred_l2`), and the
candidate with the best balanced accuracy (mean over tags of the fraction of its examples ranked first)
wins; ties go to the earlier candidate. The winner's embeddings are kept, so nothing is embedded twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from fewshot_audio.embedding import Backbone, Embedded, default_hop, embed_files, load_backbone, pool_by_owner
from fewshot_audio.errors import DataError
from fewshot_audio.fewshot.strategies.embedding import centred_l2, space_statistics
from fewshot_audio.models.pretrained.weights import cached
from fewshot_audio.specs import models
from fewshot_audio.util.progress import progress

AUTO = "auto"


@dataclass
class Choice:
    """The chosen backbone, each candidate's leave-one-out balanced accuracy and the seconds the choice took."""

    backbone: str
    estimates: dict[str, float]
    seconds: float


def candidates() -> list[str]:
    """``mfcc`` and ``MODEL:LAYER`` for each auto layer of every registered model whose weights are fetched."""
    out = ["mfcc"]
    for m in models().values():
        if m.auto_layers and cached(m.source, m.weights_file):
            out += [f"{m.name}:{layer}" for layer in m.auto_layers]
    return out


def pooled_clips(bb: Backbone, windows: list, levels: list) -> torch.Tensor:
    """Clip embeddings ``(n, d)`` of files' window embeddings and levels, pooled as a tagger pools them."""
    z = torch.cat([torch.as_tensor(w).float() for w in windows])
    owner = torch.cat([torch.full((len(w),), i) for i, w in enumerate(windows)])
    lv = torch.cat([torch.as_tensor(v).float() for v in levels])
    return pool_by_owner(z, owner, len(windows), pooling=bb.features.pooling, levels=lv, margin=bb.features.signal_db)


def clip_space(bb: Backbone, windows: list, levels: list) -> torch.Tensor:
    """Clip embeddings ``(n, d)`` of files' windows in the tagger's space, fitted on these clips (centred on their
    mean, z-scored for a backbone that asks for it, L2-normalised)."""
    clips = pooled_clips(bb, windows, levels)
    return centred_l2(clips, *space_statistics(clips, standardize=getattr(bb.model, "standardize", False)))


def loo_balanced_accuracy(zs: torch.Tensor, targets: torch.Tensor) -> float:
    """Leave-one-out prototype accuracy of ``zs (n, d)`` (unit vectors) with tags ``targets (n, T)`` bool: each
    clip of one tag is scored against every tag's prototype, its own tag's computed without it; balanced over
    the tags with at least two examples (clips of no tag, the negatives, only shape the prototypes of none)."""
    t = targets.float()
    sums, counts = t.T @ zs, t.sum(0)  # (T, d), (T,)
    own = t[:, :, None] * zs[:, None, :]  # (n, T, d): each clip's share of its tags' sums
    protos = (sums[None] - own) / (counts[None, :, None] - t[:, :, None]).clamp_min(1)
    scores = torch.nn.functional.cosine_similarity(zs[:, None, :], protos, dim=-1)  # (n, T)
    single = (t.sum(1) == 1) & (t @ (counts >= 2).float() > 0)
    if not single.any():
        return 0.0
    truth, pred = t[single].argmax(1), scores[single].argmax(1)
    per_tag = [float((pred[truth == j] == j).float().mean()) for j in truth.unique().tolist()]
    return sum(per_tag) / len(per_tag)


def choose_backbone(paths: list[Path], targets: torch.Tensor, *, durations: list[float], device: torch.device,
                    quiet: bool = False) -> tuple[Choice, Backbone, Embedded]:
    """The candidate whose leave-one-out balanced accuracy on ``paths`` (tags ``targets (n, T)``) is best, with
    its backbone and the files' embeddings."""
    found = candidates()
    t0 = time.perf_counter()
    best, estimates, ok, errors = None, {}, None, None
    for spec in progress(found, desc="choosing the backbone", quiet=quiet or len(found) < 2):
        bb = load_backbone(spec, device=device, durations=durations)
        if ok is None:  # the first candidate reads every file (and warns once about those it cannot read)
            emb = embed_files(bb, paths, device=device, hop=default_hop(bb), quiet=quiet)
            ok = [i for i, w in enumerate(emb.windows) if w is not None]
            errors = emb.errors
            if not ok:
                raise DataError(f"none of the {len(paths)} example files could be read")
        else:  # the others the readable ones
            part = embed_files(bb, [paths[i] for i in ok], device=device, hop=default_hop(bb), quiet=True)
            emb = Embedded(*([None] * len(paths) for _ in range(3)), errors)
            for j, i in enumerate(ok):
                emb.windows[i], emb.times[i], emb.levels[i] = part.windows[j], part.times[j], part.levels[j]
        zs = clip_space(bb, [emb.windows[i] for i in ok], [emb.levels[i] for i in ok])
        estimates[spec] = loo_balanced_accuracy(zs, targets[ok])
        if best is None or estimates[spec] > estimates[best[0]]:
            best = (spec, bb, emb)
    spec, bb, emb = best
    return Choice(spec, estimates, time.perf_counter() - t0), bb, emb
