"""fewshot-audio: few-shot (low-data) audio and music tagging."""

from fewshot_audio import models  # noqa: F401 - registers the pretrained models and their front ends
from fewshot_audio.errors import CheckpointError, ConfigError, DataError, EpisodeError, FewshotError
from fewshot_audio.version import __version__

__all__ = ["__version__", "CheckpointError", "ConfigError", "DataError", "EpisodeError", "FewshotError"]
