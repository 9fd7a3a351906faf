"""Embedding throughput of the pretrained models on this machine: clips/s of 5 s audio, waveform file to
clip embedding (decode, resample, clip policy, front end, network, pooling), batched across files
(``embed_files`` on all files) next to one file at a time (``embed_files`` per file), in one process.

The files are generated (44.1 kHz mono float WAV, tones + noise, seeded). Only the public
``load_backbone`` / ``embed_files`` API is used, so the same script measures older versions of the
toolkit too (run it with PYTHONPATH pointing at an older checkout).

    python benchmarks/bench_embed.py [--models musicnn-mtt,aisfx,yamnet] [--files 24] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from fewshot_audio.embedding import embed_files, load_backbone

SR, SECONDS = 44100, 5.0


def make_files(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(SR * SECONDS)) / SR
    paths = []
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 2000) * t) + 0.05 * rng.standard_normal(len(t))
        x *= np.exp(-t * rng.uniform(0, 1))
        paths.append(folder / f"clip_{i:03d}.wav")
        sf.write(paths[-1], x.astype(np.float32), SR, subtype="FLOAT")
    return paths


def measure(spec: str, paths: list[Path]) -> dict:
    device = torch.device("cpu")
    bb = load_backbone(spec, device=device)
    embed_files(bb, paths[:2], device=device, quiet=True)  # warm-up
    t0 = time.perf_counter()
    batched = embed_files(bb, paths, device=device, quiet=True).windows
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [embed_files(bb, [p], device=device, quiet=True)[0][0] for p in paths]
    t_single = time.perf_counter() - t0
    diff = max(float(np.abs(a - b).max()) for a, b in zip(batched, single))
    return {"model": spec, "files": len(paths), "windows_per_clip": len(batched[0]), "dim": int(batched[0].shape[1]),
            "batched_clips_per_s": round(len(paths) / t_batched, 2), "one_at_a_time_clips_per_s": round(len(paths) / t_single, 2),
            "batched_vs_single_max_abs_diff": diff}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="musicnn-mtt,aisfx,yamnet")
    p.add_argument("--files", type=int, default=24)
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.files)
        for spec in args.models.split(","):
            rows.append(measure(spec, paths))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"torch_threads": 2, "clip_seconds": SECONDS, "sample_rate": SR,
                                              "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
