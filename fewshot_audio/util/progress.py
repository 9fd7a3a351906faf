"""Progress bars (tqdm) on stderr; they go quiet with ``--quiet`` (or ``FEWSHOT_AUDIO_QUIET=1``). Status lines and
warnings go through :mod:`logging` (one logger per module, under ``fewshot_audio``); the CLI shows them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Silence (or not) every progress bar of this process."""
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    """Whether progress bars are silenced (by :func:`set_quiet` or ``FEWSHOT_AUDIO_QUIET=1``)."""
    return _QUIET or os.environ.get("FEWSHOT_AUDIO_QUIET") == "1"


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, quiet: bool = False) -> Iterable[T]:
    """``iterable`` with a progress bar named ``desc`` (none when ``quiet`` or silenced)."""
    if quiet or is_quiet():
        return iterable

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True,
                mininterval=0.5, disable=None)
