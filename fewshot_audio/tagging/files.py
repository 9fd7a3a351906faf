"""Tagger files: one safetensors file (tensors plus JSON metadata) that loads without pickle.

The file stores the embedding model as a model record (:func:`~fewshot_audio.models.compose.model_record`);
one format version is read, :data:`FORMAT_VERSION`, and any other is refused with one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from fewshot_audio.embedding import Backbone
from fewshot_audio.errors import CheckpointError, ConfigError
from fewshot_audio.models.compose import build_model, feature_config
from fewshot_audio.specs import canonical_backbone
from fewshot_audio.util.io import atomic_write
from fewshot_audio.version import __version__

FORMAT_VERSION = 3


def write_tagger(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict, model: torch.nn.Module) -> None:
    """Write ``tensors``, the backbone ``model``'s weights and ``meta`` (JSON) to ``path`` atomically."""
    tensors = dict(tensors)
    tensors.update({f"backbone.{k}": v.detach().cpu() for k, v in model.state_dict().items()})
    meta = {"format_version": FORMAT_VERSION, "toolkit_version": __version__, **meta}
    atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp,
                                             metadata={"fewshot_audio": json.dumps(meta)}))


def read_tagger(path: str | Path, *, device: torch.device,
                expect_backbone: str | None = None) -> tuple[Backbone, dict[str, torch.Tensor], dict]:
    """The backbone (weights loaded, on ``device``), the other tensors and the metadata of tagger file ``path``;
    one line naming the problem when it is missing, damaged, of another version or another backbone."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"tagger file {path} does not exist; build one with 'fewshot-audio adapt'")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get("fewshot_audio")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable tagger file ({exc})") from None
    if raw is None:
        raise CheckpointError(f"{path} is a safetensors file but not a fewshot-audio tagger")
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"tagger {path} has format version {meta.get('format_version')} (toolkit "
                              f"{meta.get('toolkit_version')}); this toolkit reads version {FORMAT_VERSION}: rebuild it "
                              "with 'fewshot-audio adapt'")
    if expect_backbone is not None and canonical_backbone(expect_backbone) != canonical_backbone(
            meta["backbone"].split("@")[0]):
        raise ConfigError(f"tagger {path} was built on backbone {meta['backbone']!r}, not {expect_backbone!r}; "
                          "use a tagger built on that backbone or adapt a new one")
    features = feature_config(meta["features"], where=str(path))
    state = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    record = meta["model"]
    model = build_model(record, where=str(path))
    model.load_state_dict(state)
    backbone = Backbone(meta["backbone"], model.to(device).eval(), features, meta["window"], record)
    return backbone, {k: v for k, v in tensors.items() if not k.startswith("backbone.")}, meta
