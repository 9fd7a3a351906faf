"""Kill-and-resume ends exactly where an uninterrupted run with the same seed ends."""

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from fewshot_audio.config import config_from_dict
from fewshot_audio.fewshot.training import train


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


def test_two_process_data_parallel_training_with_gloo(tiny_dataset, tiny_config, tmp_path):
    """torchrun --nproc-per-node 2 on the CPU: rank 0 alone writes; the checkpoint holds both ranks'
    sampler states; --resume continues both; the model weights stay identical across ranks."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
           "-m", "fewshot_audio", "train", "--dataset", str(tiny_dataset), "--config", str(tiny_config),
           "--out", str(out), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("test  prototypical/conv4") == 1, r.stdout  # only rank 0 reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["device"] == "cpu x 2 processes"
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 6 and len(ckpt["ranks"]) == 2
    assert not torch.equal(ckpt["ranks"][0]["sampler_rng"], ckpt["ranks"][1]["sampler_rng"])
    # resuming with another number of processes is refused with the fix
    r = subprocess.run([sys.executable, "-m", "fewshot_audio", "train", "--dataset", str(tiny_dataset), "--config",
                        str(tiny_config), "--out", str(out), "--resume", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 2 and "resume it with 2 processes per node in torchrun" in r.stderr


def test_features_that_do_not_fit_train_from_the_memory_mapped_store_with_prefetch(tiny_dataset, tiny_config,
                                                                                    tmp_path, monkeypatch, capsys):
    """With no device memory to spare, training reads episodes from the memory-mapped store (prefetching
    the next step's) and says so; the result is the same as with resident features."""
    import fewshot_audio.fewshot.dataset as dataset

    resident = train(_config(tiny_dataset, tiny_config, tmp_path / "resident", "conv4"), quiet=True)
    capsys.readouterr()
    monkeypatch.setattr(dataset, "free_memory", lambda device: 0)
    mapped = train(_config(tiny_dataset, tiny_config, tmp_path / "mapped", "conv4"), quiet=True)
    assert "do not fit in cpu memory: reading episodes from the memory-mapped store" in capsys.readouterr().err
    a = torch.load(tmp_path / "resident" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "mapped" / "checkpoint.pt", weights_only=True)
    for k, v in a["strategy"]["backbone"].items():
        assert torch.equal(v, b["strategy"]["backbone"][k]), k
    assert resident["test"]["accuracy"] == mapped["test"]["accuracy"]


def test_a_distributed_run_killed_on_one_rank_stops_clearly_and_resumes(tiny_dataset, tiny_config, tmp_path):
    """Rank 1 is SIGKILLed after step 5 (checkpoint at step 3): rank 0 stops with one clear line naming
    the intact checkpoint and --resume; resuming finishes with the weights of an uninterrupted run."""
    import subprocess
    import sys

    def torchrun(out, *extra, script=None, env=None):
        entry = [str(Path(__file__).parent / "ddp_rank_dies.py")] if script else ["-m", "fewshot_audio"]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29519",
               *entry, "train", "--dataset", str(tiny_dataset), "--config", str(tiny_config), "--out", str(out),
               "--quiet", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})

    whole = torchrun(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    cut = torchrun(tmp_path / "cut", script=True, env={"DIE_RANK": "1", "DIE_AFTER_STEP": "5"})
    assert cut.returncode != 0
    survivor = [line for line in cut.stderr.splitlines() if line.startswith("error: rank 0 stopped")]
    assert survivor, cut.stderr[-3000:]
    assert "checkpoint.pt) is intact" in survivor[0] and "--resume" in survivor[0]
    assert "Traceback" not in "\n".join(line for line in cut.stderr.splitlines() if "[rank0]" in line)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["step"] == 3
    assert not (tmp_path / "cut" / "metrics.json").exists()

    resumed = torchrun(tmp_path / "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for k, v in a["strategy"]["backbone"].items():
        assert torch.equal(v, b["strategy"]["backbone"][k]), k
    assert (json.loads((tmp_path / "whole" / "metrics.json").read_text())["test"]["accuracy"]
            == json.loads((tmp_path / "cut" / "metrics.json").read_text())["test"]["accuracy"])


def test_compile_true_trains_a_compiled_backbone_with_the_same_checkpoint_keys(tiny_dataset, tiny_config, tmp_path,
                                                                               capsys):
    """compile: true compiles the backbone in place (torch.compile, inductor on the CPU): it trains,
    warns that it is meant for GPUs, and writes checkpoints an eager run can load."""
    eager = _config(tiny_dataset, tiny_config, tmp_path / "eager", "conv4")
    train(eager, quiet=True)
    compiled = _config(tiny_dataset, tiny_config, tmp_path / "compiled", "conv4")
    compiled.compile = True
    metrics = train(compiled, quiet=True)
    assert "compile: true on the CPU" in capsys.readouterr().err
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    a = torch.load(tmp_path / "eager" / "best.pt", weights_only=True)["strategy"]["backbone"]
    b = torch.load(tmp_path / "compiled" / "best.pt", weights_only=True)["strategy"]["backbone"]
    assert a.keys() == b.keys()
    for k in a:  # the same seed and episodes: compiled kernels reorder float sums, so close, not equal
        assert torch.allclose(a[k], b[k], atol=5e-3), k


def test_interrupted_multi_label_run_resumes_to_the_same_result(tiny_config, tmp_path):
    from conftest import write_tiny_multilabel

    csv_path = write_tiny_multilabel(tmp_path / "ml")

    def config(out):
        cfg = _config(csv_path, tiny_config, out, "conv4")
        cfg.multi_label = True
        return cfg

    whole = train(config(tmp_path / "whole"), quiet=True)

    def crash_after_step_5(step):
        if step == 5:
            raise Crash()

    with pytest.raises(Crash):
        train(config(tmp_path / "cut"), quiet=True, on_step=crash_after_step_5)
    resumed = train(config(tmp_path / "cut"), resume=True, quiet=True)
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    for k, v in a["strategy"]["backbone"].items():
        assert torch.equal(v, b["strategy"]["backbone"][k]), k
    assert whole["test"]["mAP"] == resumed["test"]["mAP"] and whole["test"]["micro_f1"] == resumed["test"]["micro_f1"]
