"""The probe's premise, measured: the same architectures *trained*, on the same outer folds, beside their
random-weight accuracies.

Each probe architecture keeps its layers and its features (the per-map means, now with gradients), batch-normalised
(the probe standardises its features for the SVM the same way) and followed by dropout and a linear layer; it is
trained with cross-entropy from the same He initialisation (:mod:`fewshot_audio.studies.supervised`, one budget
rule for all) on each outer fold's training clips and scored on its test clips. The rows go to ``trained.jsonl``
and ``trained.csv``; with the random rows of the same folder, :func:`~fewshot_audio.studies.ranking.rank_agreement`
says how well the random ranking predicts the trained one.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fewshot_audio.errors import ConfigError
from fewshot_audio.features.frontends import LogMel
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.studies.architectures import ARCHITECTURES, MAPS, ProbeArchitecture, loop_to
from fewshot_audio.studies.probe import FRONT_END, Folds, clip_input, labelled_clips, probe_folds
from fewshot_audio.studies.resume import RowLog
from fewshot_audio.studies.supervised import Budget, Classifier, correct_clips, train_classifier
from fewshot_audio.util.progress import progress
from fewshot_audio.util.runtime import seed_everything

logger = logging.getLogger(__name__)

MAX_CROP_S = 4.0  # training crops: the median clip's length, at most this


class MapMeans(nn.Module):
    """A probe architecture made trainable: its layers, its per-map means ``(B, maps)`` (with gradients),
    batch-normalised."""

    def __init__(self, net: ProbeArchitecture):
        super().__init__()
        self.net = net
        self.norm = nn.BatchNorm1d(net.maps_total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The architecture's per-map means ``(B, n_features)`` of a batch, with gradients."""
        x = loop_to(x, self.net.min_length)
        return self.norm(torch.cat([m.flatten(2).mean(-1) for m in self.net.feature_maps(x)], dim=1))


def trainable(architecture: str, *, seed: int, maps: int, classes: int) -> Classifier:
    """``architecture``'s network from ``seed``'s He initialisation, with a classifier head, ready to train."""
    if architecture == "mfcc":
        raise ConfigError("architecture 'mfcc' has no weights to train; leave it out of the trained rows")
    net = ARCHITECTURES.get(architecture)(seed=seed, maps=maps)
    return Classifier(MapMeans(net), net.maps_total, classes)


def clip_inputs(paths: list[str], kind: str, *, quiet: bool = False) -> list[torch.Tensor]:
    """Every clip as the networks read it: ``(1, 96, frames)`` log-mels or ``(1, samples)`` waveforms."""
    logmel = LogMel(FRONT_END)
    return [clip_input(p, kind=kind, logmel=logmel)[0] for p in progress(paths, desc=f"reading {kind}s", quiet=quiet)]


def crop_length(inputs: list[torch.Tensor], minimum: int, *, per_second: float) -> int:
    """Training crops: the median clip's length (at most :data:`MAX_CROP_S`), and at least ``minimum``."""
    median = float(np.median([x.shape[-1] for x in inputs]))
    return max(minimum, int(min(median, MAX_CROP_S * per_second)))


def trained_row(inputs: list[torch.Tensor], labels: np.ndarray, folds: Folds, *, architecture: str, seeds: int,
                maps: int, budget: Budget, device: torch.device, quiet: bool = False) -> dict:
    """One trained row: ``architecture`` trained on each outer fold's training clips (``seeds`` initialisations),
    scored on its test clips; ``clip_correct`` is each clip's fraction of correct answers over seeds."""
    classes = int(labels.max()) + 1
    net_type = ARCHITECTURES.get(architecture)
    per_second = FRONT_END.sample_rate / (FRONT_END.hop_length if net_type.input_kind == "logmel" else 1)
    crop = crop_length(inputs, net_type.min_length, per_second=per_second)
    t0 = time.perf_counter()
    accs, correct, train_s, clips_seen = [], np.zeros(len(labels)), 0.0, 0
    for seed in range(seeds):
        seed_everything(seed)
        for f, (train, test) in enumerate(folds.splits):
            model = trainable(architecture, seed=seed, maps=maps, classes=classes)
            t1 = time.perf_counter()
            train_classifier(model, inputs, labels, train, budget=budget, crop=crop, seed=seed, device=device,
                             desc=f"{architecture} fold {f + 1}/{len(folds.splits)} (seed {seed})", quiet=quiet)
            train_s += time.perf_counter() - t1
            clips_seen += budget.steps(len(train)) * budget.batch
            hits = correct_clips(model, inputs, labels, test, min_length=net_type.min_length, device=device)
            correct[test] += hits / seeds
            accs.append(float(hits.mean()))
    mean, ci = mean_ci95(np.array(accs))
    return {"architecture": architecture, "accuracy": round(float(mean), 5), "ci95": round(float(ci), 5),
            "seeds": seeds, "folds": folds.source, "n_scores": len(accs), "maps": maps, "crop": crop,
            "steps_per_fold": [budget.steps(len(tr)) for tr, _ in folds.splits],
            "train_seconds": round(train_s, 1),
            "train_seconds_per_1000_clips": round(1000 * train_s / clips_seen, 1),
            "seconds": round(time.perf_counter() - t0, 1), "clip_correct": [round(float(c), 4) for c in correct]}


TRAINED_COLUMNS = ["architecture", "accuracy", "ci95", "seeds", "folds", "n_scores", "maps", "crop", "train_seconds",
                   "train_seconds_per_1000_clips", "seconds"]


def run_trained(dataset: str | None, out: str | Path, *, architectures: list[str], seeds: int = 1, maps: int = MAPS,
                budget: Budget = Budget(), folds: str = "auto", device: torch.device = torch.device("cpu"),
                format: str | None = None, label: str | None = None, overwrite: bool = False,
                quiet: bool = False) -> list[dict]:
    """Trained rows for ``architectures`` (``mfcc`` is left out: it has no weights) on the probe's outer folds,
    written to ``out/trained.jsonl`` and ``trained.csv``; resumable like the probe (finished rows are kept)."""
    from fewshot_audio.studies.probe_results import write_table

    names = [a for a in architectures if a != "mfcc"]
    for name in names:
        ARCHITECTURES.get(name)
    if seeds < 1:
        raise ConfigError(f"seeds {seeds}: give at least 1")
    manifest, labels, classes = labelled_clips(dataset, format=format, label=label, quiet=quiet)
    split = probe_folds(manifest, labels, folds)
    settings = {"dataset": manifest.content_hash(), "seeds": seeds, "folds": split.source, "maps": maps,
                "budget": asdict(budget), "front_end": asdict(FRONT_END)}
    out = Path(out)
    done = RowLog(out, "trained", settings, what="trained rows", overwrite=overwrite)
    rows = [r for r in done.rows if r["architecture"] in names]
    finished = {r["architecture"] for r in rows}
    inputs: dict[str, list[torch.Tensor]] = {}
    paths = [str(c.path) for c in manifest.clips]
    for name in names:
        if name in finished:
            continue
        kind = ARCHITECTURES.get(name).input_kind
        if kind not in inputs:
            inputs[kind] = clip_inputs(paths, kind, quiet=quiet)
        row = trained_row(inputs[kind], labels, split, architecture=name, seeds=seeds, maps=maps, budget=budget,
                          device=device, quiet=quiet)
        rows.append(row)
        done.add(row)
        logger.info("%s trained: %.1f%% ± %.1f, %.0f s", name, 100 * row["accuracy"], 100 * row["ci95"],
                    row["seconds"])
        write_table(out / "trained.csv", rows, TRAINED_COLUMNS)
    write_table(out / "trained.csv", rows, TRAINED_COLUMNS)
    return rows


def agreement_of(out: str | Path, *, title: str) -> dict | None:
    """The rank agreement of the random rows (``rows.jsonl``) and the trained rows (``trained.jsonl``) in ``out``,
    written as ``ranking.json``, ``.md`` and ``.png``; None (and a log line) when fewer than three architectures
    have both, or a random row predates per-clip answers."""
    from fewshot_audio.studies.probe_results import write_ranking
    from fewshot_audio.studies.ranking import rank_agreement

    out = Path(out)
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []  # noqa: E731
    random = {r["architecture"]: np.array(r["clip_correct"]) for r in read(out / "rows.jsonl") if "clip_correct" in r}
    trained = {r["architecture"]: np.array(r["clip_correct"]) for r in read(out / "trained.jsonl")}
    both = [n for n in trained if n in random]
    if len(both) < 3:
        logger.info("rank agreement: %d architectures have random and trained rows in %s; it needs 3", len(both), out)
        return None
    agreement = rank_agreement({n: random[n] for n in both}, {n: trained[n] for n in both})
    for side, name in (("random", "probe.json"), ("trained", "trained.json")):
        agreement[f"{side}_maps"] = json.loads((out / name).read_text()).get("maps") if (out / name).exists() else None
    write_ranking(out, agreement, title=title)
    return agreement
