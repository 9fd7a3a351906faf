"""From a dataset path (or none: the built-in dataset) to features, labels and splits."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data.adapters import build_manifest, validate_manifest
from fewshot_audio.data.manifest import Manifest
from fewshot_audio.data.synthetic import ensure_synthetic
from fewshot_audio.embedding import loud_windows, pool_by_owner
from fewshot_audio.errors import DataError, EpisodeError
from fewshot_audio.features.frontends import crop_size
from fewshot_audio.features.store import FeatureStore
from fewshot_audio.fewshot.episodes import EpisodeSampler, MultiLabelEpisodeSampler, load_split, make_split
from fewshot_audio.util.runtime import cache_dir

logger = logging.getLogger(__name__)

BUILTIN = "builtin-synthetic"


@dataclass
class LabelledFeatures:
    """A dataset ready for episodes: the store's array and one class index per clip (-1: excluded).

    Multi-label datasets (``--multi-label``) carry ``targets``, a bool ``(n_clips, n_tags)`` matrix over
    ``class_names`` (the tags; an excluded clip has no tag), and ``labels`` is all -1.
    """

    manifest: Manifest
    store: FeatureStore
    labels: np.ndarray
    class_names: list[str]
    features: FeatureConfig
    targets: np.ndarray | None = None

    @property
    def multi_label(self) -> bool:
        """Whether clips carry several tags (multi-hot ``targets``) rather than one class each."""
        return self.targets is not None

    def clip_counts(self) -> np.ndarray:
        """Usable clips per class (per tag): ``(n_classes,)``."""
        if self.targets is not None:
            return self.targets.sum(0)
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.class_names))

    def drop_classes(self, classes: np.ndarray) -> None:
        """Exclude classes (indices): their clips (single-label), or the tags from every clip (multi-label)."""
        if self.targets is not None:
            self.targets[:, classes] = False
        else:
            self.labels[np.isin(self.labels, classes)] = -1

    def clips_of(self, classes: list[int], *, training: bool = False) -> np.ndarray:
        """Indices of the usable clips of ``classes`` (multi-label: carrying any of those tags; ``training``:
        and no tag outside them)."""
        if self.targets is not None:
            return np.nonzero(self._training_targets(classes, training).any(1))[0]
        return np.nonzero(np.isin(self.labels, classes))[0]

    def _training_targets(self, classes: list[int], training: bool) -> np.ndarray:
        if not training:
            return self.targets
        outside = np.ones(len(self.class_names), dtype=bool)
        outside[classes] = False
        return self.targets & ~self.targets[:, outside].any(1, keepdims=True)

    def sampler(self, classes: list[int], *, n_way: int, n_shot: int, n_query: int, seed: int,
                training: bool = False):
        """The episode sampler over ``classes`` (:class:`EpisodeSampler`, or :class:`MultiLabelEpisodeSampler`
        for a multi-label dataset). ``training``: a multi-label training sampler leaves out every clip that also
        carries a tag outside ``classes``, so no val or novel tag is ever seen in training."""
        names = self.class_names
        if self.targets is None:
            return EpisodeSampler(labels=torch.from_numpy(self.labels), classes=classes, class_names=names,
                                  n_way=n_way, n_shot=n_shot, n_query=n_query, seed=seed)
        return MultiLabelEpisodeSampler(targets=torch.from_numpy(self._training_targets(classes, training)),
                                        tags=classes, tag_names=names, n_way=n_way, n_shot=n_shot, n_query=n_query,
                                        seed=seed, why=" without a val or novel tag" if training else "")

    def device_data(self, *, device: torch.device, seed: int = 0) -> DeviceData:
        """The store's windows on ``device`` with this dataset's clip policy."""
        f = self.features
        return DeviceData(self.store.array, device=device, crop=crop_size(f), seed=seed, offsets=self.store.offsets,
                          energy=self.store.energy, signal_db=f.signal_db, pooling=f.pooling)

    @property
    def ids(self) -> list[str]:
        """The clip ids, in store order."""
        return [c.id for c in self.manifest.clips]

    @property
    def name(self) -> str:
        """The dataset's name (its manifest's)."""
        return self.manifest.name

    def classes_of(self, names: list[str]) -> list[int]:
        """The class indices of ``names`` (names the dataset does not hold are skipped)."""
        index = {c: i for i, c in enumerate(self.class_names)}
        return [index[n] for n in names if n in index]


def resolve_manifest(dataset: str | None, *, format: str | None = None, label: str | None = None,
                     strict: bool = False, quiet: bool = False, param: str = "dataset") -> Manifest:
    """The validated manifest of ``dataset`` (a path, the parameter ``param``), or of the built-in synthetic dataset
    when ``None``."""
    if dataset in (None, "", BUILTIN):
        root = ensure_synthetic(cache_dir(), quiet=quiet)
        manifest = build_manifest(root, format="folder")
        manifest.name = BUILTIN
    else:
        manifest = build_manifest(dataset, format=format, label=label, param=param)
    manifest = validate_manifest(manifest, strict=strict)
    if manifest.problems:
        logger.warning(f"skipped {len(manifest.problems)} unreadable clip(s): " + "; ".join(manifest.problems))
    return manifest


def resolve_features(features: FeatureConfig, manifest: Manifest) -> FeatureConfig:
    """``features`` with ``duration: auto`` fitted to the manifest's clip durations (the built-in dataset: 1 s)."""
    resolved = features.resolved([c.duration for c in manifest.clips])
    if features.duration == "auto":
        logger.info(f"features.duration auto: {resolved.duration:g} s windows for {manifest.name}")
    return resolved


def load_labelled_features(dataset: str | None, *, features: FeatureConfig, format: str | None = None,
                           label: str | None = None, strict: bool = False, min_clips: int | None = None,
                           multi_label: bool = False, quiet: bool = False) -> LabelledFeatures:
    """The dataset's features and labels (``multi_label``: every tag of each clip); ``features.duration: auto``
    is resolved (``data.features``)."""
    manifest = resolve_manifest(dataset, format=format, label=label, strict=strict, quiet=quiet)
    labels_str = None if multi_label else manifest.single_labels()
    features = resolve_features(features, manifest)
    store = FeatureStore.open_or_build(manifest, features, cache_dir=cache_dir(), quiet=quiet)
    summary = store.skipped_summary()
    if summary:  # on every run that uses the store, not only the one that built it
        if strict:
            raise DataError(f"{summary}; remove or fix those files, or drop strict=True to skip them", param="strict")
        logger.warning(summary)
    targets = None
    if multi_label:
        class_names = manifest.classes
        index = {c: i for i, c in enumerate(class_names)}
        targets = np.zeros((len(manifest.clips), len(class_names)), dtype=bool)
        for i, clip in enumerate(manifest.clips):
            targets[i, [index[t] for t in clip.labels]] = True
        targets[~store.ok] = False
        labels = np.full(len(manifest.clips), -1, dtype=np.int64)
    else:
        class_names = sorted(set(labels_str))
        index = {c: i for i, c in enumerate(class_names)}
        labels = np.array([index[s] for s in labels_str], dtype=np.int64)
        labels[~store.ok] = -1
    data = LabelledFeatures(manifest, store, labels, class_names, features, targets)
    if min_clips:
        small = np.nonzero(data.clip_counts() < min_clips)[0]
        if len(small):
            kind = "tag(s)" if multi_label else "class(es)"
            logger.info(f"min_clips={min_clips}: dropping {len(small)} {kind}: {', '.join(class_names[c] for c in small)}")
            data.drop_classes(small)
    return data


def load_config_data(config, *, quiet: bool = False) -> LabelledFeatures:
    """The labelled features of the dataset that a ``TrainConfig`` names; its ``features.duration`` is
    resolved in place when it is ``auto`` (so the saved run configuration holds the window used)."""
    data = load_labelled_features(config.dataset, features=config.features, format=config.format, label=config.label,
                                  strict=config.strict, min_clips=config.min_clips, multi_label=config.multi_label,
                                  quiet=quiet)
    config.features = data.features
    return data


def config_split(data: LabelledFeatures, config) -> dict[str, list[str]]:
    """The class split that a ``TrainConfig`` names (its split file, or its seeded ratios)."""
    return resolve_split(data, ratios=config.split, seed=0, split_file=config.split_file)


def resolve_split(data: LabelledFeatures, *, ratios: list[float], seed: int, split_file: str | None) -> dict[str, list[str]]:
    """The base/val/novel class split: read from ``split_file``, or drawn with ``seed`` by ``ratios`` over the classes
    present; one line when a part is too small."""
    present = [data.class_names[c] for c in np.nonzero(data.clip_counts() > 0)[0]]
    if split_file:
        split = load_split(split_file, data.class_names)
        split = {k: [c for c in v if c in present] for k, v in split.items()}
    else:
        split = make_split(present, ratios=ratios, seed=seed)
    for name in ("base", "novel"):
        if len(split[name]) < 2:
            raise EpisodeError(f"the {name} split has {len(split[name])} class(es) of {len(present)}; "
                               "a few-shot dataset needs more classes or other split= ratios")
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
    """The stored windows as one tensor on the training device; episodes are gathered by clip index.

    Clip ``i`` owns window rows ``offsets[i]:offsets[i + 1]`` (one row per clip when ``offsets`` is
    ``None``). Training draws one window per clip, uniformly among those within ``signal_db`` dB of
    the clip's loudest (crops contain signal), and a random ``crop`` (frames or samples along the
    last axis) of it; ``eval_inputs`` gives each clip's loudest window, centre-cropped, and
    :meth:`embed` pools the embeddings of all of a clip's windows (``pooling``). When the array
    does not fit in ``memory_fraction`` of the device's free memory it stays memory-mapped on the
    host and each batch is read from the file (sorted reads) and copied over: same interface,
    slower, and a line says so. In that mode ``prefetch(idx)`` starts reading a batch on a
    background thread while the current step computes, and the later ``inputs(idx)`` with the same
    index tensor picks it up.
    """

    def __init__(self, array: np.ndarray, *, device: torch.device, crop: int, seed: int = 0,
                 memory_fraction: float = 0.6, offsets: np.ndarray | None = None, energy: np.ndarray | None = None,
                 signal_db: float = 30.0, pooling: str = "mean"):
        self.device, self.crop, self.pooling = device, crop, pooling
        self.resident = array.nbytes <= memory_fraction * free_memory(device)
        if self.resident:
            in_ram = array.dtype == np.float32 and array.flags.writeable and not isinstance(array, np.memmap)
            self.x = torch.from_numpy(array if in_ram else np.array(array, dtype=np.float32)).to(device)
        else:
            logger.warning(f"features ({array.nbytes / 2**30:.1f} GiB) do not fit in {device} memory: reading episodes from "
                "the memory-mapped store instead, prefetching the next batch")
            self.x = array
        self.full = self.x.shape[-1]
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self._ahead: list[tuple[torch.Tensor, Future]] = []
        self._reader: ThreadPoolExecutor | None = None
        self._index_windows(array.shape[0], offsets, energy, signal_db)

    def _index_windows(self, n_rows: int, offsets, energy, signal_db: float) -> None:
        offsets = np.arange(n_rows + 1) if offsets is None else np.asarray(offsets, dtype=np.int64)
        counts = np.diff(offsets)
        energy = np.zeros(n_rows, np.float32) if energy is None else np.asarray(energy, dtype=np.float32)
        owner = np.repeat(np.arange(len(counts)), counts)
        loudest_db = np.full(len(counts), -np.inf, dtype=np.float32)
        np.maximum.at(loudest_db, owner, energy)
        # the loudest window of each clip (its first, on ties)
        is_loud = energy >= loudest_db[owner]
        first_loud = np.full(len(counts), n_rows, dtype=np.int64)
        np.minimum.at(first_loud, owner[is_loud], np.nonzero(is_loud)[0])
        # the windows with signal: those pooled at evaluation (sorted, grouped by clip)
        eligible = np.nonzero(loud_windows(torch.from_numpy(energy), torch.from_numpy(owner), len(counts),
                                           signal_db).numpy())[0]
        n_eligible = np.bincount(owner[eligible], minlength=len(counts))
        self.offsets = torch.from_numpy(offsets)
        self.energy, self.signal_db = torch.from_numpy(energy), signal_db
        self.loudest = torch.from_numpy(first_loud)
        self.eligible = torch.from_numpy(eligible)
        self.eligible_start = torch.from_numpy(np.concatenate([[0], np.cumsum(n_eligible)[:-1]]))
        self.n_eligible = torch.from_numpy(n_eligible)
        self.multi = bool(n_eligible.max(initial=1) > 1)

    def prefetch(self, *batches: torch.Tensor) -> None:
        """Start reading the rows of each index tensor in ``batches`` (memory-mapped mode; a no-op otherwise)."""
        if self.resident:
            return
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fewshot-audio-prefetch")
        self._ahead.extend((idx, self._reader.submit(self._read, self._train_rows(idx))) for idx in batches)

    def _read(self, idx: torch.Tensor) -> torch.Tensor:
        flat = idx.flatten().numpy()
        order = np.argsort(flat)  # sorted reads from the file, then back to the asked order
        rows = np.empty((len(flat), *self.x.shape[1:]), dtype=np.float32)
        rows[order] = self.x[flat[order]]
        return torch.from_numpy(rows).view(*idx.shape, *self.x.shape[1:])

    def _rows(self, idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The window rows ``rows`` (same shape as the clip indices ``idx``) on the device."""
        if self.resident:  # index_select on the flat index: ~5x faster than advanced indexing on the CPU
            out = torch.index_select(self.x, 0, rows.to(self.device).flatten())
            return out.view(*rows.shape, *self.x.shape[1:])
        for i, (ahead, future) in enumerate(self._ahead):
            if ahead is idx:
                del self._ahead[i]
                return future.result().to(self.device, non_blocking=True)
        return self._read(rows).to(self.device, non_blocking=True)

    def _train_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """One window per clip: uniform among the clip's windows with signal (no draw when each has one)."""
        if not self.multi:
            return self.eligible[self.eligible_start[idx]]
        k = (torch.rand(idx.shape, generator=self.generator) * self.n_eligible[idx]).long()
        return self.eligible[self.eligible_start[idx] + k]

    def _window(self, x: torch.Tensor, idx: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        offsets = start.to(self.device).unsqueeze(-1) + torch.arange(self.crop, device=self.device)
        offsets = offsets.view(*offsets.shape[:-1], *([1] * (x.ndim - idx.ndim - 1)), self.crop)
        return torch.gather(x, -1, offsets.expand(*x.shape[:-1], self.crop))

    def inputs(self, idx: torch.Tensor, *, train: bool = False) -> torch.Tensor:
        """Model inputs ``(*idx.shape, *feature_shape)`` for clip indices ``idx``: one window each."""
        if not train:
            return self._crop_centre(self._rows(idx, self.loudest[idx]))
        x = self._rows(idx, self._train_rows(idx))
        if self.crop >= self.full:
            return x
        start = torch.randint(0, self.full - self.crop + 1, idx.shape, generator=self.generator)
        return self._window(x, idx, start)

    def eval_inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """Evaluation inputs of clips ``idx`` (the clip's first window, no random crop)."""
        return self.inputs(idx, train=False)

    __call__ = eval_inputs

    def embed(self, fn, idx: torch.Tensor) -> torch.Tensor:
        """Clip embeddings ``(n, d)`` for clip indices ``idx (n,)``: ``fn`` on every window of each clip
        (centre-cropped to ``crop``), pooled per clip by ``self.pooling`` over its windows within ``signal_db``
        of its loudest."""
        return pool_windows(fn, idx, offsets=self.offsets, rows=lambda r: self._crop_centre(self._rows(r, r)),
                            pooling=self.pooling, energy=self.energy, signal_db=self.signal_db)

    def _crop_centre(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop >= self.full:
            return x
        begin = (self.full - self.crop) // 2
        return x[..., begin : begin + self.crop]


def pool_windows(fn, idx: torch.Tensor, *, offsets: torch.Tensor, rows, pooling: str = "mean",
                 energy: torch.Tensor | None = None, signal_db: float | None = None) -> torch.Tensor:
    """Embed all windows of clips ``idx`` with ``fn`` and pool them per clip: ``(len(idx), d)`` (``meanmax``: ``2 d``),
    over the windows within ``signal_db`` of the clip's loudest (by the windows' ``energy``, dB)."""
    counts = offsets[idx + 1] - offsets[idx]
    owner = torch.repeat_interleave(torch.arange(len(idx)), counts)
    win = torch.repeat_interleave(offsets[idx] - torch.cumsum(counts, 0) + counts, counts) + torch.arange(int(counts.sum()))
    levels = None if energy is None else energy[win]
    return pool_by_owner(fn(rows(win)), owner, len(idx), pooling=pooling, levels=levels, margin=signal_db)
