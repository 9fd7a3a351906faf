import os

import librosa
import numpy as np
import pytest
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data import build_manifest
from fewshot_audio.features.frontends import LogMel, feature_shape
from fewshot_audio.features.store import FeatureStore
from fewshot_audio.models.backbones.mfcc import dct_matrix


@pytest.mark.parametrize("cfg", [FeatureConfig(duration=1.0), FeatureConfig(sample_rate=22050, n_fft=1024, hop_length=512,
                                                                 n_mels=96, fmin=30.0, fmax=8000.0, duration=2.0)])
def test_logmel_matches_librosa(cfg):
    rng = np.random.default_rng(1)
    t = np.arange(cfg.n_samples) / cfg.sample_rate
    x = np.stack([np.sin(2 * np.pi * 440 * t) * np.exp(-t), rng.standard_normal(cfg.n_samples) * 0.1]).astype(np.float32)
    ours = LogMel(cfg)(torch.from_numpy(x)).numpy()[:, 0]
    ref = np.stack([librosa.power_to_db(librosa.feature.melspectrogram(
        y=xi, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels, fmin=cfg.fmin,
        fmax=cfg.fmax), ref=1.0, amin=1e-10, top_db=cfg.top_db) for xi in x])
    assert ours.shape == ref.shape == (2, *feature_shape(cfg)[1:])
    assert np.abs(ours - ref).max() < 0.01


def test_mfcc_dct_matches_librosa():
    rng = np.random.default_rng(0)
    S = rng.standard_normal((40, 30)).astype(np.float32) * 10
    ours = (dct_matrix(20, 40) @ torch.from_numpy(S)).numpy()
    ref = librosa.feature.mfcc(S=S, n_mfcc=20)
    assert np.allclose(ours, ref, atol=1e-3)


def test_store_is_reused_and_rebuilt_when_files_or_config_change(tiny_dataset, tmp_path):
    cfg = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)
    manifest = build_manifest(tiny_dataset)
    store = FeatureStore.open_or_build(manifest, cfg, cache_dir=tmp_path / "c")
    assert store.array.shape == (len(manifest), 1, 32, cfg.n_frames)
    assert isinstance(store.array, np.memmap)
    mtime = os.stat(store.path).st_mtime_ns
    again = FeatureStore.open_or_build(build_manifest(tiny_dataset), cfg, cache_dir=tmp_path / "c")
    assert again.path == store.path and os.stat(again.path).st_mtime_ns == mtime
    other = FeatureStore.open_or_build(manifest, FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256,
                                                               hop_length=128, n_mels=16), cache_dir=tmp_path / "c")
    assert other.path != store.path and other.array.shape[2] == 16
    # touching a file changes the key
    f = manifest.clips[0].path
    os.utime(f, ns=(os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns + 10**9))
    rebuilt = FeatureStore.open_or_build(build_manifest(tiny_dataset), cfg, cache_dir=tmp_path / "c")
    assert rebuilt.path != store.path
    np.testing.assert_allclose(rebuilt.array, store.array)


def test_waveform_mode_and_silent_clips(tiny_dataset, tmp_path):
    import soundfile as sf

    sf.write(tiny_dataset / "class00" / "silent.wav", np.zeros(4000, dtype=np.float32), 8000)
    cfg = FeatureConfig(kind="waveform", sample_rate=8000, duration=0.5)
    manifest = build_manifest(tiny_dataset)
    store = FeatureStore.open_or_build(manifest, cfg, cache_dir=tmp_path / "c")
    assert store.array.shape == (len(manifest), 1, 4000)
    silent = [i for i, c in enumerate(manifest.clips) if c.path.endswith("silent.wav")]
    assert not store.ok[silent[0]] and store.ok.sum() == len(manifest) - 1
    assert store.meta["silent"] == [manifest.clips[silent[0]].path]


def test_device_data_windows_signal_draws_and_pooling():
    """Clip 0 owns rows 0-2 (row 1 is 70 dB below its loudest), clip 1 owns rows 3-4."""
    from fewshot_audio.fewshot.dataset import DeviceData

    array = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1) * np.ones((1, 1, 2, 4), np.float32)
    dev = DeviceData(array, device=torch.device("cpu"), crop=4, offsets=np.array([0, 3, 5]),
                     energy=np.array([-10, -80, -12, -5, -5], np.float32), signal_db=30.0)
    idx = torch.zeros(400, dtype=torch.long)
    drawn = dev.inputs(idx, train=True)[:, 0, 0, 0]
    assert set(drawn.tolist()) == {0.0, 2.0}  # never the near-silent row 1, both rows with signal
    assert dev.eval_inputs(torch.tensor([0, 1]))[:, 0, 0, 0].tolist() == [0.0, 3.0]  # the loudest window
    pooled = dev.embed(lambda x: x.flatten(1)[:, :1], torch.tensor([1, 0]))
    assert pooled.flatten().tolist() == [3.5, 1.0]  # mean over each clip's windows
