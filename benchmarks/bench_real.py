"""Real recordings: adapt + tag and episodic accuracy on the sets in ../shared/data, next to the whole-clip MFCC floor.

For every set and backbone, every file is embedded once per clip policy (short clips looped or
zero-padded); each seeded split then builds a tagger with ``Tagger.from_embeddings`` and scores the
queries with ``Tagger.score_embeddings`` (the code paths of ``adapt`` and ``tag``). Measured:

* tag top-1: 3 examples per tag, every class a tag, all other clips as queries, ``--seeds`` splits;
* rejection: a quarter of the classes held out of the vocabulary; the fraction of their clips given
  no tag at the calibrated thresholds (and the recall of the vocabulary's clips at those thresholds), at
  the default strictness and with the earlier balanced-accuracy thresholds;
* 5-way 1-shot and 5-shot episodes (300 each) with prototypes in the tagger's space;
* the same splits and episodes with the whole-clip MFCC nearest centroid (fewshot_audio.fewshot.baselines);
* ablations of the clip policy (loop/pad, mean/max/meanmax pooling), the embedding space
  (centred-L2 cosine vs raw squared distances) and the file score (pooled clip vs best window).

    python benchmarks/bench_real.py --run RUN_DIR [--sets a,b] [--backbones mfcc,musicnn-mtt,run,aisfx,...] [--out JSON]
    python benchmarks/bench_real.py --table benchmarks/results_real.json      # markdown tables
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA, SETS, load_set, nearest_centroid, splits, whole_clip_mfcc

from fewshot_audio.embedding import embed_files, load_backbone, loud_windows, pool_by_owner
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.fewshot.strategies.base import squared_distances
from fewshot_audio.fewshot.strategies.embedding import centred_l2
from fewshot_audio.tagging.heads import HEADS, Head
from fewshot_audio.tagging.tagger import Tagger


def episodes(labels: np.ndarray, shots: int, n: int = 300, ways: int = 5, queries: int = 5):
    counts = {c: int((labels == c).sum()) for c in np.unique(labels)}
    q = min(queries, max(1, min(counts.values()) - shots))
    eligible = [c for c, k in counts.items() if k >= shots + q]
    if len(eligible) < ways:
        return None, q
    rng = np.random.default_rng([shots, 99])
    out = []
    for _ in range(n):
        cls = rng.choice(eligible, ways, replace=False)
        picks = [rng.choice(np.nonzero(labels == c)[0], shots + q, replace=False) for c in cls]
        out.append((np.stack([p[:shots] for p in picks]), np.stack([p[shots:] for p in picks])))
    return out, q


@HEADS.register()
class RawPrototypes(Head):
    """The toolkit's earlier scoring, kept here to measure the default against: minus the squared distance per
    dimension to the tag's mean, in the raw space (MFCC statistics z-scored)."""

    name = "raw-prototypes"

    def fit(self, zs, positives):
        return zs[positives].mean(0)

    def scores(self, zs, params):
        return -squared_distances(zs, params) / zs.shape[-1]


class RawSpaceTagger(Tagger):
    """A tagger in the raw embedding space (no centring, no L2 normalisation)."""

    def space(self, z):
        return z if self.scale is None else (z - self.centre) / self.scale


def make_tagger(bb, windows, levels, *, paths, labels, normalize, strictness=None):
    cls, head = (Tagger, "prototypes") if normalize else (RawSpaceTagger, "raw-prototypes")
    return cls.from_embeddings(bb, windows, paths=paths, labels=labels, head=head, strictness=strictness,
                               levels=levels)


def tagger_metrics(bb, windows, levels, labels, paths, *, seeds, normalize, file_score="clip"):
    def scores_of(tagger, idx):
        clip_s, grams = zip(*(tagger.score_embeddings(windows[i], levels[i]) for i in idx))
        if file_score == "window":
            return torch.stack([g.max(0).values for g in grams]).numpy()
        return torch.stack(clip_s).numpy()

    top1 = []
    for support, query, _vocab, _ in splits(labels, seeds):
        t = make_tagger(bb, [windows[i] for i in support], [levels[i] for i in support],
                        paths=[paths[i] for i in support], labels=[[labels[i]] for i in support], normalize=normalize)
        s = scores_of(t, query)
        top1.append(np.mean(np.array(t.tags)[s.argmax(1)] == labels[query]))
    out = {"top1": mean_ci95(np.array(top1))}
    # thresholds at the default strictness, and with the earlier rule (balanced accuracy: weight 1, i.e.
    # strictness 1 / number of tags)
    for suffix, rule in (("", None), ("_balanced", "balanced")):
        rejected, recall = [], []
        for support, query, vocab, held in splits(labels, seeds, hold_out=0.25):
            t = make_tagger(bb, [windows[i] for i in support], [levels[i] for i in support],
                            paths=[paths[i] for i in support], labels=[[labels[i]] for i in support], normalize=normalize,
                            strictness=1 / len(vocab) if rule == "balanced" else None)
            th = t.thresholds.numpy()
            rejected.append(np.mean((scores_of(t, held) < th).all(1)))
            s = scores_of(t, query)
            cols = [t.tags.index(c) for c in labels[query]]
            recall.append(np.mean(s[np.arange(len(query)), cols] >= th[cols]))
        out[f"rejected{suffix}"], out[f"recall{suffix}"] = mean_ci95(np.array(rejected)), mean_ci95(np.array(recall))
    return out


def episode_metrics(clip_z: torch.Tensor, labels, *, normalize, scale=False):
    out = {}
    for shots in (1, 5):
        eps, q = episodes(labels, shots)
        if eps is None:
            out[f"{shots}shot"] = None
            continue
        accs = []
        for sup, qry in eps:
            zs, zq = clip_z[sup.flatten()], clip_z[qry.flatten()]
            mean = zs.mean(0)  # centred on the episode's support set (no base classes here), as the tagger does
            sd = zs.std(0) + 1e-6 if scale and len(zs) > 1 else None  # mfcc statistics: z-scored in both spaces
            if normalize:
                zs, zq = centred_l2(zs, mean, sd), centred_l2(zq, mean, sd)
            elif sd is not None:
                zs, zq = (zs - mean) / sd, (zq - mean) / sd
            protos = zs.view(*sup.shape, -1).mean(1)
            cosine = zq @ torch.nn.functional.normalize(protos, dim=-1).T
            pred = cosine.argmax(1) if normalize else (-torch.cdist(zq, protos)).argmax(1)
            accs.append((pred.numpy() == np.repeat(np.arange(len(sup)), qry.shape[1])).mean())
        out[f"{shots}shot"] = mean_ci95(np.array(accs)) + (q,)
    return out


def mfcc_reference(feats, labels, seeds):
    top1 = [np.mean(nearest_centroid(feats[s], labels[s], feats[q]) == labels[q]) for s, q, _, _ in splits(labels, seeds)]
    out = {"top1": mean_ci95(np.array(top1))}
    for shots in (1, 5):
        eps, q = episodes(labels, shots)
        if eps is None:
            out[f"{shots}shot"] = None
            continue
        accs = [np.mean(nearest_centroid(feats[s.flatten()], np.repeat(np.arange(5), shots), feats[qq.flatten()])
                        == np.repeat(np.arange(5), qq.shape[1])) for s, qq in eps]
        out[f"{shots}shot"] = mean_ci95(np.array(accs)) + (q,)
    return out


def in_context(paths: list[str], folder: Path, *, seconds: float, below_db: float | None, seed: int = 0) -> list[str]:
    """Each clip at a seeded random time inside ``seconds`` of background: a real recording of
    ../shared/data/backgrounds ``below_db`` dB below the clip's RMS, or digital silence (``None``): the short
    sound in a longer file that clip pooling must not drown. Returns the new files' paths."""
    import soundfile as sf
    import soxr

    rng = np.random.default_rng([seed, 23])
    beds = sorted((DATA / "backgrounds").glob("*.wav"))
    out = []
    for i, path in enumerate(paths):
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        x = x.mean(1)
        n = max(int(seconds * sr), len(x))
        bed = np.zeros(n, np.float32)
        if below_db is not None:
            noise, nsr = sf.read(beds[i % len(beds)], dtype="float32")
            noise = soxr.resample(noise, nsr, sr) if nsr != sr else noise
            start = rng.integers(0, len(noise) - n)
            noise = noise[start : start + n]
            rms = lambda v: float(np.sqrt(np.mean(np.square(v, dtype=np.float64))) + 1e-12)  # noqa: E731
            bed = noise * (rms(x) / rms(noise) * 10 ** (-below_db / 20))
        at = rng.integers(0, n - len(x) + 1)
        bed[at : at + len(x)] += x
        out.append(str(folder / f"{i:05d}.wav"))
        sf.write(out[-1], bed, sr, subtype="FLOAT")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a run folder meta-trained on the built-in dataset (fewshot-audio train --out RUN)")
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--backbones", default="mfcc,musicnn-mtt,run,aisfx,yamnet:layer12,speech-embedding")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--ablations", default="policy,pooling,space,file_score,loud")
    p.add_argument("--loud", default="inf,40,20,10", help="signal_db margins of the 'loud' ablation (inf: every window)")
    p.add_argument("--context", type=float, default=None,
                   help="place every clip at a random time inside this many seconds of background (see in_context)")
    p.add_argument("--context-db", type=float, default=None,
                   help="the background's level below each clip's RMS, dB (default: digital silence)")
    p.add_argument("--hop-fraction", type=float, default=0.5,
                   help="windows every this fraction of a window (default 0.5: as adapt and tag frame files; "
                   "results before 2026-11-30 15:00 used 1, one window)")
    p.add_argument("--out", default="benchmarks/results_real.json")
    args = p.parse_args(argv)
    scratch = tempfile.TemporaryDirectory()
    torch.set_num_threads(2)
    results = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    device = torch.device("cpu")
    for name in args.sets.split(","):
        clips, labels = load_set(name)
        paths = [c.path for c in clips]
        durations = [c.duration for c in clips]
        if args.context:
            (Path(scratch.name) / name).mkdir()
            paths = in_context(paths, Path(scratch.name) / name, seconds=args.context, below_db=args.context_db)
            durations = [max(d, args.context) for d in durations]
        res = results.setdefault(name, {"clips": len(clips), "classes": len(np.unique(labels)),
                                        "durations_s": [float(np.min(durations)), float(np.median(durations)), float(np.max(durations))]})
        t0 = time.perf_counter()
        feats = np.stack([whole_clip_mfcc(p) for p in paths])
        res["mfcc_whole_clip_reference"] = {**mfcc_reference(feats, labels, args.seeds), "seconds": round(time.perf_counter() - t0, 1)}
        print(name, "reference", res["mfcc_whole_clip_reference"], flush=True)
        for spec in args.backbones.split(","):
            bb0 = load_backbone(args.run if spec == "run" else spec, device=device, durations=durations)
            key = "run (built-in)" if spec == "run" else spec
            for short in ("loop", "pad") if "policy" in args.ablations else ("loop",):
                bb = dataclasses.replace(bb0, features=dataclasses.replace(bb0.features, short=short))
                t0 = time.perf_counter()
                hop = args.hop_fraction * bb.window if args.hop_fraction else None
                emb = embed_files(bb, [Path(p) for p in paths], device=device, hop_s=hop, quiet=True)
                seconds = time.perf_counter() - t0
                windows, levels = [torch.from_numpy(e) for e in emb.windows], [torch.from_numpy(v) for v in emb.levels]
                default_db = bb.features.signal_db
                variants = [("mean", True, "clip", default_db)]
                if short == "loop":
                    if "pooling" in args.ablations:
                        variants += [("max", True, "clip", default_db), ("meanmax", True, "clip", default_db)]
                    if "space" in args.ablations:
                        variants += [("mean", False, "clip", default_db)]
                    if "file_score" in args.ablations:
                        variants += [("mean", True, "window", default_db), ("mean", False, "window", default_db)]
                    if "loud" in args.ablations:
                        variants += [("mean", True, "clip", float(db)) for db in args.loud.split(",")]
                for pooling, normalize, file_score, signal_db in variants:
                    b = dataclasses.replace(bb, features=dataclasses.replace(bb.features, pooling=pooling,
                                                                             signal_db=signal_db))
                    m = tagger_metrics(b, windows, levels, labels, paths, seeds=args.seeds, normalize=normalize,
                                       file_score=file_score)
                    clip_z = torch.cat([pool_by_owner(w, torch.zeros(len(w), dtype=torch.long), 1, pooling=pooling,
                                                      levels=lv, margin=signal_db) for w, lv in zip(windows, levels)])
                    m.update(episode_metrics(clip_z, labels, normalize=normalize, scale=spec == "mfcc"))
                    m["windows_pooled"] = float(np.mean([loud_windows(lv, torch.zeros(len(lv), dtype=torch.long), 1,
                                                                      signal_db).float().mean() for lv in levels]))
                    label = (f"{key} | short={short} pooling={pooling} space={'centred-cosine' if normalize else 'raw'} "
                             f"file={file_score} loud={signal_db:g}dB")
                    res[label] = {**m, "window_s": bb.window, "embed_seconds": round(seconds, 1)}
                    print(name, label, dict(m), flush=True)
                Path(args.out).write_text(json.dumps(results, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0



def table(path: str) -> str:
    """Markdown tables of a results JSON: headline rows, then the ablations."""
    r = json.loads(Path(path).read_text())
    f = lambda v: "n/a" if v is None else f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}"  # noqa: E731
    lines = ["| set | path | tag top-1 | held-out rejected | recall at threshold | rejected / recall, balanced-accuracy "
             "thresholds (before) | 5-way 1-shot | 5-way 5-shot |", "|---|---|---|---|---|---|---|---|"]
    for ds, res in r.items():
        for k, v in res.items():
            if isinstance(v, dict):
                lines.append(f"| {ds} | {k.replace('|', '/')} | {f(v['top1'])} | {f(v.get('rejected'))} | "
                             f"{f(v.get('recall'))} | {f(v.get('rejected_balanced'))} / {f(v.get('recall_balanced'))} | "
                             f"{f(v.get('1shot'))} | {f(v.get('5shot'))} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        print(table(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
