"""The review's parts: every source layout read, the orders, LABELS.csv kept whole and resumed, the estimate's
interval covering the truth in about 95% of seeded simulations, the threshold for a precision, and 'review summary'."""

import csv
import json

import numpy as np
import pytest

from fewshot_audio.cli import main
from fewshot_audio.errors import DataError
from fewshot_audio.review.density import precision_fit, stratified_estimate, threshold_for
from fewshot_audio.review.items import read_items
from fewshot_audio.review.labels import Labels
from fewshot_audio.review.order import ORDERS


def test_every_source_layout_is_read(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "det.json").write_text(json.dumps([{"file": "a.wav", "class": "x", "start": 1, "end": 2, "score": .5}]))
    (tmp_path / "tag.json").write_text(json.dumps([{"path": "a.wav", "tags": ["x"], "scores": {"x": .9, "y": .1},
                                                    "thresholds": {}, "error": None}]))
    (tmp_path / "t.txt").write_text("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tBegin Path\tFile Offset (s)"
                                    "\tTag\tScore\n1\tSpectrogram 1\t1\t10.0\t10.5\ta.wav\t3.0\tx\t0.7\n")
    (tmp_path / "pred.csv").write_text("Audiofilename,Starttime,Endtime\na.wav,1.0,1.5\n")
    (tmp_path / "queue.json").write_text(json.dumps([{"path": "a.wav", "tag": "x", "score": .4, "threshold": .5}]))
    det, tag, raven, pred = (read_items(tmp_path / n) for n in ("det.json", "tag.json", "t.txt", "pred.csv"))
    queue = read_items(tmp_path / "queue.json")
    assert [(i.tag, i.end, i.score) for i in queue] == [("x", None, 0.4)]
    assert (det[0].start, det[0].end, det[0].tag, det[0].score) == (1.0, 2.0, "x", 0.5)
    assert det[0].path == str((tmp_path / "a.wav").resolve())  # found beside the source
    assert [(i.tag, i.end) for i in tag] == [("x", None), ("y", None)]
    assert (raven[0].start, raven[0].end, raven[0].tag) == (3.0, 3.5, "x")  # the file offset, not Begin Time
    assert np.isnan(pred[0].score)
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(DataError, match="not a detect or tag output"):
        read_items(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="does not exist"):
        read_items(tmp_path / "nope.json")


def _items(n=40, seed=0):
    from fewshot_audio.review.items import Item

    rng = np.random.default_rng(seed)
    return [Item(f"f{i}.wav", float(i), float(i) + 0.5, "call", float(s)) for i, s in enumerate(rng.random(n))]


def test_orders():
    items = _items()
    scores = np.array([i.score for i in items])
    assert np.all(np.diff(scores[ORDERS.get("score")().order(items, seed=0)]) <= 0)
    r = ORDERS.get("random")().order(items, seed=1)
    assert sorted(r.tolist()) == list(range(40)) and r.tolist() != ORDERS.get("random")().order(items, seed=2).tolist()
    strat = ORDERS.get("stratified")()
    order, strata = strat.order(items, seed=0), strat.strata(items)
    assert sorted(order.tolist()) == list(range(40)) and len(set(strata.tolist())) == 4
    assert len(set(strata[order[:4]].tolist())) == 4  # every bin in the first four


def test_labels_are_whole_after_every_decision_and_resume(tmp_path):
    items = _items(5)
    path = tmp_path / "labels.csv"
    lab = Labels(path, items, [0] * 5)
    lab.decide(0, "positive")
    lab.decide(1, "negative")
    lab.decide(0, "uncertain")  # a changed mind replaces the decision, never duplicates it
    assert lab.undo() == 0 and lab.undo() == 1
    lab.decide(2, "positive")
    with open(path) as fh:
        assert [(r["item"], r["label"]) for r in csv.DictReader(fh)] == [("2", "positive")]
    again = Labels(path, items, [0] * 5)
    assert again.label_of(2) == "positive" and again.label_of(0) is None
    with pytest.raises(DataError, match="label 'maybe'"):
        again.decide(1, "maybe")
    precious = tmp_path / "notes.csv"
    precious.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="is not a review labels file"):
        Labels(precious, items, [0] * 5)
    assert precious.read_text() == "a,b\n1,2\n"


def test_the_estimates_interval_covers_the_truth_about_95_percent_of_the_time():
    covered, runs = 0, 300
    sizes, share = np.array([300, 200, 100, 60]), np.array([0.05, 0.3, 0.7, 0.95])
    for r in range(runs):
        rng = np.random.default_rng(r)
        strata = np.repeat(np.arange(4), sizes)
        truth = rng.random(len(strata)) < share[strata]
        sample = np.concatenate([rng.choice(np.flatnonzero(strata == h), 10, replace=False) for h in range(4)])
        e = stratified_estimate(strata, strata[sample], truth[sample])
        covered += e.low <= truth.sum() <= e.high
    assert 0.90 <= covered / runs <= 0.99, covered / runs


def test_precision_fit_and_threshold():
    scores = np.linspace(0, 1, 200)
    positive = np.random.default_rng(0).random(200) < scores
    fit = precision_fit(scores, positive)
    assert fit([0.05])[0] < 0.3 and fit([0.95])[0] > 0.7
    t, kept = threshold_for(0.8, scores, fit)
    assert 0.5 < t < 1 and kept == int((scores >= t).sum())
    assert threshold_for(0.999, scores, fit) is None
    with pytest.raises(DataError, match="both positive and negative"):
        precision_fit(scores, np.ones(200, bool))


def test_review_summary(tmp_path, capsys):
    items = _items()
    source = tmp_path / "det.json"
    source.write_text(json.dumps([{"file": i.path, "class": i.tag, "start": i.start, "end": i.end, "score": i.score}
                                  for i in items]))
    got = read_items(source)
    strat = ORDERS.get("stratified")()
    lab = Labels(tmp_path / "labels.csv", got, strat.strata(got).tolist())
    for n in strat.order(got, seed=0)[:16]:
        lab.decide(int(n), "positive" if got[n].score > 0.5 else "negative")
    assert main(["review", "summary", str(tmp_path / "labels.csv"), "--source", str(source), "--precision", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "16 decisions" in out and "true items in" in out and "precision 0.9: threshold" in out
    assert main(["review", "summary", str(tmp_path / "labels.csv"), "--precision", "0.9"]) == 2
    assert "--precision needs --source" in capsys.readouterr().err
