"""fewshot-audio: few-shot (low-data) audio and music tagging.

The public API is this package's names (``from fewshot_audio import train, Tagger``), listed in ``__all__`` and in
docs/api.md; they are imported when first used, so ``import fewshot_audio`` stays light. Detection has its own
namespace, :mod:`fewshot_audio.detection`.

Examples
--------
>>> import fewshot_audio
>>> fewshot_audio.TrainConfig(shots=5).shots
5
>>> "prototypical" in fewshot_audio.STRATEGIES
True
"""

from fewshot_audio import models  # noqa: F401 - registers the pretrained models and their front ends
from fewshot_audio.errors import CheckpointError, ConfigError, DataError, EpisodeError, FewshotError
from fewshot_audio.util.exports import lazy_exports
from fewshot_audio.version import __version__

_EXPORTS = {
    "TrainConfig": "fewshot_audio.config", "FeatureConfig": "fewshot_audio.config", "load_config": "fewshot_audio.config",
    "train": "fewshot_audio.fewshot.training", "evaluate_run": "fewshot_audio.fewshot.training",
    "compare": "fewshot_audio.fewshot.compare",
    "Tagger": "fewshot_audio.tagging.tagger",
    "build_index": "fewshot_audio.archive.build", "search": "fewshot_audio.archive.search",
    "tag_index": "fewshot_audio.archive.tag_from_index", "suggest": "fewshot_audio.archive.tag_from_index",
    "load_backbone": "fewshot_audio.embedding", "embed_files": "fewshot_audio.embedding",
    "build_manifest": "fewshot_audio.data", "validate_manifest": "fewshot_audio.data", "load_audio": "fewshot_audio.data",
    "STRATEGIES": "fewshot_audio.fewshot.strategies", "Strategy": "fewshot_audio.fewshot.strategies",
    "BACKBONES": "fewshot_audio.models.backbones", "Backbone": "fewshot_audio.models.backbones",
    "HEADS": "fewshot_audio.tagging.heads", "Head": "fewshot_audio.tagging.heads",
    "FRONT_ENDS": "fewshot_audio.features.frontends", "FrontEnd": "fewshot_audio.features.frontends",
    "LAYOUTS": "fewshot_audio.data.adapters", "DatasetLayout": "fewshot_audio.data.adapters",
    "Registry": "fewshot_audio.util.registry",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)


__all__ = ["__version__", "CheckpointError", "ConfigError", "DataError", "EpisodeError", "FewshotError", *_EXPORTS]
