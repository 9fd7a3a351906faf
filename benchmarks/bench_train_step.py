"""Meta-training throughput of the toolkit's training step, on whatever device is present.

For each backbone: episodes/s of the prototypical training step (5-way 5-shot 15-query) with the
episode gathered on the device from the resident feature tensor, for meta-batches of 1 and 4 episodes,
and the share of a step spent outside the model (sampling + gathering). On CUDA with bf16 autocast.

Usage: python benchmarks/bench_train_step.py [--device cuda] [--steps 50] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from fewshot_audio.fewshot.dataset import DeviceData
from fewshot_audio.fewshot.episodes import EpisodeSampler
from fewshot_audio.fewshot.harness import autocast
from fewshot_audio.fewshot.strategies import Prototypical
from fewshot_audio.models.backbones import build_backbone
from fewshot_audio.util.runtime import pick_device, tune_cpu


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(backbone: str, *, device, n_mels: int, frames: int, channels: int, meta_batch: int, steps: int) -> dict:
    n_classes, per_class = 100, 20
    data = DeviceData(np.random.default_rng(0).standard_normal((n_classes * per_class, 1, n_mels, frames),
                                                               dtype=np.float32), device=device, crop=frames)
    sampler = EpisodeSampler(labels=torch.arange(n_classes).repeat_interleave(per_class), classes=list(range(n_classes)),
                             class_names=[str(c) for c in range(n_classes)], n_way=5, n_shot=5, n_query=15)
    model = build_backbone(backbone, input_shape=(1, n_mels, frames), channels=channels).to(memory_format=torch.channels_last)
    s = Prototypical(backbone=model, device=device)
    s.train_mode(True)

    def gather():
        ep = sampler.sample(meta_batch)
        return data.inputs(ep.support, train=True), data.inputs(ep.query, train=True), ep.classes.to(device)

    def step():
        sup, qry, cls = gather()
        with autocast(device, True):
            return s.train_step(sup, qry, cls)

    for _ in range(5):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        gather()
    sync(device)
    outside = time.perf_counter() - t0
    return {"backbone": backbone, "device": str(device), "input": [1, n_mels, frames], "channels": channels,
            "meta_batch": meta_batch, "episodes_per_s": steps * meta_batch / total,
            "outside_model_share": outside / total,
            "params": sum(p.numel() for p in model.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--json")
    args = ap.parse_args()
    device = pick_device(args.device)
    if device.type == "cpu":
        tune_cpu()
    else:
        torch.backends.cudnn.benchmark = True
    rows = []
    for backbone in ("conv4", "musically-motivated"):
        for meta_batch in (1, 4):
            for n_mels, frames in ((64, 63), (96, 128)):
                r = bench(backbone, device=device, n_mels=n_mels, frames=frames, channels=64, meta_batch=meta_batch,
                          steps=args.steps if device.type == "cuda" else max(3, args.steps // 10))
                rows.append(r)
                print(json.dumps(r), flush=True)
    if args.json:
        from fewshot_audio.util.io import atomic_write_json

        atomic_write_json(args.json, {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                                      "torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
