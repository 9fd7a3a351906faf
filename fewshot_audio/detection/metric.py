"""The official DCASE few-shot bioacoustic event detection metric (Task 5, 2022-2024), reimplemented.

Per recording: reference events sorted by onset, every event (POS or UNK) ending at or before the fifth POS
example's end removed; predictions sorted by onset; a maximum bipartite matching of predictions to POS events
with IoU > 0.3 (TP), a second one of the unmatched predictions to UNK events (not counted as FP); FP the
predictions matched in neither round, FN the POS events not matched. Counts are summed per subset (the first
folder under the reference root); P, R and F = TP / (TP + (FP + FN) / 2) per subset with the evaluator's floors
(1e-5); the overall scores are the harmonic means over subsets, F in percent rounded to 3 decimals.

Two quirks of the official code are kept, so that the numbers are the evaluator's: the fifth example is looked
up by its row number in the file as a position in the sorted table (the same thing when the file is sorted by
onset, as DCASE's are), and a recording without any prediction counts every POS event as FN, the five
examples included. ``tests/detection/test_metric.py`` checks every number of ../shared/dcase_task5_metric.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewshot_audio.errors import DataError

MIN_EVAL_VALUE, N_SHOTS, MIN_IOU = 1e-5, 5, 0.3
PRED_HEADER = ["Audiofilename", "Starttime", "Endtime"]


@dataclass
class Reference:
    """One reference table: events in file order, their Q labels, and the subset it belongs to."""

    name: str  # the audio file name (the table's name with .wav)
    subset: str
    events: np.ndarray  # (n, 2), file order
    labels: list[str]


def read_references(root: str | Path) -> dict[str, Reference]:
    """Every ``*.csv`` under ``root`` (any depth) with a ``Q`` column, keyed by audio file name (``stem.wav``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"reference folder {root} does not exist; pass the folder of annotation CSVs")
    refs: dict[str, Reference] = {}
    for path in sorted(root.rglob("*.csv")):
        rel = path.relative_to(root).parts
        subset = rel[0] if len(rel) > 1 else root.name
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "Q" not in rows[0]:
            continue  # not a Q-layout annotation (e.g. a prediction file beside them)
        try:
            events = np.array([[float(r["Starttime"]), float(r["Endtime"])] for r in rows]).reshape(-1, 2)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: every row needs numeric Starttime and Endtime") from None
        name = path.stem + ".wav"
        if name in refs:
            raise DataError(f"{path}: a second annotation for {name} (also {refs[name].subset}); names must be unique")
        refs[name] = Reference(name, subset, events, [(r.get("Q") or "").strip() for r in rows])
    if not refs:
        raise DataError(f"no annotation CSV with a Q column under {root}")
    return refs


def read_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """A submission ``Audiofilename,Starttime,Endtime``: events ``(n, 2)`` per audio file name."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prediction file {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if [h.strip() for h in header] != PRED_HEADER:
            raise DataError(f"{path}: the header must be exactly {','.join(PRED_HEADER)} (found {','.join(header)})")
        out: dict[str, list] = {}
        for i, row in enumerate(reader):
            if not row:
                continue
            try:
                out.setdefault(row[0], []).append((float(row[1]), float(row[2])))
            except (IndexError, ValueError):
                raise DataError(f"{path}: row {i + 2} is not file,start,end with numeric times") from None
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, 2) for k, v in out.items()}


def iou_hits(ref: np.ndarray, est: np.ndarray, min_iou: float = MIN_IOU) -> list[tuple[int, int]]:
    """Pairs ``(ref i, est j)`` with IoU > ``min_iou``, in row-major order (as the evaluator's sparse matrix)."""
    if not len(ref) or not len(est):
        return []
    a, b = ref[:, :1], ref[:, 1:2]
    u, v = est[None, :, 0], est[None, :, 1]
    touch = (a <= v) & (b >= u)
    inter = np.minimum(b, v) - np.maximum(a, u)
    union = np.maximum(b, v) - np.minimum(a, u)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(touch, inter / union, 0.0)
    i, j = np.nonzero(iou > min_iou)
    return list(zip(i.tolist(), j.tolist()))


def max_matching(hits: list[tuple[int, int]]) -> dict[int, int]:
    """A maximum bipartite matching ``{ref: est}`` (Hopcroft-Karp: shortest augmenting paths in phases), with
    the graph keyed by estimate in the order the hits list them, as the evaluator builds it."""
    graph: dict[int, list[int]] = {}
    for r, e in hits:
        graph.setdefault(e, []).append(r)
    matching: dict[int, int] = {}  # ref -> est
    for e, refs in graph.items():  # greedy start
        for r in refs:
            if r not in matching:
                matching[r] = e
                break
    while True:
        layer_of_ref: dict[int, list[int]] = {}  # ref -> ests reaching it in the previous layer
        free_refs: list[int] = []
        parent: dict[int, object] = dict.fromkeys(graph)
        for r in matching:
            del parent[matching[r]]
        layer = list(parent)
        while layer and not free_refs:
            reached: dict[int, list[int]] = {}
            for e in layer:
                for r in graph[e]:
                    if r not in layer_of_ref:
                        reached.setdefault(r, []).append(e)
            layer = []
            for r, es in reached.items():
                layer_of_ref[r] = es
                if r in matching:
                    layer.append(matching[r])
                    parent[matching[r]] = r
                else:
                    free_refs.append(r)
        if not free_refs:
            return matching

        def augment(r: int) -> bool:
            if r not in layer_of_ref:
                return False
            es = layer_of_ref.pop(r)
            for e in es:
                if e in parent:
                    up = parent.pop(e)
                    if up is None or augment(up):
                        matching[r] = e
                        return True
            return False

        for r in free_refs:
            augment(r)


def _after_shots(ref: Reference, *, shots: int = N_SHOTS) -> tuple[np.ndarray, list[str]]:
    order = np.argsort(ref.events[:, 0], kind="stable")
    labels = [ref.labels[i] for i in order]
    pos_rows = [int(order[k]) for k, q in enumerate(labels) if q == "POS"]  # row numbers in the file
    if len(pos_rows) < shots:
        raise DataError(f"{ref.name} ({ref.subset}): {len(pos_rows)} POS event(s); the metric needs at least {shots}")
    at = pos_rows[shots - 1]
    if at >= len(order):
        raise DataError(f"{ref.name}: the table cannot be read as the evaluator reads it; sort its rows by Starttime")
    end = ref.events[order[at], 1]  # the evaluator's iloc with a row label: a position in the sorted table
    keep = [k for k in range(len(order)) if ref.events[order[k], 1] > end]
    return ref.events[order[keep]], [labels[k] for k in keep]


def counts(pred: np.ndarray, ref: Reference, *, min_iou: float = MIN_IOU) -> dict[str, int]:
    """TP, FP and FN of predictions ``pred (m, 2)`` against one reference after its examples: bipartite matching at IoU
    >= ``min_iou``, then a second round that drops predictions matching UNK events (the official rule)."""
    events, labels = _after_shots(ref)
    pos = events[[k for k, q in enumerate(labels) if q == "POS"]]
    unk = events[[k for k, q in enumerate(labels) if q == "UNK"]]
    est = pred[np.argsort(pred[:, 0], kind="stable")] if len(pred) else pred.reshape(0, 2)
    first = max_matching(iou_hits(pos, est, min_iou))
    rest = est[sorted(set(range(len(est))) - set(first.values()))]
    second = max_matching(iou_hits(unk, rest, min_iou))
    tp = len(first)
    return {"TP": tp, "FP": len(est) - tp - len(second), "FN": len(pos) - tp, "total_n_pos_events": len(pos)}


def scores(c: dict[str, int]) -> dict[str, float]:
    """Precision, recall and F from TP/FP/FN counts, floored as the official evaluator floors them."""
    tp, fp, fn = c["TP"], c["FP"], c["FN"]
    precision = max(tp / (tp + fp) if tp + fp else MIN_EVAL_VALUE, MIN_EVAL_VALUE)
    recall = tp / (fn + tp) if tp else MIN_EVAL_VALUE
    f = tp / (tp + 0.5 * (fp + fn)) if tp else MIN_EVAL_VALUE
    return {"precision": precision, "recall": recall, "f-measure": f}


def hmean(values: list[float]) -> float:
    """The harmonic mean of positive ``values`` (how the official metric combines subsets)."""
    return len(values) / sum(1.0 / v for v in values)


def evaluate(predictions: dict[str, np.ndarray], refs: dict[str, Reference]) -> dict:
    """The evaluator's report: ``overall_scores``, ``scores_per_subset``, ``scores_per_audiofile``,
    ``counts_per_audiofile``."""
    # a recording in another format (x.mp3) is its table's x.wav, the name the evaluator gives every table
    predictions = {(k if k in refs else f"{Path(k).stem}.wav"): v for k, v in predictions.items()}
    unknown = sorted(set(predictions) - set(refs))
    if unknown:
        raise DataError(f"predictions name {len(unknown)} file(s) with no reference annotation (e.g. {unknown[0]}); "
                        "pass the reference folder that holds them")
    per_file = {}
    for name, pred in predictions.items():
        per_file[name] = counts(pred, refs[name])
    for name, ref in refs.items():
        if name not in per_file:  # no predictions: the evaluator counts every POS event, the examples included
            n = sum(q == "POS" for q in ref.labels)
            per_file[name] = {"TP": 0, "FP": 0, "FN": n, "total_n_pos_events": n}
    subsets: dict[str, dict[str, int]] = {}
    for name, ref in refs.items():
        s = subsets.setdefault(ref.subset, {"TP": 0, "FN": 0, "FP": 0, "total_n_pos_events_this_set": 0})
        for k in ("TP", "FN", "FP"):
            s[k] += per_file[name][k]
        s["total_n_pos_events_this_set"] += per_file[name]["total_n_pos_events"]
    per_subset = {k: scores(v) for k, v in sorted(subsets.items())}
    overall = {"precision": hmean([v["precision"] for v in per_subset.values()]),
               "recall": hmean([v["recall"] for v in per_subset.values()]),
               "fmeasure (percentage)": round(hmean([v["f-measure"] for v in per_subset.values()]) * 100, 3)}
    return {"overall_scores": overall, "scores_per_subset": per_subset, "counts_per_subset": subsets,
            "scores_per_audiofile": {k: scores(v) for k, v in sorted(per_file.items())},
            "counts_per_audiofile": dict(sorted(per_file.items()))}


def format_report(report: dict) -> str:
    """Overall and per-subset P / R / F, then per-file counts, as plain text."""
    o = report["overall_scores"]
    lines = [f"overall: F {o['fmeasure (percentage)']:.3f}  P {100 * o['precision']:.2f}  R {100 * o['recall']:.2f}"]
    for name, s in report["scores_per_subset"].items():
        c = report["counts_per_subset"][name]
        lines.append(f"  {name}: F {100 * s['f-measure']:.2f}  P {100 * s['precision']:.2f}  R {100 * s['recall']:.2f}"
                     f"  (TP {c['TP']}, FP {c['FP']}, FN {c['FN']})")
    lines.append("per file: TP FP FN (POS events after the examples)")
    for name, c in report["counts_per_audiofile"].items():
        lines.append(f"  {name}: {c['TP']} {c['FP']} {c['FN']} ({c['total_n_pos_events']})")
    return "\n".join(lines)
