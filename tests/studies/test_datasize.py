"""The data-size study: its training sets (seeded, nested in the pool, never the test clips), its sizes and
presets, the crossover sentence, and ``datasize`` end to end on tiny generated audio."""

import csv
import json

import numpy as np
import pytest

from fewshot_audio.cli import main
from fewshot_audio.errors import ConfigError
from fewshot_audio.fewshot.compare import holdout_split
from fewshot_audio.studies.datasize import ALL, PRESETS, parse_sizes, training_sets
from fewshot_audio.studies.datasize_results import crossover
from tests.conftest import write_tiny_dataset


def test_training_sets_are_seeded_balanced_and_leave_the_test_clips_out():
    labels = np.repeat(np.arange(3), 10)
    pool, test = holdout_split(labels, [None] * 30, None)
    assert len(test) == 9 and not set(pool) & set(test)
    sets = training_sets(labels, pool, (2, 5, 8, ALL), draws=2)
    assert sorted({s for s, _ in sets}) == [ALL, 2, 5]  # 8 per class: above the smallest class's 7 training clips
    for (size, _), idx in sets.items():
        assert not set(idx.tolist()) & set(test.tolist())
        if size != ALL:
            assert np.bincount(labels[idx]).tolist() == [size] * 3
    assert not np.array_equal(sets[(5, 0)], sets[(5, 1)])
    assert np.array_equal(sets[(ALL, 1)], pool)
    again = training_sets(labels, pool, (2, 5, 8, ALL), draws=2)
    assert all(np.array_equal(sets[k], again[k]) for k in sets)


def test_sizes_and_presets():
    assert parse_sizes("5, 10,all") == (5, 10, ALL)
    with pytest.raises(ConfigError, match="training size '0'"):
        parse_sizes("5,0")
    assert set(PRESETS) == {"cpu", "gpu"} and PRESETS.get("gpu").sizes[-2] > PRESETS.get("cpu").sizes[-2]


def _summary(wave, spec, sizes=("5", "50", "all")):
    return ([{"model": "samplecnn", "size": s, "accuracy": a, "train_clips": 10 * i + 10} for i, (s, a) in
             enumerate(zip(sizes, wave))] +
            [{"model": "musically-motivated", "size": s, "accuracy": a, "train_clips": 10 * i + 10} for i, (s, a) in
             enumerate(zip(sizes, spec))])


def test_the_crossover_sentence():
    assert crossover(_summary([0.2, 0.6, 0.9], [0.5, 0.7, 0.8])).startswith("samplecnn reaches musically-motivated at "
                                                                           "all clips per class (90.0%")
    assert crossover(_summary([0.2, 0.6, 0.7], [0.5, 0.7, 0.8])).startswith("no crossover up to all clips per class")
    assert "leads by 10.0 points" in crossover(_summary([0.2, 0.6, 0.7], [0.5, 0.7, 0.8]))


def test_datasize_end_to_end_resumes(tmp_path, capsys):
    data = write_tiny_dataset(tmp_path / "data", n_classes=3, n_clips=8, seconds=0.5)
    out = tmp_path / "study"
    argv = ["datasize", "--dataset", str(data), "--out", str(out), "--sizes", "2,all", "--draws", "2",
            "--max-steps", "2", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["model"], r["size"]) for r in rows] == [("samplecnn", "2"), ("samplecnn", "all"),
                                                        ("musically-motivated", "2"), ("musically-motivated", "all")]
    assert all(r["draws"] == "2" and 0 <= float(r["accuracy"]) <= 1 for r in rows)
    assert rows[0]["train_clips"] == "6" and rows[1]["train_clips"] == "18"  # 3 x 2; 3 x (8 less a 30% hold-out of 2)
    md = (out / "results.md").read_text()
    assert (out / "results.png").stat().st_size > 1000 and ("no crossover" in md or " reaches " in md)
    printed = capsys.readouterr().out
    assert "samplecnn" in printed and ("crossover" in printed or "reaches" in printed)
    lines = (out / "rows.jsonl").read_text()
    assert len(lines.splitlines()) == 8 and json.loads(lines.splitlines()[0])["steps"] == 2
    assert main(argv) == 0 and (out / "rows.jsonl").read_text() == lines  # resumed: nothing retrained
    assert main([*argv[:-3], "--max-steps", "3", "--quiet"]) == 2
    assert "holds data-size results of other settings" in capsys.readouterr().err
    assert main(["datasize", "--dataset", str(data), "--out", str(tmp_path / "x"), "--sizes", "2,lots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sizes '2,lots'" in err and "'lots'" in err
    assert main(["datasize", "--dataset", str(data), "--out", str(tmp_path / "x"), "--models", "wavenet"]) == 2
    assert "'wavenet' is not a model of the study" in capsys.readouterr().err
