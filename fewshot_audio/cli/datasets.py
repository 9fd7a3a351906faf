"""``datasets`` and ``episodes``: inspect datasets, freeze evaluation episodes."""

from __future__ import annotations

import json

from fewshot_audio.cli.args import (
    add_config,
    add_dataset,
    add_episode_shape,
    add_episodes_dir,
    add_format,
    add_json,
    add_multi_label,
    add_quiet,
)
from fewshot_audio.config import TrainConfig, apply_overrides, load_config
from fewshot_audio.data.adapters import FORMATS
from fewshot_audio.errors import ConfigError
from fewshot_audio.fewshot.dataset import config_split, load_labelled_features
from fewshot_audio.fewshot.inspection import inspect_dataset
from fewshot_audio.fewshot.training import frozen_episodes

FREEZE_KEYS = ("dataset", "format", "label", "ways", "shots", "queries", "episodes_dir", "multi_label")


def register(sub) -> None:
    """Add ``datasets`` (inspect, formats) and ``episodes freeze`` to ``sub``."""
    p = sub.add_parser("datasets", help="inspect datasets")
    dsub = p.add_subparsers(dest="datasets_command", required=True)
    q = dsub.add_parser("inspect", help="classes, clip counts, durations and every problem found")
    q.add_argument("path", nargs="?", help="dataset folder or CSV (omit for the built-in dataset)")
    add_format(q)
    q.add_argument("--label", help="which label to use where a layout has several")
    add_json(q)
    add_quiet(q)
    q.set_defaults(run=run_inspect)
    q = dsub.add_parser("formats", help="list the dataset layouts understood")
    q.set_defaults(run=run_formats)

    p = sub.add_parser("episodes", help="freeze evaluation episodes")
    esub = p.add_subparsers(dest="episodes_command", required=True)
    q = esub.add_parser("freeze", help="write episodes (clip ids only) under --episodes-dir")
    add_dataset(q)
    add_episode_shape(q)
    q.add_argument("--split", choices=("base", "val", "novel"), default="novel", help="which classes (default novel)")
    q.add_argument("--episodes", type=int, default=1000, help="episodes to freeze (default 1000)")
    q.add_argument("--seed", type=int, default=0, help="seed of the episode draw (default 0)")
    add_config(q)
    add_episodes_dir(q)
    add_multi_label(q)
    add_quiet(q)
    q.set_defaults(run=run_freeze)


def run_formats(args) -> int:
    """``fewshot-audio datasets formats``: print the registered dataset layouts."""
    print("\n".join(FORMATS))
    return 0


def run_inspect(args) -> int:
    """``fewshot-audio datasets inspect``: classes, clip counts, durations and every problem found."""
    report = inspect_dataset(args.path, format=args.format, label=args.label, quiet=args.quiet)
    print(json.dumps(report, indent=2) if args.json else report["text"])
    return 0


def run_freeze(args) -> int:
    """``fewshot-audio episodes freeze``: write the frozen evaluation episodes of a dataset and configuration."""
    config = load_config(args.config) if args.config else TrainConfig()
    config = apply_overrides(config, {k: getattr(args, k) for k in FREEZE_KEYS})
    config.validate()  # ways >= 2, shots and queries > 0: one line each
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    data = load_labelled_features(config.dataset, features=config.features, format=config.format, label=config.label,
                                  multi_label=config.multi_label, quiet=args.quiet)
    split = config_split(data, config)
    _, path = frozen_episodes(data, split, split_name=args.split, n_way=config.ways, n_shot=config.shots,
                              n_query=config.queries, n_episodes=args.episodes, episodes_dir=config.episodes_dir,
                              seed=args.seed)
    print(path)
    return 0
