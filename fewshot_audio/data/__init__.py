"""Audio loading, the clip policy, manifests, dataset adapters and the built-in synthetic dataset."""

from fewshot_audio.data.adapters import FORMATS, LAYOUTS, DatasetLayout, build_manifest, detect_format, validate_manifest
from fewshot_audio.data.audio import (
    audio_files,
    clip_windows,
    load_audio,
    stream_audio,
    stream_windows,
    window_starts,
)
from fewshot_audio.data.manifest import Clip, Manifest

__all__ = ["FORMATS", "LAYOUTS", "Clip", "DatasetLayout", "Manifest", "audio_files", "build_manifest", "clip_windows",
           "detect_format", "load_audio", "stream_audio", "stream_windows", "validate_manifest", "window_starts"]
