"""Shared fixtures: an isolated cache, quiet output and tiny generated datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from fewshot_audio.data import synthetic

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd"


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cache))
    monkeypatch.setenv("FEWSHOT_AUDIO_QUIET", "1")


def write_tiny_dataset(root: Path, *, n_classes: int = 12, n_clips: int = 8, sample_rate: int = 8000,
                       seconds: float = 0.5, seed: int = 0) -> Path:
    """Folder-per-class WAVs drawn from the synthetic families (one class per family member)."""
    root.mkdir(parents=True, exist_ok=True)
    for c in range(n_classes):
        family = synthetic.FAMILIES[c % len(synthetic.FAMILIES)]
        params = synthetic._class_params(family, c, seed)
        (root / f"class{c:02d}").mkdir(exist_ok=True)
        for j in range(n_clips):
            audio = synthetic.synthesize_clip(family, params, np.random.default_rng([seed, c, j]), sr=sample_rate)
            sf.write(root / f"class{c:02d}" / f"clip{j:02d}.wav", audio[: int(seconds * sample_rate)], sample_rate)
    return root


TINY_CONFIG = {
    "channels": 8,
    "episodes": 6,
    "val_every": 3,
    "val_episodes": 10,
    "test_episodes": 20,
    "ways": 3,
    "shots": 2,
    "queries": 3,
    "split": [0.5, 0.25, 0.25],
    "features": {"sample_rate": 8000, "duration": 0.5, "n_fft": 256, "hop_length": 128, "n_mels": 32},
}


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return write_tiny_dataset(tmp_path / "tiny")


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_CONFIG, "episodes_dir": str(tmp_path / "episodes")}))
    return path
