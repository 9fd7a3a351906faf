"""Audio loading and the one clip policy: any file to mono float32 at a target rate, then to windows.

:func:`clip_windows` is the only function that turns a clip of any length into model-input windows;
the feature store, the low-data protocol, ``adapt`` and ``tag`` all use it. :func:`stream_windows`
applies the same policy to a file read block by block, so a 1-hour recording is never held whole.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from fewshot_audio.config import SHORT_POLICIES
from fewshot_audio.errors import DataError

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".m4a", ".opus")


def _finite(audio: np.ndarray, path: Path) -> np.ndarray:
    """Replace NaN/inf samples by 0 (with one warning naming the file); all non-finite is an error."""
    bad = ~np.isfinite(audio)
    if bad.any():
        if bad.all():
            raise DataError(f"audio file {path} holds only NaN/inf samples; re-export it")

        logger.warning(f"{path}: {int(bad.sum())} NaN/inf sample(s) replaced by silence")
        audio = np.where(bad, np.float32(0), audio)
    return audio


def _undecodable(path: Path, exc: Exception) -> DataError:
    """The one-line error for a file no decoder can read (the exception's first line as the reason)."""
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(f"cannot decode audio file {path} ({reason}); it may be truncated or not audio: "
                     "re-export it or remove it")


def _decode(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise DataError(f"audio file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise DataError(f"audio file {path} is empty (0 bytes); remove it or replace it with the recording")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return data.mean(axis=1), sr
    except Exception:
        try:
            import librosa  # imported on use: its first import compiles numba code

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                audio, sr = librosa.load(str(path), sr=None, mono=True)
            return audio, sr
        except Exception as exc:
            raise _undecodable(path, exc) from None


def load_audio(path: str | Path, *, sample_rate: int) -> np.ndarray:
    """Load ``path`` as mono float32 at ``sample_rate``; shape ``(samples,)``.

    Any channel count (averaged to mono), bit depth (16/24/32-bit integer, 32/64-bit float) and
    sample rate (resampled with soxr, librosa's default). NaN/inf samples become silence with a
    warning. Unreadable, empty or truncated files raise :class:`DataError` naming the file.
    """
    path = Path(path)
    audio, sr = _decode(path)
    if audio.size == 0:
        raise DataError(f"audio file {path} has zero samples")
    audio = _finite(np.asarray(audio, dtype=np.float32), path)
    if sr != sample_rate:
        import librosa  # imported on use: its first import compiles numba code

        audio = librosa.resample(audio, orig_sr=sr, target_sr=sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def load_span(path: str | Path, *, sample_rate: int, start_s: float, duration_s: float) -> np.ndarray:
    """``duration_s`` seconds of ``path`` from ``start_s``, mono float32 at ``sample_rate``: read by seeking where
    soundfile reads the format (an hour-long WAV costs only its span), else decoded whole and cut."""
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception:  # a format soundfile cannot read: decode it whole
        audio = load_audio(path, sample_rate=sample_rate)
        a = int(start_s * sample_rate)
        return audio[a:a + max(1, int(duration_s * sample_rate))]
    a = max(0, int(start_s * info.samplerate))
    b = min(info.frames, a + max(1, int(duration_s * info.samplerate)))
    try:
        audio = sf.read(str(path), start=a, stop=b, dtype="float32", always_2d=True)[0].mean(axis=1)
    except Exception as exc:  # truncated or corrupt: one line naming the file
        raise _undecodable(path, exc) from None
    if audio.size == 0:
        raise DataError(f"audio file {path} has no samples from {start_s:.2f} s")
    audio = _finite(audio, path)
    if info.samplerate != sample_rate:
        import librosa  # imported on use: its first import compiles numba code

        audio = librosa.resample(audio, orig_sr=info.samplerate, target_sr=sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def last_window_start(total: int | float, length: int | float) -> int | float:
    """Where the last window of a signal ``total`` long starts: it ends at the signal's end (nothing cut off,
    nothing padded), or starts at 0 when the signal is shorter than a window. The toolkit's one rule for the last
    window (samples, frames or seconds alike).

    Examples
    --------
    >>> last_window_start(25, 10), last_window_start(4, 10)
    (15, 0)
    """
    return max(0, total - length)


def with_last_window(starts: np.ndarray, *, total: int, length: int) -> np.ndarray:
    """``starts (k,)`` with the last window (:func:`last_window_start`) appended when the last of them ends before
    ``total``, so that the windows cover the whole signal.

    Examples
    --------
    >>> with_last_window(np.array([0, 10]), total=25, length=10).tolist()
    [0, 10, 15]
    """
    if not len(starts) or starts[-1] + length < total:
        return np.append(starts, last_window_start(total, length)).astype(np.int64)
    return starts


def window_starts(n_samples: int, *, length: int, hop_samples: int | None = None,
                  max_windows: int | None = None) -> np.ndarray:
    """Start samples of the windows that cover a clip of ``n_samples``.

    Windows ``length`` samples long start every ``hop_samples`` (default ``length``); the last one ends at the
    clip's end (:func:`with_last_window`), so nothing is cut off and nothing is padded. A clip no longer than
    ``length`` has one window starting at 0. With ``max_windows``, that many evenly spaced windows are kept.

    Examples
    --------
    >>> window_starts(25, length=10, hop_samples=10).tolist()
    [0, 10, 15]
    """
    hop_samples = hop_samples or length
    if n_samples <= length:
        return np.zeros(1, dtype=np.int64)
    starts = with_last_window(np.arange(0, n_samples - length + 1, hop_samples, dtype=np.int64), total=n_samples,
                              length=length)
    if max_windows is not None and len(starts) > max_windows:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, max_windows)).astype(np.int64)]
    return starts


def fit_short(audio: np.ndarray, *, length: int, short: str = "loop") -> np.ndarray:
    """A clip shorter than ``length`` brought to ``length``: ``"loop"`` repeats it (a one-shot sound is
    not drowned in silence), ``"pad"`` zero-pads after it. Longer clips are returned unchanged."""
    n = audio.shape[-1]
    if n >= length:
        return audio
    if short == "loop":
        return np.resize(audio, length).astype(np.float32, copy=False)
    if short == "pad":
        return np.pad(audio, (0, length - n))
    raise ValueError(f"short={short!r} is not a clip policy; use one of {SHORT_POLICIES}")


def clip_windows(audio: np.ndarray, *, length: int, hop_samples: int | None = None, short: str = "loop",
                 max_windows: int | None = None) -> np.ndarray:
    """The clip policy: a clip of any length as windows ``(n_windows, length)`` (samples).

    Short clips become one window (looped or padded, see :func:`fit_short`); long clips are covered
    by windows every ``hop_samples``, the last one ending at the clip's end (:func:`window_starts`).

    Examples
    --------
    >>> clip_windows(np.arange(4, dtype=np.float32), length=6).tolist()
    [[0.0, 1.0, 2.0, 3.0, 0.0, 1.0]]
    >>> clip_windows(np.arange(5, dtype=np.float32), length=2, hop_samples=2)[:, 0].tolist()
    [0.0, 2.0, 3.0]
    """
    audio = fit_short(audio, length=length, short=short)
    starts = window_starts(audio.shape[-1], length=length, hop_samples=hop_samples, max_windows=max_windows)
    return audio[starts[:, None] + np.arange(length)[None, :]]


def window_energy_db(windows: np.ndarray) -> np.ndarray:
    """RMS level of each window ``(n, length)`` in dB (floored at -120 dB)."""
    return level_db(np.mean(np.square(windows, dtype=np.float64), axis=-1))


def level_db(mean_square: np.ndarray) -> np.ndarray:
    """The RMS level in dB of mean squares (floored at -120 dB: digital silence)."""
    return (10 * np.log10(np.maximum(mean_square, 1e-12))).astype(np.float32)


def stream_audio(path: str | Path, *, sample_rate: int, block_seconds: float = 60.0) -> Iterator[tuple[np.ndarray, bool]]:
    """Mono float32 audio of ``path`` at ``sample_rate`` in blocks of about ``block_seconds``: pairs
    ``(samples, is_last)`` in time order (memory bounded for any length). Files up to one block, and
    formats libsndfile cannot read, come as one block decoded by :func:`load_audio`; longer ones are
    resampled as a stream (equal to the whole-file resampling up to the resampler's block edges)."""
    path = Path(path)
    try:
        info = sf.info(str(path))
        blocks_readable = info.frames > 0
    except Exception:
        blocks_readable = False
    if not blocks_readable or info.duration <= block_seconds:
        yield load_audio(path, sample_rate=sample_rate), True
        return

    resampler = soxr.ResampleStream(info.samplerate, sample_rate, 1, dtype="float32") \
        if info.samplerate != sample_rate else None
    block = int(block_seconds * info.samplerate)
    try:
        for chunk, last in list_last(sf.blocks(str(path), blocksize=block, dtype="float32", always_2d=True)):
            mono = _finite(chunk.mean(axis=1), path)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            yield np.ascontiguousarray(mono, dtype=np.float32), last
    except DataError:
        raise
    except Exception as exc:
        raise _undecodable(path, exc) from None


def stream_windows(path: str | Path, *, sample_rate: int, length: int, hop_samples: int | None = None,
                   short: str = "loop", block_seconds: float = 60.0) -> Iterator[np.ndarray]:
    """:func:`clip_windows` of a file read ``block_seconds`` at a time (:func:`stream_audio`).

    Yields ``(n, length)`` window batches in time order; together they are exactly the windows of
    ``clip_windows(load_audio(path), ...)`` for files up to one block, and the same windows up to
    the resampler's block edges for longer ones.
    """
    hop = hop_samples or length
    buf = np.zeros(0, dtype=np.float32)
    emitted = 0  # samples of the stream before buf[0]
    next_start = 0
    for mono, last in stream_audio(path, sample_rate=sample_rate, block_seconds=block_seconds):
        if last and emitted == 0 and len(buf) == 0:  # the whole file in one block
            yield clip_windows(mono, length=length, hop_samples=hop, short=short)
            return
        buf = np.concatenate([buf, mono])
        end = emitted + len(buf)
        starts = np.arange(next_start, end - length + 1, hop, dtype=np.int64)
        if last:
            starts = with_last_window(starts, total=end, length=length)
        if len(starts):
            yield buf[(starts - emitted)[:, None] + np.arange(length)[None, :]]
            next_start = int(starts[-1]) + hop
        drop = max(0, min(next_start, end - length) - emitted)  # keep the last window's samples
        buf, emitted = buf[drop:], emitted + drop


def read_windows(path: str | Path, *, sample_rate: int, length: int, hop_samples: int | None = None,
                 short: str = "loop", max_windows: int | None = None,
                 block_seconds: float = 60.0) -> tuple[np.ndarray, float]:
    """The windows of one clip under the clip policy, and the clip's peak level (for the silence check).

    Files longer than ``block_seconds`` are streamed (:func:`stream_windows`): memory stays bounded,
    and every k-th window is kept so that at most ``max_windows`` cover the whole file evenly.
    """
    keep_every, peak, kept = 1, 0.0, []
    try:
        info = sf.info(str(path))
        if max_windows and info.duration > block_seconds:
            expected = len(window_starts(int(info.duration * sample_rate), length=length, hop_samples=hop_samples))
            keep_every = max(1, -(-expected // max_windows))
    except Exception:
        pass
    if keep_every == 1:
        audio = load_audio(path, sample_rate=sample_rate)
        windows = clip_windows(audio, length=length, hop_samples=hop_samples, short=short, max_windows=max_windows)
        return windows, float(np.abs(audio).max())
    seen = 0
    for batch in stream_windows(path, sample_rate=sample_rate, length=length, hop_samples=hop_samples, short=short,
                                block_seconds=block_seconds):
        peak = max(peak, float(np.abs(batch).max()))
        idx = np.arange(seen, seen + len(batch))
        kept.append(batch[idx % keep_every == 0])
        seen += len(batch)
    return np.concatenate(kept)[:max_windows], peak


def list_last(iterable):
    """Pairs ``(item, is_last)`` of an iterable, looking one item ahead."""
    it = iter(iterable)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


def audio_duration(path: str | Path, *, decode: bool = False) -> float:
    """Seconds of audio in ``path`` from its header; 0.0 when soundfile cannot tell (with ``decode``, such
    a file is decoded to measure it, and 0.0 when that fails too)."""
    try:
        return float(sf.info(str(path)).duration)
    except Exception:
        if not decode:
            return 0.0
        try:
            return len(load_audio(path, sample_rate=16000)) / 16000
        except DataError:
            return 0.0


def window_times(n: int, *, duration_s: float, window_s: float, hop_s: float) -> np.ndarray:
    """``(n, 2)`` start/end seconds of a file's ``n`` windows by the clip policy: every ``hop_s`` seconds, the
    last one ending at the file's end (:func:`last_window_start`); a file shorter than a window is one (looped or
    padded) window. With ``duration_s`` unknown (0), windows simply start every ``hop_s`` seconds."""
    if duration_s <= 0:
        starts = np.arange(n) * hop_s
        return np.stack([starts, starts + window_s], axis=1).astype(np.float32)
    if duration_s <= window_s or n == 1:
        return np.array([[0.0, min(duration_s, window_s)]], dtype=np.float32)[:n]
    starts = np.minimum(np.arange(n) * hop_s, last_window_start(duration_s, window_s))
    return np.stack([starts, starts + window_s], axis=1).astype(np.float32)


def audio_files(inputs: list[str | Path], *, param: str = "") -> list[Path]:
    """Expand folders (recursively) into audio files; errors (naming ``param``, the parameter that gave them, if
    any) on missing paths or nothing to read."""
    named = f"{param}=" if param else ""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{named}{p} does not exist; pass audio files or folders of audio")
    first: dict[Path, Path] = {}
    for f in files:
        first.setdefault(f.resolve(), f)
    unique = list(first.values())  # the first of each, in input order
    if len(unique) < len(files):
        logger.info("%d file(s) given more than once are read once", len(files) - len(unique))
    files = unique
    if not files:
        raise DataError(f"{named}no audio files found in {', '.join(map(str, inputs))} "
                        f"(extensions: {', '.join(AUDIO_EXTENSIONS)})")
    return files
