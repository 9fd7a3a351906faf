"""Figures: matplotlib on the Agg backend (no display needed) and PNGs written atomically."""

from __future__ import annotations

from pathlib import Path

from fewshot_audio.util.io import atomic_write


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported on first use (it is heavy, and only figures need it)."""
    import matplotlib  # imported on use: heavy, and only figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # imported on use: after the backend is chosen

    return plt


def save_png(fig, path: str | Path, *, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` as a PNG through a temporary file and a rename, then close it."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    pyplot().close(fig)
