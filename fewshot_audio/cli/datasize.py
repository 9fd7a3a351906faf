"""``datasize``: waveform (SampleCNN) against spectrogram (musically motivated CNN) as the training set grows."""

from __future__ import annotations

from dataclasses import replace

from fewshot_audio.cli.args import add_budget, add_dataset, add_device, add_overwrite, add_quiet, budget_of
from fewshot_audio.errors import ConfigError
from fewshot_audio.util.io import check_folder_creatable


def register(sub) -> None:
    """Add ``datasize`` (waveform against spectrogram by training size) to ``sub``."""
    from fewshot_audio.studies.datasize import MODELS, PRESETS

    p = sub.add_parser("datasize", help="train SampleCNN and the musically motivated CNN on growing training sets "
                       "and plot accuracy against training size (the thesis's waveform-against-spectrogram study)")
    add_dataset(p)
    p.add_argument("--out", required=True, help="results folder: results.csv, results.md, results.png (resumable)")
    p.add_argument("--preset", default="cpu", help=f"{', '.join(PRESETS)}: sizes, draws, width and training budget "
                   "(cpu: 5,10,20,50,100,all per class, 3 draws, 32 channels, at most 500 steps; gpu: up to 1000 "
                   "per class, 5 draws, 64 channels, up to 20000 steps)")
    p.add_argument("--sizes", help="training clips per class, e.g. 5,10,20,all (default: the preset's)")
    p.add_argument("--draws", type=int, help="seeded training sets per size (default: the preset's)")
    p.add_argument("--models", default=",".join(MODELS), help=f"some of: {', '.join(MODELS)} (default both)")
    p.add_argument("--test-fold", dest="test_fold", help="the fold scored (default: the last; a seeded 30%% "
                   "hold-out where the dataset has no folds)")
    add_budget(p, prefix="default: the preset's; ")
    add_device(p)
    add_overwrite(p)
    add_quiet(p)
    p.set_defaults(run=run_datasize)


def run_datasize(args) -> int:
    """``fewshot-audio datasize``: the data-size study on a dataset, resumable, with its table and plot."""
    from fewshot_audio.studies.datasize import MODELS, PRESETS, parse_sizes, run_datasize
    from fewshot_audio.studies.datasize_results import crossover, summarize
    from fewshot_audio.util.runtime import pick_device

    if args.preset not in PRESETS:
        raise ConfigError(f"--preset {args.preset!r}: choose {', '.join(PRESETS)}")
    preset = PRESETS.get(args.preset)
    if args.sizes:
        try:
            preset = replace(preset, sizes=parse_sizes(args.sizes))
        except ConfigError as e:
            raise ConfigError(f"--sizes {args.sizes!r}: {e}") from None
    if args.draws is not None:
        if args.draws < 1:
            raise ConfigError(f"--draws must be at least 1, got {args.draws}")
        preset = replace(preset, draws=args.draws)
    preset = replace(preset, budget=budget_of(args, preset.budget))
    models = [m.strip() for m in args.models.split(",")]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ConfigError(f"--models {unknown[0]!r} is not a model of the study; choose from {', '.join(MODELS)}")
    check_folder_creatable(args.out, param="out")
    rows = run_datasize(args.dataset, args.out, models=models, preset=preset, device=pick_device(args.device),
                        test_fold=args.test_fold, format=args.format, label=args.label, overwrite=args.overwrite,
                        quiet=args.quiet)
    summary = summarize(rows)
    for s in summary:
        print(f"{s['model']:20s} {s['size']:>4s} per class: {100 * s['accuracy']:.1f}% ± {100 * s['ci95']:.1f} "
              f"({s['draws']} draws, {s['train_seconds']:.0f} s each)")
    print(crossover(summary))
    print(f"results: {args.out}/results.csv, results.md, results.png")
    return 0
