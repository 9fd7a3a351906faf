"""Tag audio with a pretrained model's own tags, out of the box (``tag --model``): musicnn's 50 MTT or
MSD tags, YAMNet's 521 AudioSet classes. Files become windows by the clip policy, as everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .registry import get, models


def taggable() -> list[str]:
    """Registered models that have tags of their own."""
    return [name for name, m in models().items() if m.tags_layer is not None]


def tag_with_model(files: list[Path], *, model: str, device: str | None = None, quiet: bool = False):
    """Per file: the model's tag probabilities averaged over its windows (best first) and its taggram."""
    from ..runtime import pick_device
    from ..tagger import TagResult, embed_files, load_backbone

    registered = get(model)
    if registered.tags_layer is None:
        raise ConfigError(f"--model {model} has no tags of its own; models with tags: {', '.join(taggable())}; "
                          f"use it as an embedding instead: fewshot-audio adapt --backbone {model}")
    dev = pick_device(device or "auto")
    backbone = load_backbone(f"{model}:{registered.tags_layer}", device=dev)
    labels = backbone.model.meta["labels"]
    grams, errors = embed_files(backbone, files, device=dev, quiet=quiet)
    results = []
    for path, gram, error in zip(files, grams, errors):
        if gram is None:
            results.append(TagResult(str(path), [], {}, {}, np.zeros((0, len(labels))), np.zeros(0), error))
            continue
        mean = gram.mean(0)
        order = np.argsort(-mean)
        results.append(TagResult(str(path), [labels[j] for j in order], {t: float(v) for t, v in zip(labels, mean)},
                                 {t: 0.5 for t in labels}, gram, np.arange(len(gram)) * backbone.window))
    return results, labels
