"""``adapt --backbone auto``: the support set chooses the model, where it can tell the models apart.

Every candidate (``mfcc`` and the ``auto_layers`` of each registered model whose weights are fetched; models whose
licence forbids commercial use only when allowed) embeds the support set once, and each example is scored
leave-one-out in the tagger's space (:func:`~fewshot_audio.fewshot.strategies.embedding.centred_l2`): with several
tags, whether its own tag's prototype (computed without it) ranks first; with one tag and negatives, the share of
the negatives it outscores. A candidate's estimate is the mean over tags (balanced accuracy, or that share).

A handful of examples tells models apart only when the lead is large: the leader is taken only when it beats the
*domain default* on more examples than chance allows (a one-sided sign test over the examples, p < 0.05). The
domain default is the model trained on the examples' kind of sound: YAMNet's AudioSet classes (when fetched) say
whether the examples are speech, music or birds (each model's ``auto_domain``), else the general model
(``auto_general``), else ``mfcc``. With one example per tag nothing can be scored and the domain default is taken.
The :class:`Choice` says which rule decided. The winner's embeddings are kept, so nothing is embedded twice.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.embedding import Backbone, Embedded, default_hop_s, embed_files, load_backbone, pool_by_owner
from fewshot_audio.errors import DataError
from fewshot_audio.fewshot.strategies.embedding import centred_l2, space_statistics
from fewshot_audio.models.pretrained.weights import cached
from fewshot_audio.specs import ModelSpec, get, models
from fewshot_audio.util.progress import progress

logger = logging.getLogger(__name__)

AUTO = "auto"
SIGNIFICANCE = 0.05  # the sign test's level for taking the leader over the domain default
DOMAIN_SHARE = 0.5  # the examples' mean probability of a domain's classes that makes it their domain
DOMAIN_MODEL = "yamnet"  # the model whose own classes tell the examples' domain


@dataclass
class Choice:
    """The chosen backbone, each candidate's leave-one-out estimate (NaN where the examples cannot be scored), the
    seconds the choice took and one line saying which rule decided."""

    backbone: str
    estimates: dict[str, float]
    seconds: float
    reason: str = ""


def candidates(*, noncommercial: bool = False) -> list[str]:
    """``mfcc`` and each auto layer of every registered model whose weights are fetched (under its one name,
    :attr:`~fewshot_audio.specs.ModelSpec.canonical`), leaving out non-commercial weights unless ``noncommercial``."""
    out = ["mfcc"]
    for m in models().values():
        if m.auto_layers and cached(m.source, m.weights_file) and (noncommercial or not m.source.noncommercial):
            out += [ModelSpec(m, layer).canonical for layer in m.auto_layers]
    return out


def pooled_clips(bb: Backbone, windows: list, levels: list) -> torch.Tensor:
    """Clip embeddings ``(n, d)`` of files' window embeddings and levels, pooled as a tagger pools them."""
    z = torch.cat([torch.as_tensor(w).float() for w in windows])
    owner = torch.cat([torch.full((len(w),), i) for i, w in enumerate(windows)])
    lv = torch.cat([torch.as_tensor(v).float() for v in levels])
    return pool_by_owner(z, owner, len(windows), pooling=bb.features.pooling, levels=lv, margin=bb.features.signal_db)


def clip_space(bb: Backbone, windows: list, levels: list) -> torch.Tensor:
    """Clip embeddings ``(n, d)`` of files' windows in the tagger's space, fitted on these clips (centred on their
    mean, z-scored for a backbone that asks for it, L2-normalised)."""
    clips = pooled_clips(bb, windows, levels)
    return centred_l2(clips, *space_statistics(clips, standardize=getattr(bb.model, "standardize", False)))


@dataclass
class Outcomes:
    """Leave-one-out outcomes of the scorable examples: ``scores (m,)`` in [0, 1] (1: right) and each one's tag
    ``tags (m,)``; ``estimate`` is their mean per tag, averaged over the tags."""

    scores: np.ndarray
    tags: np.ndarray

    @property
    def estimate(self) -> float:
        """The leave-one-out estimate: the mean over tags of each tag's mean score."""
        return float(np.mean([self.scores[self.tags == t].mean() for t in np.unique(self.tags)]))


def loo_outcomes(zs: torch.Tensor, targets: torch.Tensor) -> Outcomes | None:
    """The leave-one-out outcome of each example of ``zs (n, d)`` (unit vectors) with tags ``targets (n, T)`` bool
    whose tag has another example: with several tags, 1 when its own tag's prototype (computed without it) is the
    nearest (cosine) of all the tags', else 0 (clips of several tags are not scored); with one tag, the share of the
    negatives (clips of no tag) whose cosine to the tag's prototype is below its own (ties count half). None when
    no example can be scored (one example per tag, or one tag without negatives)."""
    t = targets.float()
    sums, counts = t.T @ zs, t.sum(0)  # (T, d), (T,)
    own = t[:, :, None] * zs[:, None, :]  # (n, T, d): each clip's share of its tags' sums
    protos = (sums[None] - own) / (counts[None, :, None] - t[:, :, None]).clamp_min(1)
    scores = torch.nn.functional.cosine_similarity(zs[:, None, :], protos, dim=-1)  # (n, T): own tags left out
    single = (t.sum(1) == 1) & (t @ (counts >= 2).float() > 0)
    if not single.any():
        return None
    truth = t[single].argmax(1)
    if t.shape[1] > 1:
        right = (scores[single].argmax(1) == truth).float()
        return Outcomes(right.numpy(), truth.numpy())
    negatives = t.sum(1) == 0
    if not negatives.any():
        return None
    neg = scores[negatives, 0]  # the negatives against the whole prototype (no example left out)
    pos = scores[single, 0]
    share = ((pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()).mean(1)
    return Outcomes(share.numpy(), truth.numpy())


def loo_balanced_accuracy(zs: torch.Tensor, targets: torch.Tensor) -> float:
    """:func:`loo_outcomes`' estimate (NaN when the examples cannot be scored)."""
    found = loo_outcomes(zs, targets)
    return float("nan") if found is None else found.estimate


def sign_test(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided p-value that paired outcomes ``a`` beat ``b`` by chance: the binomial tail of ``a``'s wins among
    the examples where the two differ."""
    wins, losses = int((a > b).sum()), int((a < b).sum())
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def domain_default(allowed: list[str], probabilities: np.ndarray | None, labels: list[str]) -> tuple[str, str]:
    """The candidate (of ``allowed``) trained on the examples' kind of sound, and why: the model whose
    ``auto_domain`` classes get the highest mean probability over the examples (``probabilities (n, C)`` of the
    domain model's ``labels``, None where it is not fetched) when that mean reaches :data:`DOMAIN_SHARE`; else the
    general model (``auto_general``); else ``mfcc``."""
    general = next((c for c in allowed if c != "mfcc" and ModelSpec.parse(c).model.auto_general), "mfcc")
    if probabilities is None:
        return general, f"{DOMAIN_MODEL} is not fetched, so the examples' domain is unknown: the general model"
    column = {name: j for j, name in enumerate(labels)}
    best, share = None, 0.0
    for c in allowed:
        domain = [column[n] for n in (ModelSpec.parse(c).model.auto_domain if c != "mfcc" else ()) if n in column]
        if domain:
            s = float(probabilities[:, domain].max(1).mean())
            if s > share:
                best, share = c, s
    if best is not None and share >= DOMAIN_SHARE:
        domain = ModelSpec.parse(best).model.auto_domain[0].lower()
        return best, f"{DOMAIN_MODEL} hears {domain} in the examples (mean probability {share:.2f})"
    return general, f"{DOMAIN_MODEL} hears no speech, music or birds in the examples: the general model"


def domain_probabilities(paths: list[Path], *, device: torch.device) -> tuple[np.ndarray | None, list[str]]:
    """The domain model's class probabilities ``(n, C)`` of each file (averaged over its windows) and its class
    names; ``(None, [])`` when its weights are not fetched."""
    model = get(DOMAIN_MODEL)
    if not cached(model.source, model.weights_file):
        return None, []
    bb = load_backbone(f"{DOMAIN_MODEL}:{model.tags_layer}", device=device)
    emb = embed_files(bb, paths, device=device, original=True, quiet=True)
    grams = [g for g in emb.windows if g is not None]
    if not grams:
        return None, []
    return np.stack([g.mean(0) for g in grams]), list(bb.model.meta["labels"])


def decide(outcomes: dict[str, Outcomes | None], default: str, why_default: str) -> tuple[str, str]:
    """The candidate to take and one line saying why: the leave-one-out leader where it beats ``default`` on more
    examples than chance allows (:func:`sign_test`), else ``default``."""
    scored = {c: o for c, o in outcomes.items() if o is not None}
    if not scored:
        return default, f"one example per tag cannot be scored leave-one-out; {why_default}"
    leader = max(scored, key=lambda c: (scored[c].estimate, c == default))  # ties: the default, else the earlier
    if leader == default or default not in scored:
        return leader, "the best leave-one-out estimate" + (f", and the domain default: {why_default}"
                                                             if leader == default else "")
    a, b = scored[leader].scores, scored[default].scores
    p = sign_test(a, b)
    lead = f"{leader} beat {default} on {int((a > b).sum())} of the examples and lost on {int((a < b).sum())}"
    if p < SIGNIFICANCE:
        return leader, f"the best leave-one-out estimate: {lead} (sign test p = {p:.3f})"
    return default, f"{lead}, within chance (sign test p = {p:.2f}); {why_default}"


def choose_backbone(paths: list[Path], targets: torch.Tensor, *, durations: list[float], device: torch.device,
                    noncommercial: bool = False, quiet: bool = False) -> tuple[Choice, Backbone, Embedded]:
    """The candidate :func:`decide` takes for ``paths`` (tags ``targets (n, T)``), with its backbone and the files'
    embeddings."""
    found = candidates(noncommercial=noncommercial)
    t0 = time.perf_counter()
    kept, outcomes, ok, errors = {}, {}, None, None
    for spec in progress(found, desc="choosing the backbone", quiet=quiet or len(found) < 2):
        bb = load_backbone(spec, device=device, durations=durations)
        if ok is None:  # the first candidate reads every file (and warns once about those it cannot read)
            emb = embed_files(bb, paths, device=device, hop_s=default_hop_s(bb), quiet=True)
            ok = [i for i, w in enumerate(emb.windows) if w is not None]
            errors = emb.errors
            if not ok:
                raise DataError(f"none of the {len(paths)} example files could be read")
        else:  # the others the readable ones
            part = embed_files(bb, [paths[i] for i in ok], device=device, hop_s=default_hop_s(bb), quiet=True)
            emb = Embedded(*([None] * len(paths) for _ in range(3)), errors)
            for j, i in enumerate(ok):
                emb.windows[i], emb.times[i], emb.levels[i] = part.windows[j], part.times[j], part.levels[j]
        zs = clip_space(bb, [emb.windows[i] for i in ok], [emb.levels[i] for i in ok])
        outcomes[spec] = loo_outcomes(zs, targets[ok])
        kept[spec] = (bb, emb)
    examples = [paths[i] for i in ok if bool(targets[i].any())]
    probabilities, labels = domain_probabilities(examples, device=device)
    default, why = domain_default(found, probabilities, labels)
    spec, reason = decide(outcomes, default, why)
    estimates = {c: (o.estimate if o is not None else float("nan")) for c, o in outcomes.items()}
    bb, emb = kept[spec]
    short = sum(0 < d < bb.window for d in durations)
    if short and not quiet:  # said of the chosen model's window, not of a candidate's
        logger.info(f"{short} example(s) shorter than {spec}'s {bb.window:.3g} s window were "
            f"{'looped' if bb.features.short == 'loop' else 'zero-padded'}")
    return Choice(spec, estimates, time.perf_counter() - t0, reason), bb, emb
