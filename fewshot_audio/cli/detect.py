"""``detect``: find every later occurrence of a sound in long recordings from its first examples (the DCASE
Task 5 protocol); ``evaluate-detection``: the official metric on a prediction file."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time
from pathlib import Path

from fewshot_audio.cli.args import add_device, add_overwrite, add_quiet
from fewshot_audio.cli.flags import in_flags
from fewshot_audio.data.audio import audio_duration, audio_files
from fewshot_audio.data.raven import RavenRow, raven_table
from fewshot_audio.detection.detectors import DEFAULT_DETECTOR, DETECTORS, detector_settings
from fewshot_audio.detection.episodes import dataset_episodes, resolve_audio, table_episodes
from fewshot_audio.detection.frames import SAMPLE_RATE
from fewshot_audio.detection.metric import PRED_HEADER, evaluate, format_report, read_predictions, read_references
from fewshot_audio.detection.pipeline import NO_EVENTS, Detections, find, fit, run_episode
from fewshot_audio.detection.sources import DESCRIPTOR_SOURCES
from fewshot_audio.errors import ConfigError, DataError, FewshotError
from fewshot_audio.util.io import atomic_write_text, check_folder_creatable, check_new_output
from fewshot_audio.util.runtime import pick_device

logger = logging.getLogger(__name__)


def register(sub) -> None:
    """Add ``detect``, ``train-detector`` and ``evaluate-detection`` to ``sub``."""
    p = sub.add_parser("detect", help="find every later occurrence of a sound in long recordings from its first "
                       "examples (DCASE few-shot detection)")
    p.add_argument("inputs", nargs="+", help="a folder of recordings with annotation CSVs beside them (DCASE layout), "
                   "or recordings with --examples")
    p.add_argument("--examples", help="a CSV (DCASE layout) or Raven selection table of the examples, in the recording "
                   "it names (else the first one); every recording given is searched")
    p.add_argument("--first", type=int, default=5, help="how many of the first POS events are the examples (default 5)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"one of {', '.join(DETECTORS)} (default "
                   f"{DEFAULT_DETECTOR}; docs/detection.md describes them)")
    p.add_argument("--config", help="a YAML file of detector settings changing --detector's (e.g. 'threshold: 0.7'; "
                   "'detector: NAME' picks the one it starts from; docs/detection.md lists the settings)")
    p.add_argument("--weights", help="the meta-trained network (DIR/detector.pt from train-detector) of a --detector "
                   "protonet* (default: the network shipped with fewshot-audio, meta-trained on spoken-word mixtures)")
    p.add_argument("--out", required=True, help="predictions: CSV in the official layout Audiofilename,Starttime,Endtime "
                   "(or JSON / a Raven table with a score per event)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="write JSON: file, class, start, end, score per event")
    fmt.add_argument("--raven", action="store_true", help="write a Raven selection table with a score per event")
    add_overwrite(p)
    p.add_argument("--evaluate", action="store_true", help="score the predictions with the official metric against "
                   "the dataset's annotations")
    p.add_argument("--seed", type=int, default=0)
    add_device(p)
    add_quiet(p)
    p.set_defaults(run=run_detect)
    t = sub.add_parser("train-detector", help="meta-train the frame-level prototypical network of --detector protonet "
                       "on fully annotated recordings (detection episodes)")
    t.add_argument("dataset", help="a folder of recordings with CSVs beside them (DCASE layout) listing every event of "
                   "their class; none of the recordings you will detect in")
    t.add_argument("--out", required=True, help="run folder: checkpoint.pt (resumable), best.pt, detector.pt")
    t.add_argument("--episodes", type=int, default=2000, help="meta-training steps (default 2000)")
    t.add_argument("--meta-batch", type=int, default=4, help="episodes per step (default 4)")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--val-every", type=int, default=200, help="validate and checkpoint every this many steps")
    t.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    t.add_argument("--seed", type=int, default=0)
    add_device(t)
    add_quiet(t)
    t.set_defaults(run=run_train_detector)
    e = sub.add_parser("evaluate-detection", help="the official DCASE Task 5 metric of a prediction CSV")
    e.add_argument("predictions", help="CSV Audiofilename,Starttime,Endtime")
    e.add_argument("reference", help="folder of annotation CSVs (Q column), one subset per first-level folder")
    e.add_argument("--json", action="store_true", help="print the full report as JSON")
    e.set_defaults(run=run_evaluate)


Row = tuple[str, str, float, float, float, str]  # file name, class, start, end, score, recording path


def _table(rows: list[Row], args) -> str:
    if args.json:
        return json.dumps([{"file": f, "class": c, "start": round(a, 4), "end": round(b, 4), "score": round(s, 4)}
                           for f, c, a, b, s, _ in rows], indent=1) + "\n"
    if args.raven:  # the one Raven writer (the same table 'tag --raven' writes), read back by --examples
        paths = list(dict.fromkeys(p for *_, p in rows))
        return raven_table([RavenRow(p, a, b, c, s) for _, c, a, b, s, p in rows],
                           durations={p: audio_duration(resolve_audio(Path(p))) for p in paths},
                           high_freq_hz=SAMPLE_RATE / 2)  # the detectors' log-mel band
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(PRED_HEADER)
    for f, _, a, b, _, _ in rows:
        w.writerow([f, f"{a:.4f}", f"{b:.4f}"])
    return buf.getvalue()


def _rows(name: str, label: str, found: Detections, path: Path) -> list[Row]:
    return [(name, label, float(a), float(b), float(s), str(path)) for (a, b), s in zip(found.events, found.scores)]


def run_detect(args) -> int:
    """``fewshot-audio detect``: fit the detector on each recording's first examples and write every later event found."""
    settings = _checked_detect_args(args)
    check_new_output(args.out, kind="text", overwrite=args.overwrite, param="out")
    device = str(pick_device(args.device))
    t0 = time.perf_counter()
    rows, failed = (_detect_with_table if args.examples else _detect_in_folder)(args, settings, device)
    atomic_write_text(args.out, _table(rows, args))
    logger.info(f"{len(rows)} events -> {args.out} ({time.perf_counter() - t0:.1f} s)")
    if args.evaluate:
        print(format_report(evaluate(read_predictions(args.out), read_references(args.inputs[0]))))
    if failed:
        print(f"error: {failed} recording(s) or table(s) failed (see above); the others were written to {args.out}",
              file=sys.stderr)
        return 1
    return 0


def _checked_detect_args(args):
    """The detector's settings (``--detector``, changed by ``--config``), once the flags agree with each other."""
    if args.first < 1:
        raise ConfigError(f"--first must be at least 1, got {args.first}")
    if args.detector not in DETECTORS:
        raise ConfigError(f"--detector: {DETECTORS.unknown(args.detector)}")
    settings = detector_settings(args.detector, config=args.config)
    if args.weights and not DESCRIPTOR_SOURCES.get(settings.source).uses_weights:
        raise ConfigError(f"--weights is for the protonet detectors; --detector {args.detector} uses no network")
    if args.weights and not Path(args.weights).is_file():
        raise ConfigError(f"--weights {args.weights} does not exist; pass the detector.pt 'fewshot-audio train-detector' "
                          "wrote")
    if args.evaluate and (args.examples or args.json or args.raven):
        raise ConfigError("--evaluate scores a dataset folder's CSV predictions; drop --examples/--json/--raven")
    if not args.examples and len(args.inputs) != 1:
        raise ConfigError("pass one dataset folder, or recordings with --examples TABLE")
    return settings


def _detect_with_table(args, settings, device: str) -> tuple[list[Row], int]:
    """``--examples TABLE``: each of its (recording, class) fitted once, then every recording given searched."""
    rows, failed = [], 0
    recordings = audio_files(args.inputs)
    for ep in table_episodes(recordings, args.examples, first=args.first):
        fitted = fit(ep, args.detector, seed=args.seed, weights=args.weights, settings=settings, device=device)
        for rec in recordings:
            home = resolve_audio(rec).resolve() == Path(ep.recording).resolve()
            try:
                found = find(fitted, rec, after=ep.known_until if home else 0.0,
                             known=ep.examples if home else NO_EVENTS, seed=args.seed)
            except DataError as exc:
                logger.warning(in_flags(str(exc), args._options))
                failed += 1
                continue
            rows += _rows(rec.name, ep.label, found, rec)
            logger.info(f"{rec.name} ({ep.label}): {len(found.events)} events")
    return rows, failed


def _detect_in_folder(args, settings, device: str) -> tuple[list[Row], int]:
    """A DCASE-layout folder: every (recording, class) fitted on its first examples, searched after them."""
    rows = []
    found_eps = dataset_episodes(args.inputs[0], first=args.first)
    if not found_eps.episodes:  # nothing can run: say why, write nothing
        raise DataError(f"no recording in {args.inputs[0]} can be searched: {found_eps.problems[0]}"
                        + (f" (and {len(found_eps.problems) - 1} more)" if len(found_eps.problems) > 1 else ""))
    for problem in found_eps.problems:
        logger.warning(in_flags(problem, args._options))
    failed = len(found_eps.problems)
    for ep in found_eps.episodes:
        try:
            found = run_episode(ep, args.detector, seed=args.seed, weights=args.weights, settings=settings, device=device)
        except FewshotError as exc:
            logger.warning(in_flags(str(exc), args._options))
            failed += 1
            continue
        rows += _rows(ep.audio_name, ep.label, found, ep.recording)
        label = "" if ep.label == ep.audio_name.rsplit(".", 1)[0] else f" ({ep.label})"
        logger.info(f"{ep.audio_name}{label}: {len(found.events)} events after the first {args.first}")
    return rows, failed


def run_train_detector(args) -> int:
    """``fewshot-audio train-detector``: meta-train the frame-level network on fully annotated recordings."""
    from fewshot_audio.detection.meta import train_detector  # the training harness: only for this command
    for flag, value in (("--episodes", args.episodes), ("--meta-batch", args.meta_batch), ("--val-every", args.val_every)):
        if value < 1:
            raise ConfigError(f"{flag} must be a positive integer, got {value}")
    if not Path(args.dataset).is_dir():
        raise ConfigError(f"{args.dataset} is not a folder; pass a folder of recordings with annotation CSVs beside them")
    check_folder_creatable(args.out, param="out")  # the run folder (and its parents) is made by train_detector
    target = train_detector(args.dataset, args.out, episodes=args.episodes, meta_batch=args.meta_batch, lr=args.lr,
                            val_every=args.val_every, seed=args.seed, resume=args.resume,
                            device=str(pick_device(args.device)), quiet=args.quiet)
    print(f"detect with: fewshot-audio detect DATASET --weights {target} --out PRED.csv")
    return 0


def run_evaluate(args) -> int:
    """``fewshot-audio evaluate-detection``: the official DCASE metric of a prediction file against annotations."""
    report = evaluate(read_predictions(args.predictions), read_references(args.reference))
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0
