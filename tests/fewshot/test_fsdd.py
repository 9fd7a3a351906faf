"""Real data: the Free Spoken Digit Dataset in ../shared/data/fsdd (skipped where absent)."""

import pytest

from fewshot_audio.config import load_config
from fewshot_audio.fewshot.training import train
from tests.conftest import FSDD

pytestmark = pytest.mark.skipif(not (FSDD / "recordings").is_dir(), reason=f"FSDD not found at {FSDD}")



def test_fsdd_digit_speaker_episodes_learn(tmp_path):
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "fsdd.yaml")
    config.dataset = str(FSDD)
    config.episodes, config.val_every, config.val_episodes, config.test_episodes = 60, 30, 50, 200
    config.channels = 16
    config.out = str(tmp_path / "run")
    config.episodes_dir = str(tmp_path / "episodes")
    metrics = train(config, quiet=True)
    test, base = metrics["test"], metrics["baseline"]
    assert metrics["dataset"]["clips"] == 3000 and metrics["dataset"]["classes"] == 60
    assert test["ways"] == 5 and test["episodes"] == 200
    # far above chance (20%) after 60 episodes, and the mfcc baseline is scored on the same episodes
    assert test["accuracy"] > 0.5, test
    assert base["episodes"] == 200 and base["accuracy"] > 0.3, base
