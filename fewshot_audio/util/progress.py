"""Progress bars (tqdm) and status lines on stderr; both go quiet with ``--quiet``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    return _QUIET or os.environ.get("FEWSHOT_AUDIO_QUIET") == "1"


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, quiet: bool = False) -> Iterable[T]:
    if quiet or is_quiet():
        return iterable

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True,
                mininterval=0.5, disable=None)


def log(message: str) -> None:
    """One line of user-facing status on stderr (silenced by --quiet)."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """Warnings are printed even when quiet."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
