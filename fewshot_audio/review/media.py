"""What the review page plays and shows of an item: its audio as WAV bytes, and its log-mel spectrogram (the
toolkit's front end) with time in seconds of the recording on the x axis, frequency in Hz (mel-spaced) on the y
axis, and the item's span shaded and edged."""

from __future__ import annotations

import io

import numpy as np
import torch

from fewshot_audio.config import FeatureConfig
from fewshot_audio.features.frontends import LogMel
from fewshot_audio.util.plots import pyplot

_FRONT_ENDS: dict[str, LogMel] = {}  # by repr(config): one filterbank per configuration


def spectrogram_png(y: np.ndarray, config: FeatureConfig, *, offset_s: float, span: tuple[float, float],
                    title: str) -> bytes:
    """A PNG of the toolkit's log-mel spectrogram of ``y`` (starting at ``offset_s`` in its file), Hz and time axes,
    ``span`` (seconds in the file) shaded, titled ``title``."""
    import librosa  # the mel band centres for the frequency axis
    plt = pyplot()

    front = _FRONT_ENDS.get(repr(config)) or _FRONT_ENDS.setdefault(repr(config), LogMel(config))
    with torch.no_grad():
        db = front(torch.from_numpy(y)[None])[0, 0].numpy()
    seconds = len(y) / config.sample_rate
    fmax = config.fmax or config.sample_rate / 2
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(offset_s, offset_s + seconds, 0, db.shape[0]))
    centres = librosa.mel_frequencies(n_mels=db.shape[0] + 2, fmin=config.fmin, fmax=fmax)[1:-1]
    ticks = [int(i) for i in np.linspace(0, db.shape[0] - 1, 6)]
    ax.set_yticks([t + 0.5 for t in ticks], [f"{centres[t]:.0f}" for t in ticks])
    ax.axvspan(span[0], span[1], color="#38c172", alpha=0.18)
    for edge in span:
        ax.axvline(edge, color="#38c172", lw=1.5)
    ax.set(xlabel="time (s)", ylabel="frequency (Hz)", title=title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def wav_bytes(y: np.ndarray, sample_rate: int) -> bytes:
    """``y`` as a 16-bit WAV file's bytes."""
    import soundfile as sf  # the toolkit's audio writer

    buf = io.BytesIO()
    sf.write(buf, y, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
