"""Library entry points behind the CLI: ``train`` and ``evaluate_run``."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from fewshot_audio.config import TrainConfig, config_from_dict
from fewshot_audio.errors import CheckpointError, ConfigError, EpisodeError
from fewshot_audio.fewshot import distributed
from fewshot_audio.fewshot.build import build_strategy, prepare_strategy
from fewshot_audio.fewshot.dataset import DeviceData, LabelledFeatures, config_split, load_config_data
from fewshot_audio.fewshot.episodes import (
    Episodes,
    episode_file_name,
    freeze_episodes,
    read_episodes,
    save_split,
    split_id,
)
from fewshot_audio.fewshot.harness import TrainingPlan, episode_metric, episode_scores, metric_name, train_best
from fewshot_audio.fewshot.metrics import best_threshold, episode_f1, mean_ci95, tag_probabilities
from fewshot_audio.fewshot.report import plot_training_curve
from fewshot_audio.fewshot.strategies import strategy_class
from fewshot_audio.models.backbones import backbone_input_kind
from fewshot_audio.models.checkpoints import load_checkpoint
from fewshot_audio.models.compose import check_backbone
from fewshot_audio.util.io import atomic_write_json, atomic_write_text
from fewshot_audio.util.runtime import make_deterministic, pick_device, run_environment, seed_everything, tune_cpu

logger = logging.getLogger(__name__)

EVAL_SEED = 0  # frozen evaluation episodes do not depend on the training seed


def frozen_episodes(data: LabelledFeatures, split: dict[str, list[str]], *, split_name: str, n_way: int, n_shot: int,
                    n_query: int, n_episodes: int, episodes_dir: str | Path, seed: int = EVAL_SEED) -> tuple[Episodes, Path]:
    """Load the frozen episodes for these parameters, freezing them first if no file exists."""
    folder = Path(episodes_dir) / data.name / f"split-{split_id(split)}"
    path = folder / episode_file_name(split_name, n_way, n_shot, n_query, n_episodes, seed)
    if data.multi_label:
        path = path.with_name("multilabel-" + path.name)
    if not path.exists():
        sampler = data.sampler(data.classes_of(split[split_name]), n_way=n_way, n_shot=n_shot, n_query=n_query,
                               seed=seed)
        header = {"dataset": data.name, "manifest_hash": data.manifest.content_hash(), "split": split_name,
                  "split_id": split_id(split), "classes": split[split_name], "ways": n_way, "shots": n_shot,
                  "queries": n_query, "seed": seed}
        if data.multi_label:
            header["multi_label"] = True
        freeze_episodes(path, episodes=sampler.sample(n_episodes), ids=data.ids, class_names=data.class_names,
                        header=header)
        split_path = folder.with_suffix(".yaml")
        if not split_path.exists():
            save_split(split_path, split)
        logger.info(f"froze {n_episodes} {split_name} episodes to {path}")
    episodes, _ = read_episodes(path, manifest_hash=data.manifest.content_hash(), ids=data.ids,
                                class_names=data.class_names,
                                targets=None if data.targets is None else torch.from_numpy(data.targets))
    return episodes, path


def check_episode_sizes(data: LabelledFeatures, split: dict[str, list[str]], *, ways: int,
                        needs: dict[str, tuple[int, int]]) -> None:
    """Every data-size problem of the episodes to come, in one :class:`EpisodeError` naming each split, with
    settings that fit: ``needs`` maps a split name to the (largest) ``(shots, queries)`` its episodes draw."""
    counts = data.clip_counts()
    problems, n_classes, fewest = [], [], []
    for name, (shots, queries) in needs.items():
        classes = data.classes_of(split[name])
        n_classes.append(len(classes))
        fewest += [int(counts[c]) for c in classes]
        if len(classes) < ways:
            problems.append(f"the {name} split has {len(classes)} classes but {ways}-way episodes need {ways}")
        short = sorted(((data.class_names[c], int(counts[c])) for c in classes if counts[c] < shots + queries),
                       key=lambda t: t[1])
        if short:
            listed = ", ".join(f"{n!r} {k}" for n, k in short[:4]) + (", ..." if len(short) > 4 else "")
            problems.append(f"in the {name} split {len(short)} class(es) have fewer clips than the {shots + queries} "
                            f"that {shots}-shot {queries}-query episodes need ({listed})")
    if not problems:
        return
    smallest = min(fewest, default=0)  # clips of the smallest class these episodes draw from
    shots = max(s for s, _ in needs.values())
    queries = max(q for _, q in needs.values())
    hints = []
    if 2 <= min(n_classes) < ways:
        hints.append(f"ways={min(n_classes)}")
    if smallest < shots + queries:
        if smallest - shots >= 1:
            hints.append(f"queries={smallest - shots}")
        elif smallest >= 2:
            hints.append(f"shots={max(1, smallest - queries)} queries={min(queries, smallest - 1)}")
    hints += ["min_clips=N to drop small classes", "or a split with more classes in val and novel (split: in a config)"]
    raise EpisodeError("; ".join(problems) + "; settings that fit this dataset: " + ", ".join(hints))


def _default_out(config: TrainConfig) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.strategy}-{config.backbone}-{config.ways}way{config.shots}shot-seed{config.seed}"


def _test(strategy, dev: DeviceData, episodes: Episodes, *, amp: bool, calibration: Episodes | None = None) -> dict:
    """Mean ± 95% CI over ``episodes`` of the accuracy, or for multi-label episodes of the mAP plus micro and
    macro F1 at one probability threshold chosen on the ``calibration`` (validation) episodes."""
    t0 = time.perf_counter()
    scores = episode_scores(strategy, dev, episodes, amp=amp)
    name = metric_name(episodes)
    mean, ci = mean_ci95(episode_metric(scores, episodes).numpy())
    out = {"metric": name, name: mean, "ci95": ci}
    if episodes.multi_label and calibration is not None:
        val = episode_scores(strategy, dev, calibration, amp=amp)
        threshold = best_threshold(tag_probabilities(val), calibration.query_targets.flatten(1, 2))
        targets = episodes.query_targets.flatten(1, 2)
        micro, macro = episode_f1(tag_probabilities(scores), targets, threshold)
        hit = targets.gather(-1, scores.argmax(-1, keepdim=True)).float().mean((1, 2))
        for key, values in (("micro_f1", micro), ("macro_f1", macro), ("top1_hit", hit)):
            out[key], out[f"{key}_ci95"] = mean_ci95(values.numpy())
        out["threshold"] = threshold
    return {**out, "episodes": len(episodes), "ways": episodes.n_way, "shots": int(episodes.support.shape[2]),
            "queries": int(episodes.query.shape[2]), "seconds": round(time.perf_counter() - t0, 3)}


def train(config: TrainConfig, *, resume: bool = False, quiet: bool = False,
          on_step: Callable[[int], None] | None = None) -> dict:
    """Meta-train ``config.strategy`` on the base classes and test it on frozen novel-class episodes.

    Returns the metrics dict also written to ``<out>/metrics.json``.
    """
    config.validate()
    check_backbone(config, strategy_class(config.strategy).backbone_name or config.backbone)
    run_dir = _run_folder(config, resume=resume)
    device = _set_up_process(config)
    rank, world_size = distributed.world()
    main = rank == 0
    quiet = quiet or not main
    data, split, (val_eps, test_eps, test_path) = _data_and_episodes(config, run_dir, resume=resume, quiet=quiet)
    base = data.classes_of(split["base"])
    rank_seed = config.seed + 1000 * rank  # every rank draws its own episodes
    sampler = data.sampler(base, n_way=min(config.train_ways or config.ways, len(base)), n_shot=config.shots,
                           n_query=config.train_queries or config.queries, seed=rank_seed, training=True)
    if main:
        _save_settings(run_dir, config, split)
    dev = data.device_data(device=device, seed=rank_seed)
    strategy = build_strategy(config, device, n_classes=len(data.class_names))
    if main:
        _write_model_record(run_dir, strategy, config)
    prepare_strategy(strategy, data, dev, base)
    kind = "tags" if data.multi_label else "classes"
    logger.info(f"{config.strategy} / {config.backbone} on {data.name}: {len(split['base'])} base, {len(split['val'])} val, "
                f"{len(split['novel'])} novel {kind}; device {device}")
    with distributed.peers_failing_stop_cleanly(run_dir):
        history = train_best(strategy, data=dev, sampler=sampler, val_episodes=val_eps, plan=TrainingPlan.of(config),
                             run_dir=run_dir, resume=resume, quiet=quiet, on_step=on_step)
    if not main:
        return {"rank": rank}
    metrics = _test_with_floor(config, strategy, data, dev, base, device, test_eps=test_eps, val_eps=val_eps)
    metrics["training"] = {"episodes": config.episodes, "seconds": round(history.seconds, 1),
                           "best_step": history.best_step, f"best_val_{metric_name(val_eps)}": history.best_val}
    metrics["dataset"] = {"name": data.name, "manifest_hash": data.manifest.content_hash(), "clips": len(data.ids),
                          "classes": len(data.class_names), "test_episodes_file": str(test_path)}
    metrics["device"] = str(device) + (f" x {world_size} processes" if world_size > 1 else "")
    metrics["environment"] = run_environment()
    metrics["config_hash"] = config.fingerprint()
    atomic_write_json(run_dir / "metrics.json", metrics)
    plot_training_curve(run_dir / "training_curve.png", history,
                        title=f"{config.strategy} / {config.backbone}, {config.ways}-way {config.shots}-shot, {data.name}")
    metrics["run_dir"] = str(run_dir)
    return metrics


def _run_folder(config: TrainConfig, *, resume: bool) -> Path:
    """The run folder: ``config.out`` (or a default), checked to hold a run to resume, or none to overwrite."""
    run_dir = Path(config.out) if config.out else _default_out(config)
    if resume:
        if not config.out:
            raise ConfigError("resume=True needs out=RUN_DIR naming the interrupted run", param="out")
        if not (run_dir / "config.yaml").exists():
            raise CheckpointError(f"{run_dir} holds no run to resume (no config.yaml); start it without resume=True")
    elif (run_dir / "checkpoint.pt").exists():
        raise ConfigError(f"out={run_dir} already holds a run; pass resume=True to continue it or choose another out=",
                          param="out")
    return run_dir


def _set_up_process(config: TrainConfig) -> torch.device:
    """Threads, seeds, the device (this process's GPU in a distributed run) and deterministic kernels."""
    tune_cpu()
    seed_everything(config.seed)
    device = distributed.setup(config.device) or pick_device(config.device)
    make_deterministic(device)
    return device


def _data_and_episodes(config: TrainConfig, run_dir: Path, *, resume: bool, quiet: bool):
    """``(data, split, (validation episodes, test episodes, the test file))``: the features (rank 0 builds the store
    and freezes the episodes while the other ranks wait), a resumed run's settings checked, the class split checked
    to hold enough classes for the episodes."""
    main = distributed.world()[0] == 0
    if not main:
        distributed.barrier()  # rank 0 builds the feature store and freezes the episodes first
    data = load_config_data(config, quiet=quiet)  # resolves features.duration: auto
    if resume:
        saved = run_dir / "config.yaml"
        previous = config_from_dict(yaml.safe_load(saved.read_text()), where=str(saved))
        if previous.fingerprint() != config.fingerprint():
            raise ConfigError(f"{run_dir} was started with a different configuration; resume it with the same settings "
                              f"(see {saved}) or choose a new out=")
    split = config_split(data, config)
    for name in ("val", "novel"):
        if len(split[name]) < config.ways:
            raise EpisodeError(f"{config.ways}-way episodes need {config.ways} {name} classes but the {name} split has "
                               f"{len(split[name])}; lower ways= or change the split ratios", param="ways")
    episodes_kw = dict(n_way=config.ways, n_shot=config.shots, n_query=config.queries, episodes_dir=config.episodes_dir)
    val_eps, _ = frozen_episodes(data, split, split_name="val", n_episodes=config.val_episodes, **episodes_kw)
    test_eps, test_path = frozen_episodes(data, split, split_name="novel", n_episodes=config.test_episodes, **episodes_kw)
    if main:
        distributed.barrier()
    return data, split, (val_eps, test_eps, test_path)


def _save_settings(run_dir: Path, config: TrainConfig, split: dict[str, list[str]]) -> None:
    """The run's ``config.yaml`` and ``split.yaml``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    save_split(run_dir / "split.yaml", split)


def _test_with_floor(config: TrainConfig, strategy, data, dev, base: list[int], device, *, test_eps, val_eps) -> dict:
    """``{"test": ..., "baseline": ...}``: the trained strategy on the test episodes, and (with ``config.baseline``)
    the MFCC-statistics prototypes on the same episodes where the features allow it."""
    metrics = {"test": _test(strategy, dev, test_eps, amp=config.amp, calibration=val_eps)}
    metrics["test"].update({"strategy": config.strategy, "backbone": strategy.backbone_name or config.backbone})
    if config.baseline and backbone_input_kind("mfcc") == config.features.kind:  # the MFCC floor reads these features
        baseline = build_strategy(config, device, backbone="mfcc", strategy="prototypical")
        prepare_strategy(baseline, data, dev, base)
        metrics["baseline"] = {**_test(baseline, dev, test_eps, amp=False, calibration=val_eps),
                               "strategy": "prototypical", "backbone": "mfcc"}
    return metrics


def _write_model_record(run_dir: Path, strategy, config: TrainConfig) -> None:
    """``RUN/model.json``: what 'adapt --backbone RUN_DIR' rebuilds the embedding model from."""
    atomic_write_json(run_dir / "model.json", {"model": strategy.backbone.record,
                                               "features": dataclasses.asdict(config.features)})


def evaluate_run(run_dir: str | Path, *, ways: int | None = None, shots: int | None = None, queries: int | None = None,
                 episodes: int = 1000, device: str = "auto", episodes_dir: str | None = None, quiet: bool = False) -> dict:
    """Score a trained run's best checkpoint on frozen novel-class episodes."""
    run_dir = Path(run_dir)
    saved = run_dir / "config.yaml"
    if not saved.exists():
        raise CheckpointError(f"{run_dir} is not a run folder (no config.yaml); pass a folder written by 'train'")
    config = config_from_dict(yaml.safe_load(saved.read_text()), where=str(saved))
    tune_cpu()
    dev_name = pick_device(device)
    data = load_config_data(config, quiet=quiet)
    split = config_split(data, config)
    kw = dict(n_way=ways or config.ways, n_shot=shots or config.shots, n_query=queries or config.queries,
              episodes_dir=episodes_dir or config.episodes_dir)
    eps, path = frozen_episodes(data, split, split_name="novel", n_episodes=episodes, **kw)
    val_eps = None
    if data.multi_label:  # the F1 threshold is chosen on the validation episodes
        val_eps, _ = frozen_episodes(data, split, split_name="val", n_episodes=config.val_episodes, **kw)
    dev = data.device_data(device=dev_name, seed=config.seed)
    strategy = build_strategy(config, dev_name, n_classes=len(data.class_names))
    strategy.load_state_dict(load_checkpoint(run_dir / "best.pt")["strategy"], with_optimizer=False)
    result = {**_test(strategy, dev, eps, amp=config.amp, calibration=val_eps), "strategy": config.strategy,
              "backbone": config.backbone, "episodes_file": str(path)}
    atomic_write_json(run_dir / f"evaluate-{result['ways']}way-{result['shots']}shot-{result['queries']}query.json",
                      result)
    return result
