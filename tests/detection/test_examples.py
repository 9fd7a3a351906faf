"""The examples of a detection: which recording they are cut from, overlapping examples, and no prediction on an
example (issue 28: each case failed before)."""

import json

import numpy as np
import pytest

from fewshot_audio.cli import main
from fewshot_audio.detection.metric import evaluate, read_predictions, read_references
from tests.detection.test_detect import write_recording, write_table

RAVEN = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tAnnotation\n"


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    events = {n: write_recording(root, n, seed=i) for i, n in enumerate(["quiet", "night"])}
    for n in events:
        (root / f"{n}.csv").unlink()  # the user's recordings, no DCASE tables
    return root, events


def _raven(path, events, *, file_column: str = ""):
    head = RAVEN.replace("\tAnnotation", "\tBegin File\tAnnotation") if file_column else RAVEN
    path.write_text(head + "".join(f"{i + 1}\tSpectrogram 1\t1\t{a:.4f}\t{b:.4f}\t" + (f"{file_column}\t" if file_column else "")
                                   + "chirp\n" for i, (a, b) in enumerate(events)))


def _found(path, name):
    return np.array([[r["start"], r["end"]] for r in json.loads(path.read_text()) if r["file"] == name]).reshape(-1, 2)


@pytest.mark.parametrize("how", ["table-name", "begin-file"])
def test_the_examples_are_cut_from_the_recording_the_table_belongs_to(two, tmp_path, how):
    root, events = two
    if how == "table-name":
        table = tmp_path / "night.Table.1.selections.txt"
        _raven(table, events["night"][:5])
    else:
        table = tmp_path / "examples.txt"
        _raven(table, events["night"][:5], file_column="night.wav")
    out = tmp_path / "p.json"
    # 'quiet' comes first: before, the examples' times were cut from it
    assert main(["detect", str(root / "quiet.wav"), str(root / "night.wav"), "--examples", str(table),
                 "--out", str(out), "--json", "--quiet"]) == 0
    night = _found(out, "night.wav")
    later = events["night"][5:]
    hits = sum(np.any(np.abs(night[:, 0] - a) < 0.04) for a in later[:, 0])
    assert hits >= 0.8 * len(later)
    assert night[:, 0].min() > events["night"][4, 0]  # searched after its own examples only


def test_a_table_naming_no_recording_among_several_is_one_line(two, tmp_path, capsys):
    root, events = two
    table = tmp_path / "examples.txt"
    _raven(table, events["night"][:5])
    code = main(["detect", str(root / "quiet.wav"), str(root / "night.wav"), "--examples", str(table),
                 "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "does not say which of the 2 recordings" in err, err
    assert not (tmp_path / "p.csv").exists()


def test_no_predicted_event_overlaps_an_example(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    events = write_recording(folder, "r", seed=3)
    events[4, 1] -= 0.03  # the fifth example's end annotated early: the sound itself goes on after it
    write_table(folder / "r.csv", "r", events)
    assert main(["detect", str(folder), "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    found = np.array([[float(v) for v in line.split(",")[1:]] for line in
                      (tmp_path / "p.csv").read_text().splitlines()[1:]])
    shots = events[:5]
    overlap = (found[:, None, 0] < shots[None, :, 1]) & (found[:, None, 1] > shots[None, :, 0])
    assert not overlap.any(), found[overlap.any(axis=1)]
    scores = evaluate(read_predictions(tmp_path / "p.csv"), read_references(folder))
    assert scores["overall_scores"]["fmeasure (percentage)"] >= 90


def test_overlapping_examples_are_used_with_one_line(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    events = write_recording(folder, "r", seed=4)
    flam = events.copy()
    flam[1] = [flam[0, 0] + 0.04, flam[0, 0] + 0.12]  # a second example starting inside the first (a flam)
    write_table(folder / "r.csv", "r", np.concatenate([flam[:5], events[5:]]))
    assert main(["detect", str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert sum("overlap" in line for line in err.splitlines()) == 1, err
    scores = evaluate(read_predictions(tmp_path / "p.csv"), read_references(folder))
    assert scores["overall_scores"]["fmeasure (percentage)"] >= 80


def test_the_same_recording_twice_is_searched_once(two, tmp_path):
    root, events = two
    table = tmp_path / "night.selections.txt"
    _raven(table, events["night"][:5])
    out = tmp_path / "p.json"
    rec = str(root / "night.wav")
    assert main(["detect", rec, rec, "--examples", str(table), "--out", str(out), "--json", "--quiet"]) == 0
    rows = [(r["start"], r["end"]) for r in json.loads(out.read_text())]
    assert rows and len(rows) == len(set(rows))


def _rolls(folder, name: str, *, gap: float, seed: int = 0) -> np.ndarray:
    """A recording whose first five target chirps (80 ms) are single and whose later ones come in rolls of two or
    three, ``gap`` seconds apart (closer than their own length), among falling distractors; annotated in full."""
    import soundfile as sf

    from tests.detection.test_detect import SR, _chirp

    rng = np.random.default_rng(seed)
    y = 0.01 * rng.standard_normal(40 * SR)
    onsets, t, k = [], 1.0, 0
    while t < 38:
        n = 1 if k < 5 else int(rng.choice([2, 3]))
        onsets += [t + j * gap for j in range(n)]
        t += (n - 1) * gap + rng.uniform(1.0, 2.0)
        k += 1
    for a in onsets:
        y[int(a * SR) : int(a * SR) + 1280] += 0.3 * _chirp(1280, 1500, 3500)
    for a in rng.uniform(1, 38, 10):
        y[int(a * SR) : int(a * SR) + 1280] += 0.3 * _chirp(1280, 3500, 1500)
    sf.write(folder / f"{name}.wav", y.astype(np.float32), SR)
    events = np.stack([np.array(onsets), np.array(onsets) + 0.08], axis=1)
    write_table(folder / f"{name}.csv", name, events)
    return events


def test_hits_closer_than_their_own_length_are_each_found(tmp_path):
    """Issue 28: snare rolls (hits closer than their length) were missed: events closer than the examples' length
    were suppressed. Here rolls 70 ms apart of 80 ms chirps: before, 70% of the later hits were found."""
    folder = tmp_path / "d"
    folder.mkdir()
    events = _rolls(folder, "r", gap=0.07)
    assert main(["detect", str(folder), "--out", str(tmp_path / "p.csv"), "--quiet"]) == 0
    scores = evaluate(read_predictions(tmp_path / "p.csv"), read_references(folder))["overall_scores"]
    later = len(events) - 5
    assert scores["recall"] >= 0.9 and scores["precision"] >= 0.8, (scores, later)


def test_a_folder_with_only_a_raven_table_says_to_pass_it_as_examples_and_writes_nothing(two, tmp_path, capsys):
    root, events = two
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "night.wav").write_bytes((root / "night.wav").read_bytes())
    _raven(folder / "night.Table.1.selections.txt", events["night"][:5])
    assert main(["detect", str(folder), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--examples" in err and "night.Table.1.selections.txt" in err, err
    assert not (tmp_path / "p.csv").exists()


def test_train_detector_makes_the_run_folders_parents(tmp_path, capsys):
    """Issue 28: 'train-detector --out runs/detector' failed when runs/ did not exist."""
    data = tmp_path / "data"
    data.mkdir()
    write_recording(data, "r", seed=2, n_events=6)
    code = main(["train-detector", str(data), "--out", str(tmp_path / "runs" / "detector"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--out" not in err and "does not exist" not in err, err  # it got past --out to the data


def test_a_tagger_given_as_detector_weights_is_named(two, tmp_path, capsys):
    root, events = two
    fake = tmp_path / "t.safetensors"
    header = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    fake.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    table = tmp_path / "night.selections.txt"
    _raven(table, events["night"][:5])
    assert main(["detect", str(root / "night.wav"), "--examples", str(table), "--weights", str(fake),
                 "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a tagger file (safetensors), not a detector network" in err, err
