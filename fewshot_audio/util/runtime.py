"""Device choice, seeding, cache location and CPU tuning."""

from __future__ import annotations

import ctypes
import os
import random
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.errors import ConfigError

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_TUNED = False


def cache_dir() -> Path:
    """``$FEWSHOT_AUDIO_CACHE``, else ``$XDG_CACHE_HOME/fewshot-audio``, else ``~/.cache/fewshot-audio``."""
    env = os.environ.get("FEWSHOT_AUDIO_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "fewshot-audio"


def pick_device(name: str = "auto") -> torch.device:
    """The torch device ``name`` names (``auto``: CUDA when there is one), or a one-line error when it is not present."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} was asked for but no CUDA GPU is available; use device=cpu or auto", param="device")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={name}: only {torch.cuda.device_count()} GPU(s) present", param="device")
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed episode shapes: let cuDNN pick the fastest kernels
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_deterministic(device: torch.device) -> None:
    """On the CPU, refuse (warn about) operations without a deterministic implementation, so that the same seed,
    machine and thread count give the same run bit for bit. CUDA keeps cuDNN's autotuned kernels (a GPU run is
    reproducible to float rounding, not bit for bit)."""
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)


def run_environment() -> dict:
    """What a run's numbers depend on beyond its configuration and seed: torch, the intra-op thread count and the
    CPU (another CPU's vector instructions round floats differently)."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu}


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for path, parse in (("/sys/fs/cgroup/cpu.max", lambda t: t.split()),  # cgroup v2: "quota period"
                        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", lambda t: [t.strip(), Path(
                            "/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text().strip()])):
        try:
            quota, period = parse(Path(path).read_text())
            if quota not in ("max", "-1"):
                n = min(n, max(1, int(int(quota) / int(period))))
            break
        except (OSError, ValueError):
            continue
    return n


def set_cpu_threads() -> int:
    """Intra-op threads = usable CPUs (torch counts the host's cores, which oversubscribes a CPU-limited
    container); left alone when the user set ``OMP_NUM_THREADS``. Returns the thread count."""
    if "OMP_NUM_THREADS" not in os.environ:
        n = usable_cpus()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return torch.get_num_threads()


def tune_cpu() -> bool:
    """The toolkit's CPU settings: threads for the usable CPUs (``set_cpu_threads``), and glibc
    allocator thresholds that keep it from returning and re-faulting large activation buffers.

    With default thresholds, large tensors are ``mmap``-ed and unmapped on every
    allocation; on a 2-core machine that system time dominated a Conv4 episode. Disabling
    mmap for allocations and raising the trim threshold keeps freed memory in the heap for
    reuse. Returns whether the settings were applied (glibc only). Set
    ``FEWSHOT_AUDIO_NO_MALLOPT=1`` to skip.
    """
    global _TUNED
    set_cpu_threads()
    if _TUNED or os.environ.get("FEWSHOT_AUDIO_NO_MALLOPT") == "1":
        return _TUNED
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**30) == 1
    ok &= libc.mallopt(_M_TOP_PAD, 256 * 2**20) == 1
    _TUNED = bool(ok)
    return _TUNED
