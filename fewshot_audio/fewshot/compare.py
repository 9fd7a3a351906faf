"""``fewshot-audio compare``: every strategy on identical episodes (or low-data draws), one table, one plot.

Two protocols:
* ``episodic``: class-disjoint. Strategies that learn do so on the base classes (strategies with the
  same ``training_key`` share one trained model); every cell (strategy, shots) is scored on the same
  frozen novel-class episodes.
* ``low-data`` (Pons et al., ICASSP 2019): all target classes are known but only ``n`` labelled clips
  per class are available, drawn ``draws`` times with seeds; the model is scored on the dataset's test
  split (the fold ``test_fold``, or a seeded 30% hold-out per class when the dataset has no folds).
  Learned parts (embeddings, meta-learned initialisations) are trained on a *source* dataset (default:
  the built-in synthetic one), never on the target's held-out clips.

Results are appended to ``results.csv`` after every cell, so an interrupted comparison resumes where it
stopped; trained models are checkpointed under ``models/``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig, TrainConfig
from fewshot_audio.errors import ConfigError, DataError
from fewshot_audio.fewshot.build import build_strategy, prepare_strategy
from fewshot_audio.fewshot.compare_results import (
    plot_results,
    read_results,
    same_classes_note,
    write_results,
)
from fewshot_audio.fewshot.dataset import (
    BUILTIN,
    DeviceData,
    LabelledFeatures,
    config_split,
    load_config_data,
    load_labelled_features,
    resolve_split,
)
from fewshot_audio.fewshot.harness import TrainingPlan, evaluate, evaluate_tasks, metric_name, train_best
from fewshot_audio.fewshot.metrics import mean_ci95
from fewshot_audio.fewshot.strategies import parse_strategies, strategy_class
from fewshot_audio.fewshot.training import EVAL_SEED, check_episode_sizes, frozen_episodes
from fewshot_audio.models.checkpoints import load_checkpoint
from fewshot_audio.models.compose import check_backbone
from fewshot_audio.models.pretrained.weights import cached
from fewshot_audio.specs import ModelSpec, is_pretrained, models
from fewshot_audio.util.io import atomic_write_json
from fewshot_audio.util.runtime import pick_device, seed_everything, tune_cpu

logger = logging.getLogger(__name__)

PROTOCOLS = ("episodic", "low-data")


def compare_hash(config: TrainConfig, *, protocol: str, draws: int, source: str | None, test_fold: str | None) -> str:
    """The configuration hash of a comparison (its rows' strategies aside): :meth:`TrainConfig.fingerprint` with
    the protocol, the draws, the source and the test fold."""
    return config.fingerprint(without=("strategy",), protocol=protocol, draws=draws if protocol == "low-data" else None,
                              source=source, test_fold=test_fold)


def _trained(row: str, config: TrainConfig, data: LabelledFeatures, dev: DeviceData, split: dict, *, device,
             models_dir: Path, n_way: int, quiet: bool):
    """Build row ``row``'s strategy (``config`` is the row's, see :func:`row_config`), prepare it on the training
    classes and train it (or load its finished training)."""
    cls = strategy_class(config.strategy)
    cfg = replace(config, train_ways=n_way)
    strategy = build_strategy(cfg, device, n_classes=len(data.class_names))
    base = data.classes_of(split["base"])
    prepare_strategy(strategy, data, dev, base)
    if not strategy.trains:
        return strategy, 0.0
    key = cls.training_key or config.strategy
    folder = models_dir / (key if "@" not in row else f"{key}@{row.split('@', 1)[1].replace(':', '-')}")
    done = folder / "done.json"
    if not done.exists():
        val_eps, _ = frozen_episodes(data, split, split_name="val", n_way=n_way, n_shot=config.shots,
                                     n_query=config.queries, n_episodes=config.val_episodes,
                                     episodes_dir=config.episodes_dir)
        sampler = data.sampler(base, n_way=n_way, n_shot=config.shots, n_query=config.train_queries or config.queries,
                               seed=config.seed, training=True)
        folder.mkdir(parents=True, exist_ok=True)
        history = train_best(strategy, data=dev, sampler=sampler, val_episodes=val_eps, plan=TrainingPlan.of(config),
                             run_dir=folder, resume=(folder / "checkpoint.pt").exists(), quiet=quiet)
        atomic_write_json(done, {"seconds": round(history.seconds, 1), "best_step": history.best_step,
                                 f"best_val_{metric_name(val_eps)}": history.best_val})
    else:
        strategy.load_state_dict(load_checkpoint(folder / "best.pt")["strategy"], with_optimizer=False)
    return strategy, json.loads(done.read_text())["seconds"]


def row_config(config: TrainConfig, row: str) -> TrainConfig:
    """The configuration of a comparison row ``STRATEGY`` or ``STRATEGY@BACKBONE``: a pretrained backbone
    brings its own front end (its sample rate, bands and window; the clip policy's pooling, short-clip
    handling and window count stay the comparison's)."""
    name, _, backbone = row.partition("@")
    cls = strategy_class(name)
    if not backbone:
        return replace(config, strategy=name)
    if cls.backbone_name and cls.backbone_name != backbone:
        raise ConfigError(f"strategy {name!r} always uses backbone {cls.backbone_name!r}; drop '@{backbone}'")
    if is_pretrained(backbone):
        f = config.features
        own = FeatureConfig.of_front_end(ModelSpec.parse(backbone).model.front_end)
        features = replace(own, pooling=f.pooling, short=f.short, max_windows=f.max_windows, signal_db=f.signal_db)
        return replace(config, strategy=name, backbone=backbone, features=features)
    return replace(config, strategy=name, backbone=backbone)


def strategy_rows(text: str, *, protocol: str) -> tuple[list[str], list[str]]:
    """The rows of ``--strategies`` (``all`` or names, each optionally ``@BACKBONE``); in the low-data protocol
    ``all`` adds :func:`pretrained_rows`. Also returns the pretrained models left out (weights not fetched)."""
    rows = parse_strategies(text)
    if protocol == "low-data" and text.strip() == "all":
        extra, missing = pretrained_rows()
        return rows + extra, missing
    return rows, []


def pretrained_rows(strategies: tuple[str, ...] = ("transfer-proto", "transfer-logreg")) -> tuple[list[str], list[str]]:
    """Rows ``STRATEGY@MODEL`` for every registered pretrained model whose weights are fetched, and the
    names of the models left out because they are not."""

    rows, missing = [], []
    for name, model in models().items():
        if cached(model.source, model.weights_file):
            rows += [f"{s}@{name}" for s in strategies]
        else:
            missing.append(name)
    return rows, missing


class _Views:
    """The target (and source) dataset in each row's features, loaded once per feature configuration;
    clips are matched across views by id."""

    def __init__(self, config: TrainConfig, data: LabelledFeatures, *, device, quiet: bool, source=None,
                 source_format=None):
        self.device, self.quiet, self.source, self.source_format = device, quiet, source, source_format
        self.config, self.data = config, data
        self.cache: dict[str, tuple] = {}

    def _key(self, features) -> str:
        return json.dumps(asdict(features), sort_keys=True)

    def target(self, cfg: TrainConfig) -> tuple[LabelledFeatures, DeviceData]:
        key = "target" + self._key(cfg.features)
        if key not in self.cache:
            same = cfg.features == self.config.features
            data = self.data if same else load_labelled_features(
                self.config.dataset, features=cfg.features, format=self.config.format, label=self.config.label,
                strict=self.config.strict, min_clips=self.config.min_clips, multi_label=self.config.multi_label,
                quiet=self.quiet)
            self.cache[key] = (data, data.device_data(device=self.device, seed=cfg.seed))
        return self.cache[key]

    def source_data(self, cfg: TrainConfig) -> tuple[LabelledFeatures, DeviceData, dict]:
        key = "source" + self._key(cfg.features)
        if key not in self.cache:
            src = load_labelled_features(self.source, features=cfg.features, format=self.source_format,
                                         quiet=self.quiet)
            split = resolve_split(src, ratios=cfg.split, seed=0, split_file=None)
            self.cache[key] = (src, src.device_data(device=self.device, seed=cfg.seed), split)
        return self.cache[key]

    def indices(self, data: LabelledFeatures, idx: np.ndarray) -> np.ndarray:
        """``idx`` (clips of the first view) as indices of ``data``."""
        if data is self.data:
            return idx
        where = {cid: i for i, cid in enumerate(data.ids)}
        ids = [self.data.ids[i] for i in idx]
        lost = [c for c in ids if c not in where]
        if lost:
            raise DataError(f"clip {lost[0]} is in the comparison's test or training pool but could not be read with "
                            f"another row's features ({len(lost)} such clips); fix or remove it")
        return np.array([where[c] for c in ids], dtype=np.int64)


def low_data_support(data: LabelledFeatures, pool: np.ndarray, classes: list[int], *, shots: int,
                     draws: int) -> np.ndarray:
    """The low-data protocol's seeded support draws: ``(draws, len(classes), shots)`` clip indices of ``data``,
    ``shots`` clips of each class from the training ``pool`` per draw (the same for every row)."""
    return support_draws(data.labels, pool, classes, shots=shots, draws=draws)


def support_draws(labels: np.ndarray, pool: np.ndarray, classes: list[int], *, shots: int, draws: int) -> np.ndarray:
    """``(draws, len(classes), shots)`` indices: per seeded draw, ``shots`` clips of each class of ``labels`` from
    ``pool``, without replacement."""
    out = []
    for r in range(draws):
        rng = np.random.default_rng([EVAL_SEED, r, shots])
        out.append(np.stack([rng.choice(pool[labels[pool] == c], size=shots, replace=False) for c in classes]))
    return np.stack(out)


def low_data_split(data: LabelledFeatures, test_fold: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training pool and of the test split."""
    return holdout_split(data.labels, [c.fold for c in data.manifest.clips], test_fold)


def holdout_split(labels: np.ndarray, folds: list, test_fold: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training pool and of the test split of clips with ``labels`` (negative: unlabelled, left out)
    and ``folds`` (None where a clip has none): the fold ``test_fold`` (default: the last) where every clip has one,
    else a seeded 30% of each class."""
    valid = np.nonzero(labels >= 0)[0]
    folds = np.array(folds, dtype=object)
    if all(f is not None for f in folds[valid]):
        names = sorted({str(f) for f in folds[valid]}, key=lambda f: (len(f), f))
        fold = test_fold or names[-1]
        if fold not in names:
            raise DataError(f"test_fold={fold} is not a fold of this dataset; folds: {', '.join(names)}", param="test_fold")
        is_test = np.array([str(f) for f in folds[valid]]) == fold
        return valid[~is_test], valid[is_test]
    if test_fold:
        raise DataError(f"test_fold={test_fold} was given but this dataset has no folds; omit it for a seeded 30% "
                        "hold-out", param="test_fold")
    rng = np.random.default_rng(EVAL_SEED)
    test = []
    for c in np.unique(labels[valid]):
        members = valid[labels[valid] == c]
        test.extend(rng.choice(members, size=max(1, int(round(0.3 * len(members)))), replace=False))
    test = np.sort(np.array(test))
    return np.setdiff1d(valid, test), test


def compare(config: TrainConfig, *, strategies: list[str], shots: list[int], out: str | Path, protocol: str = "episodic",
            draws: int = 5, source: str | None = None, source_format: str | None = None, test_fold: str | None = None,
            overwrite: bool = False, quiet: bool = False) -> list[dict]:
    """Run every (strategy, shots) cell not already in ``out/results.csv``; return all rows."""
    config.validate()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol={protocol!r} is not valid; use {' or '.join(PROTOCOLS)}", param="protocol")
    if not shots or any(k <= 0 for k in shots):
        raise ConfigError(f"shots={shots}: must be positive integers", param="shots")
    if draws <= 0:
        raise ConfigError(f"draws={draws}: must be a positive integer", param="draws")
    if config.multi_label and protocol != "episodic":
        raise ConfigError(f"multi_label=True works with the episodic protocol only (the {protocol} protocol scores "
                          "single-label classes); drop multi_label=True or use protocol=episodic", param="multi_label")
    for name in strategies:
        cfg = row_config(config, name)
        check_backbone(cfg, strategy_class(cfg.strategy).backbone_name or cfg.backbone)
    out = Path(out)
    chash = compare_hash(config, protocol=protocol, draws=draws, source=source, test_fold=test_fold)
    header_path = out / "compare.json"
    if header_path.exists():
        previous = json.loads(header_path.read_text())
        # a run that failed before its first result left only its header: it does not hold the folder
        if previous.get("config_hash") != chash and (out / "results.csv").exists():
            if not overwrite:
                raise ConfigError(f"{out} holds results of another configuration (config {previous.get('config_hash')}, "
                                  f"now {chash}); choose another out= or pass overwrite=True to replace them")
            for name in ("results.csv", "results.md", "accuracy_vs_shots.png", "compare.json"):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / "models", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(header_path, {"config_hash": chash, "protocol": protocol, "config": config.to_dict(),
                                    "draws": draws, "source": source, "test_fold": test_fold})
    rows = read_results(out / "results.csv")
    done = {(r["strategy"], int(r["shots"])) for r in rows}
    todo = [(s, [k for k in shots if (s, k) not in done]) for s in strategies]
    todo = [(s, ks) for s, ks in todo if ks]
    if not todo:
        logger.info(f"all {len(strategies) * len(shots)} cells already in {out / 'results.csv'}")
    tune_cpu()
    seed_everything(config.seed)
    device = pick_device(config.device)
    if todo:
        data = load_config_data(config, quiet=quiet)
        run = _episodic if protocol == "episodic" else _low_data
        run(config, data, todo, rows, out=out, device=device, chash=chash, draws=draws, source=source,
            source_format=source_format, test_fold=test_fold, quiet=quiet)
    if rows:
        plot_results(out / "accuracy_vs_shots.png", rows)
    return rows


def _row(config, strategy, name, protocol, ways, shots, accs, train_s, eval_s, chash, metric="accuracy",
         test_classes: int | None = None) -> dict:
    mean, ci = mean_ci95(accs)
    return {"strategy": name, "backbone": strategy.backbone_name or config.backbone, "protocol": protocol,
            "ways": ways, "shots": shots, "accuracy": f"{mean:.5f}", "ci95": f"{ci:.5f}", "n": len(accs),
            "train_seconds": f"{train_s:.1f}", "eval_seconds": f"{eval_s:.1f}", "seed": config.seed,
            "config_hash": chash, "metric": metric, "test_classes": "" if test_classes is None else test_classes}


def _episodic(config, data, todo, rows, *, out, device, chash, quiet, **_):
    split = config_split(data, config)
    views = _Views(config, data, device=device, quiet=quiet)
    shot_counts = sorted({k for _, ks in todo for k in ks})
    test_episodes = {}
    needs = {"novel": (max(shot_counts), config.queries)}
    if any(strategy_class(row_config(config, name).strategy).trains for name, _ in todo):  # validated on val
        needs["val"] = (config.shots, config.queries)
    check_episode_sizes(data, split, ways=config.ways, needs=needs)
    n_novel = len(data.classes_of(split["novel"]))
    if n_novel <= config.ways:
        logger.warning(same_classes_note(n_novel, config.ways))

    def episodes_of(view: LabelledFeatures, k: int):
        # frozen files are keyed by dataset, split and clip ids: every view of the dataset reads the same ones
        key = (id(view), k)
        if key not in test_episodes:
            test_episodes[key] = frozen_episodes(view, split, split_name="novel", n_way=config.ways, n_shot=k,
                                                 n_query=config.queries, n_episodes=config.test_episodes,
                                                 episodes_dir=config.episodes_dir)[0]
        return test_episodes[key]

    for k in shot_counts:  # every test file is frozen (and every shot count checked) before any training
        episodes_of(data, k)
    for name, shot_list in todo:
        cfg = row_config(config, name)
        view, dev = views.target(cfg)
        strategy, train_s = _trained(name, cfg, view, dev, split, device=device, models_dir=out / "models",
                                     n_way=config.ways, quiet=quiet)
        for k in shot_list:
            t0 = time.perf_counter()
            eps = episodes_of(view, k)
            accs = evaluate(strategy, dev, eps, amp=config.amp, desc=f"{name} {k}-shot", quiet=quiet).numpy()
            rows.append(_row(cfg, strategy, name, "episodic", config.ways, k, accs, train_s,
                             time.perf_counter() - t0, chash, metric=metric_name(eps), test_classes=n_novel))
            write_results(out, rows)
            logger.info(f"{name} {k}-shot: {100 * float(rows[-1]['accuracy']):.2f}% ± {100 * float(rows[-1]['ci95']):.2f}")


def _low_data(config, data, todo, rows, *, out, device, chash, draws, source, source_format, test_fold, quiet):
    pool, test = low_data_split(data, test_fold)
    classes = sorted(np.unique(data.labels[pool]).tolist())
    n_way = len(classes)
    way_of = {c: w for w, c in enumerate(classes)}
    test_labels = torch.tensor([way_of[c] for c in data.labels[test]])
    counts = {c: int((data.labels[pool] == c).sum()) for c in classes}
    for k in sorted({k for _, ks in todo for k in ks}):
        short = [c for c, n in counts.items() if n < k]
        if short:
            raise ConfigError(f"class {data.class_names[short[0]]!r} has {counts[short[0]]} training clips but "
                              f"shots={k} needs {k}; lower shots=", param="shots")
    views = _Views(config, data, device=device, quiet=quiet, source=source, source_format=source_format)
    # a strategy that learns nothing from the source (MFCC statistics, a frozen embedding) needs no source: it is
    # prepared on the target's training pool (its audio, not its labels; the test split is left out)
    fixed = {}
    for name, _ in todo:
        cfg = row_config(config, name)
        strategy = build_strategy(replace(cfg, train_ways=n_way), device, n_classes=n_way)
        if not strategy.trains:
            view, dev = views.target(cfg)
            strategy.prepare(dev.eval_inputs(torch.from_numpy(views.indices(view, pool))))
            fixed[name] = strategy
    learners = [name for name, _ in todo if name not in fixed]
    if learners and (source or BUILTIN) == (config.dataset or BUILTIN):
        raise ConfigError(f"the low-data protocol meta-trains {', '.join(learners)} on a source dataset other than "
                          "the target; pass source=PATH (the built-in dataset is the default source for any other "
                          "dataset=), or compare only strategies that learn nothing from a source", param="source")
    # support draws and the test split are drawn on the first view and matched to each row's view by clip id
    for name, shot_list in todo:
        cfg = row_config(config, name)
        view, dev = views.target(cfg)
        if name in fixed:
            strategy, train_s = fixed[name], 0.0
        else:
            src, src_dev, src_split = views.source_data(cfg)
            for part in ("base", "val"):
                if len(src_split[part]) < n_way:
                    raise ConfigError(f"the source dataset's {part} split has {len(src_split[part])} classes but the "
                                      f"target has {n_way}; {n_way}-way meta-training needs a source with more classes")
            strategy, train_s = _trained(name, cfg, src, src_dev, src_split, device=device, models_dir=out / "models",
                                         n_way=n_way, quiet=quiet)
        for k in shot_list:
            t0 = time.perf_counter()
            support = low_data_support(data, pool, classes, shots=k, draws=draws)
            support = views.indices(view, support.reshape(-1)).reshape(support.shape)
            accs = evaluate_tasks(strategy, dev, support=torch.from_numpy(support),
                                  query=torch.from_numpy(views.indices(view, test)), query_labels=test_labels,
                                  amp=config.amp)
            rows.append(_row(cfg, strategy, name, "low-data", n_way, k, accs, train_s,
                             time.perf_counter() - t0, chash))
            write_results(out, rows)
            logger.info(f"{name} {k}-shot: {100 * float(rows[-1]['accuracy']):.2f}% ± {100 * float(rows[-1]['ci95']):.2f}")
