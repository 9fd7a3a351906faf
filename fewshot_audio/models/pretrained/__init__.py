"""Pretrained models, each one module that registers itself in :mod:`fewshot_audio.specs` (the import order
is the order of ``weights list``, ``strategies`` and error messages)."""

from fewshot_audio.models.pretrained import musicnn  # noqa: F401, I001 - registers, in this order
from fewshot_audio.models.pretrained import aisfx  # noqa: F401
from fewshot_audio.models.pretrained import yamnet  # noqa: F401
from fewshot_audio.models.pretrained import speech_embedding  # noqa: F401
from fewshot_audio.models.pretrained import birdnet  # noqa: F401
