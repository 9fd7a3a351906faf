#!/usr/bin/env bash
# Install fewshot-audio with its test extra into the current Python (python3 or $PYTHON).
# On a machine without an NVIDIA GPU, torch's CPU build (2.13.0) is installed first so that
# pip does not pull a multi-GB CUDA build; pyproject.toml itself keeps a normal torch range.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found; torch comes from the normal dependency range" >&2
  else
    echo "setup: no GPU; installing torch's CPU build (torch==2.13.0) first" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  fi
fi
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
# the review page's browser test drives Debian's chromium with its chromedriver (Selenium): install them when absent
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium and chromium-driver (the review page's browser test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || {
      apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } ||
      echo "setup: apt could not install chromium and chromium-driver; the browser test will skip" >&2
  else
    echo "setup: chromium and chromium-driver are absent and cannot be installed here; the browser test will skip" >&2
  fi
fi
# librosa compiles its numba caches on first use (about 20 s); do it now, once.
"$PY" -c "import librosa, numpy; librosa.resample(numpy.zeros(1000, dtype='float32'), orig_sr=8000, target_sr=16000); librosa.feature.mfcc(y=numpy.zeros(4000, dtype='float32'), sr=8000)" >/dev/null 2>&1 || true
echo "setup: fewshot-audio installed ($("$PY" -c 'import torch; print("torch", torch.__version__)'))" >&2
