"""Front ends (log-mel, waveform) and the content-hashed, memory-mapped feature store.

Features for every clip are computed once, in batches, and stored as one
``.npy`` array keyed by a hash of (manifest files, feature config). Later runs
memory-map it; a changed file or config gives a new key and a rebuild.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .config import FeatureConfig
from .data.audio import fix_length, load_audio
from .data.manifest import Manifest
from .errors import DataError
from .io_utils import atomic_write, atomic_write_json
from .progress import log, progress, warn

STORE_VERSION = 1
SILENCE_PEAK = 1e-4


class LogMel(torch.nn.Module):
    """Batched log-mel spectrogram matching ``librosa.power_to_db(librosa.feature.melspectrogram(...))``.

    Input ``(batch, samples)`` float waveforms; output ``(batch, 1, n_mels, frames)`` in dB,
    each clip floored at ``top_db`` below its own maximum. Uses ``torch.stft`` (Hann window,
    centred, zero padding as librosa >= 0.10) and librosa's Slaney mel filterbank.
    """

    def __init__(self, config: FeatureConfig):
        super().__init__()
        import librosa

        self.n_fft, self.hop_length, self.top_db = config.n_fft, config.hop_length, config.top_db
        mel = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                  fmin=config.fmin, fmax=config.fmax)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.real**2 + spec.imag**2
        mel = torch.matmul(self.mel, power)
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        if self.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)
        return db.unsqueeze(1)


def feature_shape(config: FeatureConfig) -> tuple[int, ...]:
    """Per-clip stored shape: ``(1, n_mels, frames)`` or ``(1, samples)``."""
    if config.kind == "waveform":
        return (1, config.n_samples)
    return (1, config.n_mels, config.n_frames)


def store_key(manifest: Manifest, config: FeatureConfig) -> str:
    payload = json.dumps({"files": manifest.files_hash(), "features": asdict(config), "v": STORE_VERSION},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _load_fixed(clip_path: str, config: FeatureConfig) -> np.ndarray | None:
    try:
        audio = load_audio(clip_path, sample_rate=config.sample_rate)
    except DataError as exc:
        warn(str(exc))
        return None
    return fix_length(audio, length=config.n_samples, mode="centre")


def compute_features(waves: np.ndarray, config: FeatureConfig, *, device: str = "cpu") -> np.ndarray:
    """Features of a batch of fixed-length waveforms ``(batch, samples)``; returns ``(batch, *feature_shape)``."""
    if config.kind == "waveform":
        return waves[:, None, :].astype(np.float32)
    if config.kind == "musicnn":
        from .pretrained.musicnn import MusicnnLogMel

        with torch.no_grad():
            return MusicnnLogMel().to(device)(torch.from_numpy(waves).to(device)).transpose(1, 2).unsqueeze(1).cpu().numpy()
    front = LogMel(config).to(device)
    with torch.no_grad():
        return front(torch.from_numpy(waves).to(device)).cpu().numpy()


class FeatureStore:
    """Features of every clip of a manifest, as one memory-mapped array.

    ``array`` has shape ``(n_clips, *feature_shape(config))``; ``ok`` marks clips that were
    decoded and are not silent (the others are zero rows, excluded by callers).
    """

    def __init__(self, path: Path, array: np.ndarray, ok: np.ndarray, meta: dict):
        self.path, self.array, self.ok, self.meta = path, array, ok, meta

    @classmethod
    def open_or_build(cls, manifest: Manifest, config: FeatureConfig, *, cache_dir: Path, batch_size: int = 256,
                      quiet: bool = False) -> "FeatureStore":
        key = store_key(manifest, config)
        folder = Path(cache_dir) / "features"
        base = folder / f"{manifest.name}-{config.kind}-{key}"
        npy, meta_path = base.with_suffix(".npy"), base.with_suffix(".json")
        if not (npy.exists() and meta_path.exists()):
            cls._build(manifest, config, npy, meta_path, batch_size=batch_size, quiet=quiet)
        meta = json.loads(meta_path.read_text())
        array = np.load(npy, mmap_mode="r")
        if array.shape[0] != len(manifest):
            raise DataError(f"feature store {npy} does not match its manifest; delete it to rebuild")
        return cls(npy, array, np.asarray(meta["ok"], dtype=bool), meta)

    @staticmethod
    def _build(manifest: Manifest, config: FeatureConfig, npy: Path, meta_path: Path, *, batch_size: int,
               quiet: bool) -> None:
        n = len(manifest)
        shape = (n, *feature_shape(config))
        ok = np.ones(n, dtype=bool)
        silent, failed = [], []

        def write(tmp: str) -> None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            starts = range(0, n, batch_size)
            with ThreadPoolExecutor(max_workers=4) as pool:
                for start in progress(starts, desc=f"extracting {config.kind} features ({n} clips)",
                                      total=len(starts), quiet=quiet):
                    clips = manifest.clips[start : start + batch_size]
                    waves = list(pool.map(lambda c: _load_fixed(c.path, config), clips))
                    batch = np.zeros((len(clips), config.n_samples), dtype=np.float32)
                    for j, (clip, wave) in enumerate(zip(clips, waves)):
                        if wave is None:
                            ok[start + j] = False
                            failed.append(clip.path)
                        elif np.abs(wave).max() < SILENCE_PEAK:
                            ok[start + j] = False
                            silent.append(clip.path)
                        else:
                            batch[j] = wave
                    out[start : start + len(clips)] = compute_features(batch, config)
            out.flush()
            del out

        log(f"building feature store {npy.name} ({n} clips, {config.kind})")
        atomic_write(npy, write)
        for path in silent:
            warn(f"{path}: silent clip (peak below {SILENCE_PEAK}); skipped")
        atomic_write_json(meta_path, {"version": STORE_VERSION, "manifest": manifest.content_hash(),
                                      "files": manifest.files_hash(), "features": asdict(config),
                                      "ids": [c.id for c in manifest.clips], "ok": ok.tolist(),
                                      "silent": silent, "failed": failed})
