"""The detection network at detection time: loading a meta-trained :class:`FrameTCN` (``detector.pt``) and fine-tuning
a copy of it on one recording's examples. Training it is :mod:`.meta`'s job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fewshot_audio.detection.frames import N_MELS
from fewshot_audio.errors import DataError
from fewshot_audio.fewshot.strategies.prototypical import Prototypical
from fewshot_audio.models.backbones.frame_tcn import CONTEXT, EVENT_FRAMES, FrameTCN
from fewshot_audio.models.checkpoints import load_checkpoint
from fewshot_audio.util.io import file_kind

PATCH = EVENT_FRAMES + 2 * CONTEXT  # frames the network reads for one window of EVENT_FRAMES frames


def padded_for_patches(frames: np.ndarray) -> np.ndarray:
    """``frames (t, 64)`` with ``CONTEXT + 1`` frames at the median level (zeros) either side: the patch of the window of
    ``w`` frames starting at frame ``k``, with its context and one frame of jitter either side, is
    ``padded[k : k + w + 2 * CONTEXT + 2]``."""
    pad = np.zeros((CONTEXT + 1, frames.shape[1]), np.float32)
    return np.concatenate([pad, frames, pad])

_LOADED: dict[Path, FrameTCN] = {}


def load_detector_network(path: str | Path) -> FrameTCN:
    """The network saved by :func:`train_detector` (``detector.pt``), in eval mode (kept for the next call)."""
    path = Path(path).resolve()
    if path not in _LOADED:
        if not path.is_file():
            raise DataError(f"no detector network at {path}; pass weights=DIR/detector.pt from "
                            "'fewshot-audio train-detector' (or reinstall fewshot-audio for the shipped one)")
        if file_kind(path) == "safetensors":
            raise DataError(f"{path} is a tagger file (safetensors), not a detector network; pass the detector.pt "
                            "'fewshot-audio train-detector' wrote")
        state = load_checkpoint(path)
        if "backbone" not in state:
            raise DataError(f"{path} is not a detector network; pass the detector.pt 'fewshot-audio train-detector' wrote")
        net = FrameTCN(input_shape=(1, N_MELS, PATCH))
        net.load_state_dict(state["backbone"])
        _LOADED[path] = net.eval()
    return _LOADED[path]


def fine_tune(net: FrameTCN, frames: np.ndarray, pos: np.ndarray, neg: np.ndarray, window: int, *, steps: int,
              lr: float = 1e-4, shots: int = 3, seed: int = 0, device: torch.device | None = None) -> FrameTCN:
    """A copy of ``net`` fine-tuned on one recording's examples: prototypical steps in which a random ``shots`` of
    the windows starting at ``pos`` (frames of ``frames (t, 64)``, band-referenced) make the event prototype and the
    others are its queries, against as many windows starting at ``neg``; each window read with a random jitter of
    one frame. Batch norm keeps the meta-trained statistics (eval mode). Runs on ``device`` (default: the CPU)."""
    import copy

    tuned = copy.deepcopy(net).eval()  # Prototypical leaves the mode alone: batch norm keeps its statistics
    rng = np.random.default_rng(seed)
    padded = padded_for_patches(frames)
    stored = window + 2 * CONTEXT + 2  # window k is padded[k : k + stored]
    pos = pos[(pos >= 0) & (pos + stored <= len(padded))]
    neg = neg[(neg >= 0) & (neg + stored <= len(padded))]
    query = len(pos) - shots
    if query < 1 or len(neg) < shots + query:
        return tuned
    device = device or torch.device("cpu")
    strategy = Prototypical(backbone=tuned, device=device, lr=lr, n_way=2, seed=seed)

    def patches(starts: np.ndarray) -> torch.Tensor:
        k = starts + rng.integers(-1, 2, len(starts)) + 1
        return torch.from_numpy(np.stack([padded[i : i + stored - 2].T for i in k])[:, None]).to(device)

    for _ in range(steps):
        p = rng.permutation(pos)
        n = rng.choice(neg, shots + query, replace=False)
        support = torch.stack([patches(p[:shots]), patches(n[:shots])])[None]
        q = torch.stack([patches(p[shots:]), patches(n[shots:])])[None]
        strategy.train_step(support, q, torch.zeros(1, 2, dtype=torch.long, device=device))
    return tuned
