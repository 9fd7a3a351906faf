"""Training checkpoints: written atomically, read without pickle (``torch.load(weights_only=True)``)."""

from __future__ import annotations

from pathlib import Path

import torch

from fewshot_audio.errors import CheckpointError
from fewshot_audio.util.io import atomic_write

CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` (tensors, numbers, strings; its ``version`` set here) to ``path`` atomically."""
    atomic_write(path, lambda tmp: torch.save({**state, "version": CHECKPOINT_VERSION}, tmp))


def load_checkpoint(path: Path) -> dict:
    """The state saved at ``path`` (one line naming the problem when it is missing, damaged or of another version)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}; start without resume=True") from None
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to start over") from None
    if not isinstance(state, dict) or "version" not in state:
        raise CheckpointError(f"{path} is not a checkpoint fewshot-audio wrote (it has no version); pass the file "
                              "'fewshot-audio train' or 'train-detector' wrote")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has version {state.get('version')}, expected {CHECKPOINT_VERSION}")
    return state
