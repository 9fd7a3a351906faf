"""``adapt --backbone auto`` on the real sets: the model the examples choose, next to every single model.

For each set under ../shared/data, every clip is embedded once by each candidate (as ``adapt`` embeds
it); then on each of ``--seeds`` seeded splits (3 examples per class, every class a tag, the other
clips as queries; the splits of ``bench_real.py``):

* each single model: tag top-1 of the tagger built on it (``Tagger.from_embeddings`` / ``score_embeddings``);
* auto: the candidate with the best leave-one-out balanced accuracy on the split's examples
  (:func:`fewshot_audio.tagging.model_choice.loo_balanced_accuracy`), and its top-1;
* concat: every candidate's clip embeddings in its own tagger space, concatenated (equal weights), with
  prototypes: the "combination of normalised embeddings" alternative to choosing one;
* oracle: the best single model of each split, chosen with the queries' labels (the ceiling of choosing).

Then the seconds ``adapt`` takes with ``--backbone auto`` and with one named model on 20 tags x 3 examples
(speech_commands_30), both end to end through ``Tagger.adapt``.

    python benchmarks/bench_auto.py [--sets a,b] [--candidates mfcc,aisfx,...] [--seeds 10] [--out JSON]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real import SETS, load_set, splits

from fewshot_audio.embedding import default_hop, embed_files, load_backbone
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.fewshot.strategies.embedding import centred_l2, space_statistics
from fewshot_audio.tagging.model_choice import candidates, clip_space, loo_balanced_accuracy, pooled_clips
from fewshot_audio.tagging.tagger import Tagger


def top1(bb, emb, labels, paths, support, query) -> float:
    t = Tagger.from_embeddings(bb, [emb.windows[i] for i in support], paths=[paths[i] for i in support],
                               labels=[[labels[i]] for i in support], levels=[emb.levels[i] for i in support])
    s = torch.stack([t.score_embeddings(emb.windows[i], emb.levels[i])[0] for i in query]).numpy()
    return float(np.mean(np.array(t.tags)[s.argmax(1)] == labels[query]))


def concat_top1(embedded, labels, support, query) -> float:
    """Prototypes over the concatenation of each candidate's clip embeddings, each in its own tagger space
    (fitted on the support clips alone), with equal weights."""
    zs, zq = [], []
    for bb, emb in embedded.values():
        s, q = ([emb.windows[i] for i in idx] for idx in (support, query))
        s, q = pooled_clips(bb, s, [emb.levels[i] for i in support]), pooled_clips(bb, q, [emb.levels[i] for i in query])
        stats = space_statistics(s, standardize=getattr(bb.model, "standardize", False))
        zs.append(centred_l2(s, *stats))
        zq.append(centred_l2(q, *stats))
    zs, zq = torch.cat(zs, dim=1), torch.cat(zq, dim=1)
    tags = np.unique(labels[support])
    protos = torch.stack([zs[torch.from_numpy(labels[support] == t)].mean(0) for t in tags])
    scores = torch.nn.functional.normalize(zq, dim=1) @ torch.nn.functional.normalize(protos, dim=1).T
    return float(np.mean(tags[scores.argmax(1).numpy()] == labels[query]))


def auto_seconds(specs: list[str], n_tags: int = 20, per_tag: int = 3) -> dict:
    clips, labels = load_set("speech_commands_30")
    words = sorted(np.unique(labels))[:n_tags]
    rows = [(c.path, w) for w in words for c in [c for c, lab in zip(clips, labels) if lab == w][:per_tag]]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "support.csv"
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows([("path", "labels"), *rows])
        for spec in ["auto", *specs]:
            t0 = time.perf_counter()
            t = Tagger.adapt(path, backbone=spec, quiet=True)
            out[spec] = {"seconds": round(time.perf_counter() - t0, 1), "backbone": t.backbone.name}
            print("adapt", n_tags, "tags x", per_tag, spec, out[spec], flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--candidates", default=None, help="default: the candidates auto tries on this machine")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--timing-only", action="store_true", help="only the seconds of adapt (auto and each candidate)")
    p.add_argument("--out", default="benchmarks/results_auto.json")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    specs = args.candidates.split(",") if args.candidates else candidates()
    if args.timing_only:
        results = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {"candidates": specs}
        results["adapt_seconds_20_tags_x_3"] = auto_seconds(specs)
        Path(args.out).write_text(json.dumps(results, indent=1))
        return 0
    device = torch.device("cpu")
    results = {"candidates": specs}
    for name in args.sets.split(","):
        clips, labels = load_set(name)
        paths = [c.path for c in clips]
        durations = [c.duration for c in clips]
        embedded = {}
        for spec in specs:
            bb = load_backbone(spec, device=device, durations=durations)
            embedded[spec] = (bb, embed_files(bb, [Path(x) for x in paths], device=device, hop=default_hop(bb), quiet=True))
        rows = {spec: [] for spec in [*specs, "auto", "concat", "oracle"]}
        chosen = []
        for support, query, _vocab, _ in splits(labels, args.seeds):
            targets = torch.from_numpy(labels[support][:, None] == np.unique(labels[support])[None, :])
            estimates = {}
            for spec, (bb, emb) in embedded.items():
                rows[spec].append(top1(bb, emb, labels, paths, support, query))
                zs = clip_space(bb, [emb.windows[i] for i in support], [emb.levels[i] for i in support])
                estimates[spec] = loo_balanced_accuracy(zs, targets)
            pick = max(specs, key=lambda s: estimates[s])  # ties: the earlier candidate, as auto
            chosen.append(pick)
            rows["auto"].append(rows[pick][-1])
            rows["oracle"].append(max(rows[s][-1] for s in specs))
            rows["concat"].append(concat_top1(embedded, labels, support, query))
        res = {k: mean_ci95(np.array(v)) for k, v in rows.items()}
        res["chosen"] = {s: chosen.count(s) for s in specs if s in chosen}
        results[name] = res
        print(name, json.dumps(res), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
    results["adapt_seconds_20_tags_x_3"] = auto_seconds(specs)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


def table(results: dict) -> str:
    sets = [k for k, v in results.items() if isinstance(v, dict) and "chosen" in v]
    rows = [*results["candidates"], "auto", "concat", "oracle"]
    f = lambda v: f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}"  # noqa: E731
    lines = ["| tag top-1, 3 examples per tag | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    lines += [f"| {r} | " + " | ".join(f(results[s][r]) for s in sets) + " |" for r in rows]
    lines.append("| auto chose (splits) | " + " | ".join(", ".join(f"{k} {v}" for k, v in results[s]["chosen"].items())
                                                       for s in sets) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        print(table(json.loads(Path(sys.argv[2]).read_text())))
        sys.exit(0)
    sys.exit(main())
