"""Random against trained: the one budget rule, crops, a trained architecture's features are the probe's, training
sees only training clips, the rank agreement's numbers, and ``probe --trained`` end to end on tiny audio."""

import csv
import json

import numpy as np
import pytest
import torch

from fewshot_audio.cli import main
from fewshot_audio.errors import ConfigError
from fewshot_audio.studies.architectures import ARCHITECTURES
from fewshot_audio.studies.ranking import permutation_p, rank_agreement, spearman
from fewshot_audio.studies.supervised import Budget, correct_clips, crop_batch, train_classifier
from fewshot_audio.studies.trained import trainable
from tests.conftest import write_tiny_dataset


def test_the_budget_rule_scales_with_the_data_within_its_bounds():
    b = Budget(epochs=10, batch=32, min_steps=100, max_steps=1000)
    assert b.steps(64) == 100 and b.steps(640) == 200 and b.steps(10**6) == 1000
    with pytest.raises(ConfigError, match="epochs 0"):
        Budget(epochs=0)
    with pytest.raises(ConfigError, match="min_steps 5 is above max_steps 2"):
        Budget(min_steps=5, max_steps=2)


def test_crops_loop_short_clips_and_cut_long_ones():
    g = torch.Generator().manual_seed(0)
    short, long = torch.arange(3.0)[None], torch.arange(100.0)[None]
    batch = crop_batch([short, long], np.array([0, 1]), length=7, generator=g)
    assert batch.shape == (2, 1, 7)
    looped = [0.0, 1, 2] * 3
    assert any(batch[0, 0].tolist() == looped[s:s + 7] for s in range(3))  # a window of the clip looped
    assert torch.equal(batch[1, 0], batch[1, 0, 0] + torch.arange(7.0))  # one contiguous window of the long clip


@pytest.mark.parametrize("name", ["vgg", "timbral", "sample-level"])
def test_a_trainable_architecture_starts_from_the_probes_features(name):
    model = trainable(name, seed=2, maps=24, classes=3).eval()
    net = ARCHITECTURES.get(name)(seed=2, maps=24)
    x = torch.randn(1, 1, 96, 40) if net.input_kind == "logmel" else torch.randn(1, 1, 8000)
    bn = model.body.norm  # fresh batch norm in eval mode: (x - 0) / sqrt(1 + eps)
    assert torch.allclose(model.body(x)[0] * (1 + bn.eps) ** 0.5, net(x), atol=1e-5)


def _two_tones(n=12, length=2000):
    t = torch.arange(length) / 12000
    clips, labels = [], []
    for i in range(n):
        f = 300.0 if i % 2 == 0 else 3000.0
        clips.append(torch.sin(2 * torch.pi * f * t + i)[None])
        labels.append(i % 2)
    return clips, np.array(labels)


def test_training_learns_and_never_reads_a_test_clip():
    clips, labels = _two_tones()
    train, test = np.arange(8), np.arange(8, 12)
    poisoned = [c if i in train else torch.full_like(c, float("nan")) for i, c in enumerate(clips)]
    model = trainable("frame-level", seed=0, maps=16, classes=2)
    train_classifier(model, poisoned, labels, train, budget=Budget(epochs=1, batch=4, min_steps=60, max_steps=60),
                     crop=1024, seed=0, device=torch.device("cpu"))
    assert all(torch.isfinite(p).all() for p in model.parameters())  # a test clip's NaN would have spread
    hits = correct_clips(model, clips, labels, test, min_length=512, device=torch.device("cpu"))
    assert hits.mean() == 1.0


def test_rank_agreement_of_known_rankings():
    rng = np.random.default_rng(0)
    levels = np.array([0.2, 0.4, 0.6, 0.8, 0.9])
    random = {f"a{i}": (rng.random(400) < p).astype(float) for i, p in enumerate(levels)}
    same = {f"a{i}": (rng.random(400) < p).astype(float) for i, p in enumerate(levels)}
    reverse = {f"a{i}": (rng.random(400) < p).astype(float) for i, p in enumerate(levels[::-1])}
    agree = rank_agreement(random, same, boots=300)
    assert agree["spearman"] == 1.0 and agree["ci95"][0] > 0.5 and agree["p_value"] == pytest.approx(1 / 120, abs=1e-5)
    assert rank_agreement(random, reverse, boots=300)["spearman"] == -1.0
    assert spearman(np.array([1, 2, 3.0]), np.array([3, 3, 3.0])) != spearman(np.array([1, 2, 3.0]),
                                                                           np.array([1, 2, 3.0]))
    assert permutation_p(np.arange(4.0), np.arange(4.0)[::-1]) == 1.0
    with pytest.raises(ConfigError, match="at least 3 architectures"):
        rank_agreement({"a": np.ones(3)}, {"a": np.ones(3)})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("trained") / "data", n_classes=3, n_clips=6, seconds=0.5)


def test_probe_trained_end_to_end_resumes(tiny, tmp_path, capsys):
    out = tmp_path / "probe"
    argv = ["probe", "--dataset", str(tiny), "--out", str(out), "--architectures", "7x96,temporal,frame-level,mfcc",
            "--seeds", "1", "--maps", "8", "--folds", "3", "--trained", "--max-steps", "3", "--quiet"]
    assert main(argv) == 0
    with open(out / "trained.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["architecture"] for r in rows] == ["7x96", "temporal", "frame-level"]  # mfcc has no weights
    assert all(0 <= float(r["accuracy"]) <= 1 and r["n_scores"] == "3" for r in rows)
    ranking = json.loads((out / "ranking.json").read_text())
    assert ranking["architectures"] == ["7x96", "temporal", "frame-level"]
    assert ranking["random_maps"] == ranking["trained_maps"] == 8 and -1 <= ranking["spearman"] <= 1
    assert (out / "ranking.png").stat().st_size > 1000 and "Spearman" in (out / "ranking.md").read_text()
    assert "random against trained: Spearman" in capsys.readouterr().out
    before = (out / "trained.jsonl").read_text()
    assert main(argv) == 0 and (out / "trained.jsonl").read_text() == before  # resumed: nothing retrained
    assert main([*argv[:-2], "4", "--quiet"]) == 2  # another budget in the same folder
    assert "holds trained rows of other settings" in capsys.readouterr().err
    assert main([*argv[:-3], "--max-steps", "0"]) == 2
    assert "--max-steps must be at least 1, got 0" in capsys.readouterr().err
