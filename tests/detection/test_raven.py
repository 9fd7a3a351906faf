"""One Raven module: the tables ``tag --raven`` and ``detect --raven`` write are read back, selection for selection,
by the one reader, and ``detect --examples`` takes either as its examples."""

import json

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.cli import main
from fewshot_audio.data.raven import RavenRow, raven_selections, raven_table
from tests.conftest import write_tag_folders
from tests.detection.test_detect import SR, write_recording


def test_the_writer_and_the_reader_agree_across_files(tmp_path):
    rows = [RavenRow("b.wav", 2.0, 2.5, "bell", 0.75, 0.5), RavenRow("a.wav", 1.0, 1.25, "hiss", 0.5),
            RavenRow("b.wav", 0.5, 1.0, "bell", 0.9, 0.5)]
    path = tmp_path / "t.txt"
    path.write_text(raven_table(rows, durations={"a.wav": 3.0, "b.wav": 4.0}, high_freq_hz=8000))
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    assert [line[3] for line in lines[1:]] == ["0.500", "2.000", "5.000"]  # Begin Time runs on: b.wav (4 s), then a
    back = raven_selections(path)
    assert [(s.file, s.start, s.end, s.label, s.score) for s in back] == [
        ("b.wav", 0.5, 1.0, "bell", 0.9), ("b.wav", 2.0, 2.5, "bell", 0.75), ("a.wav", 1.0, 1.25, "hiss", 0.5)]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    root = tmp_path_factory.mktemp("raven")
    events = write_recording(root, "rec", seed=3)
    return root, events


def test_detect_raven_is_read_back_and_is_examples_again(recording, tmp_path, capsys):
    root, events = recording
    rec = root / "rec.wav"
    base = ["detect", str(rec), "--examples", str(root / "rec.csv"), "--detector", "shape", "--quiet"]
    assert main([*base, "--raven", "--out", str(tmp_path / "det.txt")]) == 0
    assert main([*base, "--json", "--out", str(tmp_path / "det.json")]) == 0
    found = json.loads((tmp_path / "det.json").read_text())
    back = raven_selections(tmp_path / "det.txt")
    assert len(back) == len(found) >= 5
    for s, f in zip(back, found):
        assert s.file == str(rec) and s.label == f["class"] == "rec"
        assert s.start == pytest.approx(f["start"], abs=1e-3) and s.end == pytest.approx(f["end"], abs=1e-3)
    assert main(["detect", str(rec), "--examples", str(tmp_path / "det.txt"), "--first", "5", "--detector", "shape",
                 "--json", "--out", str(tmp_path / "again.json"), "--quiet"]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    from fewshot_audio.detection.annotations import read_examples_table

    (table,) = read_examples_table(tmp_path / "det.txt")  # the first five detections are the examples
    assert np.allclose(table.positives()[:5], [(s.start, s.end) for s in back[:5]])
    later = events[events[:, 0] > back[4].end]
    hit = [any(abs(e["start"] - a) < 0.05 for e in again) for a, _ in later]
    assert np.mean(hit) >= 0.5, (later, again)
    capsys.readouterr()


def test_tag_raven_is_read_back_and_is_examples_for_detect(tmp_path, capsys):
    support = write_tag_folders(tmp_path / "support", {"bell": ("struck", 1), "hiss": ("noise", 2)}, range(3), sr=SR)
    tagger = tmp_path / "t.safetensors"
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(tagger), "--quiet"]) == 0
    rec = tmp_path / "long.wav"
    clips = [sf.read(support / tag / f"{j % 3}.wav")[0] for j in range(8) for tag in ("bell", "hiss")]
    gap = np.zeros(SR)
    sf.write(rec, np.concatenate([np.concatenate([c, gap]) for c in clips]).astype(np.float32), SR)
    table = tmp_path / "tag.txt"
    # one window per second: each 1 s clip is one window, with silence between (the examples need audio around them)
    assert main(["tag", str(rec), "--tagger", str(tagger), "--raven", str(table), "--hop", "1.0", "--quiet"]) == 0
    written = [line.split("\t") for line in table.read_text().splitlines()[1:]]
    back = raven_selections(table)
    assert len(back) == len(written) >= 3
    for s, w in zip(back, written):
        assert (s.file, f"{s.start:.3f}", f"{s.end:.3f}", s.label) == (w[7], w[8], f"{float(w[8]) + float(w[4]) - float(w[3]):.3f}", w[9])
    assert main(["detect", str(rec), "--examples", str(table), "--first", "3", "--detector", "shape", "--json",
                 "--out", str(tmp_path / "d.json"), "--quiet"]) == 0
    assert isinstance(json.loads((tmp_path / "d.json").read_text()), list)
    capsys.readouterr()
