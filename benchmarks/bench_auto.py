"""``adapt --backbone auto`` on the real sets: the model the examples choose, next to every single model.

For each set under ../shared/data, every clip is embedded once by each candidate (as ``adapt`` embeds it) and
heard once by YAMNet (the domain model of auto's default); then on ``--seeds`` seeded splits per protocol:

* ``3-per-tag`` and ``1-per-tag``: every class a tag with 3 (or 1) examples, the other clips as queries; tag
  top-1 of the tagger built on each single model (``Tagger.from_embeddings`` / ``score_embeddings``);
* ``one-tag``: one class is the tag (3 examples) against 20 negatives drawn from the other classes, the rest
  scored: ROC AUC of the tag's score, held-out clips of the tag against the others;
* auto: :func:`fewshot_audio.tagging.model_choice.decide` on the split's examples (each candidate's leave-one-out
  outcomes and the domain default from YAMNet's classes of the examples), and the score of what it took;
* the whole-clip MFCC recipe (issue 28): 20 MFCCs at 16 kHz, 512-sample frames every 10 ms, mean and std,
  standardised with the labelled examples' statistics, 1-NN by Euclidean distance (one-tag: the distance to the
  nearest negative minus that to the nearest example);
* oracle: the best single model of each split, chosen with the queries' labels (the ceiling of choosing).

Then the seconds ``adapt`` takes with ``--backbone auto`` and with one named model on 20 tags x 3 examples
(speech_commands_30), both end to end through ``Tagger.adapt``.

    python benchmarks/bench_auto.py [--sets a,b] [--protocols 3-per-tag,1-per-tag,one-tag] [--seeds 10] [--out JSON]
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
from common import SETS, load_set, whole_clip_mfcc

from fewshot_audio.embedding import default_hop_s, embed_files, load_backbone
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.tagging.model_choice import candidates, clip_space, decide, domain_default, domain_probabilities, loo_outcomes
from fewshot_audio.tagging.tagger import Tagger

PROTOCOLS = ("3-per-tag", "1-per-tag", "one-tag")
NEGATIVES = 20


def tag_splits(labels: np.ndarray, seeds: int, shots: int):
    """(support idx, query idx) per seed: ``shots`` clips of every class, the rest as queries."""
    for s in range(seeds):
        rng = np.random.default_rng([s, 17, shots])
        support = np.concatenate([rng.choice(np.nonzero(labels == c)[0], shots, replace=False) for c in np.unique(labels)])
        yield support, np.setdiff1d(np.arange(len(labels)), support)


def one_tag_splits(labels: np.ndarray, seeds: int, examples: int = 3):
    """(tag, example idx, negative idx, query idx) per seed; the tag cycles in a seeded order through the classes
    with a clip left to score after the examples."""
    classes, counts = np.unique(labels, return_counts=True)
    order = np.random.default_rng(7).permutation(classes[counts > examples])
    for s in range(seeds):
        rng = np.random.default_rng([s, 23])
        tag = order[s % len(order)]
        pos = rng.choice(np.nonzero(labels == tag)[0], examples, replace=False)
        neg = rng.choice(np.nonzero(labels != tag)[0], NEGATIVES, replace=False)
        yield tag, pos, neg, np.setdiff1d(np.arange(len(labels)), np.concatenate([pos, neg]))


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC of scores ``pos`` against ``neg`` (ties half)."""
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def tagger_of(bb, emb, idx, labels_of) -> Tagger:
    return Tagger.from_embeddings(bb, [emb.windows[i] for i in idx], paths=[str(i) for i in idx],
                                  labels=labels_of, levels=[emb.levels[i] for i in idx])


def query_scores(t: Tagger, emb, query) -> np.ndarray:
    return torch.stack([t.score_embeddings(emb.windows[i], emb.levels[i])[0] for i in query]).numpy()


def recipe_scores(feats: np.ndarray, support: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(len(query), len(support))`` in the support-standardised recipe space."""
    mean, std = feats[support].mean(0), feats[support].std(0) + 1e-6
    zs, zq = (feats[support] - mean) / std, (feats[query] - mean) / std
    return ((zq[:, None, :] - zs[None]) ** 2).sum(-1)


def run_protocol(protocol: str, embedded: dict, labels: np.ndarray, recipe: np.ndarray, yam, seeds: int) -> dict:
    specs = list(embedded)
    rows = {spec: [] for spec in [*specs, "auto", "mfcc recipe", "oracle"]}
    chosen, reasons = [], []
    splits = (one_tag_splits(labels, seeds) if protocol == "one-tag" else
              tag_splits(labels, seeds, 1 if protocol == "1-per-tag" else 3))
    for split in splits:
        if protocol == "one-tag":
            tag, pos, neg, query = split
            support = np.concatenate([pos, neg])
            targets = torch.tensor([[i in set(pos)] for i in support], dtype=torch.bool)
            truth = labels[query] == tag
            for spec, (bb, emb) in embedded.items():
                t = tagger_of(bb, emb, support, [[tag] if i in set(pos) else [] for i in support])
                s = query_scores(t, emb, query)[:, 0]
                rows[spec].append(auc(s[truth], s[~truth]))
            d = recipe_scores(recipe, support, query)
            s = d[:, len(pos):].min(1) - d[:, : len(pos)].min(1)
            rows["mfcc recipe"].append(auc(s[truth], s[~truth]))
            examples = pos
        else:
            support, query = split
            tags = np.unique(labels[support])
            targets = torch.from_numpy(labels[support][:, None] == tags[None, :])
            for spec, (bb, emb) in embedded.items():
                t = tagger_of(bb, emb, support, [[labels[i]] for i in support])
                s = query_scores(t, emb, query)
                rows[spec].append(float(np.mean(np.array(t.tags)[s.argmax(1)] == labels[query])))
            nearest = recipe_scores(recipe, support, query).argmin(1)
            rows["mfcc recipe"].append(float(np.mean(labels[support][nearest] == labels[query])))
            examples = support
        outcomes = {spec: loo_outcomes(clip_space(bb, [emb.windows[i] for i in support],
                                                  [emb.levels[i] for i in support]), targets)
                    for spec, (bb, emb) in embedded.items()}
        default, why = domain_default(specs, None if yam[0] is None else yam[0][examples], yam[1])
        pick, reason = decide(outcomes, default, why)
        chosen.append(pick)
        reasons.append(reason)
        rows["auto"].append(rows[pick][-1])
        rows["oracle"].append(max(rows[s][-1] for s in specs))
    res = {k: mean_ci95(np.array(v)) for k, v in rows.items()}
    res["chosen"] = {s: chosen.count(s) for s in specs if s in chosen}
    res["reasons"] = reasons
    return res


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
    p.add_argument("--protocols", default=",".join(PROTOCOLS))
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
        paths = [Path(c.path) for c in clips]
        durations = [c.duration for c in clips]
        embedded = {}
        for spec in specs:
            bb = load_backbone(spec, device=device, durations=durations)
            embedded[spec] = (bb, embed_files(bb, paths, device=device, hop_s=default_hop_s(bb), quiet=True))
        yam = domain_probabilities(paths, device=device)
        recipe = np.stack([whole_clip_mfcc(str(x), frame_samples=512, hop_samples=160) for x in paths])
        results[name] = {}
        for protocol in args.protocols.split(","):
            res = run_protocol(protocol, embedded, labels, recipe, yam, args.seeds)
            results[name][protocol] = res
            print(name, protocol, json.dumps({k: v for k, v in res.items() if k != "reasons"}), flush=True)
            Path(args.out).write_text(json.dumps(results, indent=1))
    results["adapt_seconds_20_tags_x_3"] = auto_seconds(specs)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


def table(results: dict) -> str:
    sets = [k for k, v in results.items() if isinstance(v, dict) and any(p in v for p in PROTOCOLS)]
    f = lambda v: f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}"  # noqa: E731
    lines = []
    for protocol in PROTOCOLS:
        have = [s for s in sets if protocol in results[s]]
        if not have:
            continue
        metric = "ROC AUC" if protocol == "one-tag" else "tag top-1"
        rows = [*results["candidates"], "mfcc recipe", "auto", "oracle"]
        lines += ["", f"| {protocol}: {metric} | " + " | ".join(have) + " |", "|---|" + "---|" * len(have)]
        lines += [f"| {r} | " + " | ".join(f(results[s][protocol][r]) for s in have) + " |" for r in rows]
        lines.append("| auto chose (splits) | " + " | ".join(
            ", ".join(f"{k} {v}" for k, v in results[s][protocol]["chosen"].items()) for s in have) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        print(table(json.loads(Path(sys.argv[2]).read_text())))
        sys.exit(0)
    sys.exit(main())
