"""``detect`` end to end on tiny generated recordings: the protocol (nothing after the examples is used), the
events found, the outputs, streaming, and one line per bad input."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.cli import main
from fewshot_audio.detection.frames import FrameSpec, stream_frames
from fewshot_audio.detection.metric import evaluate, read_predictions, read_references

SR = 16000


def _chirp(n: int, f0: float, f1: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1]))) * np.hanning(n)


def write_recording(folder: Path, name: str, *, seconds: float = 24.0, seed: int = 0, n_events: int = 14) -> np.ndarray:
    """A noisy recording with rising chirps (the class of interest, 80 ms) and falling ones (distractors);
    its full annotation beside it. Returns the chirps' events."""
    rng = np.random.default_rng(seed)
    y = 0.01 * rng.standard_normal(int(seconds * SR))
    slots = rng.permutation(np.arange(2, int(2 * seconds) - 2))[: 2 * n_events] / 2 + rng.uniform(0, 0.2, 2 * n_events)
    target, other = np.sort(slots[:n_events]), slots[n_events:]
    for t in target:
        i = int(t * SR)
        y[i : i + 1280] += 0.3 * _chirp(1280, 1500, 3500)
    for t in other:
        i = int(t * SR)
        y[i : i + 1280] += 0.3 * _chirp(1280, 3500, 1500)
    sf.write(folder / f"{name}.wav", y.astype(np.float32), SR)
    events = np.stack([target, target + 0.08], axis=1)
    write_table(folder / f"{name}.csv", name, events)
    return events


def write_table(path: Path, name: str, events: np.ndarray, q: str = "POS") -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Audiofilename", "Starttime", "Endtime", "Q"])
        for a, b in events:
            w.writerow([f"{name}.wav", f"{a:.4f}", f"{b:.4f}", q])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dcase")
    (root / "SUB").mkdir()
    events = {n: write_recording(root / "SUB", n, seed=i) for i, n in enumerate(["rec_a", "rec_b"])}
    return root, events


def test_detect_finds_the_later_events_and_the_official_metric_scores_them(dataset, tmp_path, capsys):
    root, _ = dataset
    assert main(["detect", str(root), "--out", str(tmp_path / "pred.csv"), "--evaluate", "--quiet"]) == 0
    report = capsys.readouterr().out
    assert report.startswith("overall: F ")
    scores = evaluate(read_predictions(tmp_path / "pred.csv"), read_references(root))
    assert scores["overall_scores"]["fmeasure (percentage)"] >= 90, report
    assert tmp_path.joinpath("pred.csv").read_text().splitlines()[0] == "Audiofilename,Starttime,Endtime"


@pytest.mark.parametrize("detector", ["protonet-shape", "shape", "shape-self", "shape-cv"])  # self: adapts to the unlabelled audio
def test_truncated_and_full_annotations_give_the_same_predictions(dataset, tmp_path, detector):
    root, events = dataset
    cut = tmp_path / "cut" / "SUB"
    cut.mkdir(parents=True)
    for name, ev in events.items():
        (cut / f"{name}.wav").write_bytes((root / "SUB" / f"{name}.wav").read_bytes())
        # only the five examples, and then an annotation that lies about every later event
        write_table(cut / f"{name}.csv", name, ev[:5])
    lies = tmp_path / "lies" / "SUB"
    lies.mkdir(parents=True)
    for name, ev in events.items():
        (lies / f"{name}.wav").write_bytes((root / "SUB" / f"{name}.wav").read_bytes())
        wrong = np.concatenate([ev[:5], ev[5:] + 0.4, [[ev[4, 1] + 0.05, ev[4, 1] + 0.2]]])
        write_table(lies / f"{name}.csv", name, wrong[np.argsort(wrong[:, 0])])
    outs = []
    for folder in (root, cut.parent, lies.parent):
        assert main(["detect", str(folder), "--out", str(tmp_path / f"{folder.name}.csv"), "--quiet",
                     "--detector", detector]) == 0
        outs.append((tmp_path / f"{folder.name}.csv").read_text())
    assert outs[0] == outs[1] == outs[2]
    scores = evaluate(read_predictions(tmp_path / f"{root.name}.csv"), read_references(root))
    assert scores["overall_scores"]["fmeasure (percentage)"] >= 90


def test_json_and_raven_carry_a_score_per_event(dataset, tmp_path):
    root, _ = dataset
    assert main(["detect", str(root), "--out", str(tmp_path / "p.json"), "--json", "--quiet"]) == 0
    rows = json.loads((tmp_path / "p.json").read_text())
    assert rows and {"file", "class", "start", "end", "score"} <= set(rows[0]) and 0 < rows[0]["score"] <= 1
    assert main(["detect", str(root), "--out", str(tmp_path / "p.txt"), "--raven", "--quiet"]) == 0
    lines = (tmp_path / "p.txt").read_text().splitlines()
    assert lines[0].split("\t")[3:5] == ["Begin Time (s)", "End Time (s)"] and lines[0].split("\t")[9:11] == ["Tag", "Score"]
    assert len(lines) == len(rows) + 1


def test_a_users_recordings_with_an_examples_table(dataset, tmp_path):
    root, events = dataset
    table = tmp_path / "examples.txt"  # a Raven selection table of five examples in rec_a, named in Begin File
    table.write_text("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tBegin File\tAnnotation\n" + "".join(
        f"{i + 1}\tSpectrogram 1\t1\t{a:.4f}\t{b:.4f}\trec_a.wav\tchirp\n" for i, (a, b) in enumerate(events["rec_a"][:5])))
    recs = [str(root / "SUB" / "rec_b.wav"), str(root / "SUB" / "rec_a.wav")]  # rec_a is not the first given
    assert main(["detect", *recs, "--examples", str(table), "--out", str(tmp_path / "u.json"), "--json", "--quiet"]) == 0
    rows = json.loads((tmp_path / "u.json").read_text())
    found_b = np.array([[r["start"], r["end"]] for r in rows if r["file"] == "rec_b.wav"])
    hits = sum(np.any(np.abs(found_b[:, 0] - a) < 0.04) for a in events["rec_b"][:, 0])
    assert hits >= 0.8 * len(events["rec_b"])  # every chirp of the other recording, from rec_a's examples
    assert {r["class"] for r in rows} == {"chirp"}


def test_streamed_frames_equal_one_pass(tmp_path):
    y = np.random.default_rng(1).standard_normal(SR * 5).astype(np.float32)
    sf.write(tmp_path / "x.wav", y, SR)
    spec = FrameSpec.for_examples(np.array([[0.0, 0.08]]))
    whole = np.concatenate(list(stream_frames(tmp_path / "x.wav", spec, block_seconds=100)))
    blocks = list(stream_frames(tmp_path / "x.wav", spec, block_seconds=0.7))
    assert len(blocks) > 3
    assert np.allclose(np.concatenate(blocks), whole, atol=1e-4)
    assert len(whole) == 5 * 32000 // spec.hop_samples + 1  # centred frames at 32 kHz


def _fresh(tmp_path, name="r", **kw):
    folder = tmp_path / "d"
    folder.mkdir(exist_ok=True)
    return folder, write_recording(folder, name, **kw)


@pytest.mark.parametrize("case, message", [
    ("few", r"r.csv: 3 POS event\(s\); detection needs the first 5 as examples"),
    ("unsorted", r"r.csv: the POS events are not in time order .*sort the rows by Starttime"),
    ("past_end", r"r.csv: example 5 ends at 99 s, past the end of the recording"),
    ("no_table", r"r.wav: no annotation r.csv beside it"),
    ("no_audio", r"r.csv: no recording of the same name beside it"),
    ("empty", r"r.wav is empty \(no samples\); replace it with the recording or remove it"),
])
def test_bad_input_is_one_line_naming_the_file_and_the_others_still_run(tmp_path, capsys, case, message):
    folder, ev = _fresh(tmp_path)
    write_recording(folder, "good", seed=5)
    if case == "few":
        write_table(folder / "r.csv", "r", ev[:3])
    elif case == "unsorted":
        write_table(folder / "r.csv", "r", np.concatenate([ev[:1], ev[2:3], ev[1:2], ev[3:]]))
    elif case == "past_end":
        write_table(folder / "r.csv", "r", np.concatenate([ev[:4], [[98.0, 99.0]]]))
    elif case == "no_table":
        (folder / "r.csv").unlink()
    elif case == "no_audio":
        (folder / "r.wav").unlink()
    elif case == "empty":
        sf.write(folder / "r.wav", np.zeros(0, np.float32), SR)
    code = main(["detect", str(folder), "--out", str(tmp_path / "p.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    import re

    lines = [line for line in err.splitlines() if re.search(message, line)]
    assert len(lines) == 1, err
    assert "good.wav" in (tmp_path / "p.csv").read_text()  # the other recording was still searched


def test_a_raven_table_without_times_is_named(tmp_path, capsys):
    folder, _ = _fresh(tmp_path)
    (tmp_path / "t.txt").write_text("Selection\tView\tAnnotation\n1\tSpectrogram 1\tchirp\n")
    assert main(["detect", str(folder / "r.wav"), "--examples", str(tmp_path / "t.txt"), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t.txt: a Raven selection table needs 'Begin Time (s)' and 'End Time (s)'" in err


def test_flag_mistakes_stop_before_any_work(dataset, tmp_path, capsys):
    root, _ = dataset
    for argv, message in [
        (["--evaluate", "--json"], "--evaluate scores a dataset folder's CSV predictions"),
        (["--first", "0"], "--first must be at least 1, got 0"),
        (["--detector", "nope"], "--detector: unknown detector 'nope'; registered: shape, shape-self"),
    ]:
        assert main(["detect", str(root), "--out", str(tmp_path / "x.csv"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "x.csv").exists()


def test_a_table_with_one_column_per_class_searches_each_class(dataset, tmp_path):
    root, events = dataset
    folder = tmp_path / "multi"
    folder.mkdir()
    (folder / "rec_a.wav").write_bytes((root / "SUB" / "rec_a.wav").read_bytes())
    rising = events["rec_a"]
    with open(folder / "rec_a.csv", "w", newline="") as fh:  # the DCASE training layout: CLASS_x columns
        w = csv.writer(fh)
        w.writerow(["Audiofilename", "Starttime", "Endtime", "CLASS_rise", "CLASS_other"])
        for i, (a, b) in enumerate(rising):
            w.writerow(["rec_a.wav", f"{a:.4f}", f"{b:.4f}", "POS", "NEG" if i < 5 else "UNK"])
        w.writerow(["rec_a.wav", "0.0", "0.1", "NEG", "POS"])  # 'other' has one POS event: too few examples
    assert main(["detect", str(folder), "--out", str(tmp_path / "m.json"), "--json", "--quiet"]) == 1
    rows = json.loads((tmp_path / "m.json").read_text())
    assert {r["class"] for r in rows} == {"rise"} and len(rows) >= 0.8 * (len(rising) - 5)


def test_a_detector_config_changes_its_settings_and_bad_ones_are_one_line(dataset, tmp_path, capsys):
    root, _ = dataset
    base = ["detect", str(root), "--detector", "shape", "--device", "cpu", "--json", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "a.json")]) == 0
    (tmp_path / "strict.yaml").write_text("threshold: 1.01\n")  # above any probability: nothing passes
    assert main([*base, "--config", str(tmp_path / "strict.yaml"), "--out", str(tmp_path / "b.json")]) == 0
    default, strict = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert len(default) >= 10 and strict == []
    (tmp_path / "merge.yaml").write_text("detector: stats\ndecoder: merge\n")  # 'detector:' names the start
    assert main([*base, "--config", str(tmp_path / "merge.yaml"), "--out", str(tmp_path / "c.json")]) == 0
    capsys.readouterr()
    for text, message in [("treshold: 0.5\n", "unknown detector setting 'treshold'"),
                          ("decoder: peakz\n", "unknown event decoder 'peakz' (did you mean 'peaks'?)"),
                          ("segments: 0\n", "detector setting segments=0 must be a whole number >= 1"),
                          ("- 1\n", "must be a mapping of settings")]:
        (tmp_path / "bad.yaml").write_text(text)
        assert main([*base, "--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "x.json")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "x.json").exists()
