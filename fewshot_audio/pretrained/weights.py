"""``fewshot-audio weights fetch musicnn``: obtain the musicnn wheel, convert its checkpoints once.

The wheel ``musicnn==0.1.0`` is taken from a local file or folder (``--from``) or downloaded with
``pip download --no-deps``; each of its four TensorFlow checkpoints is read with numpy
(:mod:`.tf_checkpoint`, crc32c verified), mapped onto the PyTorch port and written to the cache as
safetensors with JSON metadata. Later runs only read the cache and never touch the network.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError, DataError
from ..io_utils import atomic_write, atomic_write_json, atomic_write_text
from ..progress import log
from ..runtime import cache_dir
from .musicnn import MODELS, build_model, convert_checkpoint
from .tf_checkpoint import read_checkpoint

MUSICNN_VERSION = "0.1.0"
NOTICE = ("musicnn models and weights: Copyright (c) 2019 Jordi Pons, ISC licence (see LICENSE.md); "
          "from the PyPI wheel musicnn==0.1.0, converted to PyTorch by fewshot-audio.")


def weights_dir() -> Path:
    return cache_dir() / "weights" / "musicnn"


def _unpack(source: Path, into: Path) -> Path:
    """The ``musicnn`` package folder from a wheel file or a folder holding one."""
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise DataError(f"{source} is not a wheel (zip) file; pass the musicnn-{MUSICNN_VERSION} wheel or its folder")
        with zipfile.ZipFile(source) as zf:
            meta = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            if meta:
                version = next((line.split(":", 1)[1].strip() for line in zf.read(meta[0]).decode().splitlines()
                                if line.startswith("Version:")), None)
                if version != MUSICNN_VERSION:
                    raise DataError(f"{source} is musicnn {version}; fewshot-audio converts musicnn {MUSICNN_VERSION} "
                                    f"(pip download --no-deps musicnn=={MUSICNN_VERSION})")
            zf.extractall(into)
        return into / "musicnn"
    if source.is_dir():
        wheels = sorted(source.glob("musicnn-*.whl"))
        if wheels:
            return _unpack(wheels[0], into)
        for candidate in (source / "musicnn", source):
            if (candidate / "MTT_musicnn" / ".index").is_file():
                return candidate
    raise DataError(f"no musicnn wheel or package folder found at {source}; pass --from the "
                    f"musicnn-{MUSICNN_VERSION}-py3-none-any.whl file")


def _download(into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"musicnn=={MUSICNN_VERSION}", "-d", str(into)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob("musicnn-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataError(f"could not download musicnn=={MUSICNN_VERSION} with pip (no network?); download the wheel "
                        "elsewhere and pass it with 'fewshot-audio weights fetch musicnn --from PATH'")
    return wheels[0]


def fetch_musicnn(source: str | Path | None = None) -> list[Path]:
    """Convert the four musicnn models into the cache; returns the written files."""
    out_dir = weights_dir()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = Path(source) if source else _download(tmp / "download")
        package = _unpack(wheel, tmp / "unpacked")
        written = []
        for name, labels in MODELS.items():
            prefix = f"{package / name}/"  # the files are named ".index", ".data-..." inside the folder
            if not (package / name / ".index").is_file():
                raise DataError(f"{package / name} has no checkpoint (.index); is this the musicnn {MUSICNN_VERSION} wheel?")
            state = convert_checkpoint(name, read_checkpoint(prefix))
            model = build_model(name)
            model.load_state_dict(state)  # strict: every tensor mapped
            digest = hashlib.sha256((package / name / ".data-00000-of-00001").read_bytes()).hexdigest()
            meta = {"model": name, "labels": labels, "source": f"musicnn=={MUSICNN_VERSION}", "data_sha256": digest,
                    "notice": NOTICE}
            from safetensors.torch import save_file

            path = out_dir / f"{name}.safetensors"
            atomic_write(path, lambda t: save_file(state, t, metadata={"fewshot_audio": json.dumps(meta)}))
            atomic_write_json(out_dir / f"{name}.json", meta)
            written.append(path)
            log(f"converted {name} -> {path}")
        licence = package.parent / f"musicnn-{MUSICNN_VERSION}.dist-info" / "LICENSE.md"
        if licence.is_file():
            shutil.copyfile(licence, out_dir / "LICENSE.md")
        atomic_write_text(out_dir / "NOTICE.txt", NOTICE + "\n")
    return written


def load_musicnn(name: str) -> tuple[torch.nn.Module, dict]:
    """The converted model ``name`` (e.g. ``MTT_musicnn``) in eval mode, and its metadata."""
    from safetensors.torch import load_file

    if name not in MODELS:
        raise CheckpointError(f"unknown musicnn model {name!r}; valid: {', '.join(MODELS)}")
    path = weights_dir() / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"musicnn weights are not in the cache ({path}); run 'fewshot-audio weights fetch musicnn' "
                              "(or '... --from WHEEL' without network)")
    model = build_model(name)
    model.load_state_dict(load_file(str(path)))
    return model.eval(), json.loads((weights_dir() / f"{name}.json").read_text())
