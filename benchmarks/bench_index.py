"""Archive index benchmarks (issue #12): build throughput, `index tag` against `tag`, search quality and latency,
and peak memory on a 1-hour file.

    python benchmarks/bench_index.py [--data ../shared/data] [--backbone aisfx] [--parts build,tag,quality,latency,memory]

Writes benchmarks/results_index.json. Every ratio is measured side by side in this one script:
* build: `index build` at 1 and 2 workers and as 2 torchrun processes, against `tag` (decode + embed + score) on
  the same files; files/s and audio-hours per hour;
* tag: `index tag` (stored embeddings) against `tag` on the same files, and whether they agree on every file;
* quality: search by example on the archive (50 files of each set as examples, their own windows excluded),
  same-class precision@10 of the backbone's index against an index of whole-clip MFCC statistics;
* latency: exact search over 10k, 100k and 1M stored windows (random 512-d vectors: latency does not depend on
  the values);
* approximate: the search graph (USearch HNSW) against exact search at 10k, 100k and 1M windows drawn around
  the archive's real window embeddings: graph build time, latency and recall@10;
* memory: peak resident memory of `index build` on a generated 1-hour 44.1 kHz file, next to the same build
  on a 10-second file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import label_of  # noqa: E402

from fewshot_audio.archive.build import build_index  # noqa: E402
from fewshot_audio.archive.search import nearest  # noqa: E402
from fewshot_audio.archive.store import ArchiveStore, NewFile  # noqa: E402
from fewshot_audio.archive.tag_from_index import tag_index  # noqa: E402
from fewshot_audio.tagging.tagger import Tagger, audio_files  # noqa: E402


def archive_files(data: Path) -> list[Path]:
    return audio_files([data / d for d in ("fsdd", "speech_commands_30", "body_percussion", "kenney_impact")
                        if (data / d).exists()])


def bench_build(files, backbone, work: Path, quiet=True) -> dict:
    import soundfile as sf

    for f in files:  # every timing below reads the files from a warm page cache
        sf.info(str(f))
        f.read_bytes()
    out = {}
    for workers in (1, 2):
        target = work / f"idx-{backbone}-w{workers}"
        shutil.rmtree(target, ignore_errors=True)
        counts = build_index(files, backbone=backbone, out=target, workers=workers, quiet=quiet)
        out[f"workers_{workers}"] = counts
    # torchrun: two processes (ranks), each embedding half of the files into the one index
    target = work / f"idx-{backbone}-torchrun2"
    shutil.rmtree(target, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "fewshot_audio", "index",
                    "build", *map(str, files), "--backbone", backbone, "--out", str(target), "--device", "cpu", "--quiet"],
                   check=True, cwd=ROOT, capture_output=True)
    out["torchrun_2_processes"] = {"seconds": round(time.perf_counter() - t0, 2),
                                   "windows": ArchiveStore.open(target).window_count()}
    hours = ArchiveStore.open(work / f"idx-{backbone}-w1").audio_seconds() / 3600
    out["audio_hours"] = round(hours, 3)
    for key in ("workers_1", "workers_2", "torchrun_2_processes"):
        out[key]["files_per_s"] = round(len(files) / out[key]["seconds"], 1)
        out[key]["audio_hours_per_hour"] = round(hours / (out[key]["seconds"] / 3600), 1)
    return out


def bench_tag(files, backbone, work: Path, support: Path) -> dict:
    tagger_path = work / f"tagger-{backbone}.safetensors"
    tagger = Tagger.adapt(support, backbone=backbone, quiet=True)
    tagger.save(tagger_path)
    t0 = time.perf_counter()
    direct = tagger.tag([str(f.resolve()) for f in files], quiet=True)
    tag_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    indexed, _ = tag_index(work / f"idx-{backbone}-w1", tagger=tagger_path)
    index_s = time.perf_counter() - t0
    by_path = {r.path: r for r in indexed}
    same_tags = sum(by_path[r.path].tags == r.tags for r in direct)
    diffs = [abs(by_path[r.path].scores[t] - r.scores[t]) for r in direct if not r.error for t in r.scores]
    return {"files": len(files), "tag_seconds": round(tag_s, 2), "index_tag_seconds": round(index_s, 3),
            "speedup": round(tag_s / index_s, 1), "files_with_identical_tags": same_tags,
            "max_score_difference": float(max(diffs))}


def precision_at_10(index_dir: Path, queries: int = 200, standardize: bool = False) -> dict:
    """Same-class precision@10 of search by example, over all queries and per set of the query."""
    index = ArchiveStore.open(index_dir)
    paths, zs, owner = [], [], []
    for p, z, _, _, _ in index.windows_of_files():
        if z is None:
            continue
        paths.append(p)
        zs.append(z)
        owner += [len(paths) - 1] * len(z)
    z = torch.from_numpy(np.concatenate(zs))
    owner = torch.tensor(owner)
    if standardize:
        z = (z - z.mean(0)) / (z.std(0) + 1e-6)
    zn = torch.nn.functional.normalize(z, dim=1)
    labels = [label_of(p) for p in paths]
    rng = np.random.default_rng(0)
    sets = np.array([lab.split(":")[0] for lab in labels])
    # the same number of queries from every set (the archive is mostly FSDD)
    picks = np.concatenate([rng.choice(np.nonzero(sets == name)[0], size=min(queries // 4, int((sets == name).sum())),
                                       replace=False) for name in sorted(set(sets))])
    hits = []
    for q in picks:
        query = torch.nn.functional.normalize(z[owner == q].mean(0), dim=0)
        scores = zn @ query
        scores[owner == q] = -2  # the example's own windows
        top = torch.topk(scores, 10).indices
        hits.append((labels[q].split(":")[0], np.mean([labels[owner[j]] == labels[q] for j in top.tolist()])))
    out = {"all": round(float(np.mean([h for _, h in hits])), 4)}
    for name in sorted({s for s, _ in hits}):
        out[name] = round(float(np.mean([h for s, h in hits if s == name])), 4)
    return out


def bench_quality(files, backbone, work: Path) -> dict:
    mfcc = work / "idx-mfcc"
    shutil.rmtree(mfcc, ignore_errors=True)
    build_index(files, backbone="mfcc", out=mfcc, quiet=True)
    return {f"{backbone}_precision_at_10": precision_at_10(work / f"idx-{backbone}-w1"),
            "mfcc_precision_at_10": precision_at_10(mfcc),
            "mfcc_standardized_precision_at_10": precision_at_10(mfcc, standardize=True),
            "queries": "50 per set"}


def synthetic_index(root: Path, n_windows: int, dim: int = 512, per_file: int = 1000, vectors=None) -> Path:
    """An index of ``n_windows`` vectors from ``vectors(rng, n)`` (default: isotropic Gaussian, ``dim``-d),
    written through the store as a build writes it (one shard per 100,000 windows)."""
    root.mkdir(parents=True, exist_ok=True)
    store = ArchiveStore(root)
    store.set_up({"backbone": "synthetic", "hop": 1.0})
    rng = np.random.default_rng(0)
    shard_rows = 100_000
    for shard, start in enumerate(range(0, n_windows, shard_rows), 1):
        n = min(shard_rows, n_windows - start)
        z = vectors(rng, n) if vectors is not None else rng.standard_normal((n, dim), dtype=np.float32)
        t = np.stack([np.arange(n) % per_file, np.arange(n) % per_file + 1], 1).astype(np.float32)
        store.commit_shard([NewFile(f"s{shard}/f{j}.wav", 0, 0, 0.0, z[j * per_file : (j + 1) * per_file],
                                    t[j * per_file : (j + 1) * per_file], None)
                            for j in range((n + per_file - 1) // per_file)])
    return root


def real_anchored(anchors: np.ndarray, noise: float = 0.3):
    """Vectors drawn around real window embeddings: a random real one plus Gaussian noise of ``noise`` times
    the per-dimension standard deviation (the anisotropy and clusters of real embeddings, at any count)."""
    std = anchors.std(0)

    def draw(rng, n):
        return anchors[rng.integers(0, len(anchors), n)] + noise * std * rng.standard_normal((n, anchors.shape[1]), dtype=np.float32)

    return draw


def bench_approximate(work: Path, anchor_index: Path, sizes=(10_000, 100_000, 1_000_000), queries: int = 50) -> dict:
    """Exact against approximate search (:mod:`fewshot_audio.archive.ann`) over real-anchored vectors: graph build
    time, latency per query (the whole call: search and the database look-ups of paths and times; the first
    query also opens the graph) and recall@10."""
    from fewshot_audio.archive.ann import ann_nearest, build_ann

    index = ArchiveStore.open(anchor_index)
    anchors = np.concatenate([z for _, z, _, _, _ in index.windows_of_files() if z is not None]).astype(np.float32)
    draw = real_anchored(anchors)
    out = {"vectors": f"real {index.meta['backbone']} window embeddings ({len(anchors)}) plus noise of 0.3 x their "
                      "per-dimension std", "queries": queries}
    for n in sizes:
        root = synthetic_index(work / f"ann-{n}", n, vectors=draw)
        syn = ArchiveStore(root)
        t0 = time.perf_counter()
        build_ann(syn, quiet=True)
        build_s = time.perf_counter() - t0
        qs = draw(np.random.default_rng(1), queries)
        from fewshot_audio.archive import ann

        ann._OPEN.clear()
        t0 = time.perf_counter()
        ann_nearest(syn, qs[0], k=10)
        first_ms = 1000 * (time.perf_counter() - t0)
        exact_ms, approx_ms, recall = [], [], []
        for q in qs:
            t0 = time.perf_counter()
            truth = nearest(syn, torch.from_numpy(q), k=10)
            exact_ms.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            found = ann_nearest(syn, q, k=10)
            approx_ms.append(1000 * (time.perf_counter() - t0))
            recall.append(len({(h["path"], h["start"]) for h in found} & {(h["path"], h["start"]) for h in truth}) / 10)
        out[f"{n}_windows"] = {"exact_ms": round(float(np.median(exact_ms)), 2),
                               "approximate_ms": round(float(np.median(approx_ms)), 2),
                               "approximate_first_query_ms": round(first_ms, 2),
                               "speedup": round(float(np.median(exact_ms) / np.median(approx_ms)), 1),
                               "recall_at_10": round(float(np.mean(recall)), 4),
                               "graph_build_s": round(build_s, 1),
                               "graph_build_ms_per_1k_windows": round(1000 * build_s / (n / 1000), 1)}
        print(n, out[f"{n}_windows"], flush=True)
        shutil.rmtree(root)
    return out


def bench_latency(work: Path) -> dict:
    out = {}
    for n in (10_000, 100_000, 1_000_000):
        root = synthetic_index(work / f"syn-{n}", n)
        index = ArchiveStore(root)
        q = torch.randn(512)
        nearest(index, q, k=10)  # warm (page cache, first-call costs)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            nearest(index, torch.randn(512), k=10)
            times.append(time.perf_counter() - t0)
        out[f"{n}_windows_ms"] = round(1000 * float(np.median(times)), 1)
        shutil.rmtree(root)
    return out


def bench_memory(backbone: str, work: Path) -> dict:
    import soundfile as sf

    out = {}
    for seconds in (10, 3600):
        path = work / f"long-{seconds}s.wav"
        with sf.SoundFile(str(path), "w", samplerate=44100, channels=1, subtype="PCM_16") as fh:
            rng = np.random.default_rng(0)
            for _ in range(0, seconds, 60):
                block = min(60, seconds)
                t = np.arange(44100 * block) / 44100
                fh.write((0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
        target = work / f"idx-long-{seconds}"
        shutil.rmtree(target, ignore_errors=True)
        code = ("import resource, sys, time; from fewshot_audio.archive.build import build_index; t0 = time.time(); "
                f"c = build_index([{str(path)!r}], backbone={backbone!r}, out={str(target)!r}, quiet=True); "
                "print(c['windows'], round(time.time() - t0, 1), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        windows, secs, rss_kb = r.stdout.split()
        out[f"{seconds}_s_file"] = {"windows": int(windows), "seconds": float(secs), "peak_rss_mb": round(int(rss_kb) / 1024),
                                    "file_mb": round(path.stat().st_size / 2**20)}
        path.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--backbone", default="aisfx")
    ap.add_argument("--parts", default="build,tag,quality,latency,approximate,memory")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    parts = args.parts.split(",")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_index_"))
    files = archive_files(Path(args.data))
    result_path = ROOT / "benchmarks" / "results_index.json"
    results = json.loads(result_path.read_text()) if result_path.exists() else {}
    results["machine"] = f"{os.cpu_count()} CPU threads, torch {torch.__version__}, {torch.get_num_threads()} intra-op threads"
    results["archive"] = {"files": len(files), "sets": "fsdd + speech_commands_30 + body_percussion + kenney_impact"}
    if "build" in parts:
        results["build"] = bench_build(files, args.backbone, work)
        print(json.dumps(results["build"], indent=1))
    if "tag" in parts:
        support = work / "support"  # 3 examples of each kenney_impact class as the tagger's vocabulary
        shutil.rmtree(support, ignore_errors=True)
        for d in sorted((Path(args.data) / "kenney_impact").iterdir()):
            if d.is_dir():
                (support / d.name).mkdir(parents=True)
                for f in sorted(d.iterdir())[:3]:
                    shutil.copy(f, support / d.name / f.name)
        results["tag"] = bench_tag(files, args.backbone, work, support)
        print(json.dumps(results["tag"], indent=1))
    if "quality" in parts:
        results["search_quality"] = bench_quality(files, args.backbone, work)
        print(json.dumps(results["search_quality"], indent=1))
    if "latency" in parts:
        results["search_latency_exact"] = bench_latency(work)
        print(json.dumps(results["search_latency_exact"], indent=1))
    if "approximate" in parts:
        anchor = work / f"idx-{args.backbone}-w1"
        if not ArchiveStore.exists(anchor):
            build_index(files, backbone=args.backbone, out=anchor, quiet=True)
        results["search_approximate"] = bench_approximate(work, anchor)
    if "memory" in parts:
        results["memory"] = bench_memory(args.backbone, work)
        print(json.dumps(results["memory"], indent=1))
    result_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {result_path} (work folder {work})")


if __name__ == "__main__":
    main()
