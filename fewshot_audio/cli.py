"""Command-line interface: thin subcommands over the library functions.

User mistakes print one ``error: ...`` line and exit with status 2; an interrupted
run exits 130 after saying how to resume it.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import FewshotError


def _add_dataset_args(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument("--dataset", required=required, help="dataset folder or CSV (default: the built-in synthetic dataset)")
    p.add_argument("--format", help="dataset layout: folder, csv, esc50, urbansound8k, fsdd, nsynth (default: detect)")
    p.add_argument("--label", help="which label to use where a layout has several (fsdd: digit|speaker|digit-speaker; "
                                   "nsynth: family|instrument)")


def _add_episode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ways", type=int, help="classes per episode (N)")
    p.add_argument("--shots", type=int, help="support clips per class (K)")
    p.add_argument("--queries", type=int, help="query clips per class (Q)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fewshot-audio", description="Few-shot audio and music tagging.")
    parser.add_argument("--version", action="version", version=f"fewshot-audio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="meta-train on base classes, test on frozen novel-class episodes")
    _add_dataset_args(p)
    _add_episode_args(p)
    p.add_argument("--episodes", type=int, help="meta-training episodes")
    p.add_argument("--backbone", help="conv4, musically-motivated, vgg, samplecnn, mfcc")
    p.add_argument("--strategy", help="strategy name (see 'fewshot-audio strategies')")
    p.add_argument("--config", help="YAML preset (see configs/); flags override its values")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, help="training seed (evaluation episodes are frozen and do not depend on it)")
    p.add_argument("--out", help="run folder (default: runs/<time>-<strategy>-<backbone>-...)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--min-clips", type=int, dest="min_clips", help="drop classes with fewer clips than this")
    p.add_argument("--episodes-dir", dest="episodes_dir", help="where frozen episode files live (default: episodes)")
    p.add_argument("--strict", action="store_true", default=None, help="unreadable or silent audio is an error")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines")

    p = sub.add_parser("evaluate", help="score a trained run on frozen novel-class episodes")
    p.add_argument("--run", required=True, help="run folder written by 'train'")
    _add_episode_args(p)
    p.add_argument("--episodes", type=int, default=1000, help="test episodes (default 1000)")
    p.add_argument("--device", default="auto")
    p.add_argument("--episodes-dir", dest="episodes_dir")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("datasets", help="inspect datasets")
    dsub = p.add_subparsers(dest="datasets_command", required=True)
    q = dsub.add_parser("inspect", help="classes, clip counts, durations and every problem found")
    q.add_argument("path", nargs="?", help="dataset folder or CSV (omit for the built-in dataset)")
    q.add_argument("--format")
    q.add_argument("--label")
    q.add_argument("--json", action="store_true")
    q.add_argument("--quiet", action="store_true")
    dsub.add_parser("formats", help="list the dataset layouts understood")

    p = sub.add_parser("episodes", help="freeze evaluation episodes")
    esub = p.add_subparsers(dest="episodes_command", required=True)
    q = esub.add_parser("freeze", help="write episodes (clip ids only) under --episodes-dir")
    _add_dataset_args(q)
    _add_episode_args(q)
    q.add_argument("--split", choices=("base", "val", "novel"), default="novel")
    q.add_argument("--episodes", type=int, default=1000)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--config", help="YAML preset giving features and split")
    q.add_argument("--episodes-dir", dest="episodes_dir")
    q.add_argument("--quiet", action="store_true")

    sub.add_parser("strategies", help="list strategies and backbones")
    return parser


def _train_config(args):
    from .config import TrainConfig, apply_overrides, load_config

    config = load_config(args.config) if getattr(args, "config", None) else TrainConfig()
    keys = ("dataset", "format", "label", "ways", "shots", "queries", "episodes", "backbone", "strategy", "device",
            "seed", "out", "min_clips", "episodes_dir", "strict")
    overrides = {k: getattr(args, k, None) for k in keys}
    config = apply_overrides(config, overrides)
    config.validate()
    return config


def _fmt(result: dict) -> str:
    return (f"{result['strategy']}/{result['backbone']}: {result['ways']}-way {result['shots']}-shot accuracy "
            f"{100 * result['accuracy']:.2f}% ± {100 * result['ci95']:.2f} (95% CI, {result['episodes']} episodes)")


def cmd_train(args) -> int:
    from .api import train

    metrics = train(_train_config(args), resume=args.resume, quiet=args.quiet)
    print(f"test  {_fmt(metrics['test'])}")
    if "baseline" in metrics:
        print(f"base  {_fmt(metrics['baseline'])}")
    print(f"trained {metrics['training']['episodes']} episodes in {metrics['training']['seconds']:.0f} s on "
          f"{metrics['device']}; run folder: {metrics['run_dir']}")
    return 0


def cmd_evaluate(args) -> int:
    from .api import evaluate_run

    result = evaluate_run(args.run, ways=args.ways, shots=args.shots, queries=args.queries, episodes=args.episodes,
                          device=args.device, episodes_dir=args.episodes_dir, quiet=args.quiet)
    print(json.dumps(result, indent=2) if args.json else _fmt(result))
    return 0


def cmd_datasets(args) -> int:
    from .data.adapters import FORMATS

    if args.datasets_command == "formats":
        print("\n".join(FORMATS))
        return 0
    from .inspect_dataset import inspect_dataset

    report = inspect_dataset(args.path, format=args.format, label=args.label, quiet=args.quiet)
    print(json.dumps(report, indent=2) if args.json else report["text"])
    return 0


def cmd_episodes(args) -> int:
    from .api import frozen_episodes
    from .config import TrainConfig, load_config
    from .dataset import load_labelled_features, resolve_split

    config = load_config(args.config) if args.config else TrainConfig()
    data = load_labelled_features(args.dataset or config.dataset, features=config.features,
                                  format=args.format or config.format, label=args.label or config.label,
                                  quiet=args.quiet)
    split = resolve_split(data, ratios=config.split, seed=0, split_file=config.split_file)
    _, path = frozen_episodes(data, split, split_name=args.split, n_way=args.ways or config.ways,
                              n_shot=args.shots or config.shots, n_query=args.queries or config.queries,
                              n_episodes=args.episodes, episodes_dir=args.episodes_dir or config.episodes_dir,
                              seed=args.seed)
    print(path)
    return 0


def cmd_strategies(args) -> int:
    from .backbones import BACKBONES, describe_backbones
    from .strategies import describe_strategies

    print("strategies:")
    for name, text in describe_strategies().items():
        print(f"  {name:24s} {text}")
    print("backbones:")
    for name, text in describe_backbones().items():
        print(f"  {name:24s} [{BACKBONES[name].input_kind}] {text}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "datasets": cmd_datasets, "episodes": cmd_episodes,
            "strategies": cmd_strategies}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .progress import set_quiet

    set_quiet(bool(getattr(args, "quiet", False)))
    try:
        return COMMANDS[args.command](args)
    except FewshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; continue with the same flags plus --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
