"""adapt --backbone auto: the examples choose the model by leave-one-out accuracy; the tagger keeps the choice."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fewshot_audio import specs as registry
from fewshot_audio.cli import main
from fewshot_audio.tagging.model_choice import candidates, loo_balanced_accuracy
from fewshot_audio.tagging.tagger import Tagger
from tests.conftest import write_tag_folders

SR = 8000


def test_leave_one_out_balanced_accuracy():
    e = torch.eye(3)
    # two tight clusters of two examples each: every example is nearest its own tag's other example
    zs = torch.nn.functional.normalize(torch.stack([e[0] + 0.1 * e[2], e[0] - 0.1 * e[2], e[1] + 0.1 * e[2],
                                                    e[1] - 0.1 * e[2]]), dim=1)
    targets = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=torch.bool)
    assert loo_balanced_accuracy(zs, targets) == 1.0
    # one example of the second tag sits on the first tag's side: tag 1 recalls 2 of 2, tag 2 1 of 2 -> (1 + 0.5) / 2
    mixed = torch.nn.functional.normalize(torch.stack([e[0], e[0] + 0.2 * e[1], e[0] + 0.3 * e[1], e[1]]), dim=1)
    assert loo_balanced_accuracy(mixed, targets) == 0.75
    # a negative (no tag) does not count; a tag with one example cannot be left out and does not count
    assert loo_balanced_accuracy(zs, torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=torch.bool)) == 1.0


@pytest.fixture
def blind(tmp_path, monkeypatch):
    """A fetched model that hears nothing (the same embedding for every input), tried by auto."""
    from torch import nn

    from fewshot_audio.config import FeatureConfig
    from fewshot_audio.features.frontends import LogMel
    from fewshot_audio.models.pretrained.weights import fetch

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.ones(8))

        def forward(self, x):
            return {"clip": self.bias.expand(len(x), 8) + 0 * x.mean()}

    source = registry.WeightsSource(name="blind", package="blind", version="1.0", licence="MIT",
                                    convert=lambda root: {"blind": (Net().state_dict(), {"model": "blind"})})
    front = registry.FrontEnd(kind="blind", sample_rate=SR, n_bins=40, window_samples=4000,
                              build=lambda: LogMel(FeatureConfig(sample_rate=SR, n_mels=40, n_fft=256, hop_length=128)),
                              frames=lambda n: 1 + n // 128, fixed={"n_fft": 256, "hop_length": 128})
    monkeypatch.setattr(registry, "MODELS", dict(registry.models()))
    monkeypatch.setattr(registry, "SOURCES", dict(registry.SOURCES))
    monkeypatch.setattr(registry, "FRONT_ENDS", dict(registry.FRONT_ENDS))
    registry.register(registry.PretrainedModel(name="blind", description="hears nothing", front_end=front, source=source,
                                               weights_file="blind", build=Net, layers={"clip": 8},
                                               default_layer="clip", auto_layers=("clip",)))
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "blind").mkdir()
    fetch(source, tmp_path / "blind")


def write_support(root: Path) -> Path:
    return write_tag_folders(root, {"bell": ("struck", 1), "hiss": ("noise", 2), "sweep": ("chirp", 3)}, range(3),
                             sr=SR, seconds=0.5)


def test_auto_chooses_by_the_examples_and_the_tagger_keeps_the_choice(blind, tmp_path, capsys):
    assert candidates() == ["mfcc", "blind:clip"]  # fetched models with auto layers, after mfcc
    support = write_support(tmp_path / "support")
    assert main(["adapt", "--support", str(support), "--out", str(tmp_path / "t.safetensors"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "on backbone mfcc" in out and "backbone chosen by auto" in out
    tagger = Tagger.load(tmp_path / "t.safetensors")
    assert tagger.backbone.name == "mfcc" and set(tagger.choice["estimates"]) == {"mfcc", "blind:clip"}
    assert tagger.choice["estimates"]["mfcc"] > tagger.choice["estimates"]["blind:clip"] == pytest.approx(1 / 3)
    assert main(["tagger", "info", str(tmp_path / "t.safetensors")]) == 0
    assert "backbone chosen by auto" in capsys.readouterr().out
    # naming a model uses that model, and nothing is chosen
    assert main(["adapt", "--support", str(support), "--backbone", "blind", "--out", str(tmp_path / "b.safetensors"),
                 "--quiet"]) == 0
    named = Tagger.load(tmp_path / "b.safetensors")
    assert named.backbone.name == "blind" and named.choice is None
    assert "chosen by auto" not in capsys.readouterr().out


def test_auto_with_unreadable_examples_warns_once(blind, tmp_path, capsys):
    support = write_support(tmp_path / "support")
    (support / "bell" / "broken.wav").write_text("not audio")
    tagger = Tagger.adapt(support, backbone="auto", quiet=True)
    assert len(tagger.support_paths) == 9 and set(tagger.choice["estimates"]) == {"mfcc", "blind:clip"}
    assert capsys.readouterr().err.count("broken.wav") == 1
    assert np.isfinite(tagger.thresholds.numpy()).all()
