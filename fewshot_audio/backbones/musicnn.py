"""Pretrained musicnn backbones (``musicnn-mtt``, ``musicnn-msd``, ``vgg-mtt``, ``vgg-msd``).

Name syntax: ``musicnn-mtt[:LAYER][:finetune]``. LAYER is the embedding taken: ``mean_pool``
(musicnn's default), ``max_pool``, ``penultimate``, ``taggram``, or a time-varying layer (``timbral``,
``temporal``, ``cnn1``..``cnn3``; VGG: ``pool1``..``pool5``, default ``pool4``) pooled by mean and max
over time. The defaults are the layers that transferred best, averaged over the built-in dataset and
FSDD, with frozen prototypes (benchmarks/bench_musicnn.py). The
network is frozen (eval-mode batch norm, no gradients) unless ``:finetune`` is given. Inputs are the
``musicnn`` feature kind ``(n, 1, 96, frames)``; clips longer than 3 s are cut into 3 s patches (187
frames, the last zero-padded) and the clip embedding is the mean of the patch embeddings. Shorter clips
go through musicnn as they are (it is fully convolutional in time, as its authors note); the VGG models
need exactly 187 frames, so shorter clips are zero-padded for them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..pretrained.musicnn import N_FRAMES

VARIANTS = {"musicnn-mtt": "MTT_musicnn", "musicnn-msd": "MSD_musicnn", "vgg-mtt": "MTT_vgg", "vgg-msd": "MSD_vgg"}
MUSICNN_LAYERS = {"penultimate": 200, "mean_pool": 753, "max_pool": 753, "taggram": 50, "timbral": 816,
                  "temporal": 306, "cnn1": 128, "cnn2": 128, "cnn3": 128}
VGG_LAYERS = {"penultimate": 256, "taggram": 50, **{f"pool{i}": 256 for i in range(1, 6)}}
DEFAULT_LAYER = {"musicnn": "mean_pool", "vgg": "pool4"}


class PretrainedMusicnn(nn.Module):
    """Pretrained musicnn / VGG (MTT or MSD) embedding; see the module docstring for the name syntax."""

    input_kind = "musicnn"

    def __init__(self, *, input_shape: tuple[int, ...], channels: int = 64, variant: str = "musicnn-mtt",
                 layer: str | None = None, finetune: bool = False):
        super().__init__()
        from ..pretrained.weights import load_musicnn

        self.variant, self.model_name = variant, VARIANTS[variant]
        layers = VGG_LAYERS if variant.startswith("vgg") else MUSICNN_LAYERS
        self.layer = layer or DEFAULT_LAYER[variant.split("-")[0]]
        if self.layer not in layers:
            raise ConfigError(f"{variant} has no layer {self.layer!r}; valid layers: {', '.join(layers)}")
        if input_shape[1] != 96:
            raise ConfigError(f"{variant} needs 96 mel bands (features.kind: musicnn), got {input_shape[1]}")
        self.net, self.meta = load_musicnn(self.model_name)
        self.embedding_dim = layers[self.layer]
        self.frozen = not finetune
        self.trainable = finetune
        for p in self.net.parameters():
            p.requires_grad_(finetune)

    def train(self, mode: bool = True):
        super().train(mode and not self.frozen)
        return self

    def patch_outputs(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
        """Run the network on 3 s patches of ``x (n, 1, 96, T)``; returns its outputs and patches per clip."""
        rep = x[:, 0].transpose(1, 2)  # (n, T, 96)
        n, t, _ = rep.shape
        if t <= N_FRAMES and not self.variant.startswith("vgg"):
            return self.net(rep), 1  # musicnn is fully convolutional in time: no padding for short clips
        n_patches = max(1, -(-t // N_FRAMES))
        rep = F.pad(rep, (0, 0, 0, n_patches * N_FRAMES - t))
        return self.net(rep.reshape(n * n_patches, N_FRAMES, 96)), n_patches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, n_patches = self.patch_outputs(x.float())
        z = out[self.layer]
        if z.ndim == 3:  # (patches, time, channels): pool over time
            z = torch.cat([z.mean(1), z.amax(1)], dim=1)
        elif z.ndim == 4:  # VGG pooling maps (patches, H, W, C)
            z = torch.cat([z.mean((1, 2)), z.amax((1, 2))], dim=1)
        return z.reshape(-1, n_patches, z.shape[-1]).mean(1)


def build_pretrained(name: str, *, input_shape: tuple[int, ...], channels: int = 64) -> PretrainedMusicnn:
    base, *opts = name.split(":")
    finetune = "finetune" in opts
    layers = [o for o in opts if o != "finetune"]
    if len(layers) > 1:
        raise ConfigError(f"backbone {name!r}: give at most one layer, e.g. {base}:penultimate")
    return PretrainedMusicnn(input_shape=input_shape, channels=channels, variant=base, layer=layers[0] if layers else None,
                             finetune=finetune)
