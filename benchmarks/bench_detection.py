"""Few-shot detection on real recordings with the official DCASE Task 5 metric, every row next to two floors.

* ``--birdsong``: ../shared/data/birdsong_gy6or6 (real Bengalese finch song, 22 syllable episodes, 601 events):
  the default detector, the floors, what each part of the default adds (``shape`` without the network,
  ``protonet-tuned`` without the log-mel descriptors, ``protonet-lr`` without fine-tuning either, ``protonet`` the
  prototypes alone), ablations of the default (below; one on an untrained network), the official F (one subset)
  and the mean per-episode F with its 95% CI.
* ``--mixtures``: seeded mixtures built here from the real one-shots of ../shared/data/kenney_impact and
  body_percussion in the real backgrounds of ../shared/data/backgrounds: per episode, 60 s of one background,
  20 events of one class (the first five are the examples) and 20 of other classes of the same set, at an
  event-to-background RMS ratio of +10, 0 or -10 dB (each event's RMS over its own length, leading and trailing
  silence trimmed at 40 dB below its peak, against the background excerpt's RMS, +-3 dB jitter), none
  overlapping; 8 episodes per set and level. The default detector, the two floors, ``shape``, ``protonet-tuned``
  and the default on an untrained network.
* ``--extra shape-self,yamnet``: more detectors in both sections (``--only-extra``: only those): ``shape``
  adapted to the unlabelled recording (one round of self-training), and YAMNet's embeddings instead of log-mel
  windows; ``untrained``: the default on the shipped network's architecture with its initial weights (the control
  row of meta-training, in both sections by default).
* ``--speed``: one hour of real audio (the finch recording tiled), ``detect`` with the default detector: seconds
  and peak memory (this process's maximum RSS) for the hour.
* ``--meta-train DIR``: the training set of the shipped network (:func:`make_training_set`: spoken-word
  mixtures) and its meta-training into ``DIR/detector.pt`` (what ``fewshot_audio/detection/weights/`` holds);
  ``--weights`` makes the other sections use another network than the shipped one.

The floors are the two the issue measured, as registered detectors: ``stats`` (logistic regression on band mean
and std of windows as long as the examples, every quarter window, probability 0.5, windows above it merged) and
``template`` (cosine to the examples minus cosine to the negatives, midpoint threshold).

    python benchmarks/bench_detection.py --meta-train /tmp/protonet --birdsong --mixtures --speed --extra shape-self
    python benchmarks/bench_detection.py --speed --hours 2
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from common import DATA

from fewshot_audio.data.audio import load_audio
from fewshot_audio.detection import detectors as registry
from fewshot_audio.detection.episodes import dataset_episodes
from fewshot_audio.detection.metric import evaluate, read_references
from fewshot_audio.detection.pipeline import detect, fit, run_episode
from fewshot_audio.fewshot.metrics import mean_ci95

FLOORS = ("stats", "template")
MIX_SR, MIX_SECONDS, N_TARGET, N_OTHER, EPISODES = 32000, 60.0, 20, 20, 8


def ablation(name: str, **settings) -> str:
    """A variant of the default detector, registered under ``name`` for this benchmark."""
    registry.DETECTORS.add(name, registry.DETECTORS.get(registry.DEFAULT_DETECTOR).replace(**settings))
    return name


ABLATIONS = {
    "default, band mean + std only (no shape in time)": dict(segments=1),
    "default, probability 0.5": dict(threshold=0.5),
    "default, windows merged instead of peaks": dict(decoder="merge"),
    "default, raw log-mel (no band reference)": dict(band_reference=False),
    "default, shifts up to a quarter window": dict(shift=0.25),
    "default without fine-tuning": dict(tune_steps=0),
}
COMPARED = ("shape", "protonet-tuned", "protonet-lr", "protonet")  # item 3: what the network, tuning and shape add
UNTRAINED = "default on an untrained network (random initial weights)"


def untrained_weights(folder: Path) -> str:
    """The shipped network's architecture with its seeded initial weights, never trained: the control row."""
    import torch

    from fewshot_audio.detection.network import PATCH
    from fewshot_audio.models.backbones.frame_tcn import FrameTCN
    from fewshot_audio.models.checkpoints import save_checkpoint

    torch.manual_seed(0)
    path = folder / "untrained.pt"
    save_checkpoint(path, {"backbone": FrameTCN(input_shape=(1, 64, PATCH)).state_dict(), "step": 0})
    return str(path)


def score(root: Path, detector: str, weights: str | None = None) -> dict:
    found = dataset_episodes(root)
    assert not found.problems, found.problems
    t0 = time.perf_counter()
    preds = {ep.audio_name: run_episode(ep, detector, weights=weights).events for ep in found.episodes}
    seconds = time.perf_counter() - t0
    report = evaluate(preds, read_references(root))
    per_episode = [report["scores_per_audiofile"][ep.audio_name]["f-measure"] for ep in found.episodes]
    o = report["overall_scores"]
    return {"F": o["fmeasure (percentage)"], "P": 100 * o["precision"], "R": 100 * o["recall"],
            "episode_F": [100 * v for v in mean_ci95(per_episode)], "episodes": len(per_episode), "seconds": round(seconds, 1)}


def trimmed(path: Path) -> np.ndarray:
    import librosa

    y = load_audio(path, sample_rate=MIX_SR)
    return librosa.effects.trim(y, top_db=40)[0]


def class_clips(source: str, *, per_class: int | None = None) -> dict[str, list[np.ndarray]]:
    """The trimmed clips of each class of a set in ../shared/data: a folder per class, or fsdd's ``DIGIT_SPEAKER_I.wav``
    (at most ``per_class`` per class, in name order)."""
    root = DATA / source
    if source == "fsdd":
        files = sorted((root / "recordings").glob("*.wav"))
        by: dict[str, list[Path]] = {}
        for f in files:
            by.setdefault(f"digit{f.name.split('_')[0]}", []).append(f)
    else:
        by = {c.name: [f for f in sorted(c.iterdir()) if f.suffix in (".wav", ".ogg", ".flac")]
              for c in sorted(p for p in root.iterdir() if p.is_dir())}
    return {c: [trimmed(f) for f in fs[:per_class]] for c, fs in by.items()}


def write_mixture(folder: Path, name: str, clips: dict[str, list[np.ndarray]], target: str, background: Path,
                  snr_db: float, rng: np.random.Generator) -> None:
    """``MIX_SECONDS`` of ``background`` with ``N_TARGET`` events of ``target`` and ``N_OTHER`` of other classes at
    ``snr_db`` (+-3 dB), none overlapping; ``name.wav`` and its Q table (the target's events) in ``folder``."""
    bg = load_audio(background, sample_rate=MIX_SR)
    n = int(MIX_SECONDS * MIX_SR)
    start = int(rng.integers(0, max(1, len(bg) - n)))
    y = np.resize(bg[start:], n).astype(np.float64)
    bg_rms = np.sqrt(np.mean(y**2)) + 1e-9
    others = [c for c in clips if c != target]
    kinds = [target] * N_TARGET + [others[i] for i in rng.integers(0, len(others), N_OTHER)]
    sounds = [clips[k][int(rng.integers(0, len(clips[k])))] for k in kinds]
    slot = n // len(kinds)  # one event per slot, at a random place inside it: no overlaps
    order = rng.permutation(len(kinds))
    events = []
    for s, i in enumerate(order):
        x = sounds[i]
        x = x[: slot - 1]
        gain = bg_rms * 10 ** ((snr_db + rng.uniform(-3, 3)) / 20) / (np.sqrt(np.mean(x**2)) + 1e-9)
        at = s * slot + int(rng.integers(0, slot - len(x)))
        y[at : at + len(x)] += gain * x
        if kinds[i] == target:
            events.append((at / MIX_SR, (at + len(x)) / MIX_SR))
    peak = np.abs(y).max()
    sf.write(folder / f"{name}.wav", (y / peak * 0.9).astype(np.float32), MIX_SR, subtype="PCM_16")
    with open(folder / f"{name}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Audiofilename", "Starttime", "Endtime", "Q"])
        for a, b in sorted(events):
            w.writerow([f"{name}.wav", f"{a:.4f}", f"{b:.4f}", "POS"])


def make_mixtures(folder: Path, source: str, snr_db: float, *, seed: int) -> None:
    """``EPISODES`` mixtures of ``source`` at ``snr_db`` into ``folder`` (one subset), each with its Q table."""
    rng = np.random.default_rng(seed)
    clips = class_clips(source)
    classes = sorted(clips)
    backgrounds = sorted((DATA / "backgrounds").glob("*.wav"))
    folder.mkdir(parents=True, exist_ok=True)
    for e in range(EPISODES):
        target = classes[(seed + e * 3) % len(classes)]
        write_mixture(folder, f"{source}_{snr_db:+.0f}dB_{e}_{target}", clips, target, backgrounds[e % len(backgrounds)],
                      snr_db, rng)


def make_training_set(folder: Path, *, per_class: int = 3, seed: int = 7) -> None:
    """The meta-training set of ``protonet``: mixtures of spoken words (speech_commands_30, 30 words) and digits
    (fsdd, 10 digits, 40 clips each), ``per_class`` per class, every event of the target annotated, at an SNR drawn
    from -10 to +15 dB, in the four real backgrounds. No finch song and no impact or body-percussion sound: the
    evaluation sets share no event class with it (the backgrounds are the mixtures' own)."""
    rng = np.random.default_rng(seed)
    backgrounds = sorted((DATA / "backgrounds").glob("*.wav"))
    folder.mkdir(parents=True, exist_ok=True)
    for source in ("speech_commands_30", "fsdd"):
        clips = class_clips(source, per_class=40)
        for target in sorted(clips):
            for i in range(per_class):
                write_mixture(folder, f"{source}_{target}_{i}", clips, target,
                              backgrounds[int(rng.integers(0, len(backgrounds)))], float(rng.uniform(-10, 15)), rng)


def speed(out: dict, hours: float = 1.0, detector: str = registry.DEFAULT_DETECTOR) -> None:
    rec = DATA / "birdsong_gy6or6" / "recordings" / "gy6or6_0.wav"
    table = DATA / "birdsong_gy6or6" / "episodes" / "gy6or6_0__syllable_a.csv"
    with tempfile.TemporaryDirectory() as tmp:
        y = load_audio(rec, sample_rate=32000)
        hour = Path(tmp) / "hour.wav"
        with sf.SoundFile(hour, "w", samplerate=32000, channels=1, subtype="PCM_16") as fh:
            written = 0
            total = int(hours * 3600 * 32000)
            while written < total:
                part = y[: total - written]
                fh.write(part)
                written += len(part)
        from fewshot_audio.detection.episodes import table_episodes

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        episodes = table_episodes([rec], table)
        fitted = fit(episodes[0], detector)
        t1 = time.perf_counter()
        found = detect(fitted, hour)
        t2 = time.perf_counter()
        key = ("speed" if hours == 1 else f"speed_{hours:g}h") + ("" if detector == registry.DEFAULT_DETECTOR else
                                                                   f"_{detector}")
        out[key] = {"detector": detector, "audio_s": hours * 3600, "fit_s": round(t1 - t0, 1), "detect_s": round(t2 - t1, 1),
                        "real_time_factor": round(hours * 3600 / (t2 - t0), 1), "events": len(found.events),
                        "hop_ms": round(1000 / fitted.source.fps, 2),
                        "max_rss_mb_before": rss0 // 1024,
                        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
        print(key, out[key], flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--birdsong", action="store_true")
    p.add_argument("--mixtures", action="store_true")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--extra", default="", help="more registered detectors for --birdsong and --mixtures (e.g. "
                   "shape-self,yamnet)")
    p.add_argument("--only-extra", action="store_true", help="run only the --extra detectors")
    p.add_argument("--hours", type=float, default=1.0, help="--speed: hours of audio")
    p.add_argument("--meta-train", metavar="DIR", help="build the word mixtures and meta-train protonet's network "
                   "into DIR (DIR/detector.pt); then --extra protonet,protonet-lr --weights DIR/detector.pt")
    p.add_argument("--meta-episodes", type=int, default=2000, help="--meta-train: meta-training steps")
    p.add_argument("--weights", help="another meta-trained network than the shipped one, for the protonet detectors")
    p.add_argument("--out", default="benchmarks/results_detection.json")
    args = p.parse_args(argv)
    out = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    if args.meta_train:
        from fewshot_audio.detection.meta import train_detector

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            make_training_set(Path(tmp) / "words")
            t1 = time.perf_counter()
            target = train_detector(Path(tmp) / "words", args.meta_train, episodes=args.meta_episodes)
            t2 = time.perf_counter()
        from fewshot_audio.models.checkpoints import load_checkpoint

        state = load_checkpoint(target)
        out["meta_training"] = {"episodes": args.meta_episodes, "groups": state["groups"],
                                "train_groups": state["train_groups"], "best_step": state["step"],
                                "val_accuracy": round(100 * state["val_accuracy"], 2),
                                "mixtures_s": round(t1 - t0, 1), "training_s": round(t2 - t1, 1)}
        print("meta_training", out["meta_training"], flush=True)
        Path(args.out).write_text(json.dumps(out, indent=1))
    if args.birdsong:
        res = out.setdefault("birdsong_gy6or6", {})
        extra = [e for e in args.extra.split(",") if e]
        rows = [(UNTRAINED, registry.DEFAULT_DETECTOR, "untrained") if e == "untrained" else (e, e, args.weights)
                for e in extra]
        if not args.only_extra:
            rows = [(name, name, args.weights) for name in (registry.DEFAULT_DETECTOR, *FLOORS, *COMPARED)] + \
                [(label, ablation(f"ablation{i}", **kw), args.weights) for i, (label, kw) in enumerate(ABLATIONS.items())] + \
                [(UNTRAINED, registry.DEFAULT_DETECTOR, "untrained")] + rows
        with tempfile.TemporaryDirectory() as tmp:
            for label, name, weights in rows:
                weights = untrained_weights(Path(tmp)) if weights == "untrained" else weights
                res[label] = score(DATA / "birdsong_gy6or6" / "episodes", name, weights)
                print("birdsong", label, res[label], flush=True)
                Path(args.out).write_text(json.dumps(out, indent=1))
    if args.mixtures:
        res = out.setdefault("mixtures", {})
        with tempfile.TemporaryDirectory() as tmp:
            for k, source in enumerate(("kenney_impact", "body_percussion")):
                for snr in (10.0, 0.0, -10.0):
                    folder = Path(tmp) / f"{source}{snr:+.0f}" / "MIX"
                    make_mixtures(folder, source, snr, seed=100 * k + int(snr) + 20)
                    row = res.setdefault(f"{source} {snr:+.0f} dB", {})
                    extra = [e for e in args.extra.split(",") if e]
                    names = extra if args.only_extra else [registry.DEFAULT_DETECTOR, *FLOORS, *COMPARED[:2], "untrained",
                                                           *extra]
                    for name in names:
                        label, weights = (UNTRAINED, untrained_weights(Path(tmp))) if name == "untrained" else \
                            (name, args.weights)
                        row[label] = score(folder.parent, registry.DEFAULT_DETECTOR if name == "untrained" else name,
                                           weights)
                        print("mixtures", source, snr, label, row[label], flush=True)
                    Path(args.out).write_text(json.dumps(out, indent=1))
    if args.speed:
        speed(out, args.hours)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def table(path: str) -> str:
    r = json.loads(Path(path).read_text())
    lines = []
    for section, rows in r.items():
        if section.startswith("speed") or section == "meta_training":
            continue
        lines += [f"**{section}**", "", "| detector / condition | F (official) | P | R | per-episode F | episodes |",
                  "|---|---|---|---|---|---|"]
        for k, v in rows.items():
            for name, m in ([(k, v)] if "F" in v else [(f"{k}: {n}", m) for n, m in v.items()]):
                lines.append(f"| {name} | {m['F']:.1f} | {m['P']:.1f} | {m['R']:.1f} | {m['episode_F'][0]:.1f} ± "
                             f"{m['episode_F'][1]:.1f} | {m['episodes']} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        print(table(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
