"""Data-parallel meta-training across processes, GPUs and nodes, launched with ``torchrun``.

``torchrun --nproc-per-node N -m fewshot_audio train ...`` (or the console script's path instead of
``-m fewshot_audio``): every rank builds the same initial model, draws its own episodes from a
rank-derived seed, and gradients are averaged across ranks before every optimizer step (a step
pre-hook, so strategies need not know). Rank 0 alone writes frozen episodes, checkpoints and
metrics; checkpoints hold every rank's sampler state, so ``--resume`` continues all of them.
Backends: NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import re
import signal
from pathlib import Path

import torch
import torch.distributed as dist

from fewshot_audio.errors import ConfigError, DistributedError


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup(device_name: str) -> torch.device | None:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); return this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        n_gpus = torch.cuda.device_count()
        if local >= n_gpus:
            raise ConfigError(f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', '?')} processes on this node but it "
                              f"has {n_gpus} GPU(s); start {max(1, n_gpus)} process(es) per node or use device=cpu")
        torch.cuda.set_device(local)
        device, backend = torch.device(f"cuda:{local}"), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
        atexit.register(teardown)
    return device


def teardown() -> None:
    """Leave the process group and free it now, before the interpreter shuts down.

    A process group left to die with the interpreter is freed by its final garbage collection,
    while gloo's worker threads may still be asking for the GIL: Python then ends those threads
    with a forced unwind, which aborts the process (SIGABRT, "terminate called without an active
    exception") after a run that succeeded, about one exit in five on this CPU.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    gc.collect()


def barrier() -> None:
    """Wait for every process of a distributed run (nothing to wait for in a single process)."""
    if world()[1] > 1:
        dist.barrier()


def average_gradients(optimizer: torch.optim.Optimizer):
    """Average every parameter's gradient over the ranks (one all-reduce) before each ``optimizer.step``."""

    def hook(opt, args, kwargs):
        params = [p for group in opt.param_groups for p in group["params"]]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    return optimizer.register_step_pre_hook(hook)


def gather(obj):
    """Every rank's ``obj`` as a list on every rank (just ``[obj]`` outside a distributed run)."""
    _, size = world()
    if size == 1:
        return [obj]
    out = [None] * size
    dist.all_gather_object(out, obj)
    return out


@contextlib.contextmanager
def peers_failing_stop_cleanly(run_dir: Path):
    """In a distributed run, turn the ways a rank learns that another one died (torchrun's SIGTERM, a
    collective that fails) into one clear :class:`DistributedError` that says how to resume.

    Checkpoints are written atomically by rank 0, so the last one is intact whichever rank failed.
    """
    rank, size = world()
    if size == 1:
        yield
        return

    def stop(reason: str) -> DistributedError:
        ckpt = run_dir / "checkpoint.pt"
        last = f"the last checkpoint ({ckpt}) is intact" if ckpt.exists() else "no checkpoint was written yet"
        return DistributedError(f"rank {rank} stopped: {reason}; {last}: rerun the same torchrun command with resume=True")

    def on_sigterm(signum, frame):
        raise stop("torchrun stopped it (another process of the run failed, or the run was interrupted)")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except RuntimeError as exc:  # gloo raises a plain RuntimeError when a peer's connection drops
        if not (isinstance(exc, dist.DistError) or _raised_in_a_collective(exc)):
            raise
        detail = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().splitlines()[0]).split(". ")[0][:120]
        raise stop(f"another process of the run failed ({detail})") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raised_in_a_collective(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).parent.name == "distributed" and "torch" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False
