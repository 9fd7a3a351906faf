"""Waveform against spectrogram as the data grows (the thesis's second question): SampleCNN and the musically
motivated CNN, trained from scratch under one budget rule on growing training sets of one dataset, scored on the
same held-out clips.

The test split is the dataset's last fold, else a seeded 30% of each class (the low-data protocol's split,
:func:`~fewshot_audio.fewshot.compare.holdout_split`); each training size ``n`` per class is drawn ``draws`` times
from the rest with the low-data protocol's seeded draws (``all``: the whole pool, once per draw's seed). Both models
see the same seconds of audio per crop (the median clip, at most 4 s) and train for
:meth:`~fewshot_audio.studies.supervised.Budget.steps` steps. Rows go to ``rows.jsonl`` as each run ends (a
re-run in the same folder resumes), then ``results.csv``, ``results.md`` and ``results.png`` (accuracy against
training size, 95% CIs over draws).
"""

from __future__ import annotations

import abc
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fewshot_audio.errors import ConfigError
from fewshot_audio.fewshot.compare import holdout_split, support_draws
from fewshot_audio.models.backbones.musically_motivated import MusicallyMotivatedCNN
from fewshot_audio.models.backbones.samplecnn import SampleCNN
from fewshot_audio.studies.datasize_results import write_results
from fewshot_audio.studies.probe import FRONT_END, labelled_clips
from fewshot_audio.studies.resume import RowLog
from fewshot_audio.studies.supervised import Budget, Classifier, correct_clips, train_classifier
from fewshot_audio.studies.trained import MAX_CROP_S, clip_inputs
from fewshot_audio.util.registry import Registry
from fewshot_audio.util.runtime import seed_everything

logger = logging.getLogger(__name__)

ALL = 0  # the size "all": the whole training pool


class StudyModel(abc.ABC):
    """A model of the data-size study: what it reads (``input_kind``, ``logmel`` or ``waveform``) and how to build
    it for one crop length (frames or samples) and width."""

    input_kind = "logmel"

    @abc.abstractmethod
    def build(self, *, crop: int, channels: int) -> tuple[nn.Module, int]:
        """A fresh network ``(B, 1, ..., crop) -> (B, d)`` and its ``d``."""


MODELS: Registry[type[StudyModel]] = Registry("data-size model", base=StudyModel)


@MODELS.register("samplecnn")
class WaveformModel(StudyModel):
    """SampleCNN (Lee et al., 2017) on the 12 kHz waveform."""

    input_kind = "waveform"

    def build(self, *, crop, channels):
        net = SampleCNN(input_shape=(1, crop), channels=channels)
        return net, net.embedding_dim


@MODELS.register("musically-motivated")
class SpectrogramModel(StudyModel):
    """The musically motivated CNN (vertical timbral and horizontal temporal filters) on the 96-band log-mel."""

    def build(self, *, crop, channels):
        net = MusicallyMotivatedCNN(input_shape=(1, FRONT_END.n_mels, crop), channels=channels)
        return net, net.embedding_dim


@dataclass(frozen=True)
class Preset:
    """Sizes, draws, width and training budget of one run of the study."""

    sizes: tuple[int, ...]
    draws: int
    channels: int
    budget: Budget


PRESETS: Registry[Preset] = Registry("data-size preset", base=Preset)
PRESETS.register("cpu")(Preset(sizes=(5, 10, 20, 50, 100, ALL), draws=3, channels=32,
                               budget=Budget(epochs=20, max_steps=500)))
PRESETS.register("gpu")(Preset(sizes=(5, 10, 20, 50, 100, 200, 500, 1000, ALL), draws=5, channels=64,
                               budget=Budget(epochs=50, batch=64, max_steps=20000)))


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"5,10,all"`` -> ``(5, 10, ALL)``; a one-line error naming a size that is not a positive whole number."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            sizes.append(ALL)
            continue
        if not part.isdigit() or int(part) < 1:
            raise ConfigError(f"training size {part!r}: give positive whole numbers of clips per class or 'all'")
        sizes.append(int(part))
    return tuple(sizes)


def size_name(size: int) -> str:
    """``all`` for the whole pool, else the clips per class as text."""
    return "all" if size == ALL else str(size)


def training_sets(labels: np.ndarray, pool: np.ndarray, sizes: tuple[int, ...], draws: int) -> dict:
    """``{(size, draw): indices}`` of every training set; sizes above the smallest class's pool are left out (with a
    log line), ``all`` is the whole pool for every draw."""
    classes = sorted(np.unique(labels[pool]).tolist())
    smallest = min(int((labels[pool] == c).sum()) for c in classes)
    sets = {}
    for size in sizes:
        if size == ALL:
            sets.update({(ALL, d): pool for d in range(draws)})
        elif size > smallest:
            logger.info("training size %d per class left out: the smallest class has %d training clips", size,
                        smallest)
        else:
            for d, chosen in enumerate(support_draws(labels, pool, classes, shots=size, draws=draws)):
                sets[(size, d)] = np.sort(chosen.reshape(-1))
    return sets


def crop_for(inputs: list[torch.Tensor], kind: str) -> int:
    """The crop length in the input's units: the median clip's seconds (at most :data:`MAX_CROP_S`)."""
    per_second = FRONT_END.sample_rate / (FRONT_END.hop_length if kind == "logmel" else 1)
    median_s = float(np.median([x.shape[-1] for x in inputs])) / per_second
    return max(9, int(round(min(median_s, MAX_CROP_S) * per_second)))


def run_datasize(dataset: str | None, out: str | Path, *, models: list[str], preset: Preset,
                 device: torch.device = torch.device("cpu"), test_fold: str | None = None, format: str | None = None,
                 label: str | None = None, overwrite: bool = False, quiet: bool = False) -> list[dict]:
    """Every (model, size, draw) run not already in ``out/rows.jsonl``; returns all rows (one per run)."""
    for name in models:
        MODELS.get(name)
    manifest, labels, classes = labelled_clips(dataset, format=format, label=label, quiet=quiet)
    pool, test = holdout_split(labels, [c.fold for c in manifest.clips], test_fold)
    sets = training_sets(labels, pool, preset.sizes, preset.draws)
    settings = {"dataset": manifest.content_hash(), "preset": asdict(preset), "test_fold": test_fold,
                "front_end": asdict(FRONT_END)}
    out = Path(out)
    log = RowLog(out, "study", settings, what="data-size results", overwrite=overwrite, rows_name="rows")
    rows = log.rows
    finished = {(r["model"], r["size"], r["draw"]) for r in rows}
    title = f"{manifest.name}: waveform against spectrogram ({len(classes)} classes, {len(test)} test clips)"
    logger.info("data-size study on %s: %d training clips, %d test clips, %d runs, %d already done", manifest.name,
                len(pool), len(test), len(models) * len(sets), len(finished))
    paths = [str(c.path) for c in manifest.clips]
    inputs: dict[str, list[torch.Tensor]] = {}
    for name in models:
        model_type = MODELS.get(name)()
        for (size, draw), train in sets.items():
            if (name, size_name(size), draw) in finished:
                continue
            kind = model_type.input_kind
            if kind not in inputs:
                inputs[kind] = clip_inputs(paths, kind, quiet=quiet)
            log.add(_one_run(model_type, name, inputs[kind], labels, train, test, size=size, draw=draw,
                             preset=preset, classes=len(classes), device=device, quiet=quiet))
            write_results(out, rows, title=title)
    write_results(out, rows, title=title)
    return rows


def _one_run(model_type: StudyModel, name: str, inputs: list[torch.Tensor], labels: np.ndarray, train: np.ndarray,
             test: np.ndarray, *, size: int, draw: int, preset: Preset, classes: int, device: torch.device,
             quiet: bool) -> dict:
    crop = crop_for(inputs, model_type.input_kind)
    seed_everything(draw)
    body, dim = model_type.build(crop=crop, channels=preset.channels)
    model = Classifier(body, dim, classes)
    t0 = time.perf_counter()
    train_classifier(model, inputs, labels, train, budget=preset.budget, crop=crop, seed=draw, device=device,
                     desc=f"{name} {size_name(size)}/class draw {draw + 1}", quiet=quiet)
    seconds = time.perf_counter() - t0
    accuracy = float(correct_clips(model, inputs, labels, test, min_length=crop, device=device).mean())
    logger.info("%s, %s per class, draw %d: %.1f%% (%.0f s)", name, size_name(size), draw + 1, 100 * accuracy, seconds)
    return {"model": name, "size": size_name(size), "draw": draw, "train_clips": int(len(train)), "classes": classes,
            "steps": preset.budget.steps(len(train)), "accuracy": round(accuracy, 5),
            "train_seconds": round(seconds, 1), "parameters": int(sum(p.numel() for p in model.parameters()))}

