"""Command-line interface: thin subcommands over the library, one module per command group.

User mistakes print one ``error: ...`` line and exit non-zero (2 for usage errors); an interrupted run
exits 130 after saying how to resume it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from fewshot_audio.cli import adapt, archive, compare, datasets, datasize, detect, probe, review, tag, train, weights
from fewshot_audio.cli.flags import attach_option_maps, in_flags
from fewshot_audio.errors import CollectiveError, FewshotError
from fewshot_audio.fewshot.distributed import barrier
from fewshot_audio.util.progress import is_quiet, set_quiet
from fewshot_audio.version import __version__

GROUPS = (train, datasets, compare, probe, datasize, adapt, tag, detect, review, archive, weights)  # the order of 'fewshot-audio --help'


def build_parser() -> argparse.ArgumentParser:
    """The ``fewshot-audio`` argument parser: one subcommand group per module of :data:`GROUPS`, each command's options
    mapped for :func:`~fewshot_audio.cli.flags.in_flags`."""
    parser = argparse.ArgumentParser(prog="fewshot-audio", description="Few-shot audio and music tagging.")
    parser.add_argument("--version", action="version", version=f"fewshot-audio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    attach_option_maps(parser)
    return parser


class _Lines(logging.Handler):
    """The library's log records as the command's status lines on stderr: ``warning: ...`` for warnings and
    worse, the bare message for information (hidden by ``--quiet``)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        print(prefix + record.getMessage(), file=sys.stderr, flush=True)


def configure_logging(*, quiet: bool, verbose: bool = False) -> None:
    """Route the ``fewshot_audio`` loggers to :class:`_Lines` (once per process): warnings only with ``quiet``,
    status lines too by default, debugging details with ``verbose``."""
    root = logging.getLogger("fewshot_audio")
    if not any(isinstance(h, _Lines) for h in root.handlers):
        root.addHandler(_Lines())
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run ``fewshot-audio`` with ``argv`` (default: the process's); returns the exit code: 0, 2 for a user mistake
    (one ``error:`` line, no traceback), 130 when interrupted."""
    args = build_parser().parse_args(argv)
    set_quiet(bool(getattr(args, "quiet", False)))
    configure_logging(quiet=is_quiet(), verbose=bool(getattr(args, "verbose", False)))
    try:
        return args.run(args)
    except CollectiveError as exc:  # torchrun: the same error is printed once, by rank 0 ...
        if not exc.reported_elsewhere:
            print(f"error: {in_flags(str(exc), args._options)}", file=sys.stderr, flush=True)
        barrier()  # ... and no rank exits (stopping the others) before it is printed
        return exc.exit_code
    except FewshotError as exc:
        print(f"error: {in_flags(str(exc), args._options)}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; continue with the same flags plus --resume", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
