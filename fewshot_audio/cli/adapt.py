"""``adapt`` and ``tagger``: build a tagger from a few examples per tag, then change or inspect it."""

from __future__ import annotations

from fewshot_audio.archive.tag_from_index import add_examples
from fewshot_audio.cli.args import add_device, add_format, add_overwrite, add_quiet
from fewshot_audio.errors import ConfigError
from fewshot_audio.specs import models
from fewshot_audio.tagging.calibration import STRICTNESS
from fewshot_audio.tagging.heads import HEADS
from fewshot_audio.tagging.tagger import DEFAULT_BACKBONE, Tagger
from fewshot_audio.util.io import check_new_output
from fewshot_audio.version import __version__


def register(sub) -> None:
    """Add ``adapt`` and the ``tagger`` commands (info, add-tag, add-examples, remove-tag, suggest) to ``sub``."""
    p = sub.add_parser("adapt", help="build a tagger for a new tag vocabulary from a few examples per tag")
    p.add_argument("--support", required=True, help="folder with one sub-folder per tag, or a CSV (path,labels with ;)")
    add_format(p)
    p.add_argument("--backbone", default=DEFAULT_BACKBONE,
                   help=f"'auto' (the default: the examples choose among mfcc and every fetched model, by "
                        f"leave-one-out accuracy), a pretrained model ({', '.join(models())}, NAME:LAYER for another "
                        "layer), a run folder written by 'train', or 'mfcc'; a pretrained model needs "
                        "'fewshot-audio weights fetch NAME' once")
    p.add_argument("--negatives", nargs="+", default=[], metavar="FOLDER_OR_FILES",
                   help="clips that carry none of the tags (files or folders): every tag is fitted and calibrated "
                        "against them; needed for a vocabulary of one tag (a one-species detector)")
    p.add_argument("--allow-noncommercial", action="store_true", dest="allow_noncommercial",
                   help="let --backbone auto choose models whose weights are licensed for non-commercial use only "
                        "(BirdNET); the tagger file embeds the weights it was built on")
    p.add_argument("--head", default="prototypes", help=f"{' or '.join(HEADS)} (default prototypes)")
    p.add_argument("--strictness", type=float, default=None,
                   help=f"how much a false tag costs against a missed one, per tag of the vocabulary, when each tag's "
                        f"threshold is calibrated (default {STRICTNESS:g}; lower it to tag more liberally)")
    p.add_argument("--out", required=True, help="tagger file to write (.safetensors)")
    add_overwrite(p)
    add_device(p, default="cpu")
    add_quiet(p)
    p.set_defaults(run=run_adapt)

    p = sub.add_parser("tagger", help="change or inspect a tagger")
    tsub = p.add_subparsers(dest="tagger_command", required=True)
    q = tsub.add_parser("add-tag", help="add a tag from example files; other tags are untouched")
    q.add_argument("tagger", help="tagger file")
    q.add_argument("--tag", required=True, help="the new tag")
    q.add_argument("--examples", nargs="+", required=True, help="audio files or folders")
    add_quiet(q)
    q.set_defaults(run=run_tagger)
    q = tsub.add_parser("add-examples", help="fold confirmed positives and negatives of one tag back in (refits that "
                        "tag's head and threshold)")
    q.add_argument("tagger", help="tagger file")
    q.add_argument("--tag", help="the tag the examples are (or are not); with --from-review, only that tag's rows "
                   "(default: each row's own tag)")
    q.add_argument("--from-review", dest="from_review", help="a LABELS.csv from 'fewshot-audio review': its positive "
                   "and negative decisions join their tags")
    q.add_argument("--positive", nargs="+", default=[], help="audio files that are the tag")
    q.add_argument("--negative", nargs="+", default=[], help="audio files that are not the tag")
    q.add_argument("--index", help="read the files' embeddings from this index instead of decoding them")
    add_quiet(q)
    q.set_defaults(run=run_tagger)
    q = tsub.add_parser("remove-tag", help="remove a tag")
    q.add_argument("tagger", help="tagger file")
    q.add_argument("--tag", required=True, help="the tag to remove")
    q.set_defaults(run=run_tagger)
    q = tsub.add_parser("info", help="tags, examples, thresholds, backbone")
    q.add_argument("tagger", help="tagger file")
    q.set_defaults(run=run_tagger)


def print_choice(tagger: Tagger) -> None:
    """Print what ``--backbone auto`` chose and each candidate's leave-one-out estimate (nothing for a named backbone)."""
    if tagger.choice:
        ranked = sorted(tagger.choice["estimates"].items(), key=lambda kv: -(kv[1] if kv[1] is not None else -1))
        shown = ", ".join(f"{name} {'n/a' if v is None else f'{100 * v:.1f}%'}" for name, v in ranked)
        print(f"  backbone chosen by auto in {tagger.choice['seconds']:g} s: {tagger.choice.get('reason', '')}")
        print(f"  leave-one-out estimates on the examples: {shown}")


def print_licence(tagger: Tagger) -> None:
    """Print the licence line of the tagger's pretrained weights (a non-commercial licence said plainly)."""
    notice = tagger.weights_licence
    if notice:
        use = "NON-COMMERCIAL use only; " if notice["noncommercial"] else ""
        print(f"  weights: {notice['package']} ({use}the tagger file holds them: sharing it shares them): "
              f"{notice['licence']}")


def print_tags(tagger: Tagger) -> None:
    """Print each tag of ``tagger`` with its example count and threshold."""
    counts, recall = tagger.support_targets.sum(0).tolist(), tagger.loo_recall()
    for tag, n, th, r in zip(tagger.tags, counts, tagger.thresholds.tolist(), recall):
        shown = "n/a (one example)" if r is None else f"{100 * r:.0f}%"
        print(f"  {tag:24s} {int(n):3d} example{'s' if n != 1 else ' '}  threshold {th:.4f}  leave-one-out recall {shown}")
    negatives = int((tagger.support_targets.sum(1) == 0).sum())
    if negatives:
        print(f"  ({negatives} negative clips of none of the tags)")


def run_adapt(args) -> int:
    """``fewshot-audio adapt``: build a tagger from the support examples and save it at ``--out``."""
    check_new_output(args.out, kind="safetensors", overwrite=args.overwrite, param="out")
    tagger = Tagger.adapt(args.support, backbone=args.backbone, head=args.head, format=args.format,
                          negatives=args.negatives, device=args.device, strictness=args.strictness,
                          noncommercial=args.allow_noncommercial, quiet=args.quiet)
    tagger.save(args.out)
    multi = int((tagger.support_targets.sum(1) > 1).sum())
    print(f"tagger {args.out}: {len(tagger.tags)} tags from {len(tagger.support_paths)} files on backbone "
          f"{tagger.backbone.name}, {tagger.head} head, thresholds at strictness {tagger.strictness:g}")
    print_choice(tagger)
    print_licence(tagger)
    print_tags(tagger)
    if multi:
        print(f"{multi} file(s) carry several tags (multi-label)")
    return 0


def run_tagger(args) -> int:
    """``fewshot-audio tagger ...``: inspect or edit a saved tagger (the subcommand in ``args.action``)."""
    tagger = Tagger.load(args.tagger)
    if args.tagger_command == "info":
        print(f"tagger {args.tagger}: backbone {tagger.backbone.name}, head {tagger.head}, window "
              f"{tagger.backbone.window:g} s, strictness {tagger.strictness:g}, toolkit {tagger.written_by or __version__}")
        print_choice(tagger)
        print_licence(tagger)
        print_tags(tagger)
        return 0
    if args.tagger_command == "add-tag":
        tagger.add_tag(args.tag, args.examples, quiet=args.quiet)
    elif args.tagger_command == "add-examples" and args.from_review:
        if args.positive or args.negative or args.index:
            raise ConfigError("--from-review takes the examples from the labels; drop --positive/--negative/--index")
        from fewshot_audio.review.feedback import add_reviewed

        for tag, (pos, neg) in add_reviewed(tagger, args.from_review, tag=args.tag, quiet=args.quiet).items():
            print(f"tag {tag!r}: {pos} positive(s), {neg} negative(s) from {args.from_review}")
    elif args.tagger_command == "add-examples":
        if not args.tag:
            raise ConfigError("add-examples needs --tag (or --from-review LABELS.csv)")
        j = tagger.column(args.tag, hint=" (add it with add-tag)")
        before = float(tagger.thresholds[j])
        add_examples(tagger, args.tag, positive=args.positive, negative=args.negative, index=args.index,
                     quiet=args.quiet)
        print(f"tag {args.tag!r}: {len(args.positive)} positive(s), {len(args.negative)} negative(s) added; "
              f"{int(tagger.support_targets[:, j].sum())} positives in all; threshold "
              f"{before:.4f} -> {float(tagger.thresholds[j]):.4f}")
    else:
        tagger.remove_tag(args.tag)
    tagger.save(args.tagger)
    print(f"tagger {args.tagger}: {len(tagger.tags)} tags: {', '.join(tagger.tags)}")
    return 0
