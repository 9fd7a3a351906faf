"""The embedding layer: the one place where a model is loaded by spec, audio becomes windows, windows
become embeddings with their times, and window embeddings are pooled into clip embeddings.

``tag``, ``adapt``, the archive index and a model's own tags use it (training and ``compare`` read the
feature store, :mod:`fewshot_audio.features.store`, whose clips are waveform windows).

Two framings, chosen by the feature kind (its front end declares which):

* **waveform framing** (log-mel and waveform backbones, aisfx): the clip policy cuts waveform windows
  (short files looped or padded, a window every ``hop``, the last one ending at the file's end) and the
  front end runs on each window;
* **patch framing** (musicnn, YAMNet, the speech embedding: a
  :class:`~fewshot_audio.specs.PatchFraming`): the front end runs once over the file (block
  by block for long files, with the frames equal to one whole-file pass) and patches are cut in frames,
  where the original code cuts them. ``original=True`` takes the original's patches (its hop and its
  rule for the last patch); otherwise the clip policy's, in frames.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig, TrainConfig
from fewshot_audio.data.audio import audio_duration
from fewshot_audio.embedding.framing import file_patches, waveform_windows
from fewshot_audio.errors import CheckpointError, ConfigError, DataError
from fewshot_audio.features.frontends import SILENCE_PEAK, feature_kind, feature_shape, front_end
from fewshot_audio.models.checkpoints import load_checkpoint
from fewshot_audio.models.compose import build_model, feature_config, model_record
from fewshot_audio.specs import ModelSpec, is_pretrained, models
from fewshot_audio.util.progress import progress

logger = logging.getLogger(__name__)


@dataclass
class Backbone:
    """A frozen embedding model, its :func:`~fewshot_audio.models.compose.model_record` and the feature config it
    was trained with."""

    name: str
    model: torch.nn.Module
    features: FeatureConfig
    window: float
    record: dict


def load_backbone(spec: str, *, device: torch.device, durations: list[float] | None = None) -> Backbone:
    """``spec``: a run folder written by ``train`` (its best checkpoint's backbone), a pretrained
    backbone name (``musicnn-mtt[:layer]`` ...) or ``mfcc`` (whose window is fitted to the clip
    ``durations`` of the support set, as ``features.duration: auto`` does for a dataset)."""
    path = Path(spec)
    if (path / "config.yaml").is_file():
        return _run_backbone(path, device)
    if spec == "mfcc":
        features = TrainConfig().features.resolved(durations)
    else:
        if not is_pretrained(spec):
            raise ConfigError(f"backbone={spec!r} is neither a run folder (with config.yaml), a pretrained model "
                              f"({', '.join(models())}) nor 'mfcc'; train one ('fewshot-audio train') and pass "
                              "its run folder", param="backbone")
        parsed = ModelSpec.parse(spec)
        features = FeatureConfig.of_front_end(parsed.model.front_end)
        spec = parsed.canonical  # one model, one name: 'aisfx:embedding' is 'aisfx'
    record = model_record(spec, feature_shape(features), 64)
    model = build_model(record).to(device).eval()
    return Backbone(spec, model, features, features.duration, record)


def _run_backbone(path: Path, device: torch.device) -> Backbone:
    """The trained backbone of run folder ``path``: rebuilt from its ``model.json`` record with its best
    checkpoint's weights."""
    if not (path / "model.json").is_file():
        raise CheckpointError(f"run folder {path} has no model.json; pass a run folder written by 'fewshot-audio "
                              "train' (it writes model.json at the end of training)")
    saved = json.loads((path / "model.json").read_text())
    record = saved["model"]
    features = feature_config(saved["features"], where=str(path / "model.json"))
    model = build_model(record, where=str(path / "model.json"))
    model.load_state_dict(load_checkpoint(path / "best.pt")["strategy"]["backbone"])
    name = f"{record['backbone']}@{path.name}"
    return Backbone(name, model.to(device).eval(), features, features.crop or features.duration, record)


MAX_HOP_S = 86_400.0  # seconds: a day; a longer hop is one window per file anyway


def checked_hop_s(hop_s: float | None) -> float | None:
    """``hop_s`` seconds between windows (``None``: the default), or a one-line error when it is not a
    positive, finite number of at most :data:`MAX_HOP_S` seconds."""
    if hop_s is None:
        return None
    if isinstance(hop_s, bool) or not isinstance(hop_s, (int, float)) or not math.isfinite(hop_s) or \
            not 0 < hop_s <= MAX_HOP_S:
        raise ConfigError(f"hop_s={hop_s}: must be a positive number of seconds (at most {MAX_HOP_S:g})", param="hop_s")
    return float(hop_s)


def patch_framing(features: FeatureConfig):
    """How the front end of ``features`` frames a file: a :class:`~fewshot_audio.specs.PatchFraming`, or
    ``None`` (waveform windows by the clip policy)."""
    return feature_kind(features).framing


class Embedded(NamedTuple):
    """Per file: window embeddings ``(n_windows, d)``, their times ``(n_windows, 2)`` (start, end seconds), their
    levels ``(n_windows,)`` (dB re full scale) and ``None`` or why it could not be read (then the other three
    are ``None``)."""

    windows: list[np.ndarray | None]
    times: list[np.ndarray | None]
    levels: list[np.ndarray | None]
    errors: list[str | None]


class _Batches:
    """Windows of many files pushed through ``model`` together, ``chunk`` at a time once ``batch`` are waiting;
    each file's embeddings are kept in ``parts[file]``, in order."""

    def __init__(self, model: torch.nn.Module, n_files: int, *, device, chunk: int, batch: int):
        self.model, self.device, self.chunk, self.batch = model, device, chunk, batch
        self.parts: list[list[np.ndarray]] = [[] for _ in range(n_files)]
        self.pending: list[tuple[int, np.ndarray]] = []

    def add(self, i: int, x: np.ndarray) -> None:
        """Queue file ``i``'s windows ``x (k, *shape)``; embed the queue once it holds ``batch`` windows."""
        self.pending.append((i, x))
        if sum(len(w) for _, w in self.pending) >= self.batch:
            self.flush()

    def drop(self, i: int) -> None:
        """Forget file ``i``'s queued windows (it failed part-way)."""
        self.pending[:] = [(j, w) for j, w in self.pending if j != i]

    def flush(self) -> None:
        """Embed every queued window."""
        if not self.pending:
            return
        x = torch.from_numpy(np.concatenate([w for _, w in self.pending])).to(self.device)
        z = torch.cat([self.model(c) for c in x.split(self.chunk)]).float().cpu().numpy()
        start = 0
        for i, w in self.pending:
            self.parts[i].append(z[start : start + len(w)])
            start += len(w)
        self.pending.clear()


@torch.no_grad()
def embed_files(backbone: Backbone, paths: list[Path], *, device: torch.device, hop_s: float | None = None,
                original: bool = False, quiet: bool = False, batch: int = 128) -> Embedded:
    """The :class:`Embedded` windows of each file.

    Files become windows as the module docstring says (``hop_s`` seconds apart; default: one window, or
    with ``original`` and patch framing the original's hop); long files are read block by block so memory
    stays bounded. Windows of many files are batched together through the backbone.
    """
    hop_s = checked_hop_s(hop_s)
    # on a CPU, pretrained models run fastest a few windows at a time (their maps stay in cache)
    chunk = (getattr(backbone.model, "cpu_batch", None) or batch) if torch.device(device).type == "cpu" else batch
    batches = _Batches(backbone.model, len(paths), device=device, chunk=chunk, batch=batch)
    items_of = _framer(backbone, hop_s=hop_s, original=original, device=device)
    times: list[np.ndarray | None] = [None] * len(paths)
    levels: list[list[np.ndarray]] = [[] for _ in paths]
    errors: list[str | None] = [None] * len(paths)
    short, silent = [], []
    for i, path in enumerate(progress(paths, desc="embedding audio", quiet=quiet)):
        try:
            peak = 0.0
            for x, t, p, lv in items_of(path):
                peak = max(peak, p)
                if x is not None:
                    levels[i].append(lv)
                    batches.add(i, x)
                if t is not None:
                    times[i] = t
            if peak < SILENCE_PEAK:
                silent.append(Path(path).name)
            if 0 < audio_duration(path) < backbone.window:
                short.append(Path(path).name)
        except DataError as exc:
            errors[i] = str(exc)
            logger.warning(str(exc))
            batches.drop(i)
    batches.flush()
    _log_odd_files(silent, short, backbone, quiet=quiet)
    ok = [not errors[i] for i in range(len(paths))]
    return Embedded([np.concatenate(batches.parts[i]) if ok[i] else None for i in range(len(paths))],
                    [times[i] if ok[i] else None for i in range(len(paths))],
                    [np.concatenate(levels[i]) if ok[i] else None for i in range(len(paths))], errors)


def _framer(backbone: Backbone, *, hop_s: float | None, original: bool, device):
    """``path -> items``: the framing of ``backbone``'s features (clip-policy waveform windows, or patches of one
    whole-file front-end pass); items as :func:`~fewshot_audio.embedding.framing.file_patches` yields them."""
    f = backbone.features
    framing = patch_framing(f)
    if framing is None:
        return lambda path: waveform_windows(path, f, window_s=backbone.window, hop_s=hop_s or backbone.window)
    window_samples = int(round(backbone.window * f.sample_rate))
    hop_frames = framing.hop if (original and hop_s is None) else \
        max(1, int(round((hop_s or backbone.window) * f.sample_rate / framing.frame_hop)))
    front = front_end(f).to(device).eval()
    return lambda path: file_patches(path, f, framing, front, window_samples=window_samples, hop_frames=hop_frames,
                                     original=original, device=device)


def _log_odd_files(silent: list[str], short: list[str], backbone: Backbone, *, quiet: bool) -> None:
    """One warning for silent files, one status line for files shorter than a window."""
    if silent:
        logger.warning(f"{len(silent)} silent file(s) (peak below {SILENCE_PEAK}): {', '.join(silent[:3])}")
    if short and not quiet:
        logger.info(f"{len(short)} file(s) shorter than one {backbone.window:.3g} s window were "
                    f"{'looped' if backbone.features.short == 'loop' else 'zero-padded'} (e.g. {', '.join(short[:3])})")


def default_hop_s(backbone: Backbone) -> float:
    """Seconds between windows where none is asked for: half a window, for the examples a tagger is built from
    and the files it tags alike (whole-window hops cut a short sound in two more often; docs/results.md,
    "Loud-window pooling")."""
    return backbone.window / 2


def embed_examples(backbone: Backbone, paths: list[Path], *, device: torch.device, hop_s: float | None = None,
                   quiet: bool = False) -> Embedded:
    """:func:`embed_files` for example files, every one of which must be readable (one line naming the first
    that is not)."""
    embedded = embed_files(backbone, paths, device=device, hop_s=hop_s, quiet=quiet)
    bad = next((f"{p}: {e}" for p, e in zip(paths, embedded.errors) if e is not None), None)
    if bad:
        raise DataError(f"example {bad}")
    return embedded


def loud_windows(levels: torch.Tensor, owner: torch.Tensor, n: int, margin: float) -> torch.Tensor:
    """Which windows (levels ``(n_windows,)`` dB, window ``i`` of clip ``owner[i]``) are within ``margin`` dB
    of their clip's loudest window: a boolean mask. A clip that is silent throughout keeps all its windows."""
    top = torch.full((n,), -torch.inf, dtype=levels.dtype, device=levels.device)
    top = top.scatter_reduce(0, owner, levels, reduce="amax")
    return levels >= top[owner] - margin


def pool_by_owner(z: torch.Tensor, owner: torch.Tensor, n: int, *, pooling: str = "mean",
                  levels: torch.Tensor | None = None, margin: float | None = None) -> torch.Tensor:
    """Pool window embeddings ``z (n_windows, d)`` into ``n`` clip embeddings, window ``i`` belonging to clip
    ``owner[i]``: ``(n, d)`` (``meanmax``: ``(n, 2 d)``). With the windows' ``levels`` (dB) and a ``margin``
    (``features.signal_db``), only the windows within ``margin`` dB of their clip's loudest are pooled
    (:func:`loud_windows`): silence around a sound does not drown it.
    The one pooling of the toolkit (evaluation, tagger, archive)."""
    owner = owner.to(z.device)
    if levels is not None and margin is not None:
        keep = loud_windows(levels.to(z.device, torch.float32), owner, n, margin)
        z, owner = z[keep], owner[keep]
    out = []
    if pooling in ("mean", "meanmax"):
        sums = torch.zeros(n, z.shape[1], device=z.device, dtype=z.dtype).index_add_(0, owner, z)
        counts = torch.bincount(owner, minlength=n).to(z.dtype).clamp_min(1)
        out.append(sums / counts.unsqueeze(1))
    if pooling in ("max", "meanmax"):
        out.append(torch.full((n, z.shape[1]), -torch.inf, device=z.device, dtype=z.dtype)
                   .scatter_reduce(0, owner.unsqueeze(1).expand_as(z), z, reduce="amax"))
    return torch.cat(out, dim=1)
