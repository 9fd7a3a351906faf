"""Tag an archive from its index (no audio decoded) and choose the files to label next (active learning)."""

from __future__ import annotations

from pathlib import Path

from fewshot_audio.archive.store import ArchiveStore, model_difference
from fewshot_audio.embedding import default_hop_s, embed_examples
from fewshot_audio.errors import ConfigError
from fewshot_audio.tagging.active import rank_for_labelling
from fewshot_audio.tagging.results import TagResult
from fewshot_audio.tagging.tagger import Tagger


def tagger_for(index: ArchiveStore, tagger: str | Path | Tagger, *, device: str = "cpu") -> Tagger:
    """The tagger (a file or a loaded :class:`~fewshot_audio.tagging.tagger.Tagger`) if it embeds as ``index`` does."""
    model = tagger if isinstance(tagger, Tagger) else Tagger.load(tagger, device=device)
    meta = index.meta
    differs = model_difference(meta, model.backbone)
    if differs:
        raise ConfigError(f"tagger {tagger} was built on another model than index {index.root} ({differs}); adapt a "
                          f"tagger with backbone={meta['backbone']} or tag the files with 'fewshot-audio tag'")
    return model


def suggest(index_dir: str | Path, *, tagger, tag: str, k: int = 20, method: str = "uncertain",
            seed: int = 0) -> list[dict]:
    """The ``k`` indexed files to label next for ``tag`` (files already among the tagger's examples left
    out: a reviewed file folded in with ``tagger add-examples --from-review`` is not suggested again), ranked by
    :func:`~fewshot_audio.tagging.active.rank_for_labelling`: ``[{"path", "tag", "score", "threshold"}]`` (as JSON, a
    queue ``fewshot-audio review`` reads)."""
    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    index = ArchiveStore.open(index_dir)
    model = tagger_for(index, tagger)
    j = model.column(tag)
    paths, z, owner, levels = index.clip_windows()
    labelled = {str(Path(p).resolve()) for p in model.support_paths}
    keep = [i for i, p in enumerate(paths) if p not in labelled]
    scores = model.clip_scores(z, owner, len(paths), levels=levels)[:, j].numpy()[keep]
    threshold = float(model.thresholds[j])
    picks = rank_for_labelling(scores, threshold, method=method, k=k, seed=seed)
    return [{"path": paths[keep[i]], "tag": tag, "score": float(scores[i]), "threshold": threshold} for i in picks]


def tag_index(index_dir: str | Path, *, tagger: str | Path, device: str = "cpu") -> tuple[list[TagResult], list[str]]:
    """``tag``'s results for every indexed file, from the stored embeddings (no audio decoded)."""
    index = ArchiveStore.open(index_dir)
    model = tagger_for(index, tagger, device=device)
    results = []
    for path, z, t, levels, error in index.windows_of_files():
        if z is None:
            results.append(TagResult.failed(path, error, n_tags=len(model.tags)))
        else:
            results.append(model.result(path, z, times=t[:, 0], levels=levels))
    return results, model.tags


def add_examples(tagger: Tagger, tag: str, *, positive: list[str | Path], negative: list[str | Path],
                 index: str | Path | None = None, quiet: bool = False) -> None:
    """Fold confirmed ``positive`` and ``negative`` files of ``tag`` into ``tagger`` (that tag refitted): their
    embeddings read from ``index`` (which must embed as the tagger does) or decoded and embedded."""
    paths = [Path(p) for p in [*positive, *negative]]
    if not paths:
        raise ConfigError("give positive= and/or negative= audio files", param="positive")
    tagger.column(tag, hint=" (add it with add-tag)")
    if index is not None:
        store = ArchiveStore.open(index)
        tagger_for(store, tagger)
        windows, levels = store.windows_of(paths)
    else:
        windows, _, levels, _ = embed_examples(tagger.backbone, paths, device=tagger.device,
                                               hop_s=default_hop_s(tagger.backbone), quiet=quiet)
    tagger.add_examples(tag, windows, [str(p) for p in paths], [True] * len(positive) + [False] * len(negative),
                        levels=levels)
