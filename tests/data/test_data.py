import json

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.data import (
    build_manifest,
    clip_windows,
    detect_format,
    load_audio,
    synthetic,
    validate_manifest,
    window_starts,
)
from fewshot_audio.errors import DataError


def tone(sr, seconds=0.3, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("ext,fmt", [(".wav", "WAV"), (".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3")])
def test_load_any_format_rate_and_channels(tmp_path, ext, fmt):
    path = tmp_path / f"x{ext}"
    sf.write(path, tone(22050, channels=2), 22050, format=fmt)
    audio = load_audio(path, sample_rate=16000)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(len(audio) - int(0.3 * 16000)) < 0.03 * 16000  # mp3 adds encoder delay
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 10


def test_unreadable_and_empty_audio(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(DataError, match="cannot decode audio file .*bad.wav"):
        load_audio(bad, sample_rate=16000)


def test_clip_policy_windows():
    x = np.arange(10, dtype=np.float32)
    w = clip_windows(x, length=4, hop_samples=3)  # covers the whole clip; the last window ends at its end
    assert w.shape == (3, 4) and w[0].tolist() == [0, 1, 2, 3] and w[-1].tolist() == [6, 7, 8, 9]
    assert clip_windows(x, length=10).tolist() == [x.tolist()]
    # short clips: looped (not drowned in silence) or zero-padded on request
    assert clip_windows(x[:3], length=7).tolist() == [[0, 1, 2, 0, 1, 2, 0]]
    assert clip_windows(x[:3], length=5, short="pad").tolist() == [[0, 1, 2, 0, 0]]
    assert window_starts(100, length=10, hop_samples=10, max_windows=4).tolist() == [0, 30, 60, 90]
    with pytest.raises(ValueError, match="short"):
        clip_windows(x[:3], length=5, short="zeros")


def _write(path, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(sr), sr)


def test_folder_adapter_and_validation(tmp_path):
    for c in ("dog", "cat"):
        for i in range(3):
            _write(tmp_path / "d" / c / f"{i}.wav")
    (tmp_path / "d" / "cat" / "broken.wav").write_bytes(b"RIFF junk")
    (tmp_path / "d" / "cat" / "empty.wav").write_bytes(b"")
    m = build_manifest(tmp_path / "d")
    assert detect_format(tmp_path / "d") == "folder" and len(m) == 8 and m.classes == ["cat", "dog"]
    v = validate_manifest(m)
    assert len(v) == 6 and len(v.problems) == 2
    assert any("broken.wav" in p for p in v.problems) and any("empty.wav" in p for p in v.problems)
    assert all(c.duration == pytest.approx(0.3) for c in v.clips)
    with pytest.raises(DataError, match="broken.wav.*drop strict=True"):
        validate_manifest(m, strict=True)


def test_csv_adapter_multi_label(tmp_path):
    for i in range(3):
        _write(tmp_path / "a" / f"{i}.wav")
    (tmp_path / "meta.csv").write_text("path,labels,fold\na/0.wav,rock;guitar,1\na/1.wav,jazz,2\na/2.wav, piano ; jazz ,1\n")
    m = build_manifest(tmp_path / "meta.csv")
    assert [c.labels for c in m.clips] == [("rock", "guitar"), ("jazz",), ("piano", "jazz")]
    assert [c.fold for c in m.clips] == ["1", "2", "1"]
    with pytest.raises(DataError, match="exactly one"):
        m.single_labels()
    (tmp_path / "meta.csv").write_text("file,tag\na/0.wav,x\n")
    with pytest.raises(DataError, match="needs columns 'path' and 'label' or 'labels'"):
        build_manifest(tmp_path / "meta.csv")


def test_a_spreadsheets_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Issue 28: a CSV saved by a spreadsheet (UTF-8 with BOM) was refused: 'found \ufeffpath, label'."""
    for i in range(2):
        _write(tmp_path / "a" / f"{i}.wav")
    (tmp_path / "meta.csv").write_bytes("path,label\na/0.wav,dog\na/1.wav,cat\n".encode("utf-8-sig"))
    assert [c.labels for c in build_manifest(tmp_path / "meta.csv").clips] == [("dog",), ("cat",)]


def test_esc50_urbansound_fsdd_nsynth_adapters(tmp_path):
    esc = tmp_path / "esc"
    _write(esc / "audio" / "1-100-A-0.wav")
    (esc / "meta").mkdir()
    (esc / "meta" / "esc50.csv").write_text("filename,fold,target,category,esc10,src_file,take\n1-100-A-0.wav,1,0,dog,True,100,A\n")
    m = build_manifest(esc)
    assert detect_format(esc) == "esc50" and m.clips[0].labels == ("dog",) and m.clips[0].fold == "1"

    us = tmp_path / "us"
    _write(us / "audio" / "fold3" / "100-1-0-0.wav")
    (us / "metadata").mkdir()
    (us / "metadata" / "UrbanSound8K.csv").write_text(
        "slice_file_name,fsID,start,end,salience,fold,classID,class\n100-1-0-0.wav,100,0,1,1,3,1,car_horn\n")
    m = build_manifest(us)
    assert detect_format(us) == "urbansound8k" and m.clips[0].labels == ("car_horn",) and m.clips[0].fold == "3"
    assert validate_manifest(m).clips[0].duration == pytest.approx(0.3)

    fsdd = tmp_path / "fsdd"
    for name in ("3_jackson_0", "3_nicolas_1", "7_jackson_2"):
        _write(fsdd / "recordings" / f"{name}.wav")
    assert detect_format(fsdd) == "fsdd"
    assert [c.labels[0] for c in build_manifest(fsdd).clips] == ["3", "3", "7"]
    assert [c.labels[0] for c in build_manifest(fsdd, label="speaker").clips] == ["jackson", "nicolas", "jackson"]
    assert build_manifest(fsdd, label="digit-speaker").clips[0].labels == ("3-jackson",)
    with pytest.raises(DataError, match="label 'accent' is not valid for format fsdd"):
        build_manifest(fsdd, label="accent")

    ns = tmp_path / "nsynth"
    _write(ns / "audio" / "guitar_acoustic_001-060-100.wav")
    (ns / "examples.json").write_text(json.dumps({"guitar_acoustic_001-060-100": {
        "instrument_family_str": "guitar", "instrument_str": "guitar_acoustic_001"}}))
    assert detect_format(ns) == "nsynth"
    assert build_manifest(ns).clips[0].labels == ("guitar",)
    assert build_manifest(ns, label="instrument").clips[0].labels == ("guitar_acoustic_001",)


def test_dataset_path_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_manifest(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is an empty folder"):
        build_manifest(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="cannot tell the layout.*name one with format= "):
        build_manifest(tmp_path / "odd")
    with pytest.raises(DataError, match="unknown dataset format 'zip'"):
        build_manifest(tmp_path / "odd", format="zip")


def test_synthetic_dataset_is_large_deterministic_and_varied():
    names = synthetic.class_names()
    assert len(names) >= 100 and synthetic.CLIPS_PER_CLASS >= 20
    assert len({n.split("-")[0] for n in names}) == 6
    p = synthetic._class_params("plucked", 3, 0)
    a = synthetic.synthesize_clip("plucked", p, np.random.default_rng([0, 1]))
    b = synthetic.synthesize_clip("plucked", p, np.random.default_rng([0, 1]))
    c = synthetic.synthesize_clip("plucked", p, np.random.default_rng([0, 2]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (synthetic.SAMPLE_RATE,) and np.abs(a).max() <= 1 and np.abs(a).max() > 0.01


def test_multi_label_training_never_sees_a_val_or_novel_tag(tmp_path):
    """Base-tag training episodes (and the clips a strategy prepares on) leave out every clip that also carries
    a val or novel tag; evaluation episodes over novel tags keep clips that carry base tags too."""
    import torch
    from conftest import write_tiny_multilabel

    from fewshot_audio.config import FeatureConfig
    from fewshot_audio.fewshot.dataset import load_labelled_features

    csv_path = write_tiny_multilabel(tmp_path / "ml")
    features = FeatureConfig(sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, n_mels=32)
    data = load_labelled_features(str(csv_path), features=features, multi_label=True, quiet=True)
    assert data.multi_label and data.targets.shape == (160, 12) and (data.labels == -1).all()
    assert (data.targets.sum(1) >= 1).all() and (data.targets.sum(1) > 1).sum() > 40
    base, novel = list(range(8)), list(range(8, 12))
    train_clips = data.clips_of(base, training=True)
    assert len(train_clips) and not data.targets[train_clips][:, novel].any()
    assert len(train_clips) < len(data.clips_of(base))  # some base clips also carry a novel tag
    ep = data.sampler(base, n_way=3, n_shot=2, n_query=2, seed=0, training=True).sample(40)
    drawn = torch.cat([ep.support.flatten(), ep.query.flatten()]).numpy()
    assert not data.targets[drawn][:, novel].any()
    test = data.sampler(novel, n_way=3, n_shot=2, n_query=2, seed=0).sample(40)
    drawn = torch.cat([test.support.flatten(), test.query.flatten()]).numpy()
    assert data.targets[drawn][:, base].any()
    from fewshot_audio.errors import EpisodeError

    with pytest.raises(EpisodeError, match="without a val or novel tag"):
        data.sampler(base, n_way=3, n_shot=10, n_query=10, seed=0, training=True)
