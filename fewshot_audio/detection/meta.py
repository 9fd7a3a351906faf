"""Meta-training a frame-level prototypical network for detection on fully annotated recordings.

The training set is a folder in the DCASE layout whose tables list *every* event of their class (DCASE's
training set, or mixtures of labelled sounds). Each (recording, class) becomes a group: windows starting at its
events' onsets and windows of its background (overlapping none of its events), as patches of band-referenced
log-mel frames at a hop of an eighth of the events' mean length (:mod:`.frames`), with ``CONTEXT`` frames either
side and one more for the training crop's jitter. :class:`~fewshot_audio.fewshot.episodes.DetectionEpisodeSampler`
draws 2-way tasks inside one group (events against their own recording's background), and the harness's
:func:`~fewshot_audio.fewshot.harness.meta_train` trains the prototypical strategy on a
:class:`~fewshot_audio.models.backbones.frame_tcn.FrameTCN`, exactly as ``train`` trains on clips: checkpoints,
resume and validation (on the background/event accuracy of held-out groups' episodes) included.

No recording used for evaluation may be in the training folder: the detector evaluated with these weights sees
only its five examples (and the unlabelled audio) of a test recording.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.detection.annotations import read_dcase
from fewshot_audio.detection.episodes import dcase_layout, resolve_audio
from fewshot_audio.detection.frames import (
    HOPS_PER_EXAMPLE,
    MIN_HOP_SAMPLES,
    N_MELS,
    NEGATIVE_IOU,
    SAMPLE_RATE,
    FrameSpec,
    max_iou,
    stream_frames,
)
from fewshot_audio.detection.network import PATCH, padded_for_patches
from fewshot_audio.errors import DataError
from fewshot_audio.fewshot.dataset import DeviceData
from fewshot_audio.fewshot.episodes import DetectionEpisodeSampler
from fewshot_audio.fewshot.harness import TrainingPlan, train_best
from fewshot_audio.fewshot.strategies.prototypical import Prototypical
from fewshot_audio.models.backbones.frame_tcn import EVENT_FRAMES, FrameTCN
from fewshot_audio.models.checkpoints import load_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)


STORED = PATCH + 2  # stored with one frame more on either side: the training crop jitters the onset by a frame
SHOTS, QUERIES = 5, 15


@dataclass
class Patches:
    """Training patches ``(n, 1, 64, STORED)``, their labels (``2 g``: events of group ``g``, ``2 g + 1``: its
    background) and the groups' names (``recording (class)``)."""

    x: np.ndarray
    labels: np.ndarray
    groups: list[str]


def training_spec(events: np.ndarray) -> FrameSpec:
    """Frames at an eighth of the events' mean length (no upper bound: long events too are ``EVENT_FRAMES`` frames)."""
    mean = float(np.mean(events[:, 1] - events[:, 0]))
    hop = max(MIN_HOP_SAMPLES, int(round(mean / HOPS_PER_EXAMPLE * SAMPLE_RATE)))
    n_fft = max(512, 1 << int(np.ceil(np.log2(2 * hop))))
    return FrameSpec(hop_samples=hop, n_fft=n_fft, window=int(round(mean * SAMPLE_RATE / hop)))


def group_patches(recording: Path, events: np.ndarray, *, negatives: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Event and background patches of one recording and class, or ``None`` when its events are too short for
    ``EVENT_FRAMES`` frames (under 8 ms)."""
    spec = training_spec(events)
    if spec.window != EVENT_FRAMES:
        return None
    frames = np.concatenate(list(stream_frames(recording, spec)))
    frames = padded_for_patches(frames - np.median(frames, axis=0))
    n = len(frames) - STORED + 1  # window k (starting at frame k of the recording) is frames[k : k + STORED]
    onsets = np.round(events[:, 0] * spec.fps).astype(np.int64)
    onsets = onsets[(onsets >= 0) & (onsets < n)]
    background = np.flatnonzero(max_iou(np.arange(n) / spec.fps, spec.window / spec.fps, events) < NEGATIVE_IOU)
    background = rng.choice(background, min(negatives, len(background)), replace=False)
    take = lambda k: np.stack([frames[i : i + STORED].T for i in k])[:, None] if len(k) else None  # noqa: E731
    return take(onsets), take(background)


def training_patches(root: str | Path, *, negatives: int = 300, min_events: int = SHOTS + QUERIES, seed: int = 0,
                     quiet: bool = False) -> Patches:
    """Patches of every (recording, class) under ``root`` with at least ``min_events`` POS events."""
    root = Path(root)
    layout = dcase_layout(root)
    if not layout.pairs and not layout.lone_tables:
        raise DataError(f"{root}: no annotation tables; train on a folder of recordings with CSVs beside them "
                        "(DCASE layout) that list every event")
    for table in layout.lone_tables:
        logger.warning(f"{table}: no recording of the same name beside it; skipped")
    rng = np.random.default_rng(seed)
    xs, labels, groups = [], [], []
    for recording, table in layout.pairs:
        for ann in read_dcase(table):
            events = ann.positives()
            if len(events) < min_events:
                continue
            got = group_patches(resolve_audio(recording), events, negatives=negatives, rng=rng)
            if got is None or got[0] is None or got[1] is None or min(len(got[0]), len(got[1])) < min_events:
                continue
            g = len(groups)
            groups.append(f"{recording.name} ({ann.label})")
            xs += [got[0], got[1]]
            labels += [np.full(len(got[0]), 2 * g), np.full(len(got[1]), 2 * g + 1)]
    if not groups:
        raise DataError(f"{root}: no recording with at least {min_events} annotated events of a class; annotate every "
                        "event of the training recordings")
    if not quiet:
        logger.info(f"{len(groups)} annotated recordings (groups), {sum(len(x) for x in xs)} patches")
    return Patches(np.concatenate(xs).astype(np.float32), np.concatenate(labels), groups)


def train_detector(root: str | Path, out: str | Path, *, episodes: int = 2000, meta_batch: int = 4, lr: float = 1e-3,
                   val_fraction: float = 0.15, val_episodes: int = 300, val_every: int = 200, seed: int = 0,
                   resume: bool = False, device: str = "cpu", quiet: bool = False) -> Path:
    """Meta-train :class:`FrameTCN` with the prototypical strategy on detection episodes from ``root``; writes
    ``out/checkpoint.pt`` (resumable), ``out/best.pt`` and ``out/detector.pt`` (the best weights, what
    ``detect --weights`` reads). Returns the path of ``detector.pt``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    patches = training_patches(root, seed=seed, quiet=quiet)
    if len(patches.groups) < 2:
        raise DataError(f"{root}: one recording with at least {SHOTS + QUERIES} annotated events; meta-training needs "
                        "at least two (one is held out for validation)")
    order = np.random.default_rng(seed).permutation(len(patches.groups))
    n_val = max(1, int(round(val_fraction * len(order))))
    val, train = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())
    dev = torch.device(device)
    torch.manual_seed(seed)
    backbone = FrameTCN(input_shape=(1, N_MELS, PATCH))
    strategy = Prototypical(backbone=backbone, device=dev, lr=lr, n_way=2, episodes=episodes, seed=seed)
    labels = torch.from_numpy(patches.labels)
    sampler = DetectionEpisodeSampler(labels=labels, groups=train, group_names=patches.groups, n_shot=SHOTS,
                                      n_query=QUERIES, seed=seed)
    held = DetectionEpisodeSampler(labels=labels, groups=val, group_names=patches.groups, n_shot=SHOTS,
                                   n_query=QUERIES, seed=seed + 1).sample(val_episodes)
    data = DeviceData(patches.x, device=dev, crop=PATCH, seed=seed)
    plan = TrainingPlan(episodes=episodes, meta_batch=meta_batch, val_every=val_every, amp=False)
    history = train_best(strategy, data=data, sampler=sampler, val_episodes=held, plan=plan, run_dir=out,
                         resume=resume, quiet=quiet)
    best = load_checkpoint(out / "best.pt")
    target = out / "detector.pt"
    save_checkpoint(target, {"backbone": best["strategy"]["backbone"], "step": best["step"],
                             "val_accuracy": history.best_val, "groups": len(patches.groups),
                             "train_groups": len(train), "patch": PATCH})
    if not quiet:
        logger.info(f"best validation accuracy {history.best_val:.3f} at step {history.best_step} -> {target}")
    return target
