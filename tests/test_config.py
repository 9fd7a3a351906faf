from pathlib import Path

import pytest

from fewshot_audio.config import TrainConfig, apply_overrides, load_config
from fewshot_audio.errors import ConfigError
from fewshot_audio.features.frontends import feature_kind

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_loads_and_validates(path):
    load_config(path).validate()


def test_cpu_default_preset_equals_builtin_defaults():
    assert load_config(CONFIGS / "cpu-default.yaml").to_dict() == TrainConfig().to_dict()


def test_overrides_and_errors(tmp_path):
    cfg = apply_overrides(TrainConfig(), {"shots": 1, "features.n_mels": 40, "ways": None})
    assert cfg.shots == 1 and cfg.features.n_mels == 40 and cfg.ways == 5
    with pytest.raises(ConfigError, match="unknown key.*n_mel;"):
        apply_overrides(TrainConfig(), {"features.n_mel": 3})
    p = tmp_path / "c.yaml"
    p.write_text("features:\n  kind: spectrogram\n")
    with pytest.raises(ConfigError, match="features.kind 'spectrogram' is not valid; use one of logmel, waveform"):
        feature_kind(load_config(p).features)
    p.write_text("split: [0.5, 0.5, 0.5]\n")
    with pytest.raises(ConfigError, match="split must be three"):
        load_config(p).validate()
    assert TrainConfig().fingerprint() == TrainConfig(out="elsewhere").fingerprint() != TrainConfig(seed=1).fingerprint()
