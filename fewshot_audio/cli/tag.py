"""``tag``: tag files with a tagger or with a pretrained model's own tags; the outputs shared with ``index tag``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fewshot_audio.cli.args import add_device, add_overwrite, add_quiet
from fewshot_audio.data.audio import audio_files
from fewshot_audio.embedding import checked_hop_s
from fewshot_audio.errors import ConfigError
from fewshot_audio.specs import get as get_model
from fewshot_audio.tagging.model_tags import tag_with_model, taggable
from fewshot_audio.tagging.results import TagResult, raven_table, taggram_paths
from fewshot_audio.tagging.tagger import Tagger
from fewshot_audio.tagging.taggram import DEFAULT_TAGS, MAX_TAGS, checked_tag_rows, write_taggram
from fewshot_audio.util.io import atomic_write_text, check_new_output


def register(sub) -> None:
    """Add ``tag`` to ``sub``."""
    p = sub.add_parser("tag", help="tag audio files or folders with a tagger or a pretrained model's own tags")
    p.add_argument("inputs", nargs="+", help="audio files or folders")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tagger", help="tagger file written by 'adapt'")
    src.add_argument("--model", help=f"a pretrained model with its own tags: {', '.join(taggable())}")
    p.add_argument("--backbone", help="refuse a tagger built on another backbone")
    p.add_argument("--hop", dest="hop_s", type=float, help="seconds between analysis windows (default: half a window with a tagger; "
                   "the original's patches with --model)")
    p.add_argument("--taggram", help="PNG (+ CSV beside it) for one file, or a folder for several: the file's "
                   "spectrogram above its best tags' window scores")
    p.add_argument("--taggram-tags", type=int, default=DEFAULT_TAGS, dest="taggram_tags",
                   help=f"tags shown in each taggram, the best-scoring ones (default {DEFAULT_TAGS})")
    add_output(p)
    add_device(p, default="cpu")
    add_quiet(p)
    p.set_defaults(run=run_tag)


def add_output(p: argparse.ArgumentParser) -> None:
    """The outputs of ``tag`` and ``index tag``: the table's top-k, a Raven table, JSON or CSV."""
    p.add_argument("--top-k", type=int, default=3, dest="top_k", help="best-scoring tags shown per file in the table")
    p.add_argument("--raven", help="write a Raven selection table (.txt): one row per window and tag at or above "
                   "its threshold")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the results as JSON")
    fmt.add_argument("--csv", action="store_true", help="print the results as CSV (one row per file)")
    add_overwrite(p)


def run_tag(args) -> int:
    """``fewshot-audio tag``: tag files with a tagger (or a model's own tags), with taggrams and a Raven table on
    request."""
    files = audio_files(args.inputs)
    checked_hop_s(args.hop_s)
    taggrams = check_outputs(args, files)  # before any work
    if args.model:
        results, tags = tag_with_model(files, model=args.model, device=args.device, hop_s=args.hop_s, quiet=args.quiet)
        for r in results:  # a pretrained tagger has no calibrated thresholds: show its top-k
            r.tags = r.tags[: args.top_k]
        front = get_model(args.model).front_end
        window, high_freq = front.window, front.sample_rate / 2
    else:
        tagger = Tagger.load(args.tagger, device=args.device, expect_backbone=args.backbone)
        results, tags = tagger.tag(files, hop_s=args.hop_s, quiet=args.quiet), tagger.tags
        window, high_freq = tagger.backbone.window, tagger.backbone.features.sample_rate / 2
    write_raven(args, results, tags, window=window, high_freq=high_freq)
    return print_results(results, tags, args, taggrams=taggrams, window=window)


def check_outputs(args, files: list[Path]) -> list[Path]:
    """Every output path of ``tag`` and ``index tag`` checked (and ``--taggram`` folders made) before the work;
    returns where each file's taggram goes (none without ``--taggram``)."""
    if getattr(args, "top_k", 1) < 1:
        raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")
    if getattr(args, "taggram", None):
        try:
            checked_tag_rows(args.taggram_tags)
        except ConfigError:
            raise ConfigError(f"--taggram-tags {args.taggram_tags}: give 1 to {MAX_TAGS} (the best-scoring tags are "
                              "shown; the CSV beside the PNG holds their scores)") from None
    taggrams = (taggram_paths(args.taggram, files, overwrite=args.overwrite) if getattr(args, "taggram", None)
                else [])
    if getattr(args, "raven", None):
        check_new_output(args.raven, kind="text", overwrite=args.overwrite, param="raven")
    return taggrams


def write_raven(args, results: list[TagResult], tags: list[str], *, window: float, high_freq: float) -> None:
    """Write the Raven selection table of ``results`` to ``--raven`` when it was given."""
    if getattr(args, "raven", None):
        atomic_write_text(args.raven, raven_table(results, tags, window=window, high_freq=high_freq))


def print_results(results: list[TagResult], tags: list[str], args, *, taggrams: list[Path] = (),
                  window: float = 1.0) -> int:
    """``tag``'s outputs (shared by ``index tag``): taggram PNGs, JSON, CSV or a table. The exit status: 0
    when every file was tagged, 1 (after every other result and a summary line) when any could not be."""
    model = bool(getattr(args, "model", None))
    for r, png in zip(results, taggrams):
        if r.error is None:
            write_taggram(png, r, tags, window=window, n_tags=args.taggram_tags, calibrated=not model)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    elif args.csv and model:  # a model's vocabulary can be thousands of classes: its top-k, one row each
        print("path,rank,tag,score,error")
        for r in results:
            if r.error:
                print(f"{r.path},,,,{r.error}")
            for rank, t in enumerate(r.tags, 1):  # run_tag kept the top-k, best first
                print(f"{r.path},{rank},{t},{r.scores[t]:.5f},")
    elif args.csv:
        print("path," + ",".join(tags) + ",tags,error")
        for r in results:
            print(f"{r.path}," + ",".join(f"{r.scores.get(t, float('nan')):.5f}" for t in tags)
                  + f",{';'.join(r.tags)},{r.error or ''}")
    else:
        for r in results:
            if r.error:
                print(f"{r.path}: ERROR {r.error}")
                continue
            best = sorted(tags, key=lambda t: r.scores[t], reverse=True)[: args.top_k]
            if getattr(args, "model", None):
                print(f"{r.path}: " + ", ".join(f"{t} {r.scores[t]:.3f}" for t in best))
                continue
            shown = ", ".join(f"{t} {r.scores[t]:.3f} (threshold {r.thresholds[t]:.3f})" for t in best)
            print(f"{r.path}: {', '.join(r.tags) if r.tags else '(none of the tags)'}   [{shown}]")
    failed = sum(r.error is not None for r in results)
    if failed:
        print(f"{failed} of {len(results)} file(s) could not be read; the others were tagged", file=sys.stderr)
    return 1 if failed else 0
