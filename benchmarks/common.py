"""What several benchmarks share (imported as ``from common import ...``: a benchmark run as
``python benchmarks/NAME.py`` has this folder on its path): where the shared real data is, the floors every
toolkit path is measured against (whole-clip MFCC statistics with a nearest centroid), multi-label metrics, the
real sets and their seeded splits, and the finch song's annotations.

Nothing here is part of the package: it is the benchmarks' own reference code, tested where the package's tests use
it (``tests/fewshot/test_metrics.py``, ``test_mfcc_floor.py``, ``tests/models/test_musicnn.py``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fewshot_audio.data import build_manifest, validate_manifest
from fewshot_audio.data.audio import load_audio
from fewshot_audio.fewshot.metrics import average_precision, roc_auc

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
"""The small real datasets beside the repository (``../shared/data``), named in every measurement."""
FINCH = DATA / "birdsong_gy6or6" / "episodes"


def whole_clip_mfcc(path: str, *, sample_rate: int = 16000, n_mfcc: int = 20, frame_samples: int = 2048,
                    hop_samples: int | None = None) -> np.ndarray:
    """Mean and standard deviation over the whole clip of ``n_mfcc`` MFCCs: ``(2 n_mfcc,)``. Frames of
    ``frame_samples`` every ``hop_samples`` (default a quarter frame: librosa's defaults); a clip shorter than
    one frame gets the largest power-of-two frame it holds."""
    import librosa  # imported on use: its first import compiles numba code

    y = load_audio(path, sample_rate=sample_rate)
    n_fft = min(frame_samples, 1 << int(np.floor(np.log2(max(len(y), 64)))))
    hop = hop_samples or n_fft // 4
    m = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=min(hop, n_fft))
    return np.concatenate([m.mean(1), m.std(1)]).astype(np.float32)


def nearest_centroid(support: np.ndarray, support_labels: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Labels of ``query (m, d)`` by the nearest class centroid of ``support (n, d)``, after z-scoring every
    dimension with the support set's statistics."""
    mean, std = support.mean(0), support.std(0) + 1e-6
    s, q = (support - mean) / std, (query - mean) / std
    classes = np.unique(support_labels)
    centroids = np.stack([s[support_labels == c].mean(0) for c in classes])
    return classes[((q[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)]


def multilabel_metrics(scores: np.ndarray, targets: np.ndarray, *, thresholds: np.ndarray | float = 0.5,
                       tags: list[str] | None = None) -> dict:
    """Per-tag AP and ROC-AUC, mAP, macro ROC-AUC, micro and macro F1 at ``thresholds``.

    ``scores``, ``targets``: ``(n_clips, n_tags)``; tags without positives are left out of the means.
    """
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets).astype(bool)
    pred = scores >= np.asarray(thresholds)
    ap = np.array([average_precision(scores[:, j], targets[:, j]) for j in range(targets.shape[1])])
    auc = np.array([roc_auc(scores[:, j], targets[:, j]) for j in range(targets.shape[1])])
    tp, fp, fn = (pred & targets).sum(0), (pred & ~targets).sum(0), (~pred & targets).sum(0)
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    names = tags or [str(j) for j in range(targets.shape[1])]
    return {"mAP": float(np.nanmean(ap)), "roc_auc": float(np.nanmean(auc)), "micro_f1": float(micro),
            "macro_f1": float(np.nanmean(f1)),
            "per_tag": {n: {"ap": float(a), "roc_auc": float(r), "f1": float(f)} for n, a, r, f in zip(names, ap, auc, f1)}}


SETS = {"body_percussion": {}, "kenney_impact": {}, "speech_commands_30": {}, "fsdd": {"label": "digit", "per_class": 30}}
N_SUPPORT = 3


def load_set(name: str, seed: int = 0):
    """The clips and labels of real set ``name`` (a seeded subset of ``per_class`` clips per class where set)."""
    opts = SETS[name]
    manifest = validate_manifest(build_manifest(DATA / name, label=opts.get("label")))
    clips = manifest.clips
    labels = np.array([c.labels[0] for c in clips])
    if opts.get("per_class"):  # a seeded subset of large sets, to keep pretrained embedding time in minutes
        rng = np.random.default_rng(seed)
        keep = np.sort(np.concatenate([rng.choice(np.nonzero(labels == c)[0], opts["per_class"], replace=False)
                                       for c in np.unique(labels)]))
        clips, labels = [clips[i] for i in keep], labels[keep]
    return clips, labels


def splits(labels: np.ndarray, seeds: int, *, hold_out: float = 0.0):
    """(support idx, query idx, vocabulary classes, held-out query idx) per seed."""
    classes = np.unique(labels)
    for s in range(seeds):
        rng = np.random.default_rng([s, 17])
        held = rng.choice(classes, int(round(hold_out * len(classes))), replace=False) if hold_out else np.array([])
        vocab = np.setdiff1d(classes, held)
        support = np.concatenate([rng.choice(np.nonzero(labels == c)[0], N_SUPPORT, replace=False) for c in vocab])
        rest = np.setdiff1d(np.arange(len(labels)), support)
        yield support, rest[np.isin(labels[rest], vocab)], vocab, rest[np.isin(labels[rest], held)]


def label_of(path: str) -> str:
    """``set:class`` of a clip of the shared sets (fsdd: its digit)."""
    p = Path(path)
    if p.parent.name == "recordings":  # fsdd: digit_speaker_take.wav
        return "fsdd:" + p.name.split("_")[0]
    return f"{p.parent.parent.name}:{p.parent.name}"


def events_of(table: Path) -> np.ndarray:
    """The POS events ``(n, 2)`` seconds of a DCASE annotation table."""
    with open(table) as fh:
        return np.array([(float(r["Starttime"]), float(r["Endtime"])) for r in csv.DictReader(fh) if r["Q"] == "POS"])


def iou(a: tuple[float, float], events: np.ndarray) -> float:
    """The highest intersection over union of span ``a`` with any of ``events (n, 2)``."""
    inter = np.clip(np.minimum(a[1], events[:, 1]) - np.maximum(a[0], events[:, 0]), 0, None)
    union = (a[1] - a[0]) + (events[:, 1] - events[:, 0]) - inter
    return float((inter / union).max()) if len(events) else 0.0


def musicnn_original(name: str):
    """The converted musicnn model ``name`` (e.g. ``MTT_musicnn``) taking the original's ``(n, 187, 96)`` patches, in
    eval mode, and its metadata: what the faithfulness checks compare with the original TensorFlow code (backbones
    use the registry)."""
    from fewshot_audio.models.pretrained import musicnn as mn
    from fewshot_audio.models.pretrained.weights import load_state

    state, meta = load_state(mn.SOURCE, name)
    model = mn.build_model(name)
    model.load_state_dict(state)
    return model.eval(), meta
