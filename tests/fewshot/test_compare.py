"""`fewshot-audio compare` end to end on tiny generated audio, resume included."""

import csv
import subprocess
import sys

import pytest
import torch

from fewshot_audio.cli import main
from fewshot_audio.fewshot import compare as compare_mod
from fewshot_audio.fewshot import harness as harness_mod
from fewshot_audio.fewshot.compare_results import COLUMNS
from tests.conftest import write_tiny_dataset

STRATEGIES = "prototypical,transfer-simpleshot,transfer-logreg,transfer-proto,mfcc-1nn,regularized-timbral,anil"


def rows_of(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_compare_episodic_resume_and_refusal(tiny_dataset, tiny_config, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--dataset", str(tiny_dataset), "--config", str(tiny_config), "--strategies", STRATEGIES,
            "--shots", "1,2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    table = capsys.readouterr().out
    rows = rows_of(out / "results.csv")
    assert len(rows) == 14
    assert set(rows[0]) == set(COLUMNS)
    assert {r["strategy"] for r in rows} == set(STRATEGIES.split(","))
    for r in rows:
        assert r["protocol"] == "episodic" and r["ways"] == "3" and r["n"] == "20"
        assert 0 <= float(r["accuracy"]) <= 1 and float(r["ci95"]) >= 0
    # identical episodes: every strategy of a shot count was scored on the same frozen file
    assert len(list((tmp_path / "episodes").rglob("novel-3way-1shot-3query-20ep-seed0.json"))) == 1
    # transfer-* strategies share one pretraining; regularized and mfcc ones train nothing
    assert sorted(p.name for p in (out / "models").iterdir()) == ["anil", "prototypical", "transfer"]
    assert "| prototypical | conv4 |" in table and (out / "results.md").read_text() == table.split("results:")[0]
    assert (out / "accuracy_vs_shots.png").stat().st_size > 1000

    # resume: finished cells are kept, nothing is retrained or re-evaluated
    calls = []
    monkeypatch.setattr(harness_mod, "meta_train", lambda *a, **k: calls.append("train"))
    monkeypatch.setattr(compare_mod, "evaluate", lambda *a, **k: calls.append("eval"))
    assert main(args) == 0
    assert calls == [] and rows_of(out / "results.csv") == rows
    monkeypatch.undo()
    # an interrupted comparison (last cell missing) resumes with only that cell
    with open(out / "results.csv") as fh:
        lines = fh.read().splitlines()
    (out / "results.csv").write_text("\n".join(lines[:-1]) + "\n")
    assert main(args) == 0
    again = rows_of(out / "results.csv")
    assert len(again) == 14 and again[-1]["strategy"] == rows[-1]["strategy"]

    # another configuration in the same folder is refused, then replaced with --overwrite
    r = subprocess.run([sys.executable, "-m", "fewshot_audio", *args, "--episodes", "4"], capture_output=True, text=True)
    assert r.returncode == 2 and "holds results of another configuration" in r.stderr and "--overwrite" in r.stderr
    assert main([*args[:-3], "--strategies", "mfcc-1nn", "--episodes", "4", "--out", str(out), "--overwrite",
                 "--quiet"]) == 0
    assert {r["strategy"] for r in rows_of(out / "results.csv")} == {"mfcc-1nn"}


@pytest.mark.parametrize("extra,message", [
    (["--strategies", "prototypical,nope"], "unknown strategy 'nope'; registered: prototypical"),
    (["--shots", "1,x"], "--shots '1,x' must be comma-separated integers"),
    (["--shots", "0"], "--shots [0]: must be positive integers"),
    (["--shots", "9"], "class(es) have fewer clips than the 12 that 9-shot 3-query episodes need"),
    (["--protocol", "fancy"], "--protocol 'fancy' is not valid"),
])
def test_compare_bad_input(tiny_dataset, tiny_config, tmp_path, extra, message):
    args = [sys.executable, "-m", "fewshot_audio", "compare", "--dataset", str(tiny_dataset), "--config", str(tiny_config),
            "--strategies", "mfcc-1nn", "--out", str(tmp_path / "o"), "--quiet", *extra]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_compare_low_data_protocol(tmp_path, tiny_config, capsys):
    target = write_tiny_dataset(tmp_path / "target", n_classes=3, n_clips=10, seed=5)
    source = write_tiny_dataset(tmp_path / "source", n_classes=12, n_clips=8, seed=1)
    out = tmp_path / "low"
    assert main(["compare", "--dataset", str(target), "--source", str(source), "--config", str(tiny_config),
                 "--protocol", "low-data", "--strategies", "prototypical,mfcc-svm,regularized-sbcnn", "--shots", "1,3",
                 "--draws", "3", "--out", str(out), "--quiet"]) == 0
    rows = rows_of(out / "results.csv")
    assert len(rows) == 6
    for r in rows:
        assert r["protocol"] == "low-data" and r["ways"] == "3" and r["n"] == "3"
    # draws are seeded: the same cells give the same numbers in a fresh folder
    assert main(["compare", "--dataset", str(target), "--source", str(source), "--config", str(tiny_config),
                 "--protocol", "low-data", "--strategies", "mfcc-svm", "--shots", "1,3", "--draws", "3",
                 "--out", str(tmp_path / "low2"), "--quiet"]) == 0
    again = {r["shots"]: r["accuracy"] for r in rows_of(tmp_path / "low2" / "results.csv")}
    assert again == {r["shots"]: r["accuracy"] for r in rows if r["strategy"] == "mfcc-svm"}
    r = subprocess.run([sys.executable, "-m", "fewshot_audio", "compare", "--dataset", str(target), "--source",
                        str(source), "--config", str(tiny_config), "--protocol", "low-data", "--strategies", "mfcc-svm",
                        "--shots", "8", "--out", str(tmp_path / "low3"), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 2 and "training clips but --shots 8 needs 8" in r.stderr


def test_low_data_fixed_features_are_standardised_on_the_target(tmp_path, tiny_config, monkeypatch):
    """MFCC statistics (and a frozen embedding's centring mean) learn nothing from the source: in the low-data
    protocol they are z-scored on the target's training pool, never on the source or the test split."""
    from fewshot_audio.fewshot import compare as compare_module
    from fewshot_audio.models.backbones.mfcc import MFCCStats

    target = write_tiny_dataset(tmp_path / "target", n_classes=3, n_clips=10, seed=5)
    source = write_tiny_dataset(tmp_path / "source", n_classes=12, n_clips=8, seed=1)
    seen, splits = [], []
    real_prepare, real_split = MFCCStats.prepare, compare_module.low_data_split
    monkeypatch.setattr(MFCCStats, "prepare", lambda self, x: (seen.append(x.clone()), real_prepare(self, x))[1])
    monkeypatch.setattr(compare_module, "low_data_split", lambda data, fold: splits.append((data, real_split(data, fold)))
                        or splits[-1][1])
    assert main(["compare", "--dataset", str(target), "--source", str(source), "--config", str(tiny_config),
                 "--protocol", "low-data", "--strategies", "mfcc-svm", "--shots", "1", "--draws", "2",
                 "--out", str(tmp_path / "low"), "--quiet"]) == 0
    data, (pool, test) = splits[-1]
    expected = data.device_data(device=torch.device("cpu")).eval_inputs(torch.from_numpy(pool))
    assert len(pool) + len(test) == 30 and len(seen[-1]) == len(pool)
    assert len(seen) == 1 and torch.equal(seen[0], expected)  # prepared once, on the target's pool
