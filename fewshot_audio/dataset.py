"""From a dataset path (or none: the built-in dataset) to features, labels and splits."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .config import FeatureConfig
from .data.adapters import build_manifest, validate_manifest
from .data.manifest import Manifest
from .data.synthetic import ensure_synthetic
from .episodes import load_split, make_split
from .errors import DataError, EpisodeError
from .features import FeatureStore
from .progress import log, warn
from .runtime import cache_dir

BUILTIN = "builtin-synthetic"


@dataclass
class LabelledFeatures:
    """A dataset ready for episodes: the store's array and one class index per clip (-1: excluded)."""

    manifest: Manifest
    store: FeatureStore
    labels: np.ndarray
    class_names: list[str]

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.manifest.clips]

    @property
    def name(self) -> str:
        return self.manifest.name

    def classes_of(self, names: list[str]) -> list[int]:
        index = {c: i for i, c in enumerate(self.class_names)}
        return [index[n] for n in names if n in index]


def resolve_manifest(dataset: str | None, *, format: str | None = None, label: str | None = None,
                     strict: bool = False, quiet: bool = False) -> Manifest:
    """The validated manifest of ``dataset`` (a path), or of the built-in synthetic dataset when ``None``."""
    if dataset in (None, "", BUILTIN):
        root = ensure_synthetic(cache_dir(), quiet=quiet)
        manifest = build_manifest(root, format="folder")
        manifest.name = BUILTIN
    else:
        manifest = build_manifest(dataset, format=format, label=label)
    manifest = validate_manifest(manifest, strict=strict)
    if manifest.problems:
        warn(f"skipped {len(manifest.problems)} unreadable clip(s): " + "; ".join(manifest.problems))
    return manifest


def load_labelled_features(dataset: str | None, *, features: FeatureConfig, format: str | None = None,
                           label: str | None = None, strict: bool = False, min_clips: int | None = None,
                           quiet: bool = False) -> LabelledFeatures:
    manifest = resolve_manifest(dataset, format=format, label=label, strict=strict, quiet=quiet)
    labels_str = manifest.single_labels()
    store = FeatureStore.open_or_build(manifest, features, cache_dir=cache_dir(), quiet=quiet)
    if store.meta["silent"] or store.meta["failed"]:
        bad = store.meta["silent"] + store.meta["failed"]
        if strict:
            raise DataError(f"{bad[0]}: silent or undecodable clip; remove it or drop --strict to skip it")
    class_names = sorted(set(labels_str))
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index[s] for s in labels_str], dtype=np.int64)
    labels[~store.ok] = -1
    if min_clips:
        counts = np.bincount(labels[labels >= 0], minlength=len(class_names))
        dropped = [class_names[c] for c in np.nonzero(counts < min_clips)[0]]
        if dropped:
            log(f"--min-clips {min_clips}: dropping {len(dropped)} class(es): {', '.join(dropped)}")
            labels[np.isin(labels, np.nonzero(counts < min_clips)[0])] = -1
    return LabelledFeatures(manifest, store, labels, class_names)


def load_config_data(config, *, quiet: bool = False) -> LabelledFeatures:
    """The labelled features of the dataset that a ``TrainConfig`` names."""
    return load_labelled_features(config.dataset, features=config.features, format=config.format, label=config.label,
                                  strict=config.strict, min_clips=config.min_clips, quiet=quiet)


def config_split(data: LabelledFeatures, config) -> dict[str, list[str]]:
    """The class split that a ``TrainConfig`` names (its split file, or its seeded ratios)."""
    return resolve_split(data, ratios=config.split, seed=0, split_file=config.split_file)


def resolve_split(data: LabelledFeatures, *, ratios: list[float], seed: int, split_file: str | None) -> dict[str, list[str]]:
    present = sorted({data.class_names[c] for c in np.unique(data.labels[data.labels >= 0])})
    if split_file:
        split = load_split(split_file, data.class_names)
        split = {k: [c for c in v if c in present] for k, v in split.items()}
    else:
        split = make_split(present, ratios=ratios, seed=seed)
    for name in ("base", "novel"):
        if len(split[name]) < 2:
            raise EpisodeError(f"the {name} split has {len(split[name])} class(es) of {len(present)}; "
                               "a few-shot dataset needs more classes or other --split ratios")
    return split


def free_memory(device: torch.device) -> int:
    """Bytes that can be given to the feature tensor on ``device`` (GPU: free memory; CPU: available RAM)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 1 << 62


class DeviceData:
    """The feature array as one tensor on the training device; episodes are gathered by index.

    ``crop`` (frames or samples along the last axis) is taken at a random offset in training
    and in the centre in evaluation. When the array does not fit in ``memory_fraction`` of the
    device's free memory it stays memory-mapped on the host and each batch is read from the
    file (sorted reads) and copied over: same interface, slower, and a line says so. In that
    mode ``prefetch(idx)`` starts reading a batch on a background thread while the current step
    computes, and the later ``inputs(idx)`` with the same index tensor picks it up.
    """

    def __init__(self, array: np.ndarray, *, device: torch.device, crop: int, seed: int = 0,
                 memory_fraction: float = 0.6):
        self.device, self.crop = device, crop
        self.resident = array.nbytes <= memory_fraction * free_memory(device)
        if self.resident:
            in_ram = array.dtype == np.float32 and array.flags.writeable and not isinstance(array, np.memmap)
            self.x = torch.from_numpy(array if in_ram else np.array(array, dtype=np.float32)).to(device)
        else:
            warn(f"features ({array.nbytes / 2**30:.1f} GiB) do not fit in {device} memory: reading episodes from "
                "the memory-mapped store instead, prefetching the next batch")
            self.x = array
        self.full = self.x.shape[-1]
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self._ahead: list[tuple[torch.Tensor, Future]] = []
        self._reader: ThreadPoolExecutor | None = None

    def prefetch(self, *batches: torch.Tensor) -> None:
        """Start reading the rows of each index tensor in ``batches`` (memory-mapped mode; a no-op otherwise)."""
        if self.resident:
            return
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fewshot-audio-prefetch")
        self._ahead.extend((idx, self._reader.submit(self._read, idx)) for idx in batches)

    def _read(self, idx: torch.Tensor) -> torch.Tensor:
        flat = idx.flatten().numpy()
        order = np.argsort(flat)  # sorted reads from the file, then back to the asked order
        rows = np.empty((len(flat), *self.x.shape[1:]), dtype=np.float32)
        rows[order] = self.x[flat[order]]
        return torch.from_numpy(rows).view(*idx.shape, *self.x.shape[1:])

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        if self.resident:  # index_select on the flat index: ~5x faster than advanced indexing on the CPU
            rows = torch.index_select(self.x, 0, idx.to(self.device).flatten())
            return rows.view(*idx.shape, *self.x.shape[1:])
        for i, (ahead, future) in enumerate(self._ahead):
            if ahead is idx:
                del self._ahead[i]
                return future.result().to(self.device, non_blocking=True)
        return self._read(idx).to(self.device, non_blocking=True)

    def _window(self, idx: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        offsets = start.to(self.device).unsqueeze(-1) + torch.arange(self.crop, device=self.device)
        x = self._rows(idx)  # (..., 1, [n_mels,] full)
        offsets = offsets.view(*offsets.shape[:-1], *([1] * (x.ndim - idx.ndim - 1)), self.crop)
        return torch.gather(x, -1, offsets.expand(*x.shape[:-1], self.crop))

    def inputs(self, idx: torch.Tensor, *, train: bool = False) -> torch.Tensor:
        """Model inputs ``(*idx.shape, *feature_shape)`` for clip indices ``idx``."""
        if self.crop >= self.full:
            return self._rows(idx)
        if train:
            start = torch.randint(0, self.full - self.crop + 1, idx.shape, generator=self.generator)
            return self._window(idx, start)
        begin = (self.full - self.crop) // 2
        return self._rows(idx)[..., begin : begin + self.crop]

    def eval_inputs(self, idx: torch.Tensor) -> torch.Tensor:
        return self.inputs(idx, train=False)
