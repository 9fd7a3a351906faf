"""Atomic file writes (a temporary file beside the target, fsync, rename; the mode the umask gives a new
file) and the checks every output path passes before the work: writable, and never replacing an existing
file without ``overwrite`` or with a file of another kind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fewshot_audio.errors import ConfigError


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then atomically move the result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp (and some writers) make 0600 files; give what open() would
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and setting it back: there is no other portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old file or the new one."""
    def write(tmp: str) -> None:
        Path(tmp).write_text(text)

    atomic_write(path, write)


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path``, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def check_writable(path: str | Path, *, param: str) -> None:
    """A one-line :class:`ConfigError` naming ``flag`` unless a file can be created beside ``path`` (in an
    existing folder), checked before the work whose result goes there."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise ConfigError(f"{param}={path}: folder {folder} does not exist; create it or choose another path")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{param}={path}: cannot write in {folder} ({exc.strerror or exc}); choose another path") from None


def check_folder_creatable(path: str | Path, *, param: str) -> None:
    """A one-line :class:`ConfigError` naming ``flag`` unless ``path`` is a folder, or one can be made, where
    files can be written; nothing is created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{param}={path} is a file, not a folder; choose another path")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{param}={path}: {existing} is a file, not a folder; choose another path")
    check_writable(existing / "x", param=param)


FILE_KINDS = ("png", "safetensors", "zip", "sqlite", "text", "binary")


def file_kind(path: str | Path) -> str:
    """What an existing file is, from its first bytes: one of :data:`FILE_KINDS` (``zip``: a torch
    checkpoint or a wheel; ``text``: UTF-8 without NUL bytes)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if len(head) > 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30:
        return "safetensors"
    if b"\x00" in head:
        return "binary"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not only a character cut at the 4096-byte boundary
            return "binary"
    return "text"


def check_new_output(path: str | Path, *, kind: str, overwrite: bool, param: str) -> None:
    """A one-line :class:`ConfigError` naming ``flag`` unless a ``kind`` file (one of :data:`FILE_KINDS`) can be
    written at ``path``: its folder exists and is writable, and ``path`` is either absent or, with ``overwrite``,
    an existing file of the same kind. Checked before the work whose result goes there."""
    if kind not in FILE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {FILE_KINDS}")
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{param}={path} is a folder; give a file path")
    check_writable(path, param=param)
    if not path.exists():
        return
    found = file_kind(path)
    if found != kind:
        raise ConfigError(f"{param}={path} exists and is a {found} file; this writes a {kind} file and never "
                          "replaces a file of another kind: choose another path")
    if not overwrite:
        raise ConfigError(f"{param}={path} exists; choose another path or pass overwrite=True to replace it")
