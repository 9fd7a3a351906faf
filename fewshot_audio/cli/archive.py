"""``index``: embed an archive once, search it by example, tag it and choose what to label next."""

from __future__ import annotations

import json
from pathlib import Path

from fewshot_audio.archive.build import ANN_CHOICES, INDEX_BACKBONE, build_index
from fewshot_audio.archive.search import SEARCH_METHODS, search
from fewshot_audio.archive.store import ArchiveStore
from fewshot_audio.archive.tag_from_index import suggest, tag_index
from fewshot_audio.cli.args import add_device, add_json, add_quiet
from fewshot_audio.cli.tag import add_output, check_outputs, print_results, write_raven
from fewshot_audio.specs import models
from fewshot_audio.tagging.active import SUGGEST_METHODS
from fewshot_audio.util.io import check_folder_creatable


def register(sub) -> None:
    """Add the ``index`` commands (build, search, tag, suggest) to ``sub``."""
    p = sub.add_parser("index", help="embed an archive once; search it by example and tag it from the index")
    isub = p.add_subparsers(dest="index_command", required=True)
    q = isub.add_parser("build", help="embed every audio file under ARCHIVE (resumable, incremental)")
    q.add_argument("archive", nargs="+", help="audio files or folders")
    q.add_argument("--out", required=True, help="index folder")
    q.add_argument("--backbone", default=INDEX_BACKBONE,
                   help=f"a pretrained model ({', '.join(models())}), mfcc, or a run folder written by 'train' "
                        f"(default {INDEX_BACKBONE}: general sound effects)")
    q.add_argument("--hop", dest="hop_s", type=float, help="seconds between windows (default: half a window, as 'tag')")
    q.add_argument("--workers", type=int, default=1, help="processes decoding and embedding files (default 1)")
    q.add_argument("--files-per-shard", type=int, default=256, dest="files_per_shard",
                   help="files committed together (a killed build loses at most one shard's work)")
    q.add_argument("--resume", action="store_true", help="continue a killed build, or update the index of a changed "
                   "archive (new and changed files embedded, deleted ones forgotten)")
    q.add_argument("--ann", default="auto", choices=ANN_CHOICES,
                   help="write an approximate-search graph (USearch): auto (default: for large indexes), yes or no")
    add_device(q, default="cpu")
    add_quiet(q)
    q.set_defaults(run=run_build)
    q = isub.add_parser("search", help="the indexed windows most like the examples")
    q.add_argument("index", help="index folder")
    q.add_argument("--example", nargs="+", required=True, help="example audio files")
    q.add_argument("--k", type=int, default=10, help="windows returned (default 10)")
    q.add_argument("--method", default="auto", help=f"{', '.join(SEARCH_METHODS)} (default auto: the search graph "
                   "where the index has an up-to-date one)")
    add_json(q)
    add_device(q, default="cpu")
    add_quiet(q)
    q.set_defaults(run=run_search)
    q = isub.add_parser("tag", help="tag every indexed file from its stored embeddings (as 'tag', no decoding)")
    q.add_argument("index", help="index folder")
    q.add_argument("--tagger", required=True, help="tagger file built on the index's backbone")
    add_output(q)
    add_device(q, default="cpu")
    add_quiet(q)
    q.set_defaults(run=run_tag)
    q = isub.add_parser("suggest", help="the indexed files to label next for one tag (active learning)")
    q.add_argument("index", help="index folder")
    q.add_argument("--tagger", required=True, help="tagger file built on the index's backbone")
    q.add_argument("--tag", required=True, help="the tag to improve")
    q.add_argument("--k", type=int, default=20, help="files suggested (default 20)")
    q.add_argument("--method", default="uncertain", help=f"{', '.join(SUGGEST_METHODS)} (default uncertain: scores "
                   "nearest the tag's threshold)")
    add_json(q)
    q.set_defaults(run=run_suggest)


def run_build(args) -> int:
    """``fewshot-audio index build``: embed an archive into an index (resumable) and print what changed."""
    if not Path(args.out).exists():  # an existing --out is checked by build_index (an index to resume, or not)
        check_folder_creatable(args.out, param="out")
    counts = build_index(args.archive, backbone=args.backbone, out=args.out, hop_s=args.hop_s, workers=args.workers,
                         resume=args.resume, files_per_shard=args.files_per_shard, device=args.device, ann=args.ann,
                         quiet=args.quiet)
    if counts["rank"]:
        return 0  # torchrun: rank 0 reports for all
    print(f"index {counts['index']} ({counts['audio_hours']:g} h of audio): {counts['embedded']} file(s) embedded "
          f"({counts['windows']} windows, "
          f"{counts['unreadable']} unreadable), {counts['unchanged']} unchanged, {counts['forgotten']} forgotten, "
          f"{counts['seconds']} s" + (f", {counts['processes']} processes" if counts["processes"] > 1 else "")
          + (f"; search graph over {counts['ann_windows']} windows" if counts["ann_windows"] else ""))
    return 0


def _print(rows: list[dict], args, line) -> None:
    """Rows as JSON (``--json``) or one ``line(row)`` each."""
    print(json.dumps(rows, indent=2) if args.json else "\n".join(line(r) for r in rows))


def run_search(args) -> int:
    """``fewshot-audio index search``: the windows of the index nearest to the examples, one line (or JSON row) each."""
    hits = search(args.index, args.example, k=args.k, device=args.device, method=args.method, quiet=args.quiet)
    _print(hits, args, lambda h: f"{h['score']:.4f}  {h['path']}  {h['start']:.2f}-{h['end']:.2f} s")
    return 0


def run_suggest(args) -> int:
    """``fewshot-audio index suggest``: the indexed files worth labelling next for a tagger's tag."""
    picks = suggest(args.index, tagger=args.tagger, tag=args.tag, k=args.k, method=args.method)
    _print(picks, args, lambda s: f"{s['score']:.4f}  {s['path']}  (threshold {s['threshold']:.4f})")
    return 0


def run_tag(args) -> int:
    """``fewshot-audio index tag``: tag every indexed file with a tagger from its stored embeddings."""
    check_outputs(args, [])
    results, tags = tag_index(args.index, tagger=args.tagger, device=args.device)
    meta = ArchiveStore.open(args.index).meta
    write_raven(args, results, tags, window=meta["window"], high_freq=meta["features"]["sample_rate"] / 2)
    return print_results(results, tags, args, window=meta["window"])
