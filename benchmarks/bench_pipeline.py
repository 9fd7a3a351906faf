"""Pipeline speed, each figure a ratio against a baseline run side by side in this script.

1. Feature extraction: the batched torch.stft + mel store front end vs per-clip librosa.
2. Episode sampling (indices, and indices + the episode's feature tensor) through the toolkit and
   through peer pipelines (benchmarks/peers.py: a plain Dataset + DataLoader + episode batch sampler
   with default settings, easyfsl's TaskSampler, learn2learn's Taskset), at 1 and 2 intra-op
   threads, from 1k to 100k clips, all in one process; peak memory of each in its own process.
3. Meta-training episodes/s of one Conv4 model fed by each pipeline, and with each of the
   toolkit's CPU settings on and off (a process per run: malloc settings are process-wide).
4. Evaluation episodes/s: embed-once batched scoring vs re-embedding each episode, with a
   check that the predictions are identical, on 2k and 10k novel clips.

Peers: ``bash benchmarks/install_peers.sh`` (rows for peers that are not installed are left out).
Usage: python benchmarks/bench_pipeline.py [--quick] [--json OUT] [--markdown OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, *, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


# ----------------------------------------------------------------------------- 1. features
def bench_features(n_clips: int) -> dict:
    import librosa

    from fewshot_audio.config import FeatureConfig
    from fewshot_audio.features.frontends import compute_features

    cfg = FeatureConfig(duration=1.0)  # the built-in dataset's clips (what duration: auto resolves to there)
    rng = np.random.default_rng(0)
    waves = (rng.standard_normal((n_clips, cfg.n_samples)) * 0.1).astype(np.float32)

    def ours():
        for s in range(0, n_clips, 256):
            compute_features(waves[s : s + 256], cfg)

    def per_clip():
        for w in waves:
            librosa.power_to_db(librosa.feature.melspectrogram(y=w, sr=cfg.sample_rate, n_fft=cfg.n_fft,
                                                               hop_length=cfg.hop_length, n_mels=cfg.n_mels),
                                ref=1.0, amin=1e-10, top_db=80)

    t_ours, t_ref = timed(ours, repeat=2, warmup=1), timed(per_clip, repeat=1, warmup=1)
    return {"clips": n_clips, "toolkit_clips_per_s": n_clips / t_ours, "librosa_clips_per_s": n_clips / t_ref,
            "ratio": t_ref / t_ours}


# ----------------------------------------------------------------------------- 2. sampling
SHAPE, WAY, SHOT, QUERY = (1, 64, 96), 5, 5, 15


def _rate(episodes_fn, n_episodes: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` episodes/s of iterating ``episodes_fn()`` (which yields ``n_episodes`` episodes)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _episode in episodes_fn():
            pass
        best = min(best, time.perf_counter() - t0)
    return n_episodes / best


def _peak_memory(name: str, n_clips: int, n_episodes: int) -> float:
    """MiB that pipeline ``name`` adds at its peak over the feature array, measured in a fresh process."""
    code = (f"import sys; sys.path[:0] = {[str(Path(__file__).parent)]!r}; import bench_pipeline as b; "
            f"print(b._peak_memory_here({name!r}, {n_clips}, {n_episodes}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(r.stdout.split()[-1])


def _peak_memory_here(name: str, n_clips: int, n_episodes: int) -> float:
    def status(field: str) -> float:  # MiB
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024

    from fewshot_audio.util.runtime import tune_cpu

    tune_cpu()
    torch.set_num_threads(1)
    x, labels = _features(n_clips)
    episodes = _pipelines(x, labels, n_episodes, only=name)[name]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set size (VmHWM) to the current one
    before = status("VmRSS")
    for _episode in episodes():
        pass
    return status("VmHWM") - before


def _features(n_clips: int) -> tuple[torch.Tensor, np.ndarray]:
    x = torch.empty(n_clips, *SHAPE).uniform_(-1, 1)  # every page touched, as real features are
    return x, _labels(n_clips)


def _labels(n_clips: int) -> np.ndarray:
    return np.arange(n_clips) % (n_clips // 20)  # 20 clips per class: classes grow with the dataset


def _pipelines(x: torch.Tensor, labels: np.ndarray, n_episodes: int, only: str | None = None) -> dict:
    """name -> a function yielding ``n_episodes`` (support, query) feature tensors (or indices only)."""
    import peers

    from fewshot_audio.fewshot.dataset import DeviceData
    from fewshot_audio.fewshot.episodes import EpisodeSampler

    n_classes = int(labels.max()) + 1
    data = DeviceData(x.numpy(), device=torch.device("cpu"), crop=SHAPE[-1])
    sampler = EpisodeSampler(labels=torch.from_numpy(labels), classes=list(range(n_classes)),
                             class_names=[str(c) for c in range(n_classes)], n_way=WAY, n_shot=SHOT, n_query=QUERY)

    def toolkit(batch: int, gather: bool):
        def episodes():
            for _ in range(n_episodes // batch):
                ep = sampler.sample(batch)
                yield (data.inputs(ep.support), data.inputs(ep.query)) if gather else ep
        return episodes

    rows = torch.from_numpy(np.random.default_rng(0).integers(0, len(labels), (n_episodes, WAY * (SHOT + QUERY))))

    def copy_only():  # the floor of any pipeline that hands over the episode tensor: the copy alone
        for r in rows:
            yield torch.index_select(x, 0, r)

    out = {"toolkit": toolkit(1, True), "toolkit, meta-batch 16": toolkit(16, True),
           "toolkit indices only": toolkit(1, False), "toolkit indices only, meta-batch 16": toolkit(16, False),
           "copy of the episode features alone": copy_only}
    for name, make in peers.PEERS.items():
        if only in (None, name):
            made = make(x, labels, n_way=WAY, n_shot=SHOT, n_query=QUERY, n_episodes=n_episodes)
            if made is not None:
                out[name] = made
    return out


def bench_sampling(sizes: list[int], n_episodes: int, memory: bool) -> dict:
    """Episodes/s of every pipeline, at 1 and 2 intra-op threads, for each dataset size (one process)."""
    import peers

    from fewshot_audio.util.runtime import tune_cpu

    tune_cpu()  # as the toolkit does on the CPU; process-wide, so the peers run with it too
    x_all, _ = _features(max(sizes))
    rows, missing = [], [name for name, make in peers.PEERS.items()
                         if make(x_all[:100], np.arange(100) % 5, n_way=WAY, n_shot=SHOT, n_query=QUERY,
                                 n_episodes=1) is None]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for n in sizes:
            x, labels = x_all[:n], _labels(n)
            for name, episodes in _pipelines(x, labels, n_episodes).items():
                rate = _rate(episodes, n_episodes)
                rows.append({"pipeline": name, "clips": n, "threads": threads, "episodes_per_s": rate})
                print("sampling", json.dumps(rows[-1]), flush=True)
    out = {"episode": f"{WAY}-way {SHOT}-shot {QUERY}-query on {SHAPE}", "rows": rows,
           "peers_not_installed": missing}
    if memory:
        names = ["toolkit"] + [n for n in peers.PEERS if n not in missing]
        out["peak_memory_mib"] = {name: _peak_memory(name, max(sizes), n_episodes) for name in names}
        print("peak memory", json.dumps(out["peak_memory_mib"]), flush=True)
    return out


# ----------------------------------------------------------------------------- 3. training
TRAIN_SNIPPET = r"""
import json, sys, time, ctypes, numpy as np, torch
pipeline, mallopt, channels_last, threads, n = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
compiled = sys.argv[7] == "1"
import bench_pipeline as b
from fewshot_audio.util.runtime import tune_cpu
from fewshot_audio.models.backbones import build_backbone
from fewshot_audio.fewshot.strategies import Prototypical
if mallopt:
    tune_cpu()
torch.set_num_threads(threads)
torch.manual_seed(0)
x, labels = b._features(2000)
episodes = b._pipelines(x, labels, n + 3, only=pipeline)[pipeline]
model = build_backbone("conv4", input_shape=b.SHAPE, channels=64)
if channels_last:
    model = model.to(memory_format=torch.channels_last)
if compiled:
    model.compile()  # as compile: true does; the 3 untimed steps include the compilation
s = Prototypical(backbone=model, device=torch.device("cpu"))
s.train_mode(True)
classes = torch.arange(b.WAY)[None]
outside = 0.0
it = iter(episodes())
for step in range(n + 3):
    if step == 3:
        t0, outside = time.perf_counter(), 0.0
    t1 = time.perf_counter()
    support, query = next(it)
    outside += time.perf_counter() - t1
    s.train_step(support.reshape(1, b.WAY, b.SHOT, *b.SHAPE), query.reshape(1, b.WAY, b.QUERY, *b.SHAPE), classes)
total = time.perf_counter() - t0
print(json.dumps({"episodes_per_s": n / total, "outside_model": outside / total}))
"""

TRAIN_RUNS = [  # (name, pipeline, mallopt, channels_last, threads, torch.compile)
    ("untuned eager loop on a plain DataLoader (baseline)", "plain DataLoader", False, False, 2, False),
    ("untuned eager loop on easyfsl's TaskSampler", "easyfsl TaskSampler", False, False, 2, False),
    ("untuned eager loop on learn2learn's Taskset", "learn2learn Taskset", False, False, 2, False),
    ("toolkit sampler, no CPU settings", "toolkit", False, False, 2, False),
    ("toolkit sampler + channels_last", "toolkit", False, True, 2, False),
    ("toolkit sampler + malloc thresholds", "toolkit", True, False, 2, False),
    ("toolkit (sampler + malloc thresholds + channels_last), 2 threads", "toolkit", True, True, 2, False),
    ("toolkit (sampler + malloc thresholds + channels_last), 1 thread", "toolkit", True, True, 1, False),
    ("toolkit, 2 threads, + torch.compile (compile: true)", "toolkit", True, True, 2, True),
]


def bench_training(n_steps: int) -> dict:
    """Conv4 prototypical training steps through each pipeline and CPU setting, each in its own process
    (glibc's malloc settings are process-wide); ratios against the first run."""
    rows = []
    for name, pipeline, mallopt, channels_last, threads, compiled in TRAIN_RUNS:
        env = dict(os.environ, FEWSHOT_AUDIO_NO_MALLOPT="0")
        r = subprocess.run([sys.executable, "-c", TRAIN_SNIPPET, pipeline, str(int(mallopt)), str(int(channels_last)),
                            str(threads), str(n_steps), str(Path(__file__).parent), str(int(compiled))],
                           capture_output=True, text=True,
                           env=env)
        if r.returncode != 0:
            print(f"training run {name!r} failed: {r.stderr.strip().splitlines()[-1]}", flush=True)
            continue
        rows.append({"run": name, **json.loads(r.stdout.splitlines()[-1])})
        rows[-1]["ratio"] = rows[-1]["episodes_per_s"] / rows[0]["episodes_per_s"]
        print("training", json.dumps(rows[-1]), flush=True)
    return {"model": f"conv4 64ch prototypical, {WAY}-way {SHOT}-shot {QUERY}-query on {SHAPE}, Adam", "rows": rows}


# ----------------------------------------------------------------------------- 4. evaluation
def bench_evaluation(n_clips: int, n_episodes: int, n_reembed: int) -> dict:
    """Evaluate ``n_episodes`` on ``n_clips`` novel clips: embed-once batched scoring vs re-embedding each
    episode. Re-embedding costs the same per episode whatever the split, so its rate is timed on the
    first ``n_reembed`` episodes, whose predictions are compared with the embed-once ones."""
    from fewshot_audio.fewshot.dataset import DeviceData
    from fewshot_audio.fewshot.episodes import EpisodeSampler
    from fewshot_audio.fewshot.metrics import episode_accuracies
    from fewshot_audio.fewshot.strategies import Prototypical
    from fewshot_audio.fewshot.strategies.base import Strategy
    from fewshot_audio.models.backbones import build_backbone
    from fewshot_audio.util.runtime import tune_cpu

    tune_cpu()
    torch.manual_seed(0)
    n_classes = n_clips // 20
    labels = torch.arange(n_clips) % n_classes
    data = DeviceData(np.random.default_rng(0).standard_normal((n_clips, 1, 64, 63), dtype=np.float32),
                      device=torch.device("cpu"), crop=63)
    eps = EpisodeSampler(labels=labels, classes=list(range(n_classes)), class_names=[str(c) for c in range(n_classes)],
                         n_way=WAY, n_shot=SHOT, n_query=QUERY).sample(n_episodes)
    s = Prototypical(backbone=build_backbone("conv4", input_shape=(1, 64, 63), channels=64), device=torch.device("cpu"))
    s.train_mode(False)
    with torch.no_grad():
        t0 = time.perf_counter()
        fast = s.score_episodes(data.eval_inputs, eps.support, eps.query)
        t_fast = time.perf_counter() - t0
        part = eps[:n_reembed]
        t0 = time.perf_counter()
        slow = Strategy.score_episodes(s, data.eval_inputs, part.support, part.query)  # re-embeds every episode
        t_slow = time.perf_counter() - t0
    fast = fast[:n_reembed]
    same = bool(torch.equal(fast.argmax(-1), slow.argmax(-1)))
    acc_equal = bool(torch.equal(episode_accuracies(fast, QUERY), episode_accuracies(slow, QUERY)))
    return {"clips": n_clips, "episodes": n_episodes, "embed_once_episodes_per_s": n_episodes / t_fast,
            "reembed_episodes_per_s": n_reembed / t_slow, "reembed_episodes_timed": n_reembed,
            "ratio": (n_episodes / t_fast) / (n_reembed / t_slow),
            "bound": n_episodes * WAY * (SHOT + QUERY) / n_clips,
            "identical_predictions": same and acc_equal, "max_abs_score_diff": float((fast - slow).abs().max())}


def render_markdown(r: dict) -> str:
    f = r["features"]
    out = [f"Machine: {r['machine']}.", "",
           "| what | toolkit | baseline | ratio |", "|---|---|---|---|",
           f"| log-mel extraction, {f['clips']} clips of 1 s | {f['toolkit_clips_per_s']:.0f} clips/s | "
           f"{f['librosa_clips_per_s']:.0f} clips/s (per-clip librosa) | **{f['ratio']:.1f}x** |", ""]
    sampling = r["sampling"]
    rows = sampling["rows"]
    sizes = sorted({x["clips"] for x in rows})
    names = list(dict.fromkeys(x["pipeline"] for x in rows))
    rate = {(x["pipeline"], x["clips"], x["threads"]): x["episodes_per_s"] for x in rows}
    out += [f"Episode sampling, {sampling['episode']}: episodes/s; in a peer's row, (how many times faster the "
            "toolkit is with one episode per call / with meta-batches of 16)", "",
            "| pipeline | " + " | ".join(f"{n:,} clips, {t} thr" for t in (1, 2) for n in sizes) + " |",
            "|---|" + "---|" * (2 * len(sizes))]
    for name in names:
        cells = []
        for t in (1, 2):
            for n in sizes:
                v, one, batched = (rate.get((k, n, t)) for k in (name, "toolkit", "toolkit, meta-batch 16"))
                peer = not name.startswith("toolkit") and not name.startswith("copy")
                cells.append("" if v is None else f"{v:,.0f}" + (f" ({one / v:.1f}x / {batched / v:.1f}x)" if peer else ""))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    if sampling.get("peak_memory_mib"):
        out += ["", f"Peak memory added over the {max(sizes):,}-clip feature array (own process, 1 thread): " +
                ", ".join(f"{k} {v:.0f} MiB" for k, v in sampling["peak_memory_mib"].items()) + "."]
    if sampling.get("peers_not_installed"):
        out += ["", "Not installed (left out): " + ", ".join(sampling["peers_not_installed"]) + "."]
    t = r["training"]
    out += ["", f"Meta-training, {t['model']}:", "", "| run | episodes/s | time outside the model | ratio |",
            "|---|---|---|---|"]
    out += [f"| {x['run']} | {x['episodes_per_s']:.2f} | {100 * x['outside_model']:.2f}% | **{x['ratio']:.2f}x** |"
            for x in t["rows"]]
    out += ["", "Evaluation, conv4 64ch prototypical, 5-way 5-shot 15-query on (1, 64, 63):", "",
            "| novel clips | episodes | embed once, episodes/s | re-embed, episodes/s | ratio | bound | identical predictions |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {e['clips']:,} | {e['episodes']} | {e['embed_once_episodes_per_s']:.1f} | "
            f"{e['reembed_episodes_per_s']:.2f} | **{e['ratio']:.1f}x** | {e['bound']:.0f}x | "
            f"{e['identical_predictions']} (max score diff {e['max_abs_score_diff']:.1e}) |" for e in r["evaluation"]]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--markdown", help="write the results as markdown tables here")
    args = ap.parse_args()
    q = args.quick
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"}
    results["features"] = bench_features(64 if q else 512)
    print("features", json.dumps(results["features"]), flush=True)
    results["sampling"] = bench_sampling([2000] if q else [1000, 10000, 100000], 48 if q else 320, memory=not q)
    results["training"] = bench_training(3 if q else 15)
    results["evaluation"] = [bench_evaluation(n, 50 if q else 1000, 10 if q else 200)
                             for n in ((400,) if q else (2000, 10000))]
    for r in results["evaluation"]:
        print("evaluation", json.dumps(r), flush=True)
    if args.json:
        from fewshot_audio.util.io import atomic_write_json

        atomic_write_json(args.json, results)
    if args.markdown:
        from fewshot_audio.util.io import atomic_write_text

        atomic_write_text(args.markdown, render_markdown(results))


if __name__ == "__main__":
    main()
