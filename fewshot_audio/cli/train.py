"""``train``, ``evaluate`` and ``strategies``: meta-train and score few-shot models."""

from __future__ import annotations

import json

from fewshot_audio.cli.args import (
    add_config,
    add_dataset,
    add_device,
    add_episode_shape,
    add_episodes_dir,
    add_json,
    add_multi_label,
    add_quiet,
)
from fewshot_audio.config import TrainConfig, apply_overrides, load_config
from fewshot_audio.fewshot.strategies import describe_strategies
from fewshot_audio.fewshot.training import evaluate_run, train
from fewshot_audio.models.backbones import backbone_input_kind, describe_backbones
from fewshot_audio.util.io import check_folder_creatable

TRAIN_KEYS = ("dataset", "format", "label", "ways", "shots", "queries", "episodes", "backbone", "strategy", "device",
              "seed", "out", "min_clips", "episodes_dir", "strict", "multi_label")


def register(sub) -> None:
    """Add ``train``, ``evaluate`` and ``strategies`` to ``sub``."""
    p = sub.add_parser("train", help="meta-train on base classes, test on frozen novel-class episodes")
    add_dataset(p)
    add_episode_shape(p)
    p.add_argument("--episodes", type=int, help="meta-training episodes")
    p.add_argument("--backbone", help=f"{', '.join(describe_backbones())} (see 'fewshot-audio strategies')")
    p.add_argument("--strategy", help=f"{', '.join(describe_strategies())} (see 'fewshot-audio strategies')")
    add_config(p)
    add_device(p, default=None)
    p.add_argument("--seed", type=int, help="training seed (evaluation episodes are frozen and do not depend on it)")
    p.add_argument("--out", help="run folder (default: runs/<time>-<strategy>-<backbone>-...)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--min-clips", type=int, dest="min_clips", help="drop classes with fewer clips than this")
    add_episodes_dir(p)
    p.add_argument("--strict", action="store_true", default=None, help="unreadable or silent audio is an error")
    add_multi_label(p)
    add_quiet(p)
    p.set_defaults(run=run_train)

    p = sub.add_parser("evaluate", help="score a trained run on frozen novel-class episodes")
    p.add_argument("--run", required=True, dest="run_dir", help="run folder written by 'train'")
    add_episode_shape(p)
    p.add_argument("--episodes", type=int, default=1000, help="test episodes (default 1000)")
    add_device(p)
    add_episodes_dir(p)
    add_json(p)
    add_quiet(p)
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("strategies", help="list strategies and backbones")
    p.set_defaults(run=run_strategies)


def train_config(args) -> TrainConfig:
    """The configuration of ``train``: built-in defaults < ``--config`` < flags, validated."""
    config = load_config(args.config) if getattr(args, "config", None) else TrainConfig()
    config = apply_overrides(config, {k: getattr(args, k, None) for k in TRAIN_KEYS})
    config.validate()
    return config


def describe(result: dict) -> str:
    """One line: strategy/backbone, the episode shape, the metric with its 95% CI."""
    metric = result.get("metric", "accuracy")
    text = (f"{result['strategy']}/{result['backbone']}: {result['ways']}-way {result['shots']}-shot {metric} "
            f"{100 * result[metric]:.2f}% ± {100 * result['ci95']:.2f} (95% CI, {result['episodes']} episodes)")
    if "micro_f1" in result:
        text += (f"; micro F1 {100 * result['micro_f1']:.2f} ± {100 * result['micro_f1_ci95']:.2f}, macro F1 "
                 f"{100 * result['macro_f1']:.2f} ± {100 * result['macro_f1_ci95']:.2f} at p >= {result['threshold']:g} "
                 "(chosen on the validation episodes)")
    return text


def run_train(args) -> int:
    """``fewshot-audio train``: meta-train and test a strategy; prints accuracy with its 95% CI beside the MFCC floor."""
    config = train_config(args)
    if config.out:
        check_folder_creatable(config.out, param="out")
    metrics = train(config, resume=args.resume, quiet=args.quiet)
    if "test" not in metrics:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
    print(f"test  {describe(metrics['test'])}")
    if "baseline" in metrics:
        print(f"MFCC baseline  {describe(metrics['baseline'])}")
    print(f"trained {metrics['training']['episodes']} episodes in {metrics['training']['seconds']:.0f} s on "
          f"{metrics['device']}; run folder: {metrics['run_dir']}")
    return 0


def run_evaluate(args) -> int:
    """``fewshot-audio evaluate``: score a trained run's best checkpoint on frozen episodes of another shape."""
    result = evaluate_run(args.run_dir, ways=args.ways, shots=args.shots, queries=args.queries, episodes=args.episodes,
                          device=args.device, episodes_dir=args.episodes_dir, quiet=args.quiet)
    print(json.dumps(result, indent=2) if args.json else describe(result))
    return 0


def run_strategies(args) -> int:
    """``fewshot-audio strategies``: print every registered strategy with its one-line description."""
    print("strategies:")
    for name, text in describe_strategies().items():
        print(f"  {name:24s} {text}")
    print("backbones:")
    for name, text in describe_backbones().items():
        print(f"  {name:24s} [{backbone_input_kind(name)}] {text}")
    return 0
