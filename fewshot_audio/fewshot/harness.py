"""The meta-training loop and the evaluation loop, the same for every strategy.

Checkpoints are written atomically at every validation; a run resumed from one ends
exactly where an uninterrupted run with the same seed would (model, optimizer, sampler
and crop RNG states are all restored).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.errors import CheckpointError
from fewshot_audio.fewshot import distributed
from fewshot_audio.fewshot.dataset import DeviceData
from fewshot_audio.fewshot.episodes import Episodes, EpisodeSampler
from fewshot_audio.fewshot.metrics import episode_accuracies, episode_average_precision, mean_ci95
from fewshot_audio.fewshot.strategies.base import Strategy
from fewshot_audio.models.checkpoints import load_checkpoint, save_checkpoint
from fewshot_audio.util.progress import progress

logger = logging.getLogger(__name__)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a no-op on the CPU."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def episode_scores(strategy: Strategy, data: DeviceData, episodes: Episodes, *, amp: bool = False, chunk: int = 250,
                   desc: str | None = None, quiet: bool = True) -> torch.Tensor:
    """Scores ``(E, n_way * n_query, n_way)`` (on the CPU) of ``strategy`` on frozen ``episodes``, ``chunk``
    episodes at a time; queries in way order."""
    strategy.train_mode(False)
    out = []
    starts = range(0, len(episodes), chunk)
    with autocast(data.device, amp):
        for start in progress(starts, desc=desc or "evaluating", total=len(starts), quiet=quiet or desc is None):
            ep = episodes[start : start + chunk]
            out.append(strategy.score_episodes(data, ep.support, ep.query).float().cpu())
    return torch.cat(out)


def metric_name(episodes: Episodes) -> str:
    """What :func:`evaluate` measures on these episodes."""
    return "mAP" if episodes.multi_label else "accuracy"


def episode_metric(scores: torch.Tensor, episodes: Episodes) -> torch.Tensor:
    """Per-episode accuracy ``(E,)``, or mAP over the episode's tags for multi-label episodes."""
    if episodes.multi_label:
        return episode_average_precision(scores, episodes.query_targets.flatten(1, 2))
    return episode_accuracies(scores, episodes.query.shape[2])


def evaluate(strategy: Strategy, data: DeviceData, episodes: Episodes, *, amp: bool = False, chunk: int = 250,
             desc: str | None = None, quiet: bool = True) -> torch.Tensor:
    """Per-episode accuracy (multi-label: mAP) ``(E,)`` of ``strategy`` on frozen ``episodes``."""
    scores = episode_scores(strategy, data, episodes, amp=amp, chunk=chunk, desc=desc, quiet=quiet)
    return episode_metric(scores, episodes)


@torch.no_grad()
def evaluate_tasks(strategy: Strategy, data: DeviceData, *, support: torch.Tensor, query: torch.Tensor,
                   query_labels: torch.Tensor, amp: bool = False) -> np.ndarray:
    """Accuracies ``(R,)`` of ``R`` tasks that share one uneven query set (the low-data protocol's draws):
    ``support (R, n_way, n_shot)`` clip indices, ``query (M,)`` clip indices with way labels
    ``query_labels (M,)``. Scored in one ``score_episodes`` call, so a frozen embedding embeds the
    query set once for all the draws."""
    strategy.train_mode(False)
    with autocast(data.device, amp):
        scores = strategy.score_episodes(data, support, query.view(1, 1, -1).expand(len(support), 1, -1))
    return (scores.float().argmax(-1).cpu() == query_labels).float().mean(-1).numpy()


@dataclass
class History:
    """What meta-training records: training loss and accuracy per step, validation scores with their CI, the best step
    and score, the seconds spent."""
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    val_ci95: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val: float = -1.0
    seconds: float = 0.0


@dataclass(frozen=True)
class TrainingPlan:
    """How a strategy meta-trains: ``episodes`` steps of ``meta_batch`` episodes each, validated every
    ``val_every`` steps, with mixed precision where the device has it (``amp``)."""

    episodes: int
    meta_batch: int = 1
    val_every: int = 100
    amp: bool = True

    @classmethod
    def of(cls, config) -> TrainingPlan:
        """The plan of a :class:`~fewshot_audio.config.TrainConfig`."""
        return cls(config.episodes, config.meta_batch, config.val_every, config.amp)


def train_best(strategy: Strategy, *, data: DeviceData, sampler: EpisodeSampler, val_episodes: Episodes,
               plan: TrainingPlan, run_dir: Path, resume: bool = False, quiet: bool = False,
               on_step: Callable[[int], None] | None = None) -> History:
    """The one meta-training set-up of ``train``, ``compare`` and ``train-detector``: :func:`meta_train` by ``plan``,
    then (on the main process) the best validation state loaded back into ``strategy``, which is what every caller
    evaluates or saves."""
    history = meta_train(strategy, data=data, sampler=sampler, val_episodes=val_episodes, episodes=plan.episodes,
                         meta_batch=plan.meta_batch, val_every=plan.val_every, run_dir=run_dir, resume=resume,
                         amp=plan.amp, quiet=quiet, on_step=on_step)
    if distributed.world()[0] == 0:
        strategy.load_state_dict(load_checkpoint(run_dir / "best.pt")["strategy"], with_optimizer=False)
    return history


def meta_train(strategy: Strategy, *, data: DeviceData, sampler: EpisodeSampler, val_episodes: Episodes,
               episodes: int, meta_batch: int = 1, val_every: int = 100, run_dir: Path, resume: bool = False,
               amp: bool = True, quiet: bool = False,
               on_step: Callable[[int], None] | None = None) -> History:
    """Meta-train ``strategy`` for ``episodes`` steps of ``meta_batch`` episodes each.

    Validates on ``val_episodes`` every ``val_every`` steps and at the end, keeping the
    best validation state in ``run_dir/best.pt`` and the latest in ``run_dir/checkpoint.pt``.
    ``on_step(step)`` is called after every step (used by tests to interrupt a run).
    """

    rank, world_size = distributed.world()
    main = rank == 0
    ckpt_path, best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"
    history, start = History(), 0
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        strategy.load_state_dict(state["strategy"])
        ranks = state.get("ranks")
        if ranks is not None and len(ranks) != world_size:
            raise CheckpointError(f"{ckpt_path} was written by {len(ranks)} processes; resume it with "
                                  f"{len(ranks)} processes per node in torchrun (now {world_size})")
        sampler.set_state(ranks[rank]["sampler_rng"] if ranks else state["sampler_rng"])
        data.generator.set_state(ranks[rank]["crop_rng"] if ranks else state["crop_rng"])
        history = History(**state["history"])
        start = state["step"]
        logger.info(f"resuming from step {start} of {episodes} ({ckpt_path})")
    if not strategy.trains:
        episodes = 0
    if world_size > 1 and strategy.trains:
        distributed.average_gradients(strategy.optimizer)
        quiet = quiet or not main
    pending: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    t0 = time.perf_counter() - history.seconds
    steps = progress(range(start, episodes), desc=f"meta-training {strategy.name}", total=episodes - start, quiet=quiet)
    ep = sampler.sample(meta_batch) if start < episodes else None
    for step in steps:
        strategy.train_mode(True)
        done = step + 1
        checkpoint_now = done % val_every == 0 or done == episodes
        # draw the next step's episodes now so a memory-mapped store can read them while this step
        # computes; checkpoints keep the sampler state from before that draw, so resume redraws them
        sampler_state = sampler.state() if checkpoint_now else None
        upcoming = sampler.sample(meta_batch) if done < episodes else None
        if upcoming is not None:
            data.prefetch(upcoming.support, upcoming.query)
        support, query = data.inputs(ep.support, train=True), data.inputs(ep.query, train=True)
        with autocast(data.device, amp):
            loss, acc = strategy.train_step(support, query, ep.classes.to(data.device), targets=ep.targets(data.device))
        pending.append((done, loss, acc))
        if checkpoint_now:
            ranks = distributed.gather({"sampler_rng": sampler_state, "crop_rng": data.generator.get_state()})
            if main:
                _validate_and_save(strategy, data, val_episodes, history, pending, done=done, episodes=episodes,
                                   val_every=val_every, amp=amp, t0=t0, sampler_state=sampler_state,
                                   ranks=ranks if world_size > 1 else None, ckpt_path=ckpt_path, best_path=best_path)
            pending.clear()
            distributed.barrier()
        if on_step is not None:
            on_step(done)
        ep = upcoming
    if episodes == 0 and main:
        save_checkpoint(best_path, {"strategy": strategy.state_dict(), "step": 0})
    history.seconds = time.perf_counter() - t0
    return history


def _validate_and_save(strategy, data, val_episodes, history, pending, *, done, episodes, val_every, amp, t0, sampler_state,
                       ranks, ckpt_path, best_path) -> None:
    for s, loss, a in pending:  # one host sync per validation interval
        history.steps.append(s)
        history.train_loss.append(float(loss))
        history.train_acc.append(float(a))
    val_mean, val_ci = mean_ci95(evaluate(strategy, data, val_episodes, amp=amp).numpy())
    history.val_steps.append(done)
    history.val_acc.append(val_mean)
    history.val_ci95.append(val_ci)
    history.seconds = time.perf_counter() - t0
    if val_mean > history.best_val:
        history.best_val, history.best_step = val_mean, done
        save_checkpoint(best_path, {"strategy": strategy.state_dict(), "step": done})
    state = {"strategy": strategy.state_dict(), "step": done,
             "sampler_rng": sampler_state, "crop_rng": data.generator.get_state(), "history": history.__dict__}
    if ranks is not None:
        state["ranks"] = ranks
    save_checkpoint(ckpt_path, state)
    recent = history.train_loss[-val_every:]
    name = "mAP" if val_episodes.multi_label else "acc"
    elapsed = time.perf_counter() - t0
    eta = elapsed / done * (episodes - done) if done else 0.0
    logger.info(f"step {done}/{episodes}: train loss {sum(recent) / len(recent):.3f}, "
        f"val {name} {val_mean:.3f} ± {val_ci:.3f} (best {history.best_val:.3f} at {history.best_step}); "
        f"{_duration(elapsed)} elapsed, about {_duration(eta)} to go")


def _duration(seconds: float) -> str:
    """``1 min 05 s``, ``42 s``."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"
