"""The content-hashed, memory-mapped feature store (front ends: :mod:`fewshot_audio.features.frontends`).

Every clip becomes windows by the one clip policy (:func:`fewshot_audio.data.audio.clip_windows`);
their features are computed once, in batches, and stored as one ``.npy`` array keyed by a hash of
(manifest files, feature config), with a JSON index of each clip's windows. Later runs memory-map
it; a changed file or config gives a new key and a rebuild, a truncated file is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fewshot_audio.config import FeatureConfig
from fewshot_audio.data.audio import read_windows, window_energy_db
from fewshot_audio.data.manifest import Manifest
from fewshot_audio.errors import DataError
from fewshot_audio.features.frontends import SILENCE_PEAK, compute_features, feature_shape
from fewshot_audio.util.io import atomic_write, atomic_write_json
from fewshot_audio.util.progress import progress

logger = logging.getLogger(__name__)

STORE_VERSION = 2


STORE_INDEPENDENT = ("pooling", "signal_db", "crop")  # clip-policy options applied after the store


def store_key(manifest: Manifest, config: FeatureConfig) -> str:
    """The store's content key: a hash of the manifest's files and the feature settings that change the features."""
    features = {k: v for k, v in asdict(config).items() if k not in STORE_INDEPENDENT}
    payload = json.dumps({"files": manifest.files_hash(), "features": features, "v": STORE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _clip_windows(path: str, config: FeatureConfig) -> tuple[np.ndarray | None, str | None]:
    """The clip's windows under the clip policy, or ``None`` and why it is skipped (judged on the whole clip)."""
    try:
        windows, peak = read_windows(path, sample_rate=config.sample_rate, length=config.n_samples,
                                     hop_samples=config.hop_samples, short=config.short, max_windows=config.max_windows)
    except DataError as exc:
        return None, str(exc)
    if peak < SILENCE_PEAK:
        return None, "silent"
    return windows, None


@contextlib.contextmanager
def build_lock(path: Path):
    """An exclusive lock on ``path`` (a sibling ``.lock`` file) so that two runs never build one store together."""
    import fcntl  # POSIX file locks, imported where used

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info(f"waiting for another process that is building {path.stem}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_npy(path: str, raw: str, shape: tuple[int, ...]) -> None:
    """An ``.npy`` file of float32 ``shape`` whose data are the bytes of the file ``raw``."""
    with open(path, "wb") as out, open(raw, "rb") as src:
        np.lib.format.write_array_header_2_0(out, {"descr": "<f4", "fortran_order": False, "shape": shape})
        shutil.copyfileobj(src, out, length=1 << 24)


class FeatureStore:
    """Features of every window of every clip of a manifest, as one memory-mapped array.

    ``array`` ``(n_windows, *feature_shape(config))`` holds the windows of clip ``i`` in rows
    ``offsets[i]:offsets[i + 1]`` (the clip policy: at least one each), ``energy`` ``(n_windows,)``
    their RMS level in dB. ``ok`` marks clips that were decoded and are not silent, judged on the
    whole clip; the others have one zero row and are excluded by callers.
    """

    def __init__(self, path: Path, array: np.ndarray, meta: dict):
        self.path, self.array, self.meta = path, array, meta
        self.ok = np.asarray(meta["ok"], dtype=bool)
        self.offsets = np.asarray(meta["offsets"], dtype=np.int64)
        self.energy = np.asarray(meta["energy"], dtype=np.float32)

    @property
    def meta_path(self) -> Path:
        """The JSON file beside the array that describes it."""
        return self.path.with_suffix(".json")

    def skipped_summary(self) -> str | None:
        """One line naming the skipped clips (count, the first names, where the full list is), or ``None``."""
        silent, failed = self.meta["silent"], self.meta["failed"]
        if not silent and not failed:
            return None
        parts = []
        if silent:
            parts.append(f"{len(silent)} silent (peak below {SILENCE_PEAK} over the whole clip): "
                         + ", ".join(Path(p).name for p in silent[:3]) + (", ..." if len(silent) > 3 else ""))
        if failed:
            parts.append(f"{len(failed)} undecodable: " + "; ".join(failed[:2]) + ("; ..." if len(failed) > 2 else ""))
        return (f"skipped {len(silent) + len(failed)} of {len(self.ok)} clips: " + "; ".join(parts)
                + f" (full list: {self.meta_path})")

    @classmethod
    def open_or_build(cls, manifest: Manifest, config: FeatureConfig, *, cache_dir: Path, batch_size: int = 256,
                      quiet: bool = False) -> FeatureStore:
        """Open the store of (``manifest``, ``config``), building it first when it is missing, truncated or corrupt.

        ``config.duration`` must be resolved (not ``auto``). Builds hold a lock, so a second process
        asking for the same store waits and then opens the finished one.
        """
        key = store_key(manifest, config)
        base = Path(cache_dir) / "features" / f"{manifest.name}-{config.kind}-{key}"
        npy = base.with_suffix(".npy")
        store = cls._open(npy, manifest)
        if isinstance(store, cls):
            return store
        with build_lock(base.with_suffix(".lock")):
            store = cls._open(npy, manifest)  # another process may have built it while we waited
            if isinstance(store, cls):
                return store
            if store is not None:
                logger.warning(f"feature store {npy} is incomplete or corrupt ({store}); rebuilding it")
            cls._build(manifest, config, npy, batch_size=batch_size, quiet=quiet)
        store = cls._open(npy, manifest)
        if not isinstance(store, cls):
            raise DataError(f"feature store {npy} could not be read back after building it ({store})")
        return store

    @classmethod
    def _open(cls, npy: Path, manifest: Manifest) -> FeatureStore | str | None:
        """The store, ``None`` when absent, or why it cannot be used (a truncated or inconsistent file)."""
        meta_path = npy.with_suffix(".json")
        if not (npy.exists() and meta_path.exists()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(npy, mmap_mode="r")
        except (ValueError, OSError, json.JSONDecodeError) as exc:
            return f"{type(exc).__name__}: {exc}".splitlines()[0]
        if meta.get("version") != STORE_VERSION or len(meta.get("offsets", ())) != len(manifest) + 1:
            return "its index does not match the manifest"
        if array.shape[0] != meta["offsets"][-1] or len(meta["energy"]) != array.shape[0]:
            return f"{array.shape[0]} rows where the index expects {meta['offsets'][-1]}"
        return cls(npy, array, meta)

    @staticmethod
    def _build(manifest: Manifest, config: FeatureConfig, npy: Path, *, batch_size: int, quiet: bool) -> None:
        n = len(manifest)
        fshape = feature_shape(config)
        ok = np.ones(n, dtype=bool)
        counts = np.zeros(n, dtype=np.int64)
        energy: list[np.ndarray] = []
        silent, failed = [], []
        logger.info(f"building feature store {npy.name} ({n} clips, {config.kind}, {config.duration:g} s windows)")
        with tempfile.NamedTemporaryFile(dir=npy.parent, prefix=f".{npy.stem}.", suffix=".raw") as raw, \
                ThreadPoolExecutor(max_workers=4) as pool:
            starts = range(0, n, batch_size)
            for start in progress(starts, desc=f"extracting {config.kind} features ({n} clips)", total=len(starts),
                                  quiet=quiet):
                clips = manifest.clips[start : start + batch_size]
                batch = []
                for j, (clip, (windows, problem)) in enumerate(zip(clips, pool.map(
                        lambda c: _clip_windows(c.path, config), clips))):
                    if windows is None:
                        ok[start + j] = False
                        (silent.append(clip.path) if problem == "silent" else failed.append(problem))
                        windows = np.zeros((1, config.n_samples), dtype=np.float32)
                    counts[start + j] = len(windows)
                    energy.append(window_energy_db(windows))
                    batch.append(windows)
                waves = np.concatenate(batch)
                for chunk in range(0, len(waves), batch_size):
                    raw.write(np.ascontiguousarray(compute_features(waves[chunk : chunk + batch_size], config),
                                                   dtype="<f4").tobytes())
            raw.flush()
            offsets = np.concatenate([[0], np.cumsum(counts)])
            atomic_write(npy, lambda tmp: _write_npy(tmp, raw.name, (int(offsets[-1]), *fshape)))
        atomic_write_json(npy.with_suffix(".json"), {
            "version": STORE_VERSION, "manifest": manifest.content_hash(), "files": manifest.files_hash(),
            "features": asdict(config), "ids": [c.id for c in manifest.clips], "ok": ok.tolist(),
            "offsets": offsets.tolist(), "energy": np.round(np.concatenate(energy), 2).tolist(),
            "silent": silent, "failed": failed})
