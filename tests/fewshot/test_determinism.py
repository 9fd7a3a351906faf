"""The same ``train`` command, seed and machine give the same run (issue 28): two processes with different
Python hash seeds (set and dict orders of strings differ between them) print the same accuracy and write the
same weights, bit for bit."""

import hashlib
import json
import os
import subprocess
import sys

import torch


def _train(tiny_dataset, tiny_config, out, hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    r = subprocess.run([sys.executable, "-m", "fewshot_audio", "train", "--dataset", str(tiny_dataset), "--config",
                        str(tiny_config), "--out", str(out), "--quiet"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return {"printed": r.stdout.splitlines()[:2], "metrics": json.loads((out / "metrics.json").read_text())}


def _weights_digest(path) -> str:
    state = torch.load(path, weights_only=True)["strategy"]["backbone"]
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].cpu().numpy().tobytes())
    return h.hexdigest()


def test_the_same_seed_gives_the_same_run_in_another_process(tiny_dataset, tiny_config, tmp_path):
    a = _train(tiny_dataset, tiny_config, tmp_path / "a", "1")
    b = _train(tiny_dataset, tiny_config, tmp_path / "b", "2")
    assert a["printed"] == b["printed"]
    assert a["metrics"]["test"]["accuracy"] == b["metrics"]["test"]["accuracy"]
    assert a["metrics"]["training"]["best_val_accuracy"] == b["metrics"]["training"]["best_val_accuracy"]
    assert _weights_digest(tmp_path / "a" / "best.pt") == _weights_digest(tmp_path / "b" / "best.pt")
    env = a["metrics"]["environment"]
    assert env["threads"] >= 1 and env["torch"] == torch.__version__ and env["cpu"]
