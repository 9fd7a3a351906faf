"""The random-weight architecture probe: reproducible networks, per-map means, the MFCC row's 120 values, nested
hyperparameter choice that no test clip reaches, and ``probe`` end to end on tiny generated audio."""

import csv

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from fewshot_audio.cli import main
from fewshot_audio.studies.architectures import ARCHITECTURES, MFCCStatistics, ProbeArchitecture
from fewshot_audio.studies.classifiers import CLASSIFIERS, ProbeClassifier
from fewshot_audio.studies.probe import Folds, nested_scores
from tests.conftest import write_tiny_dataset


@pytest.mark.parametrize("name", [n for n in ARCHITECTURES if n != "mfcc"])
def test_a_random_network_is_reproducible_from_its_seed(name):
    net = ARCHITECTURES.get(name)
    x = torch.randn(1, 1, 96, 40) if net.input_kind == "logmel" else torch.randn(1, 1, 24000)
    a, b, c = net(seed=3, maps=24)(x), net(seed=3, maps=24)(x), net(seed=4, maps=24)(x)
    assert a.shape == (24,) and torch.equal(a, b) and not torch.equal(a, c)


def test_a_feature_is_the_mean_of_one_feature_map():
    class HandMade(ProbeArchitecture):
        def build(self, maps):
            pass

        def feature_maps(self, x):
            return [torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 8.0]]]]), torch.tensor([[[5.0, 7.0]]])]

    assert HandMade(seed=0)(torch.zeros(1, 1, 96, 4)).tolist() == [2.5, 2.0, 6.0]
    net = ARCHITECTURES.get("7x96")(seed=0, maps=8)  # a real one: its features are its maps' means
    x = torch.randn(1, 1, 96, 30)
    maps = net.feature_maps(x)[0]
    assert torch.allclose(net(x), maps.flatten(2).mean(-1)[0])


def test_the_mfcc_row_has_120_statistics():
    x = torch.randn(1, 1, 96, 50)
    f = MFCCStatistics(seed=0)(x)
    assert f.shape == (120,)
    mfcc = MFCCStatistics(seed=0).dct @ x[0, 0]
    assert torch.allclose(f[:20], mfcc.mean(1), atol=1e-5) and torch.allclose(f[20:40], mfcc.std(1, unbiased=False),
                                                                            atol=1e-5)


class ColumnRule(ClassifierMixin, BaseEstimator):
    """Predicts from one feature column (its hyperparameter) by the nearest class mean on it."""

    def __init__(self, column: int = 0):
        self.column = column

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        self.means_ = np.array([x[y == c, self.column].mean() for c in self.classes_])
        return self

    def predict(self, x):
        return self.classes_[np.abs(x[:, [self.column]] - self.means_[None]).argmin(1)]


class ColumnChoice(ProbeClassifier):
    def estimator(self, seed):
        return ColumnRule()

    def grid(self, n_features):
        return {"column": list(range(n_features))}


def test_no_test_clip_takes_part_in_the_nested_choice(monkeypatch):
    """Sixty columns of pure noise and a classifier whose one hyperparameter is the column it reads: a column chosen
    on each test fold scores about 50% on 3 classes by luck alone; chosen inside the training folds, about chance.
    A leak of the test clips into the choice would show as the former."""
    monkeypatch.setitem(CLASSIFIERS._members, "column", ColumnChoice)
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(3), 30)
    fold = np.repeat(np.arange(3), 30)
    x = rng.standard_normal((90, 60))
    folds = Folds([(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(3)], "official")
    scores = nested_scores(x, y, folds, classifier="column", seed=0)
    leaky = [max(float((ColumnRule(j).fit(x[tr], y[tr]).predict(x[te]) == y[te]).mean()) for j in range(60))
             for tr, te in folds.splits]
    assert np.mean(leaky) >= 0.48  # what choosing on the test folds gives
    assert np.mean(scores["fold_accuracies"]) < 0.4, scores["fold_accuracies"]
    assert scores["best_cv_accuracy"] > np.mean(scores["fold_accuracies"])  # the paper's score is optimistic


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("probe") / "data", n_classes=4, n_clips=6, seconds=0.5)


def test_probe_end_to_end_resumes_and_names_mistakes(tiny, tmp_path, capsys):
    out = tmp_path / "probe"
    argv = ["probe", "--dataset", str(tiny), "--out", str(out), "--architectures", "7x96,sample-level,mfcc",
            "--seeds", "2", "--maps", "16", "--folds", "3", "--quiet"]
    assert main(argv) == 0
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["architecture"] for r in rows] == ["7x96", "sample-level", "mfcc"]
    assert {"architecture", "classifier", "accuracy", "ci95", "seconds"} <= set(rows[0])
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows) and rows[2]["n_features"] == "120"
    assert rows[0]["seeds"] == "2" and rows[2]["seeds"] == "1" and rows[0]["n_scores"] == "6"  # 2 seeds x 3 folds
    assert (out / "results.md").exists() and (out / "results.png").stat().st_size > 1000
    capsys.readouterr()
    before = (out / "rows.jsonl").read_text()
    assert main(argv) == 0 and (out / "rows.jsonl").read_text() == before  # resumed: nothing recomputed
    assert main([*argv[:-1], "--seeds", "1"]) == 2  # other settings in the same folder
    assert "holds probe results of other settings" in capsys.readouterr().err
    assert main(["probe", "--dataset", str(tiny), "--out", str(tmp_path / "x"), "--architectures", "resnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'resnet' is not an architecture" in err


def test_official_folds_come_from_the_dataset(tiny, tmp_path):
    table = tmp_path / "data.csv"
    clips = sorted(tiny.rglob("*.wav"))
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "fold"])
        for i, c in enumerate(clips):
            w.writerow([str(c), c.parent.name, f"fold{i % 3 + 1}"])
    assert main(["probe", "--dataset", str(table), "--out", str(tmp_path / "p"), "--architectures", "mfcc",
                 "--quiet"]) == 0
    with open(tmp_path / "p" / "results.csv") as fh:
        row = next(csv.DictReader(fh))
    assert row["folds"] == "official" and row["n_scores"] == "3"
