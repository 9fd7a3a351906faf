"""Resumable study folders: a settings file beside a ``.jsonl`` of finished rows, rewritten whole and atomically
after each row (a study killed mid-write leaves the previous, whole file), and refused when the folder holds rows of
other settings unless they may be overwritten."""

from __future__ import annotations

import json
from pathlib import Path

from fewshot_audio.errors import ConfigError
from fewshot_audio.util.io import atomic_write_json, atomic_write_text


class RowLog:
    """``out/<name>.json`` (the settings) and ``out/<name>.jsonl`` (the rows); ``what`` names the rows in errors."""

    def __init__(self, out: str | Path, name: str, settings: dict, *, what: str, overwrite: bool = False,
                 rows_name: str | None = None):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        header = self.out / f"{name}.json"
        self.path = self.out / f"{rows_name or name}.jsonl"
        settings = json.loads(json.dumps(settings))  # as read back: tuples become lists
        if header.exists() and json.loads(header.read_text()) != settings:
            if not overwrite:
                raise ConfigError(f"{self.out} holds {what} of other settings; choose another output folder or "
                                  "overwrite them")
            self.path.unlink(missing_ok=True)
        atomic_write_json(header, settings)
        self.rows: list[dict] = [json.loads(line) for line in self.path.read_text().splitlines()] \
            if self.path.exists() else []

    def add(self, row: dict) -> None:
        """Append ``row`` and rewrite the file."""
        self.rows.append(row)
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows))
