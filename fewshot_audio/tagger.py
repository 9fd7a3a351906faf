"""Adapt to a new tag vocabulary from a handful of examples, and tag new audio with it.

A :class:`Tagger` holds a frozen backbone, per-tag prototypes (or one-vs-rest linear heads) over
pooled clip embeddings, and per-tag decision thresholds calibrated on the support set by leave-one-out,
so "none of these tags" is a possible answer. Files become windows of the backbone's input length by
the clip policy (a hop apart); a file's score for a tag is its clip-level (pooled) score, and each
window is scored on its own for the taggram. A tagger is one safetensors file (tensors plus JSON metadata) that loads without pickle.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import FeatureConfig
from .data.audio import AUDIO_EXTENSIONS
from .embedding import Backbone, embed_files, load_backbone, pool_by_owner
from .errors import CheckpointError, ConfigError, DataError
from .io_utils import atomic_write
from .strategies.base import squared_distances
from .strategies.embedding import centred_l2, cosine_scores, logistic_regression

FORMAT_VERSION = 3  # 3: the embedding model is stored as a model record; 2 (a whole training config) still loads
READABLE_VERSIONS = (2, 3)
HEADS = ("prototypes", "linear")
# how much a false tag costs against a missed one, per tag of the vocabulary (Tagger._fit_tag): chosen on the four
# real sets of benchmarks/bench_real.py (3 examples per tag, the best path of each set: aisfx on body percussion
# and impacts, speech-embedding on words and digits): strictness 1 rejected 44-71% of the clips of held-out
# classes, 2 rejected 51-72% (recall at the threshold 56-87%), balanced accuracy (the earlier rule) 4-54%
STRICTNESS = 2.0


def checked_strictness(strictness: float | None) -> float:
    """``strictness`` (``None``: the default :data:`STRICTNESS`), or a one-line error when it is not > 0."""
    if strictness is None:
        return STRICTNESS
    if not strictness > 0:
        raise ConfigError(f"--strictness must be > 0 (a false tag's cost, per vocabulary tag), got {strictness}")
    return float(strictness)


@dataclass
class TagResult:
    """Tags of one file: ``scores``/``thresholds`` per tag, ``tags`` at or above threshold (highest score first),
    ``taggram`` ``(n_windows, n_tags)`` window scores starting at ``times`` seconds."""

    path: str
    tags: list[str]
    scores: dict[str, float]
    thresholds: dict[str, float]
    taggram: np.ndarray
    times: np.ndarray
    error: str | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "tags": self.tags, "scores": self.scores, "error": self.error}


def audio_files(inputs: list[str | Path]) -> list[Path]:
    """Expand folders (recursively) into audio files; errors on missing paths or nothing to tag."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p} does not exist; pass audio files or folders of audio")
    if not files:
        raise DataError(f"no audio files found in {', '.join(map(str, inputs))} (extensions: {', '.join(AUDIO_EXTENSIONS)})")
    return files


# adapt's backbone when none is given: by tag top-1 on the four real sets of benchmarks/results_real.json (3 examples
# per tag, 10 splits), aisfx had the best mean (53.1%) ahead of mfcc (52.0%), musicnn-mtt and yamnet. The speech
# embedding's mean is higher (65.5%), carried by the two speech sets; it is the weakest on body percussion and its
# licence is unclear for commercial use, so it is recommended for speech rather than made the default (README)
DEFAULT_BACKBONE = "aisfx"


class Tagger:
    """Per-tag prototypes (cosine) or logistic-regression heads over pooled clip embeddings of a frozen
    backbone, with leave-one-out thresholds.

    Embeddings are used in a standardised space (:func:`~fewshot_audio.strategies.embedding.centred_l2`):
    centred on the support clips' mean (and, for the non-learned ``mfcc`` statistics, divided by their
    standard deviation), then L2-normalised; ``normalize=False`` keeps the raw space (``mfcc``: z-scored)
    and negative squared distances per dimension, the toolkit's earlier default, kept to measure against. A file's score for a tag is its clip-level score (the pooled
    embedding's); the taggram scores each window.
    """

    def __init__(self, *, backbone: Backbone, head: str, support_windows: torch.Tensor, support_clip: torch.Tensor,
                 support_paths: list[str], tags: list[str] = (), support_targets: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, thresholds: torch.Tensor | None = None,
                 centre: torch.Tensor | None = None, scale: torch.Tensor | None = None, normalize: bool = True,
                 strictness: float | None = None, device: torch.device = torch.device("cpu")):
        """A tagger over support windows ``(n_windows, d)`` of clips ``support_clip`` (window -> clip index).
        Without ``tags``, it has no tags yet: ``_add`` fits them one by one. Without ``centre``, the
        standardisation statistics are fitted on the support clips."""
        self.backbone, self.tags, self.head, self.device = backbone, list(tags), head, device
        self.normalize = normalize
        self.strictness = checked_strictness(strictness)
        self.support_windows, self.support_clip, self.support_paths = support_windows, support_clip, list(support_paths)
        self.support_targets = (support_targets if support_targets is not None
                                else torch.zeros(len(self.support_paths), 0, dtype=torch.bool))
        self.thresholds = thresholds if thresholds is not None else torch.zeros(0)
        if centre is None:
            clips = self.support_clips()
            centre = clips.mean(0)
            scale = clips.std(0) + 1e-6 if backbone.name == "mfcc" and len(clips) > 1 else None
        self.centre, self.scale = centre, scale
        dim = self.space(self.support_clips()[:1]).shape[1]
        self.params = params if params is not None else torch.zeros(0, dim + (head == "linear"))

    @property
    def pooling(self) -> str:
        return self.backbone.features.pooling

    # ------------------------------------------------------------------------------ embedding
    def embed_files(self, paths: list[Path], *, hop: float | None = None, quiet: bool = False,
                    batch: int = 128) -> tuple[list[np.ndarray | None], list[np.ndarray | None], list[str | None]]:
        """See :func:`embed_files`, with this tagger's backbone and device."""
        return embed_files(self.backbone, paths, device=self.device, hop=hop, quiet=quiet, batch=batch)

    def support_clips(self) -> torch.Tensor:
        """Pooled embeddings ``(n_support_clips, d)`` of the support clips."""
        return pool_by_owner(self.support_windows, self.support_clip, len(self.support_paths), pooling=self.pooling)

    def space(self, z: torch.Tensor) -> torch.Tensor:
        """Clip embeddings ``(n, d)`` in the space where prototypes, heads and thresholds live."""
        if self.normalize:
            return centred_l2(z, self.centre, self.scale)
        return z if self.scale is None else (z - self.centre) / self.scale  # mfcc statistics: z-scored

    # ------------------------------------------------------------------------------ scoring
    def head_scores(self, zs: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``(n, n_tags)`` of embeddings already in :meth:`space`: cosine to each prototype (raw space:
        minus the squared distance per dimension), or the logistic-regression heads' logits."""
        p = self.params if params is None else params
        if self.head == "linear":
            return zs @ p[:, :-1].T + p[:, -1]
        if self.normalize:
            return cosine_scores(zs, p)
        return -squared_distances(zs, p) / zs.shape[-1]

    def score_embeddings(self, windows: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A file's clip-level scores ``(n_tags,)`` (its pooled embedding's) and its taggram ``(n_windows, n_tags)``."""
        z = torch.as_tensor(windows).float()
        clip = self.clip_scores(z, torch.zeros(len(z), dtype=torch.long), 1)[0]
        return clip, self.clip_scores(z, torch.arange(len(z)), len(z))  # each window on its own

    # ------------------------------------------------------------------------------ fitting
    def _fit_params(self, zs: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """A prototype (or a logistic-regression head ``(d + 1,)``) from clip embeddings ``zs`` in :meth:`space`."""
        if self.head == "prototypes":
            return zs[positives].mean(0)
        y = positives.numpy()
        if y.all() or not y.any():  # one class only: a constant head
            return torch.cat([torch.zeros(zs.shape[1]), torch.tensor([1.0 if y.all() else -1.0])])
        coef, intercept = logistic_regression(zs.numpy(), y, C=10.0, balanced=True)
        return torch.cat([torch.from_numpy(coef[0]), torch.from_numpy(intercept)])

    def _fit_tag(self, positives: torch.Tensor, n_tags: int) -> tuple[torch.Tensor, float]:
        """Prototype (or linear head) for one tag from the boolean clip mask ``positives``, and its
        threshold, calibrated on clip-level scores with each positive left out of its own tag's fit.

        The threshold maximises ``TPR - strictness x n_tags x FPR`` (:func:`calibrate_threshold`): a clip of
        none of the tags is answered "none of these" only if all ``n_tags`` tags reject it, so its chance of
        a false tag grows with the vocabulary (about ``n_tags x FPR``); ``strictness`` weighs that false
        tag against a missed one. Uses only the support set: other tags are not touched."""
        zs = self.space(self.support_clips())
        param = self._fit_params(zs, positives)
        scores = self.head_scores(zs, param.unsqueeze(0))[:, 0]
        pos = torch.nonzero(positives).flatten().tolist()
        if len(pos) > 1:
            loo = []
            for i in pos:
                keep = torch.ones(len(zs), dtype=torch.bool)
                keep[i] = False
                p = self._fit_params(zs[keep], positives[keep])
                loo.append(self.head_scores(zs[i : i + 1], p.unsqueeze(0))[0, 0])
            pos_scores = torch.stack(loo)
        else:
            pos_scores = scores[positives]
        weight = self.strictness * n_tags
        return param, calibrate_threshold(pos_scores.numpy(), scores[~positives].numpy(), false_accept_weight=weight)

    # ------------------------------------------------------------------------------ public API
    @classmethod
    def adapt(cls, support: str | Path, *, backbone: str, head: str = "prototypes", format: str | None = None,
              device: str = "cpu", normalize: bool = True, strictness: float | None = None, quiet: bool = False) -> "Tagger":
        """Build a tagger from a folder-per-tag or a CSV (``path,labels`` with ``;``-separated tags)."""
        from .data.adapters import build_manifest, validate_manifest
        from .runtime import pick_device

        if head not in HEADS:
            raise ConfigError(f"--head {head!r} is not valid; use {' or '.join(HEADS)}")
        strictness = checked_strictness(strictness)  # before the support set is embedded
        dev = pick_device(device)
        manifest = build_manifest(support, format=format)
        tags = manifest.classes
        root = Path(support)
        if root.is_dir() and (format or "folder") == "folder":
            empty = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name not in tags
                           and not d.name.startswith("."))
            if empty:
                raise DataError(f"tag {empty[0]!r} has no examples (folder {root / empty[0]} holds no audio); "
                                "add a few recordings or remove the folder")
        checked = validate_manifest(manifest)
        bb = load_backbone(backbone, device=dev, durations=[c.duration for c in checked.clips])
        emb, _, _ = embed_files(bb, [Path(c.path) for c in manifest.clips], device=dev, quiet=quiet)
        ok = [i for i, e in enumerate(emb) if e is not None]
        if not ok:
            raise DataError(f"none of the {len(manifest.clips)} support files could be read")
        clips = [manifest.clips[i] for i in ok]
        return cls.from_embeddings(bb, [emb[i] for i in ok], paths=[c.path for c in clips],
                                   labels=[c.labels for c in clips], tags=tags, head=head, normalize=normalize,
                                   strictness=strictness,
                                   device=dev)

    @classmethod
    def from_embeddings(cls, backbone: Backbone, windows: list[np.ndarray], *, paths: list[str],
                        labels: list[list[str]], tags: list[str] | None = None, head: str = "prototypes",
                        normalize: bool = True, strictness: float | None = None,
                        device: torch.device = torch.device("cpu")) -> "Tagger":
        """A tagger from the window embeddings ``(n_windows, d)`` of each support file and its tags."""
        tagger = cls(backbone=backbone, head=head, device=device, normalize=normalize,
                     strictness=strictness,
                     support_windows=torch.from_numpy(np.concatenate(windows)).float(),
                     support_clip=torch.cat([torch.full((len(w),), j) for j, w in enumerate(windows)]),
                     support_paths=list(paths))
        vocabulary = tags if tags is not None else sorted({t for ls in labels for t in ls})
        for tag in vocabulary:
            mask = torch.tensor([tag in ls for ls in labels])
            if not mask.any():
                raise DataError(f"tag {tag!r} has no readable examples; add audio for it or remove it")
            tagger._add(tag, mask, n_tags=len(vocabulary))
        return tagger

    def _add(self, tag: str, mask: torch.Tensor, *, n_tags: int) -> None:
        param, threshold = self._fit_tag(mask, n_tags)
        self.tags.append(tag)
        self.support_targets = torch.cat([self.support_targets, mask.unsqueeze(1)], dim=1)
        self.thresholds = torch.cat([self.thresholds, torch.tensor([threshold])])
        self.params = torch.cat([self.params, param.unsqueeze(0)])

    def add_tag(self, tag: str, examples: list[str | Path], *, quiet: bool = False) -> None:
        """Add ``tag`` from example files; the other tags' prototypes, heads and thresholds stay as they are
        (their thresholds keep the vocabulary size they were calibrated for; ``adapt`` again to refit all)."""
        if tag in self.tags:
            raise ConfigError(f"tag {tag!r} is already in the tagger; remove it first with remove-tag")
        files = audio_files(list(examples))
        emb, _, _ = self.embed_files(files, quiet=quiet)
        ok = [i for i, e in enumerate(emb) if e is not None]
        if not ok:
            raise DataError(f"tag {tag!r}: none of the example files could be read")
        n0 = len(self.support_paths)
        self._append_support([emb[i] for i in ok], [str(files[i]) for i in ok])
        mask = torch.zeros(len(self.support_paths), dtype=torch.bool)
        mask[n0:] = True
        self._add(tag, mask, n_tags=len(self.tags) + 1)

    def _append_support(self, windows: list[np.ndarray], paths: list[str]) -> None:
        """New support clips (window embeddings ``(n, d)`` of each file), carrying no tag yet."""
        n0 = len(self.support_paths)
        self.support_windows = torch.cat([self.support_windows] + [torch.as_tensor(z).float() for z in windows])
        self.support_clip = torch.cat([self.support_clip] + [torch.full((len(z),), n0 + j) for j, z in enumerate(windows)])
        self.support_paths += list(paths)
        self.support_targets = torch.cat([self.support_targets,
                                          torch.zeros(len(windows), len(self.tags), dtype=torch.bool)])

    def column(self, tag: str, *, hint: str = "") -> int:
        """The index of ``tag`` among the tagger's tags (one line listing them when it is not one)."""
        if tag not in self.tags:
            raise ConfigError(f"tag {tag!r} is not in the tagger; its tags: {', '.join(self.tags)}{hint}")
        return self.tags.index(tag)

    def add_examples(self, tag: str, windows: list[np.ndarray], paths: list[str], positive: list[bool]) -> None:
        """Fold confirmed examples of ``tag`` back in: ``windows[i]`` (window embeddings) of file ``paths[i]``,
        a positive or a negative of ``tag``. A file already in the support set keeps its other tags and
        changes only its answer for ``tag``; a new file joins the support set with no other tag. Then
        ``tag``'s prototype (or head) and threshold are refitted; the other tags stay as they are."""
        j = self.column(tag, hint=" (add it with add-tag)")
        known = {str(Path(p).resolve()): i for i, p in enumerate(self.support_paths)}
        for z, path, pos in zip(windows, paths, positive):
            path = str(Path(path).resolve())
            if path not in known:
                known[path] = len(self.support_paths)
                self._append_support([z], [path])
            self.support_targets[known[path], j] = bool(pos)
        mask = self.support_targets[:, j].clone()
        if not mask.any():
            raise DataError(f"tag {tag!r} would have no positive example left; keep at least one")
        param, threshold = self._fit_tag(mask, len(self.tags))
        self.params[j], self.thresholds[j] = param, threshold

    def clip_scores(self, windows: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
        """Clip-level scores ``(n, n_tags)`` of ``n`` files whose windows ``(n_windows, d)`` belong to ``owner``."""
        return self.head_scores(self.space(pool_by_owner(windows.float(), owner, n, pooling=self.pooling)))

    def remove_tag(self, tag: str) -> None:
        j = self.column(tag)
        keep = [k for k in range(len(self.tags)) if k != j]
        self.tags.pop(j)
        self.thresholds = self.thresholds[keep]
        self.support_targets = self.support_targets[:, keep]
        self.params = self.params[keep]

    def result(self, path: str, windows: np.ndarray, *, times: np.ndarray) -> TagResult:
        """The :class:`TagResult` of one file from its window embeddings, which start at ``times`` seconds."""
        clip, gram = self.score_embeddings(windows)
        best, th = clip.numpy(), self.thresholds.numpy()
        order = np.argsort(-best)  # scores share one embedding space: rank by score
        tags = [self.tags[j] for j in order if best[j] >= th[j]]
        return TagResult(str(path), tags, {t: float(v) for t, v in zip(self.tags, best)},
                         {t: float(v) for t, v in zip(self.tags, th)}, gram.numpy(), np.asarray(times, dtype=np.float64))

    def tag(self, paths: list[str | Path], *, hop: float | None = None, quiet: bool = False) -> list[TagResult]:
        """Tag files (or folders): clip-level scores, tags at or above their thresholds and a taggram per file."""
        files = audio_files(list(paths))
        step = hop if hop is not None else self.backbone.window / 2
        emb, times, errors = self.embed_files(files, hop=step, quiet=quiet)
        out = []
        for path, z, t, err in zip(files, emb, times, errors):
            if z is None:
                out.append(TagResult(str(path), [], {}, {}, np.zeros((0, len(self.tags))), np.zeros(0), err))
                continue
            out.append(self.result(str(path), z, times=t[:, 0]))
        return out

    # ------------------------------------------------------------------------------ persistence
    def metadata(self) -> dict:
        return {"format_version": FORMAT_VERSION, "toolkit_version": __version__, "tags": self.tags, "head": self.head,
                "normalize": self.normalize, "strictness": self.strictness, "backbone": self.backbone.name, "model": self.backbone.record,
                "features": asdict(self.backbone.features), "window": self.backbone.window,
                "thresholds": self.thresholds.tolist(), "support_paths": self.support_paths}

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        tensors = {"support_windows": self.support_windows, "support_clip": self.support_clip,
                   "support_targets": self.support_targets.to(torch.uint8), "thresholds": self.thresholds,
                   "params": self.params, "centre": self.centre}
        if self.scale is not None:
            tensors["scale"] = self.scale
        model_state = self.backbone.model.state_dict()
        tensors.update({f"backbone.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()})
        meta = {"fewshot_audio": json.dumps(self.metadata())}
        atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=meta))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", expect_backbone: str | None = None) -> "Tagger":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from safetensors import safe_open

        from .compose import build_model, feature_config
        from .runtime import pick_device

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"tagger file {path} does not exist; build one with 'fewshot-audio adapt'")
        try:
            with safe_open(str(path), framework="pt") as fh:
                raw = (fh.metadata() or {}).get("fewshot_audio")
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable tagger file ({exc})") from None
        if raw is None:
            raise CheckpointError(f"{path} is a safetensors file but not a fewshot-audio tagger")
        meta = json.loads(raw)
        if meta.get("format_version") not in READABLE_VERSIONS:
            raise CheckpointError(f"tagger {path} has format version {meta.get('format_version')} (toolkit "
                                  f"{meta.get('toolkit_version')}); this toolkit reads versions "
                                  f"{', '.join(map(str, READABLE_VERSIONS))}: rebuild it with 'fewshot-audio adapt'")
        if expect_backbone is not None and expect_backbone != meta["backbone"].split("@")[0]:
            raise ConfigError(f"tagger {path} was built on backbone {meta['backbone']!r}, not {expect_backbone!r}; "
                              "use a tagger built on that backbone or adapt a new one")
        dev = pick_device(device)
        features = feature_config(meta["features"], where=str(path))
        state = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
        record = meta.get("model") or _record_of_version_2(meta, features, where=str(path))
        model = build_model(record, where=str(path))
        model.load_state_dict(state)
        model = model.to(dev).eval()
        bb = Backbone(meta["backbone"], model, features, meta["window"], record)
        return cls(backbone=bb, tags=meta["tags"], head=meta["head"], support_windows=tensors["support_windows"],
                   support_clip=tensors["support_clip"], support_targets=tensors["support_targets"].bool(),
                   support_paths=meta["support_paths"], params=tensors["params"], thresholds=tensors["thresholds"],
                   centre=tensors["centre"], scale=tensors.get("scale"), normalize=meta["normalize"],
                   strictness=meta.get("strictness"), device=dev)


def _record_of_version_2(meta: dict, features: FeatureConfig, *, where: str) -> dict:
    """The model record of a version-2 tagger, which stored a run's whole training config (or nothing
    for ``mfcc`` and pretrained backbones)."""
    from .compose import input_shape, model_record
    from .features import feature_shape

    config = meta.get("backbone_config")
    if config is None:
        return model_record(meta["backbone"], feature_shape(features), 64)
    from .config import config_from_dict
    from .strategies import strategy_class

    cfg = config_from_dict(config, where=where)
    return model_record(strategy_class(cfg.strategy).backbone_name or cfg.backbone, input_shape(cfg.features),
                        cfg.channels)


SUGGEST_METHODS = ("uncertain", "top", "random")


def rank_for_labelling(scores: np.ndarray, threshold: float, *, method: str, k: int,
                       seed: int = 0) -> np.ndarray:
    """Indices of the ``k`` candidates to label next for one tag, from their clip-level ``scores``:
    ``uncertain`` (closest to the tag's threshold), ``top`` (highest scores) or ``random``."""
    if method not in SUGGEST_METHODS:
        raise ConfigError(f"--method {method!r} is not valid; use {', '.join(SUGGEST_METHODS)}")
    scores = np.asarray(scores, dtype=np.float64)
    if method == "uncertain":
        order = np.argsort(np.abs(scores - threshold), kind="stable")
    elif method == "top":
        order = np.argsort(-scores, kind="stable")
    else:
        order = np.random.default_rng(seed).permutation(len(scores))
    return order[:k]


def calibrate_threshold(pos: np.ndarray, neg: np.ndarray, *, false_accept_weight: float = 1.0) -> float:
    """The threshold maximising ``TPR - false_accept_weight x FPR`` between leave-one-out positive scores and
    negative scores (weight 1: balanced accuracy); ties go to the higher (more conservative) threshold.
    Without negatives: the lowest positive."""
    pos, neg = np.sort(np.asarray(pos, dtype=np.float64)), np.sort(np.asarray(neg, dtype=np.float64))
    if len(neg) == 0:
        return float(pos.min())
    values = np.unique(np.concatenate([pos, neg]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    tpr = 1 - np.searchsorted(pos, candidates, side="left") / len(pos)
    fpr = 1 - np.searchsorted(neg, candidates, side="left") / len(neg)
    j = tpr - false_accept_weight * fpr
    best = np.nonzero(j >= j.max() - 1e-12)[0][-1]
    return float(candidates[best])
