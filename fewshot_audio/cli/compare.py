"""``compare``: every strategy on identical tasks, as one table and one plot."""

from __future__ import annotations

import sys

from fewshot_audio.cli.args import (
    add_config,
    add_dataset,
    add_device,
    add_episodes_dir,
    add_format,
    add_multi_label,
    add_quiet,
    int_list,
)
from fewshot_audio.config import TrainConfig, apply_overrides, load_config
from fewshot_audio.fewshot.compare import PROTOCOLS, compare, strategy_rows
from fewshot_audio.fewshot.compare_results import results_table
from fewshot_audio.util.io import check_folder_creatable

KEYS = ("dataset", "format", "label", "ways", "queries", "episodes", "test_episodes", "backbone", "device", "seed",
        "episodes_dir", "multi_label")


def register(sub) -> None:
    """Add ``compare`` to ``sub``."""
    p = sub.add_parser("compare", help="every strategy on identical tasks: results.csv, results.md, accuracy_vs_shots.png")
    add_dataset(p)
    p.add_argument("--strategies", default="all", help="'all' or a comma-separated list (see 'fewshot-audio "
                   "strategies'); STRATEGY@BACKBONE puts a row on another backbone, e.g. transfer-logreg@aisfx; with "
                   "--protocol low-data, 'all' adds transfer-proto and transfer-logreg rows on every pretrained model "
                   "whose weights are fetched")
    p.add_argument("--shots", default="1,5", help="comma-separated shot counts, e.g. 1,2,5,10,20 (default 1,5)")
    p.add_argument("--protocol", default="episodic",
                   help=f"{' or '.join(PROTOCOLS)}: class-disjoint episodes (default) or Pons et al. 2019's low-data")
    p.add_argument("--ways", type=int, help="classes per episode (episodic protocol)")
    p.add_argument("--queries", type=int, help="query clips per class (episodic protocol)")
    p.add_argument("--episodes", type=int, help="meta-training episodes for strategies that learn")
    p.add_argument("--test-episodes", type=int, dest="test_episodes", help="frozen test episodes per cell")
    p.add_argument("--draws", type=int, default=5, help="low-data protocol: random draws of the n clips per class")
    add_multi_label(p)
    p.add_argument("--source", help="low-data protocol: dataset the learned parts train on (default: built-in)")
    add_format(p, "--source-format", dest="source_format")
    p.add_argument("--test-fold", dest="test_fold", help="low-data protocol: the fold scored (default: the last)")
    p.add_argument("--backbone", help="backbone for strategies not tied to one (default conv4)")
    add_config(p)
    add_device(p, default=None)
    p.add_argument("--seed", type=int, help="training seed")
    p.add_argument("--out", required=True, help="results folder (resumable)")
    p.add_argument("--overwrite", action="store_true", help="replace results of another configuration in --out")
    add_episodes_dir(p)
    add_quiet(p)
    p.set_defaults(run=run_compare)


def run_compare(args) -> int:
    """``fewshot-audio compare``: run every (strategy, shots) cell on identical tasks and print the table."""
    check_folder_creatable(args.out, param="out")
    config = load_config(args.config) if args.config else TrainConfig()
    config = apply_overrides(config, {k: getattr(args, k) for k in KEYS})
    strategies, missing = strategy_rows(args.strategies, protocol=args.protocol)
    if missing and not args.quiet:
        print(f"pretrained rows left out, weights not fetched: {', '.join(missing)} (fewshot-audio weights fetch "
              "NAME adds them)", file=sys.stderr)
    rows = compare(config, strategies=strategies, shots=int_list(args.shots, "--shots"),
                   out=args.out, protocol=args.protocol, draws=args.draws, source=args.source,
                   source_format=args.source_format, test_fold=args.test_fold, overwrite=args.overwrite,
                   quiet=args.quiet)
    print(results_table(rows), end="")
    print(f"results: {args.out}/results.csv, results.md, accuracy_vs_shots.png")
    return 0
