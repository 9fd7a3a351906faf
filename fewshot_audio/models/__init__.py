"""Models: trainable backbones, pretrained models (registered on import), their composition and checkpoints."""

from fewshot_audio.models import pretrained  # noqa: F401 - registers the pretrained models
