"""Tag music with the original musicnn models: their own 50 tags, out of the box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.audio import load_audio
from ..errors import DataError
from ..progress import progress, warn
from .musicnn import HOP, N_FRAMES, SR, musicnn_logmel, patches
from .weights import load_musicnn


def tag_with_musicnn(files: list[Path], *, model: str, quiet: bool = False):
    """Per file: the mean taggram over 3 s patches, its 50 tags (best first) and the taggram itself."""
    from ..tagger import TagResult

    net, meta = load_musicnn(model)
    labels = meta["labels"]
    results, short = [], []
    for path in progress(files, desc=f"tagging with {model}", quiet=quiet):
        try:
            audio = load_audio(path, sample_rate=SR)
        except DataError as exc:
            warn(str(exc))
            results.append(TagResult(str(path), [], {}, {}, np.zeros((0, len(labels))), np.zeros(0), str(exc)))
            continue
        batch, padded = patches(musicnn_logmel(audio))
        if padded:
            short.append(path.name)
        with torch.no_grad():
            gram = net(torch.from_numpy(batch))["taggram"].numpy()
        mean = gram.mean(0)
        order = np.argsort(-mean)
        results.append(TagResult(str(path), [labels[j] for j in order], {t: float(v) for t, v in zip(labels, mean)},
                                 {t: 0.5 for t in labels}, gram, np.arange(len(gram)) * N_FRAMES * HOP / SR))
    if short:
        warn(f"{len(short)} file(s) shorter than one 3 s patch were zero-padded (e.g. {', '.join(short[:3])})")
    return results, labels
