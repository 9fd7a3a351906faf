"""adapt --backbone auto: the examples choose the model by leave-one-out accuracy; the tagger keeps the choice."""

import logging
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
    return _blind(tmp_path, monkeypatch, noncommercial=False)


@pytest.fixture
def blind_nc(tmp_path, monkeypatch):
    return _blind(tmp_path, monkeypatch, noncommercial=True)


def _blind(tmp_path, monkeypatch, *, noncommercial: bool):
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

    source = registry.WeightsSource(name="blind", package="blind", version="1.0", licence="CC BY-NC 4.0 (test)",
                                    noncommercial=noncommercial, convert=lambda root: {"blind": (Net().state_dict(), {"model": "blind"})})
    front = registry.FrontEndSpec(kind="blind", sample_rate=SR, n_bins=40, window_samples=4000,
                              build=lambda: LogMel(FeatureConfig(sample_rate=SR, n_mels=40, n_fft=256, hop_length=128)),
                              frames=lambda n: 1 + n // 128, fixed={"n_fft": 256, "hop_length": 128})
    for name in ("MODELS", "WEIGHTS_SOURCES", "MODEL_FRONT_ENDS"):
        monkeypatch.setattr(registry, name, getattr(registry, name).copy())
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
    assert candidates() == ["mfcc", "blind"]  # fetched models with auto layers, after mfcc
    support = write_support(tmp_path / "support")
    assert main(["adapt", "--support", str(support), "--out", str(tmp_path / "t.safetensors"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "on backbone mfcc" in out and "backbone chosen by auto" in out
    tagger = Tagger.load(tmp_path / "t.safetensors")
    assert tagger.backbone.name == "mfcc" and set(tagger.choice["estimates"]) == {"mfcc", "blind"}
    assert tagger.choice["estimates"]["mfcc"] > tagger.choice["estimates"]["blind"] == pytest.approx(1 / 3)
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
    assert len(tagger.support_paths) == 9 and set(tagger.choice["estimates"]) == {"mfcc", "blind"}
    assert capsys.readouterr().err.count("broken.wav") == 1
    assert np.isfinite(tagger.thresholds.numpy()).all()


def _outcomes(right: list[int]):
    from fewshot_audio.tagging.model_choice import Outcomes

    return Outcomes(np.array(right, float), np.arange(len(right)) % 10)


def test_a_leader_one_example_ahead_does_not_overrule_the_domain_default():
    from fewshot_audio.tagging.model_choice import decide

    # the percussion strokes: 30 examples, musicnn 14 right, aisfx 13 right (one example apart)
    rng = np.random.default_rng(0)
    aisfx = np.zeros(30, int)
    aisfx[rng.choice(30, 13, replace=False)] = 1
    musicnn = aisfx.copy()
    musicnn[np.flatnonzero(aisfx == 0)[0]] = 1
    spec, why = decide({"mfcc": _outcomes([0] * 30), "musicnn-mtt": _outcomes(musicnn), "aisfx": _outcomes(aisfx)},
                       "aisfx", "the general model")
    assert spec == "aisfx" and "within chance" in why and "the general model" in why
    # far ahead on many examples: the leader is taken
    spec, why = decide({"speech-embedding": _outcomes([1] * 25 + [0] * 5), "aisfx": _outcomes([0] * 25 + [1] * 5)},
                       "aisfx", "the general model")
    assert spec == "speech-embedding" and "sign test p = 0.000" in why
    # nothing can be scored (one example per tag): the domain default, said so
    spec, why = decide({"mfcc": None, "aisfx": None}, "aisfx", "yamnet hears speech")
    assert spec == "aisfx" and why.startswith("one example per tag cannot be scored")


def test_the_sign_test_counts_only_the_examples_where_two_models_differ():
    from fewshot_audio.tagging.model_choice import sign_test

    assert sign_test(np.array([1, 1, 1, 1, 1]), np.array([0, 0, 0, 0, 0])) == pytest.approx(1 / 32)
    assert sign_test(np.array([1, 0, 1]), np.array([1, 0, 1])) == 1.0
    assert sign_test(np.array([1, 1, 0]), np.array([0, 0, 1])) == pytest.approx(0.5)  # 2 wins, 1 loss


def test_one_tag_with_negatives_is_scored_by_the_negatives_it_outranks():
    from fewshot_audio.tagging.model_choice import loo_outcomes

    e = torch.eye(4)
    pos = [e[0] + 0.1 * e[3], e[0] - 0.1 * e[3], e[0] + 0.2 * e[2]]
    neg = [e[1], e[2], e[0] + 0.5 * e[1]]  # the last negative lies close to the tag
    zs = torch.nn.functional.normalize(torch.stack(pos + neg), dim=1)
    targets = torch.tensor([[1], [1], [1], [0], [0], [0]], dtype=torch.bool)
    found = loo_outcomes(zs, targets)
    assert found is not None and len(found.scores) == 3 and 0.6 < found.estimate <= 1.0
    blind = torch.nn.functional.normalize(torch.ones(6, 4), dim=1)  # every clip the same: chance, not 100%
    assert loo_outcomes(blind, targets).estimate == pytest.approx(0.5)
    assert loo_outcomes(zs[:3], targets[:3]) is None  # one tag and no negatives: nothing to score against


def test_the_domain_default_follows_what_yamnet_hears(blind):
    from fewshot_audio.tagging.model_choice import domain_default

    labels = ["Speech", "Music", "Bird", "Silence", "Plop"]
    allowed = ["mfcc", "aisfx", "speech-embedding", "musicnn-mtt:mean_pool"]
    speech = np.array([[0.9, 0.0, 0.0, 0.1, 0.0]] * 4)
    assert domain_default(allowed, speech, labels)[0] == "speech-embedding"
    music = np.array([[0.0, 0.8, 0.0, 0.2, 0.0]] * 4)
    assert domain_default(allowed, music, labels)[0] == "musicnn-mtt:mean_pool"
    knocks = np.array([[0.05, 0.3, 0.0, 0.5, 0.4]] * 4)  # some music in it, never half
    assert domain_default(allowed, knocks, labels) [0] == "aisfx"
    assert domain_default(["mfcc", "speech-embedding"], knocks, labels)[0] == "mfcc"  # no general model fetched
    spec, why = domain_default(allowed, None, [])
    assert spec == "aisfx" and "not fetched" in why


def test_non_commercial_weights_only_when_allowed_and_the_tagger_says_so(blind_nc, tmp_path, capsys):
    assert candidates() == ["mfcc"] and candidates(noncommercial=True) == ["mfcc", "blind"]
    support = write_support(tmp_path / "support")
    out = tmp_path / "b.safetensors"
    assert main(["adapt", "--support", str(support), "--backbone", "blind", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["tagger", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "weights: blind==1.0 (NON-COMMERCIAL use only" in info and "CC BY-NC 4.0 (test)" in info
    assert Tagger.load(out).weights_licence["noncommercial"] is True
    assert main(["adapt", "--support", str(support), "--out", str(tmp_path / "a.safetensors"), "--quiet",
                 "--allow-noncommercial"]) == 0
    assert set(Tagger.load(tmp_path / "a.safetensors").choice["estimates"]) == {"mfcc", "blind"}


def test_the_same_clip_as_example_and_negative_is_refused(tmp_path, capsys):
    support = write_support(tmp_path / "support")
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--negatives", str(support / "bell"),
                 "--out", str(tmp_path / "t.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is both an example of a tag and a negative (3 file(s) are)" in err


def test_the_short_examples_line_names_the_chosen_models_window(blind, tmp_path, monkeypatch, caplog):
    """Issue 28: "shorter than one 5 s window were looped" named a candidate's window, not the chosen model's."""
    import soundfile as sf

    from tests.conftest import synthetic_clip

    monkeypatch.delenv("FEWSHOT_AUDIO_QUIET")
    support = write_tag_folders(tmp_path / "support", {"bell": ("struck", 1), "hiss": ("noise", 2),
                                                       "sweep": ("chirp", 3)}, range(3), sr=SR, seconds=1.0)
    for tag, (family, index) in {"bell": ("struck", 1), "hiss": ("noise", 2), "sweep": ("chirp", 3)}.items():
        sf.write(support / tag / "short.wav", synthetic_clip(family, index, 7, seconds=0.2, sr=SR), SR)
    with caplog.at_level(logging.INFO, logger="fewshot_audio"):
        tagger = Tagger.adapt(support, backbone="auto")
    lines = [r.getMessage() for r in caplog.records if "shorter than" in r.getMessage()]
    assert len(lines) == 1 and f"shorter than {tagger.backbone.name}'s" in lines[0], lines
