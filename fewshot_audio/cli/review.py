"""``review``: a local web page to listen to a detect or tag output, confirm or reject each item with one key, and
``review summary``: precision against score and how many true items the source holds."""

from __future__ import annotations

import sys

from fewshot_audio.cli.args import add_overwrite
from fewshot_audio.errors import ConfigError


def register(sub) -> None:
    """Add ``review`` and ``review summary`` to ``sub``."""
    p = sub.add_parser("review", help="listen to a detect or tag output in the browser and label it (y/n/u/s/z); "
                       "'review summary LABELS.csv' estimates how many true items there are")
    p.add_argument("source", nargs="+", help="a detect output (CSV, --json, --raven) or tag --json / --raven output; "
                   "or 'summary LABELS.csv'")
    p.add_argument("--out", help="LABELS.csv: every decision, written at once (a restart resumes from it)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--no-browser", dest="no_browser", action="store_true", help="print the URL, open no browser")
    p.add_argument("--order", default="score", help="score (highest first), random, or stratified (random within "
                   "score bins: what an estimate of the total needs)")
    p.add_argument("--context", type=float, default=1.0, help="seconds of audio shown and played either side")
    p.add_argument("--audio-root", dest="audio_root", help="folder the source's file names are under (default: "
                   "beside the source)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random and stratified orders")
    p.add_argument("--source", dest="summary_source", help="summary: the source reviewed (for the estimate of the "
                   "total and the threshold)")
    p.add_argument("--precision", type=float, help="summary: the lowest score threshold reaching this precision")
    add_overwrite(p)
    p.set_defaults(run=run_review)


def run_review(args) -> int:
    """``fewshot-audio review``: serve the review page for a source's items on 127.0.0.1 until Ctrl-C."""
    if args.source[0] == "summary":
        if len(args.source) != 2:
            raise ConfigError("review summary takes one LABELS.csv: fewshot-audio review summary LABELS.csv")
        return run_summary(args.source[1], source=args.summary_source, precision=args.precision, order=args.order,
                           seed=args.seed, audio_root=args.audio_root)
    if len(args.source) != 1:
        raise ConfigError(f"review takes one source, got {len(args.source)}: {' '.join(args.source)}")
    if not args.out:
        raise ConfigError("review needs --out LABELS.csv, where the decisions are kept")
    from fewshot_audio.review.items import read_items
    from fewshot_audio.review.order import ORDERS
    from fewshot_audio.review.serve import serve
    from fewshot_audio.review.session import Session

    if args.order not in ORDERS:
        raise ConfigError(f"--order {args.order!r}: choose {', '.join(ORDERS)}")
    if args.context < 0:
        raise ConfigError(f"--context must be 0 or more seconds, got {args.context}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: give 0 (a free port) to 65535")
    session = Session(read_items(args.source[0], audio_root=args.audio_root), args.out, order=args.order,
                      context_s=args.context, seed=args.seed)

    def ready(url: str) -> None:
        print(url, flush=True)
        if not args.no_browser:
            import webbrowser

            webbrowser.open(url)

    try:
        serve(session, host=args.host, port=args.port, on_ready=ready)
    except KeyboardInterrupt:  # Ctrl-C: the server has shut down; every decision is already on disk
        pass
    except OSError as exc:
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen there ({exc.strerror}); choose "
                          "another port, or 0 for a free one") from None
    state = session.state()
    print(f"reviewed {state['reviewed']} of {state['total']} items; labels in {args.out}", file=sys.stderr)
    return 0


def run_summary(labels_path: str, *, source: str | None, precision: float | None, order: str, seed: int,
                audio_root: str | None) -> int:
    """``fewshot-audio review summary``: counts, precision against score and the stratified estimate of a labels file."""
    import numpy as np

    from fewshot_audio.review.density import precision_fit, stratified_estimate, threshold_for
    from fewshot_audio.review.items import read_items
    from fewshot_audio.review.labels import read_labels
    from fewshot_audio.review.order import ORDERS

    rows = read_labels(labels_path)
    decided = [r for r in rows if r["label"] in ("positive", "negative")]
    counts = {k: sum(r["label"] == k for r in rows) for k in ("positive", "negative", "uncertain")}
    print(f"{len(rows)} decisions: {counts['positive']} positive, {counts['negative']} negative, "
          f"{counts['uncertain']} uncertain")
    if not decided:
        return 0
    positive = np.array([r["label"] == "positive" for r in decided])
    scores = np.array([float(r["score"]) for r in decided])
    fit = None
    if np.isfinite(scores).all() and positive.any() and not positive.all():
        fit = precision_fit(scores, positive)
        grid = np.quantile(scores, [0.0, 0.25, 0.5, 0.75, 1.0])
        print("precision against score (logistic fit): " + ", ".join(f"{s:.3f}: {p:.2f}" for s, p in
                                                                      zip(grid, fit(grid))))
    if source is None:
        if precision is not None:
            raise ConfigError("--precision needs --source, the output that was reviewed")
        print("the number of true items in the source: pass --source SOURCE (reviewed with --order stratified)")
        return 0
    items = read_items(source, audio_root=audio_root)
    strata = ORDERS.get("stratified")().strata(items)
    reviewed = np.array([int(r["stratum"]) for r in decided])
    if order == "stratified" or any(r.get("stratum") not in ("", "0") for r in decided):
        e = stratified_estimate(strata, reviewed, positive)
        print(f"true items in {source}: about {e.total:.0f} of {e.items} (95% CI {e.low:.0f} to {e.high:.0f}), from "
              f"{e.reviewed} reviewed" + (f"; {e.unreviewed_strata} score bins unreviewed" if e.unreviewed_strata else ""))
    if precision is not None:
        if fit is None:
            raise ConfigError("--precision needs positive and negative decisions with scores")
        found = threshold_for(precision, np.array([i.score for i in items]), fit)
        print(f"precision {precision:g}: " + (f"threshold {found[0]:.4f} keeps {found[1]} of {len(items)} items"
                                               if found else "no threshold reaches it"))
    return 0
