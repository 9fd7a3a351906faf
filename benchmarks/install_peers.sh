#!/usr/bin/env bash
# Installs the peer pipelines that benchmarks/bench_pipeline.py compares against (benchmarks only; the
# toolkit does not depend on them):
#   easyfsl 1.5.0 (MIT) with --no-deps: its TaskSampler needs only torch;
#   learn2learn 0.2.0 (MIT): its sdist's Cython-generated .c files do not compile on Python 3.11, so the
#   .pyx sources are re-cythonized with Cython 3 and built in place under benchmarks/.peers/.
# benchmarks/peers.py imports the needed submodules without the packages' top-level __init__
# (which pull in torchvision and gym).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m pip install -q --no-deps "easyfsl==1.5.0"
python3 -m pip install -q "cython>=3" setuptools
mkdir -p "$here/.peers"
cd "$here/.peers"
if [ ! -d learn2learn-0.2.0 ]; then
  python3 -m pip download -q --no-deps --no-binary :all: "learn2learn==0.2.0" -d .
  tar xzf learn2learn-0.2.0.tar.gz
  rm -rf learn2learn-0.2.0/.eggs
fi
cd learn2learn-0.2.0
python3 setup.py build_ext --inplace > build.log 2>&1 || { tail -20 build.log; exit 1; }
echo "peers ready: easyfsl $(python3 -c 'import importlib.metadata as m; print(m.version("easyfsl"))'), learn2learn 0.2.0 built in $PWD"
