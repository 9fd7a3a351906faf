"""A recording with ten beeps and a detect --json of them, and a review server run as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def write_detections(root: Path, *, n: int = 10) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y = rng.standard_normal(SR * (n + 1)).astype("float32") * 0.01
    for k in range(n):
        y[k * SR + 2000:k * SR + 6000] += 0.5 * np.sin(2 * np.pi * 1000 * np.arange(4000) / SR).astype("float32")
    sf.write(root / "rec.wav", y, SR)
    rows = [{"file": "rec.wav", "class": "beep", "start": k + 0.125, "end": k + 0.375, "score": round(0.95 - 0.05 * k, 3)}
            for k in range(n)]
    (root / "det.json").write_text(json.dumps(rows))
    return root / "det.json"


class Server:
    """``fewshot-audio review SOURCE --out LABELS --no-browser`` as a child process; ``url`` once it listens."""

    def __init__(self, source: Path, labels: Path, *extra: str):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "fewshot_audio", "review", str(source), "--out", str(labels),
                                      "--no-browser", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        deadline = time.time() + 60
        self.url = ""
        while time.time() < deadline and not self.url:
            line = self.proc.stdout.readline()
            if line.startswith("http://"):
                self.url = line.strip()
            elif self.proc.poll() is not None:
                raise RuntimeError(f"review server exited: {self.proc.stderr.read()}")
        assert self.url, "the review server printed no URL within 60 s"
        self.base, self.token = self.url.split("/?token=")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        """Ctrl-C (SIGINT); the server's stderr."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=20)
        return err
