"""Adapt to a new tag vocabulary from a handful of examples, and tag new audio with it.

A :class:`Tagger` holds a frozen backbone, one head per tag (:mod:`fewshot_audio.tagging.heads`) over
pooled clip embeddings, and per-tag thresholds calibrated on the support set
(:mod:`fewshot_audio.tagging.calibration`), so "none of these tags" is a possible answer. Files become
windows by the embedding layer (:mod:`fewshot_audio.embedding`); a file's score for a tag is its
clip-level (pooled) score, and each window is scored on its own for the taggram. Saved as one
safetensors file (:mod:`fewshot_audio.tagging.files`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.data.adapters import build_manifest, validate_manifest
from fewshot_audio.data.audio import audio_files
from fewshot_audio.embedding import Backbone, Embedded, checked_hop_s, default_hop_s, embed_files, load_backbone, pool_by_owner
from fewshot_audio.errors import ConfigError, DataError
from fewshot_audio.fewshot.strategies.embedding import centred_l2, space_statistics
from fewshot_audio.specs import weights_notice
from fewshot_audio.tagging.calibration import checked_strictness, fit_tag, loo_scores
from fewshot_audio.tagging.files import read_tagger, write_tagger
from fewshot_audio.tagging.heads import get_head
from fewshot_audio.tagging.model_choice import AUTO, choose_backbone
from fewshot_audio.tagging.results import TagResult
from fewshot_audio.util.runtime import pick_device

logger = logging.getLogger(__name__)

# adapt's backbone when none is given: the support set chooses (tagging/model_choice.py; docs/results.md)
DEFAULT_BACKBONE = AUTO
MIN_EXAMPLES = 3  # fewer examples per tag than this: a warning that its threshold is unreliable


def one_tag_needs_negatives(tag: str) -> str:
    """The message for a vocabulary of one tag without negatives (nothing to calibrate its threshold against)."""
    return (f"a vocabulary of one tag ({tag!r}) has nothing to calibrate its threshold against: pass "
            f"negatives=FOLDER_OR_FILES with clips that are not {tag!r}")


class Tagger:
    """One head per tag (:mod:`~fewshot_audio.tagging.heads`) over pooled clip embeddings of a frozen backbone,
    with leave-one-out thresholds.

    Embeddings are used in a standardised space (:func:`~fewshot_audio.fewshot.strategies.embedding.centred_l2`):
    centred on the support clips' mean (and, for a backbone whose outputs are statistics of unlike scales,
    ``standardize = True`` such as MFCC statistics, divided by their standard deviation), then L2-normalised.
    A file's score for a tag is its clip-level score (the pooled embedding's); the taggram scores each window.
    """

    def __init__(self, *, backbone: Backbone, head: str, support_windows: torch.Tensor, support_clip: torch.Tensor,
                 support_paths: list[str], tags: list[str] = (), support_targets: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, thresholds: torch.Tensor | None = None,
                 centre: torch.Tensor | None = None, scale: torch.Tensor | None = None,
                 strictness: float | None = None, support_levels: torch.Tensor | None = None,
                 device: torch.device = torch.device("cpu")):
        """A tagger over support windows ``(n_windows, d)`` of clips ``support_clip`` (window -> clip index) and
        their levels in dB (``None``, from files written before levels were kept: every window is pooled).
        Without ``tags``, it has no tags yet: ``_add`` fits them one by one. Without ``centre``, the
        standardisation statistics are fitted on the support clips."""
        self.backbone, self.tags, self.head, self.device = backbone, list(tags), head, device
        self._head = get_head(head)
        self.written_by = None  # the toolkit version that wrote the file it was loaded from
        self.choice: dict | None = None  # how --backbone auto chose the backbone (None: it was named)
        self.strictness = checked_strictness(strictness)
        self.support_windows, self.support_clip, self.support_paths = support_windows, support_clip, list(support_paths)
        self.support_levels = support_levels
        self.support_targets = (support_targets if support_targets is not None
                                else torch.zeros(len(self.support_paths), 0, dtype=torch.bool))
        self.thresholds = thresholds if thresholds is not None else torch.zeros(0)
        if centre is None:
            clips = self.support_clips()
            centre, scale = space_statistics(clips, standardize=getattr(backbone.model, "standardize", False))
        self.centre, self.scale = centre, scale
        dim = self.space(self.support_clips()[:1]).shape[1]
        self.params = params if params is not None else torch.zeros(0, self._head.width(dim))

    @property
    def pooling(self) -> str:
        """How window embeddings are pooled into a clip's (the backbone's features' ``pooling``)."""
        return self.backbone.features.pooling

    # ------------------------------------------------------------------------------ embedding
    def embed_files(self, paths: list[Path], *, hop_s: float | None = None, quiet: bool = False,
                    batch: int = 128) -> Embedded:
        """See :func:`embed_files`, with this tagger's backbone and device."""
        return embed_files(self.backbone, paths, device=self.device, hop_s=hop_s, quiet=quiet, batch=batch)

    def support_clips(self) -> torch.Tensor:
        """Pooled embeddings ``(n_support_clips, d)`` of the support clips."""
        return pool_by_owner(self.support_windows, self.support_clip, len(self.support_paths), pooling=self.pooling,
                             levels=self.support_levels, margin=self.backbone.features.signal_db)

    def space(self, z: torch.Tensor) -> torch.Tensor:
        """Clip embeddings ``(n, d)`` in the space where heads and thresholds live."""
        return centred_l2(z, self.centre, self.scale)

    # ------------------------------------------------------------------------------ scoring
    def head_scores(self, zs: torch.Tensor) -> torch.Tensor:
        """Scores ``(n, n_tags)`` of embeddings already in :meth:`space`."""
        return self._head.scores(zs, self.params)

    def score_embeddings(self, windows: np.ndarray | torch.Tensor, levels: np.ndarray | torch.Tensor | None = None,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """A file's clip-level scores ``(n_tags,)`` (its embedding pooled over its loud windows, by their
        ``levels``) and its taggram ``(n_windows, n_tags)`` (every window)."""
        z = torch.as_tensor(windows).float()
        lv = None if levels is None else torch.as_tensor(levels).float()
        clip = self.clip_scores(z, torch.zeros(len(z), dtype=torch.long), 1, levels=lv)[0]
        return clip, self.clip_scores(z, torch.arange(len(z)), len(z))  # each window on its own

    # ------------------------------------------------------------------------------ fitting
    def _fit_tag(self, positives: torch.Tensor, n_tags: int) -> tuple[torch.Tensor, float]:
        """One tag's head and threshold from the boolean clip mask ``positives`` (the support set only:
        other tags are not touched); see :func:`~fewshot_audio.tagging.calibration.fit_tag`."""
        return fit_tag(self._head, self.space(self.support_clips()), positives, strictness=self.strictness,
                       n_tags=n_tags)

    # ------------------------------------------------------------------------------ public API
    @classmethod
    def adapt(cls, support: str | Path, *, backbone: str, head: str = "prototypes", format: str | None = None,
              negatives: list[str | Path] = (), device: str = "cpu", strictness: float | None = None,
              noncommercial: bool = False, quiet: bool = False) -> Tagger:
        """Build a tagger from a folder-per-tag or a CSV (``path,labels`` with ``;``-separated tags), and
        ``negatives`` (files or folders of clips that carry none of the tags), which every tag's head and
        threshold are fitted against. ``noncommercial``: ``backbone='auto'`` may choose models whose licence
        forbids commercial use."""
        get_head(head)  # an unknown head is an error before any work
        strictness = checked_strictness(strictness)  # before the support set is embedded
        dev = pick_device(device)
        manifest = build_manifest(support, format=format, param="support")
        tags = manifest.classes
        root = Path(support)
        if root.is_dir() and (format or "folder") == "folder":
            empty = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name not in tags
                           and not d.name.startswith("."))
            if empty:
                raise DataError(f"tag {empty[0]!r} has no examples (folder {root / empty[0]} holds no audio); "
                                "add a few recordings or remove the folder")
        negative_files = audio_files(list(negatives), param="negatives") if negatives else []
        both = {Path(f).resolve() for f in negative_files} & {Path(c.path).resolve() for c in manifest.clips}
        if both:
            raise DataError(f"{sorted(both)[0]} is both an example of a tag and a negative ({len(both)} file(s) are); "
                            "a negative must carry none of the tags: remove it from negatives= or from the examples")
        if len(tags) == 1 and not negative_files:
            raise DataError(one_tag_needs_negatives(tags[0]))
        checked = validate_manifest(manifest)
        durations = [c.duration for c in checked.clips]
        paths = [Path(c.path) for c in manifest.clips] + negative_files
        labels = [c.labels for c in manifest.clips] + [()] * len(negative_files)
        choice = None
        if backbone == AUTO:
            targets = torch.tensor([[t in ls for t in tags] for ls in labels], dtype=torch.bool)
            choice, bb, emb = choose_backbone(paths, targets, durations=durations, device=dev,
                                              noncommercial=noncommercial, quiet=quiet)
        else:
            bb = load_backbone(backbone, device=dev, durations=durations)
            emb = embed_files(bb, paths, device=dev, hop_s=default_hop_s(bb), quiet=quiet)
        ok = [i for i, e in enumerate(emb.windows) if e is not None]
        if not any(i < len(manifest.clips) for i in ok):
            raise DataError(f"none of the {len(manifest.clips)} support files could be read")
        tagger = cls.from_embeddings(bb, [emb.windows[i] for i in ok], paths=[str(paths[i]) for i in ok],
                                     labels=[labels[i] for i in ok], tags=tags, head=head, strictness=strictness,
                                     levels=[emb.levels[i] for i in ok], device=dev)
        if choice is not None:
            tagger.choice = {"backbone": choice.backbone, "seconds": round(choice.seconds, 1), "reason": choice.reason,
                             "estimates": {c: (None if v != v else v) for c, v in choice.estimates.items()}}
        return tagger

    @classmethod
    def from_embeddings(cls, backbone: Backbone, windows: list[np.ndarray], *, paths: list[str],
                        labels: list[list[str]], tags: list[str] | None = None, head: str = "prototypes",
                        strictness: float | None = None, levels: list[np.ndarray] | None = None,
                        device: torch.device = torch.device("cpu")) -> Tagger:
        """A tagger from the window embeddings ``(n_windows, d)`` of each support file, their levels (dB) and
        the file's tags (a file with no tag is a negative of every tag)."""
        tagger = cls(backbone=backbone, head=head, device=device, strictness=strictness,
                     support_levels=None if levels is None else torch.from_numpy(np.concatenate(levels)).float(),
                     support_windows=torch.from_numpy(np.concatenate(windows)).float(),
                     support_clip=torch.cat([torch.full((len(w),), j) for j, w in enumerate(windows)]),
                     support_paths=list(paths))
        vocabulary = tags if tags is not None else sorted({t for ls in labels for t in ls})
        if len(vocabulary) == 1 and all(vocabulary[0] in ls for ls in labels):
            raise DataError(one_tag_needs_negatives(vocabulary[0]))
        for tag in vocabulary:
            mask = torch.tensor([tag in ls for ls in labels])
            if not mask.any():
                raise DataError(f"tag {tag!r} has no readable examples; add audio for it or remove it")
            tagger._add(tag, mask, n_tags=len(vocabulary))
        few = {t: int(n) for t, n in zip(tagger.tags, tagger.support_targets.sum(0).tolist()) if n < MIN_EXAMPLES}
        if few:
            logger.warning(f"{len(few)} tag(s) have fewer than {MIN_EXAMPLES} examples ("
                 + ", ".join(f"{t}: {n}" for t, n in list(few.items())[:5]) + "): their thresholds are calibrated on "
                 "too few leave-one-out scores and will miss many clips of the tag (see 'fewshot-audio tagger info' "
                 "for each tag's leave-one-out recall); add examples or lower strictness=")
        return tagger

    def loo_recall(self) -> list[float | None]:
        """Per tag, the fraction of its examples at or above its threshold when each is left out of the tag's
        fit: what the threshold is likely to keep of new clips of the tag; None for a tag of one example (left
        out, nothing remains to fit)."""
        zs = self.space(self.support_clips())
        return [None if int(self.support_targets[:, j].sum()) < 2 else
                float((loo_scores(self._head, zs, self.support_targets[:, j]) >= self.thresholds[j]).float().mean())
                for j in range(len(self.tags))]

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
        emb = self.embed_files(files, hop_s=default_hop_s(self.backbone), quiet=quiet)
        ok = [i for i, e in enumerate(emb.windows) if e is not None]
        if not ok:
            raise DataError(f"tag {tag!r}: none of the example files could be read")
        n0 = len(self.support_paths)
        self._append_support([emb.windows[i] for i in ok], [str(files[i]) for i in ok], [emb.levels[i] for i in ok])
        mask = torch.zeros(len(self.support_paths), dtype=torch.bool)
        mask[n0:] = True
        self._add(tag, mask, n_tags=len(self.tags) + 1)

    def _append_support(self, windows: list[np.ndarray], paths: list[str], levels: list[np.ndarray | None]) -> None:
        """New support clips (window embeddings ``(n, d)`` of each file and their levels), carrying no tag yet."""
        n0 = len(self.support_paths)
        if self.support_levels is not None:
            new = [torch.full((len(z),), torch.inf) if lv is None else torch.as_tensor(lv).float()
                   for z, lv in zip(windows, levels)]  # no levels: every window of the clip is pooled
            self.support_levels = torch.cat([self.support_levels, *new])
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

    def add_examples(self, tag: str, windows: list[np.ndarray], paths: list[str], positive: list[bool],
                     levels: list[np.ndarray | None] | None = None) -> None:
        """Fold confirmed examples of ``tag`` back in: ``windows[i]`` (window embeddings, with their ``levels``)
        of file ``paths[i]``,
        a positive or a negative of ``tag``. A file already in the support set keeps its other tags and
        changes only its answer for ``tag``; a new file joins the support set with no other tag. Then
        ``tag``'s prototype (or head) and threshold are refitted; the other tags stay as they are."""
        j = self.column(tag, hint=" (add it with add-tag)")
        known = {str(Path(p).resolve()): i for i, p in enumerate(self.support_paths)}
        for z, path, pos, lv in zip(windows, paths, positive, levels or [None] * len(windows)):
            path = str(Path(path).resolve())
            if path not in known:
                known[path] = len(self.support_paths)
                self._append_support([z], [path], [lv])
            self.support_targets[known[path], j] = bool(pos)
        mask = self.support_targets[:, j].clone()
        if not mask.any():
            raise DataError(f"tag {tag!r} would have no positive example left; keep at least one")
        param, threshold = self._fit_tag(mask, len(self.tags))
        self.params[j], self.thresholds[j] = param, threshold

    def clip_scores(self, windows: torch.Tensor, owner: torch.Tensor, n: int,
                    levels: torch.Tensor | None = None) -> torch.Tensor:
        """Clip-level scores ``(n, n_tags)`` of ``n`` files whose windows ``(n_windows, d)``, at ``levels`` dB,
        belong to ``owner``."""
        return self.head_scores(self.space(pool_by_owner(windows.float(), owner, n, pooling=self.pooling,
                                                         levels=levels, margin=self.backbone.features.signal_db)))

    def remove_tag(self, tag: str) -> None:
        """Drop ``tag`` with its examples, head and threshold."""
        j = self.column(tag)
        keep = [k for k in range(len(self.tags)) if k != j]
        self.tags.pop(j)
        self.thresholds = self.thresholds[keep]
        self.support_targets = self.support_targets[:, keep]
        self.params = self.params[keep]

    def result(self, path: str, windows: np.ndarray, *, times: np.ndarray, levels: np.ndarray | None = None,
               ) -> TagResult:
        """The :class:`TagResult` of one file from its window embeddings, which start at ``times`` seconds and
        have ``levels`` dB."""
        clip, gram = self.score_embeddings(windows, levels)
        best, th = clip.numpy(), self.thresholds.numpy()
        order = np.argsort(-best)  # scores share one embedding space: rank by score
        tags = [self.tags[j] for j in order if best[j] >= th[j]]
        return TagResult(str(path), tags, {t: float(v) for t, v in zip(self.tags, best)},
                         {t: float(v) for t, v in zip(self.tags, th)}, gram.numpy(), np.asarray(times, dtype=np.float64))

    def tag(self, paths: list[str | Path], *, hop_s: float | None = None, quiet: bool = False) -> list[TagResult]:
        """Tag files (or folders): clip-level scores, tags at or above their thresholds and a taggram per file."""
        files = audio_files(list(paths))
        step_s = checked_hop_s(hop_s) or default_hop_s(self.backbone)
        emb = self.embed_files(files, hop_s=step_s, quiet=quiet)
        out = []
        for path, z, t, lv, err in zip(files, *emb):
            if z is None:
                out.append(TagResult.failed(str(path), err, n_tags=len(self.tags)))
                continue
            out.append(self.result(str(path), z, times=t[:, 0], levels=lv))
        return out

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the tagger to ``path`` (one safetensors file, no pickle), atomically."""
        tensors = {"support_windows": self.support_windows, "support_clip": self.support_clip,
                   "support_targets": self.support_targets.to(torch.uint8), "thresholds": self.thresholds,
                   "params": self.params, "centre": self.centre}
        if self.scale is not None:
            tensors["scale"] = self.scale
        if self.support_levels is not None:
            tensors["support_levels"] = self.support_levels
        meta = {"tags": self.tags, "head": self.head, "strictness": self.strictness, "backbone": self.backbone.name,
                "model": self.backbone.record, "features": asdict(self.backbone.features),
                "window": self.backbone.window, "thresholds": self.thresholds.tolist(),
                "support_paths": self.support_paths, "auto": self.choice,
                "weights_licence": weights_notice(self.backbone.name)}
        write_tagger(path, tensors, meta, self.backbone.model)

    @property
    def weights_licence(self) -> dict | None:
        """Where the embedded backbone weights come from and their licence (None: MFCC or the user's own run);
        a tagger file carries the weights, so sharing it shares them under this licence."""
        return weights_notice(self.backbone.name)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", expect_backbone: str | None = None) -> Tagger:
        """The tagger saved at ``path``, its backbone on ``device``."""
        dev = pick_device(device)
        bb, tensors, meta = read_tagger(path, device=dev, expect_backbone=expect_backbone)
        tagger = cls(backbone=bb, tags=meta["tags"], head=meta["head"], support_windows=tensors["support_windows"],
                   support_clip=tensors["support_clip"], support_targets=tensors["support_targets"].bool(),
                   support_paths=meta["support_paths"], params=tensors["params"], thresholds=tensors["thresholds"],
                   centre=tensors["centre"], scale=tensors.get("scale"), strictness=meta.get("strictness"),
                   support_levels=tensors.get("support_levels"), device=dev)
        tagger.written_by = meta.get("toolkit_version")
        tagger.choice = meta.get("auto")
        return tagger
