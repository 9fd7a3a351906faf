"""The written contracts: every registry of the package uses the one helper with its family's interface, and every
registered member is built and used through that interface; no library message names a command-line flag."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import fewshot_audio
from fewshot_audio.util.registry import Registry

PACKAGE = Path(fewshot_audio.__file__).parent


def all_registries() -> dict[str, Registry]:
    """Every module-level :class:`Registry` of the package, by ``module.NAME`` (each module imported)."""
    found: dict[str, Registry] = {}
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="fewshot_audio."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, Registry) and value.module == info.name:  # where it is defined, not re-exported
                found[f"{info.name}.{name}"] = value
    return found


def _tone(path: Path, seconds: float = 3.0, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.01 * np.random.default_rng(0).normal(size=t.size)
    for onset in (0.5, 1.2, 1.9, 2.5):
        k = (t >= onset) & (t < onset + 0.15)
        y[k] += 0.5 * np.sin(2 * np.pi * 1500 * t[k])
    sf.write(path, y.astype(np.float32), sr)
    return path


EXAMPLES = np.array([[0.5, 0.65], [1.2, 1.35]])


def use_strategy(name, cls, tmp):
    from fewshot_audio.models.backbones import build_backbone

    shape = (1, 16, 20)
    backbone = build_backbone(cls.backbone_name or "conv4", input_shape=shape, channels=8)
    s = cls(backbone=backbone, device=torch.device("cpu"), n_classes=4, n_way=3, episodes=2)
    s.prepare(torch.randn(12, *shape))
    s.fit(torch.randn(6, *shape), torch.arange(3).repeat_interleave(2))
    assert s.predict(torch.randn(5, *shape)).shape == (5, 3)


def use_backbone(name, cls, tmp):
    shape = {"waveform": (1, 16000)}.get(cls.input_kind, (1, 64, 64))
    net = cls(input_shape=shape, channels=8).eval()
    assert net(torch.randn(2, *shape)).shape == (2, net.embedding_dim)
    assert isinstance(net.trainable, bool)


def use_head(name, cls, tmp):
    head = cls()
    zs = torch.nn.functional.normalize(torch.randn(8, 6), dim=1)
    params = head.fit(zs, torch.tensor([True] * 4 + [False] * 4))
    assert params.shape == (head.width(6),)
    assert head.scores(zs, params[None]).shape == (8, 1)


def use_front_end(name, cls, tmp):
    from fewshot_audio.config import FeatureConfig

    config = FeatureConfig(kind=name, duration=0.5)
    front = cls()
    out = front.module(config)(torch.randn(2, config.n_samples))
    assert tuple(out.shape) == (2, *front.shape(config))


def use_dataset_layout(name, cls, tmp):
    assert cls().matches(tmp) is False  # an empty folder is in no layout
    assert name in cls.name and cls.labels


def use_source(name, cls, tmp):
    from fewshot_audio.detection.detectors import DetectorSettings

    if cls.name == "embedding":
        from fewshot_audio.models.pretrained.weights import cached
        from fewshot_audio.specs import get

        if not cached(get("yamnet").source, get("yamnet").weights_file):
            return  # needs the fetched YAMNet weights; the class still had to implement the interface to register
    src = cls(DetectorSettings(source=name, embedding="yamnet"), EXAMPLES)
    first, x = next(iter(src.blocks(_tone(tmp / "r.wav"))))
    assert first == 0 and x.ndim == 2 and src.fps > 0 and src.window >= 1


def use_window_classifier(name, cls, tmp):
    from fewshot_audio.detection.detectors import DetectorSettings

    rng = np.random.default_rng(0)
    clf = cls(DetectorSettings(classifier=name, negative_prototypes=3))
    clf.fit(rng.normal(2, 1, (10, 4)), rng.normal(0, 1, (40, 4)), seed=0)
    s = clf.scores(rng.normal(0, 1, (7, 4)))
    assert s.shape == (7,) and s.dtype == np.float32


def use_decoder(name, cls, tmp):
    from fewshot_audio.detection.detectors import DetectorSettings

    dec = cls(DetectorSettings(decoder=name))
    scores = np.r_[np.zeros(10), np.ones(5), np.zeros(10)].astype(np.float32)
    events, ev_scores = dec.decode(scores, np.arange(25), threshold=0.5, fps=10.0, window_frames=5, length_s=0.5,
                                   min_length_s=0.5)
    assert events.shape[1] == 2 and len(events) == len(ev_scores) >= 1


def use_detector(name, settings, tmp):
    from fewshot_audio.detection.detectors import Detector
    from fewshot_audio.detection.sources import DESCRIPTOR_SOURCES

    assert settings.source in DESCRIPTOR_SOURCES and settings.description
    det = Detector(name, settings)
    assert det.threshold == settings.threshold


def use_pretrained_model(name, model, tmp):
    from fewshot_audio.specs import MODEL_FRONT_ENDS, WEIGHTS_SOURCES

    assert model.front_end.kind in MODEL_FRONT_ENDS and model.source.name in WEIGHTS_SOURCES
    assert model.default_layer in model.layers and isinstance(model.build(), torch.nn.Module)


def use_weights_source(name, source, tmp):
    assert callable(source.convert) and source.package and source.version


def use_model_front_end(name, spec, tmp):
    out = spec.build()(torch.zeros(1, spec.window_samples))
    assert out.shape[:3] == (1, 1, spec.n_bins) and out.shape[-1] == spec.frames(spec.window_samples)


def use_probe_architecture(name, cls, tmp):
    net = cls(seed=0, maps=64)
    x = torch.randn(1, 1, 16000) if cls.input_kind == "waveform" else torch.randn(1, 1, 96, 64)
    assert net(x).ndim == 1


def use_probe_classifier(name, cls, tmp):
    clf = cls()
    assert hasattr(clf.estimator(0), "fit") and clf.grid(10)


def use_datasize_model(name, cls, tmp):
    crop = 12000 if cls.input_kind == "waveform" else 64
    net, dim = cls().build(crop=crop, channels=8)
    x = torch.randn(2, 1, crop) if cls.input_kind == "waveform" else torch.randn(2, 1, 96, crop)
    assert net.eval()(x).shape == (2, dim)


def use_preset(name, preset, tmp):
    assert preset.sizes and preset.draws >= 1


def use_review_layout(name, cls, tmp):
    assert cls().recognises("") in (False, True)


def use_review_order(name, cls, tmp):
    from fewshot_audio.review.items import Item

    items = [Item(f"{i}.wav", 0.0, 1.0, "t", float(i)) for i in range(8)]
    assert sorted(cls().order(items, seed=0).tolist()) == list(range(8))


USES = {
    "fewshot_audio.fewshot.strategies.base.STRATEGIES": use_strategy,
    "fewshot_audio.models.backbones.base.BACKBONES": use_backbone,
    "fewshot_audio.tagging.heads.HEADS": use_head,
    "fewshot_audio.features.frontends.FRONT_ENDS": use_front_end,
    "fewshot_audio.data.adapters.LAYOUTS": use_dataset_layout,
    "fewshot_audio.detection.sources.DESCRIPTOR_SOURCES": use_source,
    "fewshot_audio.detection.classifiers.WINDOW_CLASSIFIERS": use_window_classifier,
    "fewshot_audio.detection.decoders.EVENT_DECODERS": use_decoder,
    "fewshot_audio.detection.detectors.DETECTORS": use_detector,
    "fewshot_audio.specs.MODELS": use_pretrained_model,
    "fewshot_audio.specs.WEIGHTS_SOURCES": use_weights_source,
    "fewshot_audio.specs.MODEL_FRONT_ENDS": use_model_front_end,
    "fewshot_audio.studies.architectures.ARCHITECTURES": use_probe_architecture,
    "fewshot_audio.studies.classifiers.CLASSIFIERS": use_probe_classifier,
    "fewshot_audio.studies.datasize.MODELS": use_datasize_model,
    "fewshot_audio.studies.datasize.PRESETS": use_preset,
    "fewshot_audio.review.items.LAYOUTS": use_review_layout,
    "fewshot_audio.review.order.ORDERS": use_review_order,
}


def test_every_registry_is_known_here_and_names_its_interface():
    found = all_registries()
    assert set(found) == set(USES), "a registry was added or removed: give it a use_* function in USES"
    for key, registry in found.items():
        assert registry.base is not None, f"{key} declares no interface (Registry(..., base=...))"
        assert len(registry) >= 1, key


@pytest.mark.parametrize("key", sorted(USES))
def test_every_member_is_used_through_its_interface(key, tmp_path):
    registry = all_registries()[key]
    for name, member in registry.items():
        if isinstance(member, type):
            assert issubclass(member, registry.base), (key, name)
        else:
            assert isinstance(member, registry.base), (key, name)
        USES[key](name, member, tmp_path)


def test_the_registry_refuses_duplicates_wrong_kinds_and_names_the_closest():
    class Part:
        name = "part"

    reg = Registry("part", base=Part)
    reg.register()(type("A", (Part,), {"name": "alpha"}))
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("alpha", Part)
    with pytest.raises(TypeError, match="does not implement Part"):
        reg.add("beta", int)
    from fewshot_audio.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown part 'alpah' \(did you mean 'alpha'\?\); registered: alpha"):
        reg.get("alpah")


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
PIP_FLAGS = {"--no-deps", "--quiet"}  # pip's own options, in the pip command the weights fetcher runs


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in node.body:  # the docstring, and the docstrings written under module-level names
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                    lines.add(stmt.value.lineno)
    return lines


def test_no_library_message_names_a_command_line_flag():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text())
        docs = _docstring_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.lineno not in docs:
                flags = set(FLAG.findall(node.value)) - PIP_FLAGS
                if flags:
                    hits.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {sorted(flags)}")
    assert not hits, "library messages name parameters (name=value); only cli/ names flags:\n" + "\n".join(hits)


def test_the_cli_turns_parameter_names_into_its_flags(tmp_path, capsys):
    from fewshot_audio.cli import main

    (tmp_path / "x.csv").write_text("a")
    assert main(["detect", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'x.csv'} exists" in err and "--overwrite" in err and "out=" not in err
