"""The built-in dataset: procedurally synthesized sound classes (synthetic, not real audio).

120 classes in six clearly different sound families (harmonic timbres, plucked
strings, struck modal bodies, filtered noises, chirps, amplitude/frequency
modulations), 20 classes per family and 24 clips per class. A class fixes the
*timbre* (spectral envelope, decay, mode ratios, band shape, sweep or modulation
pattern); every clip draws its own pitch, loudness, length, onset, background
noise and gain, so a model has to learn what stays constant within a class.
Generation is deterministic in ``seed`` and takes a few seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from fewshot_audio.util.progress import progress

FAMILIES = ("harmonic", "plucked", "struck", "noise", "chirp", "modulated")
CLASSES_PER_FAMILY = 20
CLIPS_PER_CLASS = 24
SAMPLE_RATE = 16000
CLIP_SECONDS = 1.0
VERSION = "v1"


def class_names() -> list[str]:
    """The built-in synthetic dataset's class names, ``FAMILY-NN``, in order."""
    return [f"{family}-{i:02d}" for family in FAMILIES for i in range(CLASSES_PER_FAMILY)]


def _class_params(family: str, index: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, FAMILIES.index(family), index, 1])
    p: dict = {}
    if family == "harmonic":
        n = 16
        tilt = rng.uniform(0.3, 2.0)
        p["amps"] = (np.arange(1, n + 1) ** -tilt) * rng.uniform(0.05, 1.0, n) ** 2
        if rng.random() < 0.3:  # clarinet-like: odd harmonics only
            p["amps"][1::2] *= 0.05
        p["formant"] = rng.uniform(400, 3500)
        p["formant_width"] = rng.uniform(0.3, 1.2)
        p["attack"] = rng.uniform(0.005, 0.25)
        p["vibrato"] = rng.uniform(0, 0.02)
        p["pitch"] = (110, 520)
    elif family == "plucked":
        p["decay"] = rng.uniform(0.08, 1.0)
        p["bright"] = rng.uniform(0.5, 3.0)
        p["inharm"] = rng.choice([0.0, rng.uniform(1e-4, 3e-3)])
        p["pluck_pos"] = rng.uniform(0.05, 0.5)
        p["pitch"] = (80, 700)
    elif family == "struck":
        n = int(rng.integers(3, 8))
        p["ratios"] = np.sort(np.concatenate([[1.0], rng.uniform(1.2, 9.0, n - 1)]))
        p["mode_amps"] = rng.uniform(0.2, 1.0, n)
        p["decays"] = rng.uniform(0.03, 0.8, n)
        p["noise_click"] = rng.uniform(0, 0.5)
        p["pitch"] = (150, 900)
    elif family == "noise":
        p["centre"] = float(np.exp(rng.uniform(np.log(200), np.log(5000))))
        p["q"] = float(np.exp(rng.uniform(np.log(0.5), np.log(12))))
        p["burst_rate"] = rng.choice([0.0, rng.uniform(3, 16)])
        p["duty"] = rng.uniform(0.2, 0.7)
        p["pitch"] = (0.8, 1.25)  # relative shift of the band
    elif family == "chirp":
        p["octaves_per_s"] = rng.uniform(0.5, 6.0) * rng.choice([-1, 1])
        p["n_harm"] = int(rng.integers(1, 6))
        p["repeats"] = int(rng.integers(1, 5))
        p["pitch"] = (250, 1600)
    else:  # modulated
        p["am_rate"] = rng.uniform(2, 40)
        p["am_depth"] = rng.uniform(0.0, 1.0)
        p["fm_rate"] = rng.uniform(1, 25)
        p["fm_depth"] = rng.uniform(0.0, 0.15)
        p["n_harm"] = int(rng.integers(1, 8))
        p["pitch"] = (150, 1000)
    return p


def _envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / max(attack, 1e-4))
    tail = np.minimum(1.0, (n / sr - t) / max(release, 1e-4))
    return env * np.clip(tail, 0, 1)


def _harmonic_sum(f0_track: np.ndarray, amps: np.ndarray, sr: int, ratios: np.ndarray | None = None) -> np.ndarray:
    """Additive synthesis: partials at ``ratios`` (default 1..n) of a time-varying f0."""
    ratios = np.arange(1, len(amps) + 1) if ratios is None else ratios
    phase = 2 * np.pi * np.cumsum(f0_track) / sr
    freqs = ratios[:, None] * f0_track[None, :]
    alive = freqs < sr / 2 * 0.95
    return (amps[:, None] * alive * np.sin(ratios[:, None] * phase[None, :])).sum(axis=0)


def _bandpass_noise(rng: np.random.Generator, n: int, sr: int, centre: float, q: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    width = centre / q
    spec *= np.exp(-0.5 * ((f - centre) / width) ** 2)
    return np.fft.irfft(spec, n)


def synthesize_clip(family: str, params: dict, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One clip of ``CLIP_SECONDS`` seconds; shape ``(samples,)``, float32 in [-1, 1]."""
    total = int(CLIP_SECONDS * sr)
    length = int(rng.uniform(0.45, 1.0) * total)
    t = np.arange(length) / sr
    lo, hi = params["pitch"]
    pitch = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if family == "harmonic":
        f0 = pitch * (1 + params["vibrato"] * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
        ratios = np.arange(1, len(params["amps"]) + 1)
        formant = np.exp(-0.5 * (np.log(ratios * pitch / params["formant"]) / params["formant_width"]) ** 2)
        x = _harmonic_sum(f0, params["amps"] * (0.3 + formant), sr)
        x *= _envelope(length, sr, params["attack"], 0.05)
    elif family == "plucked":
        n = 24
        k = np.arange(1, n + 1)
        ratios = k * np.sqrt(1 + params["inharm"] * k**2)
        amps = np.abs(np.sin(np.pi * k * params["pluck_pos"])) / k ** (params["bright"] / 2)
        decays = params["decay"] / (1 + 0.15 * params["bright"] * (k - 1))
        phase = 2 * np.pi * pitch * t
        alive = ratios * pitch < sr / 2 * 0.95
        x = (alive[:, None] * amps[:, None] * np.exp(-t[None, :] / decays[:, None])
             * np.sin(ratios[:, None] * phase[None, :])).sum(0)
    elif family == "struck":
        ratios, decays = params["ratios"], params["decays"]
        alive = ratios * pitch < sr / 2 * 0.95
        x = (alive[:, None] * params["mode_amps"][:, None] * np.exp(-t[None, :] / decays[:, None])
             * np.sin(2 * np.pi * ratios[:, None] * pitch * t[None, :] + rng.uniform(0, 6.3, (len(ratios), 1)))).sum(0)
        click = rng.standard_normal(length) * np.exp(-t / 0.004) * params["noise_click"]
        x = x + click
    elif family == "noise":
        x = _bandpass_noise(rng, length, sr, min(params["centre"] * pitch, sr * 0.45), params["q"])
        if params["burst_rate"] > 0:
            gate = ((t * params["burst_rate"] + rng.random()) % 1.0) < params["duty"]
            x *= np.convolve(gate.astype(float), np.hanning(64) / 32, mode="same")
        x *= _envelope(length, sr, 0.01, 0.02)
    elif family == "chirp":
        seg = length // params["repeats"]
        ts = (np.arange(length) % seg) / sr
        f0 = pitch * 2.0 ** (params["octaves_per_s"] * ts)
        f0 = np.clip(f0, 40, sr * 0.45)
        x = _harmonic_sum(f0, 1.0 / np.arange(1, params["n_harm"] + 1), sr)
        x *= np.sin(np.pi * (ts / (seg / sr))) ** 0.5
    else:  # modulated
        f0 = pitch * (1 + params["fm_depth"] * np.sin(2 * np.pi * params["fm_rate"] * t))
        x = _harmonic_sum(f0, 1.0 / np.arange(1, params["n_harm"] + 1), sr)
        x *= 1 - params["am_depth"] * 0.5 * (1 + np.sin(2 * np.pi * params["am_rate"] * t + rng.uniform(0, 6.3)))
        x *= _envelope(length, sr, 0.02, 0.05)
    x = x / (np.abs(x).max() + 1e-9)
    out = np.zeros(total)
    start = int(rng.integers(0, total - length + 1))
    out[start : start + length] = x * 10 ** (rng.uniform(-12, 0) / 20)
    # background: coloured noise at 10-35 dB below the signal
    noise = rng.standard_normal(total)
    noise = np.cumsum(noise) * rng.uniform(0, 0.05) + noise * (1 - rng.uniform(0, 0.8))
    noise -= noise.mean()
    sig_rms = np.sqrt(np.mean(out**2)) + 1e-9
    noise *= sig_rms / (np.sqrt(np.mean(noise**2)) + 1e-9) * 10 ** (-rng.uniform(10, 35) / 20)
    out = (out + noise) * 10 ** (rng.uniform(-10, 0) / 20)
    return np.clip(out, -1, 1).astype(np.float32)


def default_root(cache_dir: Path, seed: int = 0) -> Path:
    """Where the built-in dataset of ``seed`` is generated under ``cache_dir``."""
    return Path(cache_dir) / "datasets" / f"synthetic-{VERSION}-seed{seed}"


def ensure_synthetic(cache_dir: Path, *, seed: int = 0, quiet: bool = False) -> Path:
    """Generate the built-in dataset into ``cache_dir`` once (folder-per-class WAVs); return its root."""


    root = default_root(cache_dir, seed)
    if (root / "COMPLETE").exists():
        return root
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    names = class_names()
    for ci, name in enumerate(progress(names, desc="synthesizing built-in dataset", quiet=quiet)):
        family, index = name.rsplit("-", 1)
        params = _class_params(family, int(index), seed)
        (tmp / name).mkdir(parents=True, exist_ok=True)
        for j in range(CLIPS_PER_CLASS):
            rng = np.random.default_rng([seed, ci, j, 2])
            sf.write(str(tmp / name / f"{name}_{j:02d}.wav"), synthesize_clip(family, params, rng), SAMPLE_RATE,
                     subtype="PCM_16")
    (tmp / "README.txt").write_text(
        "fewshot-audio built-in SYNTHETIC dataset (procedurally generated, not real recordings).\n"
        f"{len(names)} classes x {CLIPS_PER_CLASS} clips, {SAMPLE_RATE} Hz, {CLIP_SECONDS} s, seed {seed}.\n"
    )
    (tmp / "COMPLETE").write_text("ok\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root
