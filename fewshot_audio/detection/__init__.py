"""Few-shot sound event detection in long recordings (the DCASE Task 5 protocol): annotations, the official
metric, frame features, detectors (compositions of a descriptor source, a window classifier and an event decoder)
and events.

The public names (``from fewshot_audio.detection import Episode, fit, find``) are imported on first use.
"""

from fewshot_audio.util.exports import lazy_exports

_EXPORTS = {
    "Episode": "fewshot_audio.detection.pipeline", "Detections": "fewshot_audio.detection.pipeline",
    "fit": "fewshot_audio.detection.pipeline", "find": "fewshot_audio.detection.pipeline",
    "run_episode": "fewshot_audio.detection.pipeline",
    "DETECTORS": "fewshot_audio.detection.detectors", "Detector": "fewshot_audio.detection.detectors",
    "make_detector": "fewshot_audio.detection.detectors", "detector_settings": "fewshot_audio.detection.detectors",
    "DetectorSettings": "fewshot_audio.detection.settings",
    "DESCRIPTOR_SOURCES": "fewshot_audio.detection.sources", "DescriptorSource": "fewshot_audio.detection.sources",
    "WINDOW_CLASSIFIERS": "fewshot_audio.detection.classifiers",
    "WindowClassifier": "fewshot_audio.detection.classifiers",
    "EVENT_DECODERS": "fewshot_audio.detection.decoders", "EventDecoder": "fewshot_audio.detection.decoders",
    "evaluate": "fewshot_audio.detection.metric", "read_predictions": "fewshot_audio.detection.metric",
    "read_references": "fewshot_audio.detection.metric",
    "dataset_episodes": "fewshot_audio.detection.episodes", "table_episodes": "fewshot_audio.detection.episodes",
    "train_detector": "fewshot_audio.detection.meta",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


__all__ = list(_EXPORTS)
