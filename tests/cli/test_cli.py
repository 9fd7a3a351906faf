"""The CLI end to end on tiny generated audio, and its one-line errors."""

import json
import subprocess
import sys

import pytest
import yaml

from fewshot_audio.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fewshot_audio", *map(str, args)], capture_output=True, text=True)


def test_train_evaluate_end_to_end(tiny_dataset, tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(tiny_dataset), "--config", str(tiny_config), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "prototypical/conv4: 3-way 2-shot accuracy" in printed and "prototypical/mfcc" in printed
    assert "MFCC baseline" in printed and "base prototypical" not in printed  # not read as "base classes"
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert set(test) >= {"accuracy", "ci95", "episodes", "ways", "shots", "queries"}
    assert (test["episodes"], test["ways"], test["shots"], test["queries"]) == (20, 3, 2, 3)
    assert 0 <= test["accuracy"] <= 1 and test["ci95"] > 0
    assert metrics["baseline"]["backbone"] == "mfcc" and metrics["baseline"]["episodes"] == 20
    for name in ("config.yaml", "checkpoint.pt", "best.pt", "training_curve.png", "split.yaml"):
        assert (out / name).exists(), name
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["shots"] == 2 and saved["dataset"] == str(tiny_dataset)
    # the frozen episodes were written under the configured episodes dir and are reused by evaluate
    frozen = list((tmp_path / "episodes").rglob("novel-3way-2shot-3query-20ep-seed0.json"))
    assert len(frozen) == 1
    assert main(["evaluate", "--run", str(out), "--episodes", "20", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(test["accuracy"])
    assert main(["evaluate", "--run", str(out), "--shots", "1", "--episodes", "30", "--quiet"]) == 0
    assert "3-way 1-shot accuracy" in capsys.readouterr().out


def test_refuses_to_overwrite_a_run(tiny_dataset, tiny_config, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FEWSHOT_AUDIO_QUIET")  # train's status lines: each gives the time elapsed and to go
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(tiny_dataset), "--config", str(tiny_config), "--out", str(out)]) == 0
    status = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert status and all(" elapsed, about " in line and line.endswith(" to go") for line in status), status
    r = run_cli("train", "--dataset", tiny_dataset, "--config", tiny_config, "--out", out, "--quiet")
    assert r.returncode == 2 and "already holds a run; pass --resume" in r.stderr and "Traceback" not in r.stderr


def test_datasets_inspect_and_episode_freeze(tiny_dataset, tiny_config, tmp_path, capsys):
    (tiny_dataset / "class00" / "broken.wav").write_bytes(b"garbage")
    assert main(["datasets", "inspect", str(tiny_dataset), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "96 clips, 12 classes" in text and "1 problem(s)" in text and "broken.wav" in text
    assert main(["episodes", "freeze", "--dataset", str(tiny_dataset), "--config", str(tiny_config), "--ways", "3",
                 "--shots", "1", "--queries", "2", "--episodes", "15", "--quiet"]) == 0
    path = capsys.readouterr().out.strip()
    data = json.loads(open(path).read())
    assert data["n_episodes"] == 15 and data["ways"] == 3 and len(data["episodes"][0]["support"][0]) == 1
    assert all(isinstance(i, str) for i in data["episodes"][0]["query"][0])


@pytest.mark.parametrize("extra,message", [
    (["--shots", "0"], "shots must be a positive integer, got 0"),
    (["--queries", "-2"], "queries must be a positive integer, got -2"),
    (["--ways", "4"], "4-way episodes need 4"),
    (["--shots", "5", "--queries", "5"],
     "has 8 clips but 5-shot 5-query episodes need 10; lower --queries or drop the class with --min-clips 10"),
    (["--backbone", "resnet"], "unknown backbone 'resnet'; registered: conv4"),
    (["--backbone", "samplecnn"], "backbone 'samplecnn' needs waveform inputs"),
    (["--device", "cuda:7"], "cuda"),
    (["--resume"], "holds no run to resume"),
])
def test_bad_flags_give_one_line_errors(tiny_dataset, tiny_config, tmp_path, extra, message):
    r = run_cli("train", "--dataset", tiny_dataset, "--config", tiny_config, "--out", tmp_path / "r", "--quiet", *extra)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_bad_dataset_and_config_errors(tmp_path, tiny_dataset):
    r = run_cli("train", "--dataset", tmp_path / "missing", "--quiet")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = run_cli("train", "--dataset", tmp_path / "empty", "--quiet")
    assert r.returncode == 2 and "is an empty folder" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("shots: 5\nshotz: 3\n")
    r = run_cli("train", "--config", bad, "--quiet")
    assert r.returncode == 2 and "unknown key(s) shotz; valid keys:" in r.stderr
    bad.write_text("shots: [5\n")
    r = run_cli("train", "--config", bad, "--quiet")
    assert r.returncode == 2 and "is not valid YAML" in r.stderr
    r = run_cli("train", "--dataset", tiny_dataset, "--format", "esc50", "--quiet")
    assert r.returncode == 2 and "is --format esc50 right?" in r.stderr


def test_episode_file_from_another_manifest_is_refused(tiny_dataset, tiny_config, tmp_path):
    r = run_cli("episodes", "freeze", "--dataset", tiny_dataset, "--config", tiny_config, "--episodes", "5", "--quiet",
                "--ways", "3", "--shots", "2", "--queries", "3")
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    data = json.loads(open(path).read())
    data["manifest_hash"] = "0000000000000000"
    open(path, "w").write(json.dumps(data))
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["test_episodes"] = 5
    tiny_config.write_text(yaml.safe_dump(cfg))
    r = run_cli("train", "--dataset", tiny_dataset, "--config", tiny_config, "--out", tmp_path / "r", "--quiet")
    assert r.returncode == 2 and "was frozen from manifest 0000000000000000" in r.stderr


def test_strategies_lists_everything(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    for name in ("prototypical", "conv4", "musically-motivated", "samplecnn", "mfcc"):
        assert name in out


@pytest.fixture
def multilabel_csv(tmp_path):
    from conftest import write_tiny_multilabel

    return write_tiny_multilabel(tmp_path / "ml")


def _chance_map(metrics: dict, csv_path, tiny_config) -> float:
    """mAP of random scores on the run's own test episodes (a floor the models must clear)."""
    import torch

    from fewshot_audio.config import load_config
    from fewshot_audio.fewshot.dataset import load_labelled_features
    from fewshot_audio.fewshot.episodes import read_episodes
    from fewshot_audio.fewshot.metrics import episode_average_precision

    data = load_labelled_features(str(csv_path), features=load_config(tiny_config).features, multi_label=True,
                                  quiet=True)
    eps, _ = read_episodes(metrics["dataset"]["test_episodes_file"], manifest_hash=data.manifest.content_hash(),
                           ids=data.ids, class_names=data.class_names, targets=torch.from_numpy(data.targets))
    targets = eps.query_targets.flatten(1, 2)
    g = torch.Generator().manual_seed(0)
    return float(torch.stack([episode_average_precision(torch.rand(targets.shape, generator=g), targets).mean()
                              for _ in range(20)]).mean())


def test_multi_label_train_and_evaluate_end_to_end_on_a_csv(multilabel_csv, tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(multilabel_csv), "--config", str(tiny_config), "--multi-label", "--out",
                 str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "prototypical/conv4: 3-way 2-shot mAP" in printed and "micro F1" in printed and "prototypical/mfcc" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    test, base = metrics["test"], metrics["baseline"]
    assert test["metric"] == "mAP" and "accuracy" not in test
    for key in ("mAP", "micro_f1", "macro_f1", "top1_hit"):
        assert 0 < test[key] <= 1 and test[f"{key}_ci95" if key != "mAP" else "ci95"] > 0, key
    assert 0.05 <= test["threshold"] <= 0.95
    assert "best_val_mAP" in metrics["training"]
    frozen = json.loads(open(metrics["dataset"]["test_episodes_file"]).read())
    assert frozen["multi_label"] is True and "multilabel-novel" in metrics["dataset"]["test_episodes_file"]
    # the MFCC baseline's tags are far better than random scores on the same episodes (the metric can fail)
    assert base["mAP"] > _chance_map(metrics, multilabel_csv, tiny_config) + 0.08
    assert yaml.safe_load((out / "config.yaml").read_text())["multi_label"] is True
    assert main(["evaluate", "--run", str(out), "--episodes", "20", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mAP"] == pytest.approx(test["mAP"]) and result["micro_f1"] == pytest.approx(test["micro_f1"])


def test_multi_label_train_on_the_mtt_layout_and_one_line_errors(tmp_path, tiny_config, multilabel_csv, capsys):
    from conftest import write_tiny_multilabel

    mtt = write_tiny_multilabel(tmp_path / "mtt", layout="mtt")
    assert main(["train", "--dataset", str(mtt), "--config", str(tiny_config), "--multi-label", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 0
    assert "3-way 2-shot mAP" in capsys.readouterr().out
    r = run_cli("train", "--dataset", mtt, "--config", tiny_config, "--out", tmp_path / "single", "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "pass --multi-label" in r.stderr
    r = run_cli("compare", "--dataset", multilabel_csv, "--config", tiny_config, "--multi-label", "--protocol",
                "low-data", "--out", tmp_path / "cmp", "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "episodic protocol only" in r.stderr


def test_multi_label_compare_scores_every_row_by_map(multilabel_csv, tiny_config, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", str(multilabel_csv), "--config", str(tiny_config), "--multi-label",
                 "--strategies", "prototypical,transfer-proto,mfcc-svm,maml", "--shots", "1,2", "--out", str(out),
                 "--quiet"]) == 0
    assert "mAP % ± 95% CI" in capsys.readouterr().out
    import csv

    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 8 and {r["metric"] for r in rows} == {"mAP"}
    assert all(0 < float(r["accuracy"]) <= 1 for r in rows)
