"""Audio loading, manifests, dataset adapters and the built-in synthetic dataset."""

from .adapters import FORMATS, build_manifest, detect_format, validate_manifest
from .audio import fix_length, load_audio, split_patches
from .manifest import Clip, Manifest

__all__ = ["FORMATS", "Clip", "Manifest", "build_manifest", "detect_format", "fix_length", "load_audio",
           "split_patches", "validate_manifest"]
