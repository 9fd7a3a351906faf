"""A detector's settings: what it is made of (its parts' registry names) and how each part is set. A plain
dataclass that the parts read (:mod:`.sources`, :mod:`.classifiers`, :mod:`.decoders`) and
:mod:`.detectors` registers by name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from fewshot_audio.errors import ConfigError

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "frame_tcn_words.pt"
"""The frame-level network meta-trained on spoken-word mixtures (weights/NOTICE.md says how and under what licence)."""


@dataclass(frozen=True)
class DetectorSettings:
    """What a detector is made of and how it is set.

    Parts: ``source`` (a :data:`~.sources.DESCRIPTOR_SOURCES` name), ``classifier`` (a
    :data:`~.classifiers.WINDOW_CLASSIFIERS` name), ``decoder`` (an :data:`~.decoders.EVENT_DECODERS` name).

    Settings: ``segments``: parts of a window whose band means describe it; ``shift``: positive windows start up
    to this fraction of a window from an example's onset; ``stride``: windows are scored every this fraction of a
    window (0: every frame); ``threshold``: the score an event must reach; ``band_reference``: refer each band (or
    embedding dimension) to the recording's median; ``self_training``: rounds of adaptation to the unlabelled
    recording (its peaks scoring at least ``confident`` join the examples); ``threshold_folds``: choose the
    threshold per recording, each example held out in turn; ``separation``: peaks at least this fraction of the
    examples' length apart; ``embedding``: the pretrained model (``MODEL[:LAYER]``) of the embedding source;
    ``weights``: the meta-trained network of the network source (``None``: :data:`SHIPPED_WEIGHTS`);
    ``with_shape``: the network source adds the log-mel descriptors of the same windows; ``tune_steps``:
    fine-tune the network on the recording's examples first; ``negative_prototypes``: the prototype classifier's
    k-means centres of the negatives.
    """

    source: str = "logmel"
    classifier: str = "logreg"
    decoder: str = "peaks"
    segments: int = 4
    shift: float = 0.125
    stride: float = 0.0
    threshold: float = 0.8
    band_reference: bool = True
    self_training: int = 0
    confident: float = 0.95
    threshold_folds: bool = False
    separation: float = 0.5
    embedding: str | None = None
    weights: str | None = None
    with_shape: bool = False
    tune_steps: int = 0
    negative_prototypes: int = 32
    description: str = ""

    def __post_init__(self):
        for name, least in (("segments", 1), ("negative_prototypes", 1), ("self_training", 0), ("tune_steps", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"detector setting {name}={value!r} must be a whole number >= {least}")
        for name in ("shift", "stride", "separation"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"detector setting {name}={value!r} must be a fraction of a window, 0 to 1")

    def replace(self, **changes) -> DetectorSettings:
        """These settings with ``changes`` (each a field name; an unknown one raises :class:`ConfigError`)."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ConfigError(f"unknown detector setting {unknown[0]!r}; settings: {', '.join(sorted(fields))}")
        return dataclasses.replace(self, **changes)
