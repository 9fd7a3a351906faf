"""The DCASE Task 5 metric against the official evaluator's reports on real validation annotations
(../shared/dcase_task5_metric: 18 files, five prediction files, the evaluator's JSON for each)."""

import json
from pathlib import Path

import numpy as np
import pytest

from fewshot_audio.detection.metric import Reference, counts, evaluate, max_matching, read_predictions, read_references
from fewshot_audio.errors import DataError

METRIC = Path(__file__).resolve().parents[3] / "shared" / "dcase_task5_metric"
CASES = ["perfect", "jittered", "fixed_length", "one_subset_empty", "split_and_merged"]


@pytest.mark.skipif(not METRIC.is_dir(), reason="../shared/dcase_task5_metric is not here")
@pytest.mark.parametrize("case", CASES)
def test_every_number_of_the_official_report(case):
    expected = json.loads((METRIC / "expected" / f"{case}.json").read_text())
    got = evaluate(read_predictions(METRIC / "predictions" / f"{case}.csv"), read_references(METRIC / "ref" / "VAL"))
    assert got["overall_scores"] == pytest.approx(expected["overall_scores"], rel=1e-12)
    assert set(got["scores_per_subset"]) == set(expected["scores_per_subset"]) == {"HB", "ME", "PB"}
    for subset, s in expected["scores_per_subset"].items():
        assert got["scores_per_subset"][subset] == pytest.approx(s, rel=1e-12), subset
    for name, s in expected["scores_per_audiofile"].items():
        assert got["scores_per_audiofile"][name] == pytest.approx(s, rel=1e-12), name
    for name, c in expected["counts_per_audiofile"].items():  # the files the evaluator printed: those predicted
        assert got["counts_per_audiofile"][name] == c, name
    predicted = set(read_predictions(METRIC / "predictions" / f"{case}.csv"))
    assert set(expected["counts_per_audiofile"]) == predicted


def _ref(events, labels):
    return Reference("a.wav", "S", np.asarray(events, float), labels)


def test_iou_must_exceed_point_three_and_unk_matches_are_not_false_positives():
    shots = [[i, i + 0.5] for i in range(5)]
    ref = _ref(shots + [[10, 20], [30, 31]], ["POS"] * 6 + ["UNK"])
    # IoU exactly 0.3 (3 s of 10) is not a match (the evaluator's strict >); 3.5 s of 10 is
    assert counts(np.array([[10.0, 13.0]]), ref)["TP"] == 0
    assert counts(np.array([[10.0, 13.5]]), ref) == {"TP": 1, "FP": 0, "FN": 0, "total_n_pos_events": 1}
    # a prediction on the UNK event is neither TP nor FP; one on nothing is FP
    assert counts(np.array([[30.0, 31.0], [40.0, 41.0]]), ref) == {"TP": 0, "FP": 1, "FN": 1, "total_n_pos_events": 1}
    # events ending by the fifth example's end are out, predictions there are false positives
    assert counts(np.array([[4.0, 4.5]]), ref)["FP"] == 1


def test_matching_is_maximum_not_greedy():
    # est 0 overlaps ref 0 and 1, est 1 only ref 0: greedy pairing (0, 0) would leave one unmatched
    assert len(max_matching([(0, 0), (1, 0), (0, 1)])) == 2


def test_bad_prediction_and_reference_files_are_named(tmp_path):
    (tmp_path / "p.csv").write_text("file,start,end\n")
    with pytest.raises(DataError, match="header must be exactly Audiofilename,Starttime,Endtime"):
        read_predictions(tmp_path / "p.csv")
    (tmp_path / "ref" / "S").mkdir(parents=True)
    (tmp_path / "ref" / "S" / "a.csv").write_text("Audiofilename,Starttime,Endtime,Q\na.wav,1,2,POS\n")
    (tmp_path / "q.csv").write_text("Audiofilename,Starttime,Endtime\nb.wav,1,2\n")
    with pytest.raises(DataError, match="no reference annotation .*b.wav"):
        evaluate(read_predictions(tmp_path / "q.csv"), read_references(tmp_path / "ref"))
    (tmp_path / "q.csv").write_text("Audiofilename,Starttime,Endtime\na.wav,1,2\n")
    with pytest.raises(DataError, match="a.wav .*1 POS event.*at least 5"):
        evaluate(read_predictions(tmp_path / "q.csv"), read_references(tmp_path / "ref"))


def test_a_recording_in_another_format_is_scored_against_its_table(tmp_path):
    (tmp_path / "ref" / "S").mkdir(parents=True)
    rows = "".join(f"a.wav,{t},{t + 0.5},POS\n" for t in range(8))
    (tmp_path / "ref" / "S" / "a.csv").write_text("Audiofilename,Starttime,Endtime,Q\n" + rows)
    (tmp_path / "p.csv").write_text("Audiofilename,Starttime,Endtime\n" + "".join(f"a.mp3,{t},{t + 0.5}\n" for t in (5, 6, 7)))
    report = evaluate(read_predictions(tmp_path / "p.csv"), read_references(tmp_path / "ref"))
    assert report["counts_per_audiofile"]["a.wav"] == {"TP": 3, "FP": 0, "FN": 0, "total_n_pos_events": 3}
