"""Audio loading, the clip policy, manifests, dataset adapters and the built-in synthetic dataset."""

from fewshot_audio.data.adapters import FORMATS, build_manifest, detect_format, validate_manifest
from fewshot_audio.data.audio import clip_windows, load_audio, stream_windows, window_starts
from fewshot_audio.data.manifest import Clip, Manifest

__all__ = ["FORMATS", "Clip", "Manifest", "build_manifest", "clip_windows", "detect_format", "load_audio",
           "stream_windows", "validate_manifest", "window_starts"]
