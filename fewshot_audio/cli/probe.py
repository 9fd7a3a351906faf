"""``probe``: rank CNN architectures by their untrained (randomly weighted) features, the thesis's fast probe."""

from __future__ import annotations

from fewshot_audio.cli.args import add_format, add_overwrite, add_quiet
from fewshot_audio.errors import ConfigError
from fewshot_audio.studies.architectures import ARCHITECTURES, MAPS
from fewshot_audio.studies.classifiers import CLASSIFIERS
from fewshot_audio.util.io import check_folder_creatable


def register(sub) -> None:
    p = sub.add_parser("probe", help="rank CNN architectures by the features of their randomly weighted networks "
                       "(Pons & Serra 2019), with a classifier chosen inside the training folds")
    p.add_argument("--dataset", help="dataset folder or CSV (default: the built-in synthetic dataset)")
    add_format(p)
    p.add_argument("--label", help="which label to use where a layout has several")
    p.add_argument("--out", required=True, help="results folder: results.csv, results.md, results.png (resumable)")
    p.add_argument("--architectures", default="all", help=f"all, or some of: {', '.join(ARCHITECTURES)}")
    p.add_argument("--classifier", default="svm", help=f"{', '.join(CLASSIFIERS)} (default svm)")
    p.add_argument("--seeds", type=int, default=3, help="random networks per architecture (default 3)")
    p.add_argument("--maps", type=int, default=MAPS, help=f"feature maps per network (default {MAPS}, the paper's; "
                   "fewer for a quick look)")
    p.add_argument("--folds", default="auto", help="official (the dataset's own), a number K of stratified folds, "
                   "or auto (official where every clip has a fold, else 5, or fewer where a class has fewer clips)")
    add_overwrite(p)
    add_quiet(p)
    p.set_defaults(run=run_probe)


def run_probe(args) -> int:
    from fewshot_audio.studies.probe import run_probe as probe  # scikit-learn and the networks: only for this command

    names = list(ARCHITECTURES) if args.architectures == "all" else [a.strip() for a in args.architectures.split(",")]
    unknown = [a for a in names if a not in ARCHITECTURES]
    if unknown:
        raise ConfigError(f"--architectures {unknown[0]!r} is not an architecture; choose from "
                          f"{', '.join(ARCHITECTURES)} or all")
    if args.classifier not in CLASSIFIERS:
        raise ConfigError(f"--classifier {args.classifier!r}: choose {', '.join(CLASSIFIERS)}")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    check_folder_creatable(args.out, flag="--out")
    rows = probe(args.dataset, args.out, architectures=names, classifier=args.classifier, seeds=args.seeds,
                 folds=args.folds, maps=args.maps, format=args.format, label=args.label, overwrite=args.overwrite, quiet=args.quiet)
    for r in rows:
        print(f"{r['architecture']:18s} {r['classifier']}: {100 * r['accuracy']:.1f}% ± {100 * r['ci95']:.1f} "
              f"(best CV {100 * r['best_cv_accuracy']:.1f}%), {r['n_features']} features, {r['seconds']:.0f} s")
    print(f"results: {args.out}/results.csv, results.md, results.png")
    return 0
