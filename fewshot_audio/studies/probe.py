"""The random-weight architecture probe (Pons & Serra, ICASSP 2019): rank CNN designs by how well the features of
their *untrained* networks classify a dataset, with a classifier whose hyperparameters are chosen inside the
training folds only.

For each architecture of :data:`~fewshot_audio.studies.architectures.ARCHITECTURES` and seed, every clip's
features (per-map means) are computed once and cached (keyed by the dataset's content and the architecture, seed
and front end). Each outer fold (the dataset's own folds, else seeded stratified K-fold) fits the classifier's
grid search on its training clips alone (an inner stratified 3-fold), and the chosen model is scored on the fold's
test clips: that is the **nested** accuracy. The paper's "best cross-validation score" (each grid point scored on
the outer folds, the best one kept: the test clips pick the hyperparameters) is reported beside it, for
comparison with published numbers, not as an estimate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data.audio import load_audio
from fewshot_audio.data.manifest import Manifest
from fewshot_audio.errors import ConfigError, DataError
from fewshot_audio.features.frontends import LogMel
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.studies.architectures import ARCHITECTURES, MAPS, N_MELS
from fewshot_audio.studies.classifiers import CLASSIFIERS
from fewshot_audio.studies.resume import RowLog
from fewshot_audio.util.io import atomic_write, atomic_write_json
from fewshot_audio.util.progress import progress
from fewshot_audio.util.runtime import cache_dir

logger = logging.getLogger(__name__)

FRONT_END = FeatureConfig(sample_rate=12000, n_fft=512, hop_length=256, n_mels=N_MELS)
DB_SCALE = 20.0  # log-mel dB divided by this: inputs of about unit scale for the random networks
FEATURES_VERSION = 1  # bump when the features of an architecture change


@dataclass(frozen=True)
class Folds:
    """``(train indices, test indices)`` per outer fold, and where they came from (``official`` or ``K-fold``)."""

    splits: list[tuple[np.ndarray, np.ndarray]]
    source: str


def outer_folds(manifest: Manifest, labels: np.ndarray, *, folds: str, seed: int) -> Folds:
    """The dataset's own folds (``folds='official'``: every clip's ``fold``), or ``int(folds)`` seeded stratified
    folds. A one-line :class:`ConfigError` when the dataset has no folds or a class is too small for K."""
    if folds == "official":
        names = [c.fold for c in manifest.clips]
        if any(f is None for f in names):
            raise ConfigError(f"folds 'official': {manifest.name} has no fold for every clip (a 'fold' or 'split' "
                              "column); ask for K stratified folds instead, e.g. 5")
        order = sorted(set(names), key=lambda f: (len(str(f)), str(f)))
        arr = np.array(names, dtype=object)
        return Folds([(np.flatnonzero(arr != f), np.flatnonzero(arr == f)) for f in order], "official")
    try:
        k = int(folds)
    except ValueError:
        raise ConfigError(f"folds {folds!r}: give 'official' or a number of folds, e.g. 5") from None
    smallest = int(np.bincount(labels).min())
    if k < 2 or k > smallest:
        raise ConfigError(f"folds {k}: the smallest class has {smallest} clips; give 2 to {smallest} folds")
    from sklearn.model_selection import StratifiedKFold  # optional at import time: heavy

    splits = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    return Folds([(a, b) for a, b in splits], f"{k}-fold")


def clip_input(path: str | Path, *, kind: str, logmel: LogMel) -> torch.Tensor:
    """One clip as an architecture reads it: ``(1, 1, 96, frames)`` log-mel (dB / :data:`DB_SCALE`) or
    ``(1, 1, samples)`` waveform, at 12 kHz."""
    y = torch.from_numpy(load_audio(path, sample_rate=FRONT_END.sample_rate))[None]
    if kind == "waveform":
        return y[None]
    return logmel(y) / DB_SCALE


def features_key(manifest: Manifest, architecture: str, seed: int, maps: int) -> str:
    """The cache key of one architecture's probe features (dataset content, architecture, seed, maps, front end)."""
    blob = json.dumps([manifest.content_hash(), architecture, seed, maps, asdict(FRONT_END), DB_SCALE,
                       FEATURES_VERSION])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def probe_features(manifest: Manifest, architecture: str, *, seed: int, maps: int = MAPS,
                   quiet: bool = False) -> tuple[np.ndarray, float]:
    """Features ``(n_clips, d)`` of every clip by ``architecture`` with ``seed``'s random weights (``maps`` feature
    maps in all), from the cache when computed before; and the seconds they took to compute (when they were
    computed, kept beside the cached array)."""
    key = features_key(manifest, architecture, seed, maps)
    path = cache_dir() / "probe" / f"{manifest.name}-{architecture}-seed{seed}-{key}.npy"
    timing = path.with_suffix(".json")
    if path.exists():
        return np.load(path), float(json.loads(timing.read_text())["seconds"]) if timing.exists() else float("nan")
    net = ARCHITECTURES.get(architecture)(seed=seed, maps=maps)
    logmel = LogMel(FRONT_END)
    t0 = time.perf_counter()
    rows = []
    with torch.no_grad():
        for clip in progress(manifest.clips, desc=f"{architecture} (seed {seed})", quiet=quiet):
            rows.append(net(clip_input(clip.path, kind=net.input_kind, logmel=logmel)).numpy())
    feats = np.stack(rows).astype(np.float32)
    seconds = time.perf_counter() - t0
    atomic_write(path, lambda tmp: _save(tmp, feats))
    atomic_write_json(timing, {"seconds": round(seconds, 2), "clips": len(feats)})
    return feats, seconds


def _save(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would add '.npy' to the temporary name
        np.save(fh, array)


def nested_scores(x: np.ndarray, y: np.ndarray, folds: Folds, *, classifier: str, seed: int) -> dict:
    """Per outer fold, the accuracy of the classifier chosen inside its training clips (an inner stratified 3-fold
    grid search); and the paper's best cross-validation score (every grid point fitted on each outer training set
    and scored on its test clips, the best mean kept)."""
    from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold  # optional: heavy

    spec = CLASSIFIERS.get(classifier)()
    grid = spec.grid(x.shape[1])
    nested, chosen, per_point = [], [], np.zeros((len(ParameterGrid(grid)), len(folds.splits)))
    correct = np.zeros(len(y), dtype=bool)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)  # small inner folds of rare classes
        for f, (train, test) in enumerate(folds.splits):
            inner = StratifiedKFold(min(3, int(np.bincount(y[train]).min())), shuffle=True, random_state=seed)
            search = GridSearchCV(spec.estimator(seed), grid, cv=inner, n_jobs=1, refit=True)
            search.fit(x[train], y[train])
            correct[test] = search.predict(x[test]) == y[test]
            nested.append(float(correct[test].mean()))
            chosen.append(search.best_params_)
            for g, params in enumerate(ParameterGrid(grid)):  # the paper's protocol: test clips pick the point
                model = spec.estimator(seed).set_params(**params).fit(x[train], y[train])
                per_point[g, f] = float((model.predict(x[test]) == y[test]).mean())
    return {"fold_accuracies": nested, "chosen": chosen, "best_cv_accuracy": float(per_point.mean(axis=1).max()),
            "clip_correct": correct}


def probe_row(manifest: Manifest, labels: np.ndarray, folds: Folds, *, architecture: str, classifier: str,
              seeds: int, maps: int = MAPS, quiet: bool = False) -> dict:
    """One row of the probe: ``architecture`` with ``classifier``, over ``seeds`` random networks (one for the
    MFCC row, which has no weights)."""
    t0 = time.perf_counter()
    accs, best, feature_s, dims = [], [], [], 0
    n_seeds = 1 if architecture == "mfcc" else seeds
    correct = np.zeros(len(labels))
    for seed in range(n_seeds):
        x, seconds = probe_features(manifest, architecture, seed=seed, maps=maps, quiet=quiet)
        if not np.isfinite(x).all():
            raise DataError(f"probe {architecture} (seed {seed}): non-finite features; a clip may be silent or broken")
        feature_s.append(seconds)
        dims = x.shape[1]
        scores = nested_scores(x, labels, folds, classifier=classifier, seed=seed)
        accs += scores["fold_accuracies"]
        best.append(scores["best_cv_accuracy"])
        correct += scores["clip_correct"] / n_seeds
    mean, ci = mean_ci95(np.array(accs))
    return {"architecture": architecture, "classifier": classifier, "accuracy": round(float(mean), 5),
            "ci95": round(float(ci), 5), "best_cv_accuracy": round(float(np.mean(best)), 5), "n_features": dims,
            "seeds": n_seeds, "folds": folds.source, "n_scores": len(accs),
            "feature_seconds": round(float(np.nansum(feature_s)), 1),
            "feature_seconds_per_1000_clips": round(float(np.nanmean(feature_s)) * 1000 / len(labels), 1)
            if np.isfinite(feature_s).any() else None, "seconds": round(time.perf_counter() - t0, 1),
            "clip_correct": [round(float(c), 4) for c in correct]}


def labelled_clips(dataset: str | None, *, format: str | None = None, label: str | None = None,
                   quiet: bool = False) -> tuple[Manifest, np.ndarray, list[str]]:
    """The dataset's manifest reduced to its labelled clips, each clip's class index, and the class names."""
    from fewshot_audio.fewshot.dataset import resolve_manifest  # the few-shot layer's dataset resolution

    manifest = resolve_manifest(dataset, format=format, label=label, quiet=quiet)
    classes = sorted({c.labels[0] for c in manifest.clips if c.labels})
    manifest.clips = [c for c in manifest.clips if c.labels]
    labels = np.array([classes.index(c.labels[0]) for c in manifest.clips])
    return manifest, labels, classes


def probe_folds(manifest: Manifest, labels: np.ndarray, folds: str) -> Folds:
    """:func:`outer_folds`, with ``folds='auto'``: the dataset's own folds where every clip has one, else 5
    stratified ones (fewer where a class has fewer clips)."""
    if folds == "auto":
        folds = "official" if all(c.fold is not None for c in manifest.clips) else str(
            min(5, int(np.bincount(labels).min())))
    return outer_folds(manifest, labels, folds=folds, seed=0)


def run_probe(dataset: str | None, out: str | Path, *, architectures: list[str], classifier: str = "svm",
              seeds: int = 3, folds: str = "auto", maps: int = MAPS, format: str | None = None,
              label: str | None = None, overwrite: bool = False, quiet: bool = False) -> list[dict]:
    """The probe on ``dataset`` (the built-in synthetic dataset when None): one row per architecture (and the
    ``mfcc`` row where asked), written to ``out`` (``rows.jsonl`` as each row ends, then ``results.csv``,
    ``results.md``, ``results.png``). A run in the same ``out`` with the same settings resumes: finished rows are
    kept. ``folds``: ``official``, a number, or ``auto`` (official where every clip has a fold, else 5, or as many
    as the smallest class has clips); ``maps``:
    feature maps per network (the paper's 3,585; fewer for a quick look)."""
    from fewshot_audio.studies.probe_results import write_results

    for name in architectures:
        ARCHITECTURES.get(name)  # an unknown name is an error before any work
    CLASSIFIERS.get(classifier)
    if seeds < 1:
        raise ConfigError(f"seeds {seeds}: give at least 1")
    if maps < 8:
        raise ConfigError(f"maps {maps}: give at least 8 feature maps per network")
    manifest, labels, classes = labelled_clips(dataset, format=format, label=label, quiet=quiet)
    clips = manifest.clips
    split = probe_folds(manifest, labels, folds)
    settings = {"dataset": manifest.content_hash(), "classifier": classifier, "seeds": seeds, "folds": split.source,
                "maps": maps,
                "front_end": asdict(FRONT_END), "version": FEATURES_VERSION}
    out = Path(out)
    done = RowLog(out, "probe", settings, what="probe results", overwrite=overwrite, rows_name="rows")
    rows = [r for r in done.rows if r["architecture"] in architectures]
    finished = {r["architecture"] for r in rows}
    logger.info("probe on %s: %d clips, %d classes, %s folds; %d of %d rows already done", manifest.name, len(clips),
                len(classes), split.source, len(finished), len(architectures))
    for name in architectures:
        if name in finished:
            continue
        row = probe_row(manifest, labels, split, architecture=name, classifier=classifier, seeds=seeds, maps=maps,
                        quiet=quiet)
        rows.append(row)
        done.add(row)  # written whole and atomically: an interrupted probe resumes after its last row
        logger.info("%s: %.1f%% ± %.1f nested (best CV %.1f%%), %d features, %.0f s", name, 100 * row["accuracy"],
                    100 * row["ci95"], 100 * row["best_cv_accuracy"], row["n_features"], row["seconds"])
        write_results(out, rows, title=f"{manifest.name}: random-weight probe ({classifier}, {split.source})")
    write_results(out, rows, title=f"{manifest.name}: random-weight probe ({classifier}, {split.source})")
    return rows
