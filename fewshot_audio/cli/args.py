"""Arguments shared by several commands, declared once; choices come from the registries."""

from __future__ import annotations

import argparse

from fewshot_audio.data.adapters import FORMATS
from fewshot_audio.errors import ConfigError


def add_device(p: argparse.ArgumentParser, *, default: str = "auto") -> None:
    """Add ``--device`` (auto, cpu, cuda or cuda:N) to parser ``p``."""
    p.add_argument("--device", default=default, help=f"auto, cpu, cuda or cuda:N (default {default})")


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet`` (no progress bars or status lines: warnings and errors only) and ``--verbose`` (debugging
    details too)."""
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    p.add_argument("--verbose", action="store_true", help="also the library's debugging details")


def add_overwrite(p: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` (replace an existing output of the same kind) to parser ``p``."""
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never a file of another "
                   "kind)")


def add_json(p: argparse.ArgumentParser) -> None:
    """Add ``--json`` (machine-readable output) to parser ``p``."""
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_dataset(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add the dataset options (path, ``--format`` from the layout registry, ``--label``) to parser ``p``."""
    p.add_argument("--dataset", required=required, help="dataset folder or CSV (default: the built-in synthetic dataset)")
    add_format(p)
    p.add_argument("--label", help="which label to use where a layout has several (fsdd: digit|speaker|digit-speaker; "
                                   "nsynth: family|instrument)")


def add_format(p: argparse.ArgumentParser, flag: str = "--format", dest: str | None = None) -> None:
    """Add ``--format`` (a registered dataset layout) to parser ``p``."""
    p.add_argument(flag, dest=dest, help=f"dataset layout: {', '.join(FORMATS)} (default: detect)")


def add_episode_shape(p: argparse.ArgumentParser) -> None:
    """Add ``--ways``, ``--shots`` and ``--queries`` (the N-way K-shot Q-query episode shape) to parser ``p``."""
    p.add_argument("--ways", type=int, help="classes per episode (N)")
    p.add_argument("--shots", type=int, help="support clips per class (K)")
    p.add_argument("--queries", type=int, help="query clips per class (Q)")


def add_episodes_dir(p: argparse.ArgumentParser) -> None:
    """Add ``--episodes-dir`` (where frozen episode files are read and written) to parser ``p``."""
    p.add_argument("--episodes-dir", dest="episodes_dir", help="where frozen episode files live (default: episodes)")


def add_multi_label(p: argparse.ArgumentParser) -> None:
    """Add ``--multi-label`` (episodes over tags, scored by mAP and F1) to parser ``p``."""
    p.add_argument("--multi-label", action="store_true", default=None, dest="multi_label",
                   help="train and score on every tag of each clip (CSV 'labels' with ';', MTT): episodes over tags, "
                        "mAP and micro/macro F1")


def add_config(p: argparse.ArgumentParser) -> None:
    """Add ``--config`` (a YAML training configuration) to parser ``p``."""
    p.add_argument("--config", help="YAML preset (see configs/); flags override its values")


def int_list(text: str, flag: str) -> list[int]:
    """``"1,5,10"`` -> ``[1, 5, 10]`` (one line naming ``flag`` otherwise)."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r} must be comma-separated integers, e.g. 1,5,10") from None


def add_budget(p: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """``--epochs`` and ``--max-steps``: the studies' training budget (defaults: the command's own)."""
    p.add_argument("--epochs", type=int, help=f"{prefix}passes over the training clips")
    p.add_argument("--max-steps", dest="max_steps", type=int, help=f"{prefix}at most this many optimiser steps "
                   "(and no minimum above it)")


def budget_of(args, budget):
    """``budget`` (a :class:`~fewshot_audio.studies.supervised.Budget`) with ``--epochs`` and ``--max-steps``
    applied; a one-line error naming a flag below 1."""
    from dataclasses import replace

    from fewshot_audio.errors import ConfigError

    for flag, value in (("--epochs", args.epochs), ("--max-steps", args.max_steps)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if args.epochs is not None:
        budget = replace(budget, epochs=args.epochs)
    if args.max_steps is not None:
        budget = replace(budget, max_steps=args.max_steps, min_steps=min(budget.min_steps, args.max_steps))
    return budget
