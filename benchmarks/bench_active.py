"""Active learning from an index (issue #12): does labelling the files `index suggest` proposes improve a tagger
faster than labelling random files, and do confirmed negatives lower its false positives on unseen classes?

    python benchmarks/bench_active.py [--index INDEX] [--sets body_percussion,fsdd] [--seeds 10]

For each seed and set: a few classes are held out (never in the vocabulary); the tagger starts from 2 examples
of each other class; the remaining files are split in half into a pool (what `index suggest` ranks) and a test
half. Labels are given one at a time, round-robin over the tags: the method picks one pool file for the tag,
an oracle (the file's true class) answers yes or no, and `Tagger.add_examples` folds it in, exactly as
`fewshot-audio tagger add-examples` does. After 0, 10, 20 and 40 labels the tagger is scored on the test half:
top-1 accuracy of known-class files (highest clip score), macro F1 of the tag decisions (score >= threshold)
over all test files, and the fraction of held-out-class test files given any tag (false positives). The
'positives only' rows use the same method but drop the answers "no", to measure what negatives bring.
Writes benchmarks/results_active.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import label_of, multilabel_metrics  # noqa: E402

from fewshot_audio.archive.build import build_index  # noqa: E402
from fewshot_audio.archive.store import ArchiveStore  # noqa: E402
from fewshot_audio.embedding import load_backbone  # noqa: E402
from fewshot_audio.fewshot.metrics import mean_ci95  # noqa: E402
from fewshot_audio.tagging.active import rank_for_labelling  # noqa: E402
from fewshot_audio.tagging.tagger import Tagger  # noqa: E402

BUDGETS = (0, 10, 20, 40)


def evaluate(tagger: Tagger, clip_scores: np.ndarray, labels: list[str], test: np.ndarray) -> dict:
    tags = tagger.tags
    th = tagger.thresholds.numpy()
    s = clip_scores[test]
    y = [labels[i] for i in test]
    known = np.array([lab in tags for lab in y])
    top1 = float(np.mean([tags[j] == lab for j, lab in zip(s.argmax(1)[known], np.array(y)[known])]))
    truth = np.array([[lab == t for t in tags] for lab in y])
    f1 = multilabel_metrics(s, truth, thresholds=th)["macro_f1"]
    return {"top1": top1, "macro_f1": f1, "heldout_false_positive": float((s >= th)[~known].any(1).mean())}


def run(set_name: str, z_by_file: list[np.ndarray], labels: list[str], bb, *, seed: int, method: str,
        negatives: bool, held_out: int, initial: int = 2) -> dict[int, dict]:
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    unseen = set(rng.choice(classes, held_out, replace=False).tolist())
    tags = [c for c in classes if c not in unseen]
    by_class = {c: rng.permutation([i for i, lab in enumerate(labels) if lab == c]).tolist() for c in classes}
    support = [i for t in tags for i in by_class[t][:initial]]
    rest = [i for c in classes for i in (by_class[c][initial:] if c in tags else by_class[c])]
    rest = rng.permutation(rest)
    pool, test = rest[: len(rest) // 2].tolist(), np.sort(rest[len(rest) // 2 :])
    tagger = Tagger.from_embeddings(bb, [z_by_file[i] for i in support], paths=[f"f{i}" for i in support],
                                    labels=[[labels[i]] for i in support], tags=tags)
    z = torch.from_numpy(np.concatenate(z_by_file))
    owner = torch.cat([torch.full((len(w),), i) for i, w in enumerate(z_by_file)])
    n = len(z_by_file)
    out = {0: evaluate(tagger, tagger.clip_scores(z, owner, n).numpy(), labels, test)}
    labelled: set[int] = set()
    for step in range(1, BUDGETS[-1] + 1):
        tag = tags[(step - 1) % len(tags)]
        j = tagger.tags.index(tag)
        candidates = [i for i in pool if i not in labelled]
        scores = tagger.clip_scores(z, owner, n).numpy()[candidates, j]
        pick = candidates[int(rank_for_labelling(scores, float(tagger.thresholds[j]), method=method, k=1,
                                                 seed=seed * 1000 + step)[0])]
        labelled.add(pick)
        answer = labels[pick] == tag
        if answer or negatives:
            tagger.add_examples(tag, [z_by_file[pick]], [f"f{pick}"], [answer])
        if step in BUDGETS:
            out[step] = evaluate(tagger, tagger.clip_scores(z, owner, n).numpy(), labels, test)
    return out


def summarise(runs: list[dict[int, dict]]) -> dict:
    out = {}
    for b in BUDGETS:
        cell = {}
        for key in runs[0][b]:
            mean, ci = mean_ci95([r[b][key] for r in runs])
            cell[key] = [round(100 * mean, 1), round(100 * ci, 1)]
        out[str(b)] = cell
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--index", help="an index holding the sets (default: built here with --backbone)")
    ap.add_argument("--backbone", default="aisfx")
    ap.add_argument("--sets", default="body_percussion,fsdd")
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = {"protocol": __doc__.split("\n\n")[2].replace("\n", " "), "budgets": list(BUDGETS), "seeds": args.seeds}
    work = None
    if args.index is None:
        work = Path(tempfile.mkdtemp(prefix="bench_active_"))
        args.index = str(work / "idx")
        build_index([Path(args.data) / s for s in args.sets.split(",")], backbone=args.backbone, out=args.index, quiet=True)
    index = ArchiveStore.open(args.index)
    bb = load_backbone(index.meta["backbone"], device=torch.device("cpu"))
    results["backbone"] = index.meta["backbone"]
    for set_name in args.sets.split(","):
        files = [(p, z) for p, z, _, _, _ in index.windows_of_files() if z is not None and label_of(p).startswith(set_name + ":")]
        labels = [label_of(p) for p, _ in files]
        zs = [z for _, z in files]
        held_out = max(2, len(set(labels)) // 4)
        cell = {"files": len(files), "classes": len(set(labels)), "held_out_classes": held_out}
        for method, negatives in (("uncertain", True), ("top", True), ("random", True), ("uncertain", False), ("top", False)):
            name = method + ("" if negatives else " (positives only)")
            runs = [run(set_name, zs, labels, bb, seed=s, method=method, negatives=negatives, held_out=held_out)
                    for s in range(args.seeds)]
            cell[name] = summarise(runs)
            print(set_name, name, json.dumps(cell[name]), flush=True)
        results[set_name] = cell
    results["seconds"] = round(time.perf_counter() - t0, 1)
    path = ROOT / "benchmarks" / "results_active.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}")
    if work is not None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
