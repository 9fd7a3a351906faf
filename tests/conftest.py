"""Shared fixtures: an isolated cache, quiet output and tiny generated datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from fewshot_audio.data import synthetic

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd"


def synthetic_clip(family: str, index: int, j: int, *, seed: int = 0, seconds: float = 1.0,
                   sr: int = 16000) -> np.ndarray:
    """Clip ``j`` of class ``index`` of a synthetic ``family``, ``seconds`` long at ``sr`` Hz (deterministic)."""
    p = synthetic._class_params(family, index, seed)
    return synthetic.synthesize_clip(family, p, np.random.default_rng([seed, index, j, 7]), sr=sr)[: int(seconds * sr)]


def write_tag_folders(root: Path, tags: dict[str, tuple[str, int]], clips, *, sr: int, seconds: float = 1.0) -> Path:
    """A folder per tag under ``root`` holding ``J.wav`` for each ``J`` in ``clips``: clip ``J`` of the tag's
    synthetic ``(family, index)`` (a support set for ``adapt``)."""
    for tag, (family, index) in tags.items():
        (root / tag).mkdir(parents=True, exist_ok=True)
        for j in clips:
            sf.write(root / tag / f"{j}.wav", synthetic_clip(family, index, j, seconds=seconds, sr=sr), sr)
    return root


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


def write_tiny_multilabel(root: Path, *, n_tags: int = 12, n_clips: int = 160, sample_rate: int = 8000,
                          seconds: float = 0.5, seed: int = 0, layout: str = "csv") -> Path:
    """Multi-label clips: each the sum of one to three synthetic class sounds, tagged with those classes.
    ``layout``: ``csv`` (``labels.csv``, ``path,labels`` with ``;``) or ``mtt`` (``annotations_final.csv``,
    tab-separated 0/1 tag columns and ``mp3_path``, MP3 files in a sub-folder)."""
    rng = np.random.default_rng(seed)
    sounds = {}
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    n = int(seconds * sample_rate)
    for j in range(n_clips):
        tags = sorted(rng.choice(n_tags, size=int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])), replace=False).tolist())
        audio = np.zeros(n, dtype=np.float32)
        for t in tags:
            family = synthetic.FAMILIES[t % len(synthetic.FAMILIES)]
            params = sounds.setdefault(t, synthetic._class_params(family, t, seed))
            audio += synthetic.synthesize_clip(family, params, np.random.default_rng([seed, t, j]), sr=sample_rate)[:n]
        audio /= max(1.0, float(np.abs(audio).max()) / 0.9)
        rows.append((f"clip{j:03d}", [f"tag{t:02d}" for t in tags], audio))
    if layout == "csv":
        (root / "audio").mkdir(exist_ok=True)
        lines = ["path,labels"]
        for name, tags, audio in rows:
            sf.write(root / "audio" / f"{name}.wav", audio, sample_rate)
            lines.append(f"audio/{name}.wav,{';'.join(tags)}")
        (root / "labels.csv").write_text("\n".join(lines) + "\n")
        return root / "labels.csv"
    names = [f"tag{t:02d}" for t in range(n_tags)]
    (root / "0").mkdir(exist_ok=True)
    lines = ["\t".join(["clip_id", *names, "mp3_path"])]
    for j, (name, tags, audio) in enumerate(rows):
        sf.write(root / "0" / f"{name}.mp3", audio, sample_rate, format="MP3")
        lines.append("\t".join([str(j), *("1" if t in tags else "0" for t in names), f"0/{name}.mp3"]))
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
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
