"""Configuration: dataclasses, YAML loading and command-line overrides.

Unknown keys are errors that list the valid ones, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fewshot_audio.errors import ConfigError
from fewshot_audio.specs import FrontEndSpec, front_ends

POOLINGS = ("mean", "max", "meanmax")
SHORT_POLICIES = ("loop", "pad")  # a clip shorter than a window is looped or zero-padded
AUTO_WINDOW = (0.25, 5.0)  # duration: auto picks the 90th percentile of clip durations within these bounds (s)


@dataclass
class FeatureConfig:
    """How audio becomes model input.

    ``kind`` is ``"logmel"`` (tensor ``(1, n_mels, frames)``, dB), ``"waveform"`` (``(1, samples)``) or a
    pretrained model's own front end (``musicnn``, ``aisfx``, ``yamnet``: ``(1, bins, frames)``, with the
    sample rate and bands that model needs).

    The clip policy (:func:`fewshot_audio.data.audio.clip_windows`): every clip becomes windows of
    ``duration`` seconds; a shorter clip is looped (``short: loop``) or zero-padded (``short: pad``),
    a longer one is covered by windows every ``hop`` seconds (default: ``duration``), at most
    ``max_windows`` of them. ``duration: auto`` takes the 90th percentile of the dataset's clip
    durations (between 0.25 and 5 s; the built-in dataset's clips are all 1 s). Training draws one
    window per clip among those within ``signal_db`` dB of the clip's loudest (so crops contain
    signal) and takes a random ``crop`` second part of it when ``crop`` is shorter; evaluation, ``adapt``
    and ``tag`` embed every window and pool the embeddings of the windows within ``signal_db`` dB of the
    clip's loudest into one per clip (``pooling``: mean, max or meanmax), so that silence around a sound
    does not drown it.
    """

    kind: str = "logmel"
    sample_rate: int = 16000
    duration: float | str = "auto"
    hop: float | None = None
    short: str = "loop"
    max_windows: int = 16
    signal_db: float = 30.0
    pooling: str = "mean"
    crop: float | None = None
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float = 80.0

    @classmethod
    def of_front_end(cls, fe: FrontEndSpec) -> FeatureConfig:
        """The features of a pretrained model's own front end ``fe``: one model input per window."""
        return cls(kind=fe.kind, sample_rate=fe.sample_rate, duration=fe.window, n_mels=fe.n_bins, signal_db=fe.signal_db,
                   **fe.fixed)

    def validate(self) -> None:
        # which kinds exist is the front-end registry's to say (features.frontends.feature_kind)
        """Raise a one-line :class:`ConfigError` naming the first setting out of range (a pretrained front end's fixed
        settings included)."""
        if self.kind in front_ends():
            fe = front_ends()[self.kind]
            fixed = {"sample_rate": fe.sample_rate, "n_mels": fe.n_bins, **fe.fixed}
            wrong = {k: getattr(self, k) for k, v in fixed.items() if getattr(self, k) != v}
            if wrong:
                raise ConfigError(f"features.kind {self.kind} needs {fixed} (the model's own front end); got {wrong}")
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"features.{name} must be > 0, got {getattr(self, name)}")
        if self.duration != "auto" and (isinstance(self.duration, str) or self.duration <= 0):
            raise ConfigError(f"features.duration must be 'auto' or > 0 seconds, got {self.duration!r}")
        if self.hop is not None and self.hop <= 0:
            raise ConfigError(f"features.hop must be > 0 seconds, got {self.hop}")
        if self.short not in SHORT_POLICIES:
            raise ConfigError(f"features.short {self.short!r} is not valid; use one of {', '.join(SHORT_POLICIES)}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"features.pooling {self.pooling!r} is not valid; use one of {', '.join(POOLINGS)}")
        if not isinstance(self.max_windows, int) or self.max_windows < 1:
            raise ConfigError(f"features.max_windows must be a positive integer, got {self.max_windows!r}")
        if self.crop is not None and (self.crop <= 0 or (self.duration != "auto" and self.crop > self.duration)):
            raise ConfigError(f"features.crop must be in (0, duration={self.duration}], got {self.crop}")
        fmax = self.fmax if self.fmax is not None else self.sample_rate / 2
        if not 0 <= self.fmin < fmax <= self.sample_rate / 2:
            raise ConfigError(
                f"features.fmin={self.fmin} / fmax={self.fmax} must satisfy 0 <= fmin < fmax <= sample_rate/2"
            )

    def resolved(self, durations: list[float] | np.ndarray | None) -> FeatureConfig:
        """A copy with ``duration: auto`` replaced by a window fitted to clip ``durations`` (seconds):
        their 90th percentile, within :data:`AUTO_WINDOW`, rounded to 10 ms (1 s without durations)."""
        if self.duration != "auto":
            return self
        d = np.asarray([x for x in (durations if durations is not None else []) if x is not None and x > 0], float)
        window = 1.0 if d.size == 0 else float(np.clip(np.percentile(d, 90), *AUTO_WINDOW))
        if self.crop is not None:
            window = max(window, self.crop)
        return dataclasses.replace(self, duration=round(window, 2))

    @property
    def n_samples(self) -> int:
        """Samples in one window (``duration`` at ``sample_rate``; ``duration`` must be resolved)."""
        if self.duration == "auto":
            raise ConfigError("features.duration is 'auto' and was not resolved against a dataset")
        return int(round(self.duration * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        """Samples between the starts of a long clip's windows."""
        return int(round(self.hop * self.sample_rate)) if self.hop else self.n_samples

    @property
    def n_frames(self) -> int:
        """Log-mel frames in one window (centred frames every ``hop_length`` samples)."""
        if self.kind in front_ends():
            return front_ends()[self.kind].frames(self.n_samples)
        return 1 + self.n_samples // self.hop_length


@dataclass
class TrainConfig:
    """Everything a meta-training run needs; saved resolved in the run folder."""

    dataset: str | None = None  # None: the built-in synthetic dataset
    format: str | None = None  # dataset layout; None: auto-detect
    label: str | None = None  # which label an adapter uses (e.g. fsdd: digit|speaker)
    strategy: str = "prototypical"
    backbone: str = "conv4"
    channels: int = 64
    ways: int = 5
    shots: int = 5
    queries: int = 15
    train_ways: int | None = None  # None: same as ways
    train_queries: int | None = None  # None: same as queries
    episodes: int = 600
    meta_batch: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_every: int = 100
    val_episodes: int = 200
    test_episodes: int = 1000
    split: list[float] = field(default_factory=lambda: [0.6, 0.15, 0.25])
    split_file: str | None = None
    min_clips: int | None = None  # drop classes with fewer clips than this
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    compile: bool = False  # torch.compile the backbone (GPU runs; the first steps are slow while it compiles)
    episodes_dir: str = "episodes"
    out: str | None = None
    strict: bool = False
    baseline: bool = True  # score the mfcc baseline on the same test episodes
    multi_label: bool = False  # every tag of each clip: multi-label episodes, soft-target loss, mAP and F1
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def validate(self) -> None:
        """Raise a one-line :class:`ConfigError` naming the first setting out of range (its features included)."""
        self.features.validate()
        for name in ("ways", "shots", "queries", "episodes", "meta_batch", "val_every", "val_episodes",
                     "test_episodes", "channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.ways < 2:
            raise ConfigError(f"ways must be >= 2 for a classification episode, got {self.ways}")
        for name in ("train_ways", "train_queries"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if len(self.split) != 3 or any(r < 0 for r in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise ConfigError(f"split must be three non-negative ratios summing to 1 (base, val, novel), got {self.split}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device {self.device!r} is not valid; use auto, cpu, cuda or cuda:N")

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain values (nested dicts for the features), as ``config.yaml`` stores them."""
        return dataclasses.asdict(self)

    def fingerprint(self, *, without: tuple[str, ...] = (), **extra) -> str:
        """Short hash of everything that changes what a run computes: every setting but where it runs and writes
        (and the settings ``without``), with ``extra`` values beside them (a comparison's protocol, ...). The one
        configuration hash of runs and comparisons.

        Examples
        --------
        >>> TrainConfig(out="a").fingerprint() == TrainConfig(out="b").fingerprint() != TrainConfig(seed=1).fingerprint()
        True
        """
        keep = self.to_dict()
        for k in ("out", "device", "episodes_dir", "strict", *without):
            keep.pop(k, None)
        keep.update(extra)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _from_mapping(cls, data: dict[str, Any], where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    valid = _field_names(cls)
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    kwargs = dict(data)
    if cls is TrainConfig and "features" in kwargs:
        kwargs["features"] = _from_mapping(FeatureConfig, kwargs["features"] or {}, f"{where}: features")
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """The :class:`TrainConfig` of a mapping (a parsed ``config.yaml``); ``where`` names it in errors about unknown or
    mistyped keys."""
    return _from_mapping(TrainConfig, data, where)


def read_yaml(path: str | Path, *, what: str) -> Any:
    """The contents of the YAML file ``path`` (``yaml.safe_load``); a file that cannot be read or parsed is one
    :class:`ConfigError` naming ``what`` it is, the file and, for a parse error, the line."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what} {path} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML preset (``yaml.safe_load``); unknown keys are errors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; see configs/ for presets")
    return config_from_dict(read_yaml(path, what="config file") or {}, where=str(path))


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Return a copy of ``config`` with non-None ``overrides`` applied.

    Keys ``features.X`` set feature options.
    """
    data = config.to_dict()
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("features."):
            data["features"][key.split(".", 1)[1]] = value
        else:
            data[key] = value
    return config_from_dict(data, where="command line")
