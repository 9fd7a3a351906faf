"""``probe``: rank CNN architectures by their untrained (randomly weighted) features, the thesis's fast probe."""

from __future__ import annotations

from fewshot_audio.cli.args import add_budget, add_dataset, add_overwrite, add_quiet, budget_of
from fewshot_audio.errors import ConfigError
from fewshot_audio.studies.architectures import ARCHITECTURES, MAPS
from fewshot_audio.studies.classifiers import CLASSIFIERS
from fewshot_audio.util.io import check_folder_creatable


def register(sub) -> None:
    """Add ``probe`` (the random-weight architecture probe) to ``sub``."""
    p = sub.add_parser("probe", help="rank CNN architectures by the features of their randomly weighted networks "
                       "(Pons & Serra 2019), with a classifier chosen inside the training folds")
    add_dataset(p)
    p.add_argument("--out", required=True, help="results folder: results.csv, results.md, results.png (resumable)")
    p.add_argument("--architectures", default="all", help=f"all, or some of: {', '.join(ARCHITECTURES)}")
    p.add_argument("--classifier", default="svm", help=f"{', '.join(CLASSIFIERS)} (default svm)")
    p.add_argument("--seeds", type=int, default=3, help="random networks per architecture (default 3)")
    p.add_argument("--maps", type=int, default=MAPS, help=f"feature maps per network (default {MAPS}, the paper's; "
                   "fewer for a quick look)")
    p.add_argument("--folds", default="auto", help="official (the dataset's own), a number K of stratified folds, "
                   "or auto (official where every clip has a fold, else 5, or fewer where a class has fewer clips)")
    p.add_argument("--trained", action="store_true", help="also train each architecture on the same folds and say "
                   "how well the random ranking predicts the trained one (trained.csv, ranking.md, ranking.png)")
    add_budget(p, prefix="--trained: ")  # default: 20 epochs, at least 100 and at most 2000 steps of 32 clips
    p.add_argument("--train-seeds", dest="train_seeds", type=int, default=1,
                   help="--trained: initialisations per architecture (default 1)")
    p.add_argument("--device", default="auto", help="--trained: cpu, cuda, cuda:N or auto (default)")
    add_overwrite(p)
    add_quiet(p)
    p.set_defaults(run=run_probe)


def run_probe(args) -> int:
    """``fewshot-audio probe``: random-weight features + SVM per architecture (and ``--trained`` rows), resumable."""
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
    check_folder_creatable(args.out, param="out")
    rows = probe(args.dataset, args.out, architectures=names, classifier=args.classifier, seeds=args.seeds,
                 folds=args.folds, maps=args.maps, format=args.format, label=args.label, overwrite=args.overwrite, quiet=args.quiet)
    for r in rows:
        print(f"{r['architecture']:18s} {r['classifier']}: {100 * r['accuracy']:.1f}% ± {100 * r['ci95']:.1f} "
              f"(best CV {100 * r['best_cv_accuracy']:.1f}%), {r['n_features']} features, {r['seconds']:.0f} s")
    print(f"results: {args.out}/results.csv, results.md, results.png")
    if args.trained:
        _trained(args, names)
    return 0


def _trained(args, names: list[str]) -> None:
    from fewshot_audio.studies.supervised import Budget
    from fewshot_audio.studies.trained import agreement_of, run_trained
    from fewshot_audio.util.runtime import pick_device

    budget = budget_of(args, Budget())
    if args.train_seeds < 1:
        raise ConfigError(f"--train-seeds must be at least 1, got {args.train_seeds}")
    rows = run_trained(args.dataset, args.out, architectures=names, seeds=args.train_seeds, maps=args.maps,
                       budget=budget, folds=args.folds, device=pick_device(args.device),
                       format=args.format, label=args.label, overwrite=args.overwrite, quiet=args.quiet)
    for r in rows:
        print(f"{r['architecture']:18s} trained: {100 * r['accuracy']:.1f}% ± {100 * r['ci95']:.1f}, "
              f"{r['train_seconds']:.0f} s training")
    agreement = agreement_of(args.out, title="random against trained")
    if agreement:
        lo, hi = agreement["ci95"]
        print(f"random against trained: Spearman {agreement['spearman']:.2f} (95% CI {lo:.2f} to {hi:.2f}, "
              f"p = {agreement['p_value']:.3g}) over {len(agreement['architectures'])} architectures")
    print(f"results: {args.out}/trained.csv, ranking.md, ranking.png")
