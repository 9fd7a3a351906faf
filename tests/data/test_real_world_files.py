"""Bad and awkward real-world files: each is read or skipped with one line naming it, and nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data import build_manifest, load_audio, stream_windows, validate_manifest
from fewshot_audio.data.audio import read_windows
from fewshot_audio.errors import DataError
from fewshot_audio.features.store import FeatureStore
from fewshot_audio.fewshot.dataset import load_labelled_features

SR = 16000
CFG = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)


def tone(seconds: float, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def test_zero_byte_file_is_named(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.wav is empty \(0 bytes\)"):
        load_audio(tmp_path / "empty.wav", sample_rate=SR)


def test_truncated_mp3_reads_what_is_there_or_names_the_file(tmp_path):
    full = tmp_path / "full.mp3"
    sf.write(full, tone(2.0), SR)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    try:
        audio = load_audio(cut, sample_rate=SR)
    except DataError as exc:
        assert "cut.mp3" in str(exc) and "\n" not in str(exc)
    else:
        assert np.isfinite(audio).all() and 0 < len(audio) <= 2.1 * SR


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_bit_depths(tmp_path, subtype):
    x = tone(0.5)
    sf.write(tmp_path / "x.wav", x, SR, subtype=subtype)
    np.testing.assert_allclose(load_audio(tmp_path / "x.wav", sample_rate=SR), x, atol=1e-4)


def test_six_channel_96k_flac(tmp_path):
    sf.write(tmp_path / "surround.flac", tone(0.5, sr=96000, channels=6), 96000, subtype="PCM_24")
    audio = load_audio(tmp_path / "surround.flac", sample_rate=SR)
    assert audio.shape == (SR // 2,)
    np.testing.assert_allclose(audio[1000:7000], tone(0.5)[1000:7000], atol=2e-3)


def test_nan_and_inf_samples(tmp_path, capsys):
    x = tone(0.5)
    x[100:200], x[300] = np.nan, np.inf
    sf.write(tmp_path / "nan.wav", x, SR, subtype="FLOAT")
    audio = load_audio(tmp_path / "nan.wav", sample_rate=SR)
    assert np.isfinite(audio).all() and (audio[100:200] == 0).all()
    assert "nan.wav: 101 NaN/inf sample(s) replaced by silence" in capsys.readouterr().err
    sf.write(tmp_path / "allnan.wav", np.full(800, np.nan, np.float32), SR, subtype="FLOAT")
    with pytest.raises(DataError, match="allnan.wav holds only NaN/inf"):
        load_audio(tmp_path / "allnan.wav", sample_rate=SR)


def _folder(root: Path, classes: dict[str, list[np.ndarray]], sr: int = 8000) -> Path:
    for name, clips in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for j, x in enumerate(clips):
            sf.write(root / name / f"{name}_{j}.wav", x, sr)
    return root


def test_short_one_shots_keep_every_class_and_silence_is_judged_on_the_whole_clip(tmp_path, capsys):
    """The bug of issue #10: a centre crop cut the attack off short percussive clips, which were then
    judged silent and dropped. A 20 ms click, and 1.5 s clips whose sound is all in the first 0.15 s."""
    sr = 8000
    attack = np.zeros(int(1.5 * sr), np.float32)
    attack[: int(0.15 * sr)] = tone(0.15, sr)
    click = tone(0.02, sr)
    root = _folder(tmp_path / "d", {"claves": [attack] * 3, "click": [click] * 3,
                                    "silent": [np.zeros(sr, np.float32)] * 2 + [tone(0.5, sr)]})
    data = load_labelled_features(str(root), features=FeatureConfig(sample_rate=sr, n_fft=256, hop_length=128,
                                                                    n_mels=32))
    assert data.features.duration == 1.5  # auto: the 90th percentile of the durations
    ok = {c.path.split("/")[-2]: bool(k) for c, k in zip(data.manifest.clips, data.store.ok) if k}
    assert set(ok) == {"claves", "click", "silent"} and int((~data.store.ok).sum()) == 2
    first = capsys.readouterr().err
    assert "skipped 2 of 9 clips: 2 silent" in first and "silent_0.wav" in first
    load_labelled_features(str(root), features=FeatureConfig(sample_rate=sr, n_fft=256, hop_length=128, n_mels=32))
    again = capsys.readouterr().err  # the cached store: the summary is printed again
    assert "skipped 2 of 9 clips" in again and "building feature store" not in again


def test_non_ascii_names_and_a_symlink_loop(tmp_path):
    root = _folder(tmp_path / "d", {"café": [tone(0.3, 8000)] * 2, "ß-naïve": [tone(0.4, 8000)] * 2})
    os.symlink(root / "café", root / "café" / "loop")  # a folder that contains itself
    manifest = validate_manifest(build_manifest(root))
    assert sorted(manifest.classes) == ["café", "ß-naïve"] and len(manifest) == 4
    store = FeatureStore.open_or_build(manifest, CFG, cache_dir=tmp_path / "cache")
    assert store.ok.all()


def test_one_hour_file_is_streamed_in_bounded_memory(tmp_path):
    sr_file = 8000
    path = tmp_path / "hour.wav"
    with sf.SoundFile(path, "w", samplerate=sr_file, channels=1, subtype="PCM_16") as fh:
        rng = np.random.default_rng(0)
        for _ in range(60):
            fh.write((0.1 * rng.standard_normal(60 * sr_file)).astype(np.float32))
    whole_bytes = 3600 * SR * 4  # the decoded file at 16 kHz, float32: 230 MB
    tracemalloc.start()
    n, last = 0, None
    for batch in stream_windows(path, sample_rate=SR, length=SR, hop_samples=SR):
        n += len(batch)
        last = batch[-1]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 3600 and np.abs(last).max() > 0
    assert peak < whole_bytes / 5, f"peak {peak / 1e6:.0f} MB"  # 60 s blocks: ~29 MB measured
    windows, level = read_windows(path, sample_rate=8000, length=8000, hop_samples=8000, max_windows=16)
    assert windows.shape == (16, 8000) and level > 0.1  # evenly spaced windows cover the hour


def test_truncated_store_is_detected_and_rebuilt(tmp_path, capsys):
    root = _folder(tmp_path / "d", {"a": [tone(0.5, 8000)] * 2, "b": [tone(0.3, 8000)] * 2})
    manifest = validate_manifest(build_manifest(root))
    store = FeatureStore.open_or_build(manifest, CFG, cache_dir=tmp_path / "cache")
    expected = np.array(store.array)
    size = store.path.stat().st_size
    del store
    with open(tmp_path / "cache" / "features" / next(p.name for p in (tmp_path / "cache" / "features").glob("*.npy")),
              "r+b") as fh:
        fh.truncate(size - 1000)
    rebuilt = FeatureStore.open_or_build(manifest, CFG, cache_dir=tmp_path / "cache")
    assert "incomplete or corrupt" in capsys.readouterr().err
    np.testing.assert_array_equal(np.array(rebuilt.array), expected)


def test_two_processes_build_one_store_without_corrupting_it(tmp_path):
    root = _folder(tmp_path / "d", {c: [tone(0.2 + 0.05 * j, 8000) for j in range(20)] for c in "abcd"})
    script = (
        "import sys, numpy as np\n"
        "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "from fewshot_audio.config import FeatureConfig\n"
        "from fewshot_audio.data import build_manifest, validate_manifest\n"
        "from fewshot_audio.features.store import FeatureStore\n"
        "m = validate_manifest(build_manifest(sys.argv[1]))\n"
        "cfg = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)\n"
        "s = FeatureStore.open_or_build(m, cfg, cache_dir=sys.argv[2], batch_size=8)\n"
        "print(float(np.asarray(s.array).sum()), s.array.shape[0])\n")
    env = {**os.environ, "FEWSHOT_AUDIO_QUIET": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root), str(tmp_path / "cache")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0] == outs[1][0]  # both read the same complete store
    assert sum("building feature store" in err for _, err in outs) == 1  # one built it, the other waited
