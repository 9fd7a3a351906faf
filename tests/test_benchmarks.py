"""Every benchmark script starts at this commit (its imports resolve and its options parse), and the parts
that need no data run in a tiny mode, so that a moved module or a changed API cannot break them unnoticed."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_starts(script):
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, f"{script.name} --help failed:\n{r.stderr[-3000:]}"
    assert "usage" in r.stdout.lower()


def test_pipeline_benchmark_tiny_parts(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_pipeline

    features = bench_pipeline.bench_features(4)
    assert features["clips"] == 4 and features["ratio"] > 0
