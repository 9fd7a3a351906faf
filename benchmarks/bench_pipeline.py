"""Pipeline speed, each figure a ratio against a baseline run side by side in this script.

1. Feature extraction: the batched torch.stft + mel store front end vs per-clip librosa.
2. Episode sampling (indices + gathering the episode tensor): the index sampler vs a plain
   PyTorch Dataset + DataLoader + episode batch sampler with default settings, at 1 and 2 threads.
3. Meta-training episodes/s: the toolkit's CPU path (glibc malloc thresholds + channels_last)
   vs an untuned eager loop of the same model (run in a subprocess so mallopt is not shared).
4. Evaluation episodes/s: embed-once batched scoring vs re-embedding each episode, with a
   check that the predictions are identical.

Usage: python benchmarks/bench_pipeline.py [--quick] [--json OUT]
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
    from fewshot_audio.features import compute_features

    cfg = FeatureConfig()
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
    code = (f"import sys, resource; sys.path[:0] = {[str(Path(__file__).parent)]!r}; import bench_pipeline as b; "
            f"print(b._peak_memory_here({name!r}, {n_clips}, {n_episodes}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(r.stdout.split()[-1])


def _peak_memory_here(name: str, n_clips: int, n_episodes: int) -> float:
    def status(field: str) -> float:  # MiB
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024

    from fewshot_audio.runtime import tune_cpu

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
    return x, np.arange(n_clips) % (n_clips // 20)  # 20 clips per class: classes grow with the dataset


def _pipelines(x: torch.Tensor, labels: np.ndarray, n_episodes: int, only: str | None = None) -> dict:
    """name -> a function yielding ``n_episodes`` (support, query) feature tensors (or indices only)."""
    import peers

    from fewshot_audio.dataset import DeviceData
    from fewshot_audio.episodes import EpisodeSampler

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

    from fewshot_audio.runtime import tune_cpu

    tune_cpu()  # as the toolkit does on the CPU; process-wide, so the peers run with it too
    x_all, _ = _features(max(sizes))
    rows, missing = [], [name for name, make in peers.PEERS.items()
                         if make(x_all[:100], np.arange(100) % 5, n_way=WAY, n_shot=SHOT, n_query=QUERY,
                                 n_episodes=1) is None]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for n in sizes:
            x, labels = x_all[:n], np.arange(n) % (n // 20)
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
import json, sys, time, torch
tuned = sys.argv[1] == "1"
from fewshot_audio.runtime import tune_cpu
from fewshot_audio.backbones import build_backbone
from fewshot_audio.strategies import Prototypical
if tuned:
    tune_cpu()
torch.manual_seed(0)
model = build_backbone("conv4", input_shape=(1, 64, 96), channels=64)
if tuned:
    model = model.to(memory_format=torch.channels_last)
s = Prototypical(backbone=model, device=torch.device("cpu"))
x = torch.randn(1, 5, 20, 1, 64, 96)
def step():
    s.train_step(x[:, :, :5], x[:, :, 5:], torch.arange(5)[None])
for _ in range(3):
    step()
n = int(sys.argv[2]); t0 = time.perf_counter()
for _ in range(n):
    step()
print(json.dumps({"episodes_per_s": n / (time.perf_counter() - t0)}))
"""


def bench_training(n_steps: int) -> dict:
    out = {}
    for name, flag in (("untuned", "0"), ("toolkit", "1")):
        env = dict(os.environ, FEWSHOT_AUDIO_NO_MALLOPT="0")
        r = subprocess.run([sys.executable, "-c", TRAIN_SNIPPET, flag, str(n_steps)], capture_output=True, text=True,
                           env=env, check=True)
        out[f"{name}_episodes_per_s"] = json.loads(r.stdout)["episodes_per_s"]
    out["ratio"] = out["toolkit_episodes_per_s"] / out["untuned_episodes_per_s"]
    out["model"] = "conv4 64ch, 5-way 5-shot 15-query, (1, 64, 96) log-mels"
    return out


# ----------------------------------------------------------------------------- 4. evaluation
def bench_evaluation(n_clips: int, n_episodes: int) -> dict:
    from fewshot_audio.backbones import build_backbone
    from fewshot_audio.dataset import DeviceData
    from fewshot_audio.episodes import EpisodeSampler
    from fewshot_audio.metrics import episode_accuracies
    from fewshot_audio.strategies import Prototypical
    from fewshot_audio.strategies.base import Strategy

    torch.manual_seed(0)
    n_classes = n_clips // 20
    labels = torch.arange(n_clips) % n_classes
    data = DeviceData(np.random.default_rng(0).standard_normal((n_clips, 1, 64, 63), dtype=np.float32),
                      device=torch.device("cpu"), crop=63)
    eps = EpisodeSampler(labels=labels, classes=list(range(n_classes)), class_names=[str(c) for c in range(n_classes)],
                         n_way=5, n_shot=5, n_query=15).sample(n_episodes)
    s = Prototypical(backbone=build_backbone("conv4", input_shape=(1, 64, 63), channels=64), device=torch.device("cpu"))
    s.train_mode(False)
    with torch.no_grad():
        t0 = time.perf_counter()
        fast = s.score_episodes(data.eval_inputs, eps.support, eps.query)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        slow = Strategy.score_episodes(s, data.eval_inputs, eps.support, eps.query)  # re-embeds every episode
        t_slow = time.perf_counter() - t0
    same = bool(torch.equal(fast.argmax(-1), slow.argmax(-1)))
    acc_equal = bool(torch.equal(episode_accuracies(fast, 15), episode_accuracies(slow, 15)))
    return {"clips": n_clips, "episodes": n_episodes, "embed_once_episodes_per_s": n_episodes / t_fast,
            "reembed_episodes_per_s": n_episodes / t_slow, "ratio": t_slow / t_fast,
            "identical_predictions": same and acc_equal,
            "max_abs_score_diff": float((fast - slow).abs().max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    q = args.quick
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"}
    results["features"] = bench_features(64 if q else 512)
    print("features", json.dumps(results["features"]), flush=True)
    results["sampling"] = bench_sampling([2000] if q else [1000, 10000, 100000], 48 if q else 320, memory=not q)
    results["training"] = bench_training(3 if q else 15)
    print("training", json.dumps(results["training"]), flush=True)
    results["evaluation"] = bench_evaluation(400 if q else 2000, 50 if q else 1000)
    print("evaluation", json.dumps(results["evaluation"]), flush=True)
    if args.json:
        from fewshot_audio.io_utils import atomic_write_json

        atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
