"""musicnn: the TensorFlow checkpoint reader, the PyTorch ports and their preprocessing.

The reference outputs in fixtures/musicnn_reference.npz were computed once with the original
TensorFlow code (fixtures/make_musicnn_reference.py). Tests that need the real weights obtain the
musicnn 0.1.0 wheel from the package registry (pip download) and skip cleanly where that fails.
"""

import subprocess
import sys
import zipfile
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from benchmarks.common import musicnn_original
from fewshot_audio.errors import CheckpointError, DataError
from fewshot_audio.models.pretrained import musicnn as mn
from fewshot_audio.models.pretrained.tf_checkpoint import crc32c, read_checkpoint, read_index

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
from reference_signals import signals  # noqa: E402


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "musicnn==0.1.0", "-d", str(d)],
                       capture_output=True, text=True)
    found = sorted(d.glob("musicnn-0.1.0*.whl"))
    if r.returncode != 0 or not found:
        pytest.skip("the musicnn 0.1.0 wheel cannot be downloaded here")
    return found[0]


@pytest.fixture(scope="session")
def unpacked(wheel, tmp_path_factory):
    d = tmp_path_factory.mktemp("unpacked")
    zipfile.ZipFile(wheel).extractall(d)
    return d / "musicnn"


@pytest.fixture(scope="session")
def converted(wheel, tmp_path_factory):
    import os

    cache = tmp_path_factory.mktemp("mcache")
    old = os.environ.get("FEWSHOT_AUDIO_CACHE")
    os.environ["FEWSHOT_AUDIO_CACHE"] = str(cache)
    from fewshot_audio.models.pretrained.weights import fetch
    from fewshot_audio.specs import source

    fetch(source("musicnn"), wheel)
    if old is not None:
        os.environ["FEWSHOT_AUDIO_CACHE"] = old
    return cache


def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def test_preprocessing_matches_librosa_and_the_original():
    x = signals()["tone"]
    ours = mn.musicnn_logmel(x)
    mel = librosa.feature.melspectrogram(y=x, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    ref = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    assert ours.shape == ref.shape == (438, 96)
    # float16 rounding of nearly equal float32 powers may differ in the last half-precision bit
    assert np.abs(ours - ref).max() < 2e-3 and np.median(np.abs(ours - ref)) < 1e-6
    fixture = np.load(FIXTURES / "musicnn_reference.npz")["rep_tone"]
    assert np.abs(ours - fixture).max() < 2e-3
    p, padded = mn.patches(ours)
    assert p.shape == (2, 187, 96) and not padded
    short, padded = mn.patches(ours[:50])
    assert short.shape == (1, 187, 96) and padded and np.all(short[0, 50:] == 0)


def test_port_shapes_and_parameter_counts():
    counts = {"MTT_musicnn": 787_159, "MTT_vgg": 605_748}
    for name, n in counts.items():
        model = mn.build_model(name).eval()
        assert sum(p.numel() for p in model.parameters()) == n
        out = model(torch.zeros(3, 187, 96))
        assert out["taggram"].shape == (3, 50)
        if name.endswith("musicnn"):
            assert out["penultimate"].shape == (3, 200) and out["mean_pool"].shape == (3, 753)
            assert out["timbral"].shape == (3, 187, 408) and out["temporal"].shape == (3, 187, 153)
        else:
            assert out["pool5"].shape == (3, 2, 1, 128)


def test_reader_on_the_real_wheel(unpacked, tmp_path):
    idx = read_index(unpacked / "MTT_musicnn" / ".index")
    assert idx["conv2d/kernel"]["shape"] == [7, 38, 1, 204] and idx["dense_1/kernel"]["shape"] == [200, 50]
    w = read_checkpoint(f"{unpacked / 'MTT_musicnn'}/")  # every tensor's crc32c verified
    assert w["conv2d_2/kernel"].shape == (128, 1, 1, 51) and w["conv2d_2/kernel"].dtype == np.float32
    # a flipped byte in the data file is caught and the tensor named
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in (unpacked / "MTT_musicnn").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    data = bytearray((bad / ".data-00000-of-00001").read_bytes())
    e = idx["dense/kernel"]
    data[e["offset"] + 10] ^= 0xFF
    (bad / ".data-00000-of-00001").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="'dense/kernel' fails its crc32c check"):
        read_checkpoint(f"{bad}/")
    (bad / ".index").write_bytes((unpacked / "MTT_musicnn" / ".index").read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        read_index(bad / ".index")


@pytest.mark.parametrize("name", list(mn.MODELS))
def test_ports_equal_the_original_tensorflow_models(converted, name, monkeypatch):
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(converted))
    model, meta = musicnn_original(name)
    ref = np.load(FIXTURES / "musicnn_reference.npz")
    for sig, x in signals().items():
        p, _ = mn.patches(mn.musicnn_logmel(x))
        with torch.no_grad():
            out = model(torch.from_numpy(p))
        for key in ("taggram", "penultimate"):
            r = ref[f"{name}/{sig}/{key}"]
            rel = np.abs(out[key].numpy() - r).max() / np.abs(r).max()
            assert rel < 1e-4, f"{name} {sig} {key}: max relative error {rel:.2e}"
    assert meta["labels"][0] == ("guitar" if name.startswith("MTT") else "rock")


def test_wheel_of_another_version_is_refused(tmp_path):
    from fewshot_audio.models.pretrained.weights import fetch
    from fewshot_audio.specs import source

    fake = tmp_path / "musicnn-0.0.9-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("musicnn-0.0.9.dist-info/METADATA", "Name: musicnn\nVersion: 0.0.9\n")
    with pytest.raises(DataError, match="is musicnn 0.0.9"):
        fetch(source("musicnn"), fake)
    with pytest.raises(DataError, match="no musicnn wheel or package folder"):
        fetch(source("musicnn"), tmp_path / "nothing-here")


def test_missing_weights_say_how_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(tmp_path))
    from fewshot_audio.models.pretrained.weights import load_model
    from fewshot_audio.specs import get

    with pytest.raises(CheckpointError, match="weights fetch musicnn"):
        load_model(get("musicnn-mtt"))


def test_musicnn_backbone_in_train_and_tag_cli(converted, monkeypatch, tmp_path, tiny_dataset, capsys):
    import soundfile as sf
    import yaml

    from fewshot_audio.cli import main

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(converted))
    cfg = {"backbone": "musicnn-mtt", "ways": 3, "shots": 2, "queries": 3, "val_episodes": 10, "test_episodes": 20,
           "split": [0.5, 0.25, 0.25], "episodes_dir": str(tmp_path / "eps"),
           "features": {"kind": "musicnn", "sample_rate": 16000, "duration": 0.5, "n_fft": 512, "hop_length": 256,
                        "n_mels": 96}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    for strategy in ("prototypical", "transfer-simpleshot"):
        assert main(["train", "--dataset", str(tiny_dataset), "--config", str(tmp_path / "c.yaml"), "--strategy",
                     strategy, "--out", str(tmp_path / strategy), "--quiet"]) == 0
        assert f"{strategy}/musicnn-mtt: 3-way 2-shot accuracy" in capsys.readouterr().out
    sf.write(tmp_path / "drums.wav", signals()["drums"], 16000)
    assert main(["tag", str(tmp_path / "drums.wav"), "--model", "musicnn-mtt", "--top-k", "3", "--quiet"]) == 0
    assert "techno" in capsys.readouterr().out
    assert main(["train", "--dataset", str(tiny_dataset), "--backbone", "musicnn-mtt", "--out", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "needs musicnn inputs but features.kind is 'logmel'" in capsys.readouterr().err


def test_fast_front_end_is_bitwise_equal_to_the_direct_formula(monkeypatch):
    """max over frequency taken before ReLU and batch norm (negated filters where a channel's scale is
    negative) gives exactly the outputs of bn(relu(conv(x))).amax(3)."""
    torch.manual_seed(0)
    net = mn.Musicnn()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.normal_()  # about half the scales negative
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    net.eval()
    x = torch.randn(3, 187, 96)
    with torch.no_grad():
        fast = net(x)
        monkeypatch.setattr(mn, "_conv_relu_bn_max", lambda conv, bn, h: bn(torch.relu(conv(h))).amax(dim=3))
        direct = net(x)
    for key in ("timbral", "temporal", "mean_pool", "penultimate", "taggram"):
        assert torch.equal(fast[key], direct[key]), key


def test_tag_model_on_a_file_equals_the_original_extractor(converted, monkeypatch, tmp_path):
    """`tag --model musicnn-mtt` on a file: one log-mel of the whole file cut into 187-frame patches without
    overlap, as the original `extractor` does; its taggram equals the original's per-patch outputs and the
    file's scores their mean (fixture made by the original TensorFlow code from whole-file spectrograms).
    Framing 3 s waveform windows instead (each with its own STFT) fails this test."""
    import soundfile as sf

    from fewshot_audio.tagging.model_tags import tag_with_model

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(converted))
    ref = np.load(FIXTURES / "musicnn_reference.npz")
    for sig, x in signals().items():
        path = tmp_path / f"{sig}.wav"
        sf.write(path, x, 16000, subtype="FLOAT")
        (result,), labels = tag_with_model([path], model="musicnn-mtt", device="cpu", quiet=True)
        r = ref[f"MTT_musicnn/{sig}/taggram"]
        assert result.taggram.shape == r.shape
        assert np.abs(result.taggram - r).max() < 1e-4, sig
        assert max(abs(result.scores[t] - r.mean(0)[j]) for j, t in enumerate(labels)) < 1e-4, sig
        np.testing.assert_allclose(result.times, [0.0, 187 * 256 / 16000])


def test_patch_framing_of_a_long_file_equals_one_whole_file_pass(converted, monkeypatch, tmp_path):
    """A file read block by block gives exactly the patches of one front-end pass over the whole file."""
    import soundfile as sf

    from fewshot_audio.embedding import load_backbone, patch_framing
    from fewshot_audio.embedding.framing import file_patches
    from fewshot_audio.features.frontends import front_end

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(converted))
    sf.write(tmp_path / "long.wav", np.concatenate(list(signals().values())), 16000, subtype="FLOAT")
    bb = load_backbone("musicnn-mtt", device=torch.device("cpu"))
    f = bb.features
    window = int(round(bb.window * f.sample_rate))
    for original, hop in ((True, 187), (False, 40)):
        runs = [list(file_patches(tmp_path / "long.wav", f, patch_framing(f), front_end(f), window_samples=window,
                              hop_frames=hop, original=original, device="cpu", block_seconds=b)) for b in (60.0, 2.01)]
        whole, blocks = (np.concatenate([p for p, _, _, _ in run if p is not None]) for run in runs)
        assert len(runs[1]) > 3 and whole.shape == blocks.shape and np.array_equal(whole, blocks)
        times = runs[0][-1][1]
        assert len(times) == len(whole)
        # each patch's level is the RMS level of the samples of its window, however the file was read
        levels = [np.concatenate([lv for p, _, _, lv in run if p is not None]) for run in runs]
        np.testing.assert_allclose(levels[0], levels[1], atol=1e-3)
        x = sf.read(tmp_path / "long.wav", dtype="float32")[0]
        starts = np.round(times[:, 0] * 16000).astype(int)
        rms = [np.mean(np.square(np.pad(x[s : s + window], (0, max(0, s + window - len(x)))), dtype=np.float64))
               for s in starts]
        np.testing.assert_allclose(levels[0], 10 * np.log10(np.maximum(rms, 1e-12)), atol=0.01)
        # 21 s = 1313 frames: the original takes 7 patches and drops the incomplete 8th; the clip policy ends
        # its last window at the file's end
        if original:
            assert len(times) == 7 and times[-1, 0] == 6 * 187 * 256 / 16000
        else:
            assert abs(times[-1, 1] - 21.0) < 0.02 and np.allclose(np.diff(times[:-1, 0]), 40 * 256 / 16000)
