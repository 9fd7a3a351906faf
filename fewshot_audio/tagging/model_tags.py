"""Tag audio with a pretrained model's own tags, out of the box (``tag --model``): musicnn's 50 MTT or
MSD tags, YAMNet's 521 AudioSet classes, framed as the original code frames a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewshot_audio.embedding import embed_files, load_backbone
from fewshot_audio.errors import ConfigError
from fewshot_audio.specs import get, models
from fewshot_audio.tagging.results import TagResult
from fewshot_audio.util.runtime import pick_device


def taggable() -> list[str]:
    """Registered models that have tags of their own."""
    return [name for name, m in models().items() if m.tags_layer is not None]


def tag_with_model(files: list[Path], *, model: str, device: str | None = None, hop_s: float | None = None,
                   quiet: bool = False):
    """Per file: the model's tag probabilities averaged over its windows (best first) and its taggram. The
    windows are the original code's (its patches of one whole-file front end), or ``hop_s`` seconds apart."""

    registered = get(model)
    if registered.tags_layer is None:
        raise ConfigError(f"model={model} has no tags of its own; models with tags: {', '.join(taggable())}; "
                          f"use it as an embedding instead (backbone={model})", param="model")
    dev = pick_device(device or "auto")
    backbone = load_backbone(f"{model}:{registered.tags_layer}", device=dev)
    labels = backbone.model.meta["labels"]
    emb = embed_files(backbone, files, device=dev, hop_s=hop_s, original=True, quiet=quiet)
    results = []
    for path, gram, t, error in zip(files, emb.windows, emb.times, emb.errors):
        if gram is None:
            results.append(TagResult.failed(str(path), error, n_tags=len(labels)))
            continue
        mean = gram.mean(0)
        order = np.argsort(-mean)
        results.append(TagResult(str(path), [labels[j] for j in order], {t: float(v) for t, v in zip(labels, mean)},
                                 dict.fromkeys(labels, 0.5), gram, t[:, 0]))
    return results, labels
