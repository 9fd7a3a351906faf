"""fewshot-audio: few-shot (low-data) audio and music tagging."""

__version__ = "0.1.0"

from .errors import CheckpointError, ConfigError, DataError, EpisodeError, FewshotError  # noqa: E402

__all__ = ["__version__", "CheckpointError", "ConfigError", "DataError", "EpisodeError", "FewshotError"]
