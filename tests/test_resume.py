"""Kill-and-resume ends exactly where an uninterrupted run with the same seed ends."""

import json

import pytest
import torch
import yaml

from fewshot_audio.api import train
from fewshot_audio.config import config_from_dict


class Crash(RuntimeError):
    pass


def _config(tiny_dataset, tiny_config, out, backbone):
    data = yaml.safe_load(tiny_config.read_text())
    data.update(dataset=str(tiny_dataset), out=str(out), episodes=9, val_every=3, backbone=backbone)
    data["features"]["crop"] = 0.4  # exercise the random-crop RNG too
    return config_from_dict(data)


@pytest.mark.parametrize("backbone", ["conv4", "musically-motivated"])
def test_interrupted_run_resumes_to_the_same_result(tiny_dataset, tiny_config, tmp_path, backbone):
    whole = train(_config(tiny_dataset, tiny_config, tmp_path / "whole", backbone), quiet=True)

    def crash_after_step_5(step):
        if step == 5:
            raise Crash()

    cut = _config(tiny_dataset, tiny_config, tmp_path / "cut", backbone)
    with pytest.raises(Crash):
        train(cut, quiet=True, on_step=crash_after_step_5)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["step"] == 3
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = train(_config(tiny_dataset, tiny_config, tmp_path / "cut", backbone), resume=True, quiet=True)

    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 9
    for k, v in a["strategy"]["backbone"].items():
        assert torch.equal(v, b["strategy"]["backbone"][k]), k
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert whole["test"]["accuracy"] == resumed["test"]["accuracy"]
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["test"]["accuracy"] == whole["test"]["accuracy"]


def test_resume_with_other_settings_is_refused(tiny_dataset, tiny_config, tmp_path):
    from fewshot_audio.errors import ConfigError

    cfg = _config(tiny_dataset, tiny_config, tmp_path / "r", "conv4")
    train(cfg, quiet=True)
    cfg.shots = 1
    with pytest.raises(ConfigError, match="different configuration"):
        train(cfg, resume=True, quiet=True)
