"""Speaker and channel augmentation of prepared shards: new voices, microphones and rooms.

A model trained on the talking-face clips hears about 35 voices, each through one microphone in
one room. :func:`augment_shards` writes, for every *training* clip of a shard folder, ``copies``
transformed versions of its speech into a new shard folder, with the clip's face targets carried
over (time-warped with the speech where the transform changes the speed). Training on the
original and the augmented folders together (``data: [prepared/av, prepared/av_aug]``) teaches a
model that these differences carry no facial information.

Transforms, each drawn anew per copy (seeded, so a rerun writes the same files):

- **speed perturbation** (Kaldi-style): resampling by a factor in ``speed`` (0.9-1.1) changes
  tempo and pitch together (a different vocal tract length); the targets are resampled onto the
  new frame grid by linear interpolation;
- **pitch-ish formant shift without tempo change** is not attempted (it needs a vocoder);
- **equalisation**: a random smooth gain curve over frequency (+-``eq_db`` dB at 6 random
  log-spaced control points), i.e. another microphone or telephone band;
- **reverberation**: convolution with a synthetic room impulse response (exponentially decaying
  noise, RT60 drawn in ``rt60``), mixed with the dry signal;
- **noise**: white or pink noise at an SNR drawn in ``snr_db``;
- **level**: a random gain (``gain_db``), with peak limiting so nothing clips.

Held-out clips (``exclude_groups``, e.g. the ``val_groups`` of a training config) are never
augmented, so validation stays on real recordings. Augmented clips keep their speaker group and
are named ``<clip>__aug<k>``.

Example:
    >>> from speechface.data.augment import augment_shards                     # doctest: +SKIP
    >>> augment_shards("prepared/av_mediapipe", "prepared/av_aug", copies=2,
    ...                exclude_groups=["person_aoc"])                            # doctest: +SKIP

Command line::

    speechface prepare augment prepared/av_mediapipe -o prepared/av_aug --copies 2 \\
        --exclude-groups-from configs/cause_cnn.yaml
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError
from .shards import SAMPLES_PER_FRAME, list_clips, read_clip, rebuild_manifest, write_clip

__all__ = ["augment_audio", "augment_shards", "AugmentSettings", "groups_from_config"]

log = logging.getLogger(__name__)
SR = 16000


class AugmentSettings:
    """Ranges of the random transforms (see the module docstring).

    Args:
        speed: ``(low, high)`` speed factor (1 = unchanged).
        eq_db: maximum gain of the random equaliser curve, in dB.
        rt60: ``(low, high)`` reverberation time in seconds; ``p_reverb`` the chance of reverb.
        snr_db: ``(low, high)`` signal-to-noise ratio; ``p_noise`` the chance of noise.
        gain_db: maximum level change in dB.
    """

    def __init__(self, speed: tuple[float, float] = (0.9, 1.1), eq_db: float = 10.0,
                 rt60: tuple[float, float] = (0.15, 0.7), p_reverb: float = 0.5,
                 snr_db: tuple[float, float] = (10.0, 35.0), p_noise: float = 0.6,
                 gain_db: float = 10.0) -> None:
        if not 0.5 <= speed[0] <= speed[1] <= 2.0:
            raise ValueError(f"speed range must be within [0.5, 2], low <= high, got {speed}")
        if not 0 <= eq_db <= 30 or not 0 <= gain_db <= 40:
            raise ValueError(f"eq_db must be in [0, 30] and gain_db in [0, 40], got {eq_db}, {gain_db}")
        if not 0 < rt60[0] <= rt60[1] <= 3.0:
            raise ValueError(f"rt60 range must be within (0, 3] s, got {rt60}")
        if not -10 <= snr_db[0] <= snr_db[1] <= 80:
            raise ValueError(f"snr_db range must be within [-10, 80], got {snr_db}")
        if not (0 <= p_reverb <= 1 and 0 <= p_noise <= 1):
            raise ValueError("p_reverb and p_noise are probabilities in [0, 1]")
        self.speed, self.eq_db, self.rt60, self.p_reverb = speed, eq_db, rt60, p_reverb
        self.snr_db, self.p_noise, self.gain_db = snr_db, p_noise, gain_db


def _speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (pitch moves with it): band-limited resampling."""
    if abs(factor - 1.0) < 1e-3:
        return x
    from ..audio.waveform import resample

    # resample from SR*factor to SR: the same samples read as a faster recording
    orig = int(round(SR * factor / 50)) * 50
    return resample(torch.from_numpy(x), orig, SR).numpy()


def _equalise(x: np.ndarray, rng: np.random.Generator, max_db: float) -> np.ndarray:
    n = len(x)
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    pts = np.geomspace(60.0, SR / 2, 6)
    gains = rng.uniform(-max_db, max_db, size=6)
    curve_db = np.interp(np.log(np.maximum(freqs, 60.0)), np.log(pts), gains)
    if rng.random() < 0.3:  # a telephone-like band now and then
        lo, hi = rng.uniform(150, 400), rng.uniform(3000, 5000)
        curve_db = curve_db - 30.0 * ((freqs < lo) | (freqs > hi))
    return np.fft.irfft(spec * 10 ** (curve_db / 20), n).astype(np.float32)


def _reverb(x: np.ndarray, rng: np.random.Generator, rt60: float) -> np.ndarray:
    n_ir = int(min(rt60 * 1.2, 1.0) * SR)
    t = np.arange(n_ir) / SR
    ir = rng.standard_normal(n_ir) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir[0] = 1.0 / max(rng.uniform(0.3, 1.5), 1e-3)  # direct path
    ir /= np.sqrt((ir ** 2).sum())
    m = len(x) + n_ir - 1
    size = 1 << (m - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x)]
    mix = rng.uniform(0.3, 0.9)
    return ((1 - mix) * x + mix * wet * (np.std(x) / max(np.std(wet), 1e-9))).astype(np.float32)


def _noise(x: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    n = rng.standard_normal(len(x))
    if rng.random() < 0.5:  # pink: 1/f power
        spec = np.fft.rfft(n)
        f = np.maximum(np.fft.rfftfreq(len(x), 1.0 / SR), 20.0)
        n = np.fft.irfft(spec / np.sqrt(f), len(x))
    p_sig = float(np.mean(x ** 2)) + 1e-12
    n *= math.sqrt(p_sig / (10 ** (snr_db / 10)) / (float(np.mean(n ** 2)) + 1e-12))
    return (x + n).astype(np.float32)


def augment_audio(audio: np.ndarray, rng: np.random.Generator,
                  settings: AugmentSettings | None = None) -> tuple[np.ndarray, float]:
    """One random transform of 16 kHz mono speech.

    Returns:
        ``(augmented audio, speed factor)``: the audio is ``len(audio) / speed`` samples long.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y, speed = augment_audio(np.zeros(16000, np.float32) + 0.01, rng)
        >>> abs(len(y) - 16000 / speed) < 50
        True
    """
    s = settings or AugmentSettings()
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1 or len(x) < SAMPLES_PER_FRAME:
        raise DataError(f"augment_audio needs 1-D audio of at least {SAMPLES_PER_FRAME} samples, "
                        f"got shape {x.shape}")
    speed = float(rng.uniform(*s.speed))
    x = _speed(x, speed)
    if s.eq_db > 0:
        x = _equalise(x, rng, s.eq_db)
    if rng.random() < s.p_reverb:
        x = _reverb(x, rng, float(rng.uniform(*s.rt60)))
    if rng.random() < s.p_noise:
        x = _noise(x, rng, float(rng.uniform(*s.snr_db)))
    x = x * 10 ** (rng.uniform(-s.gain_db, s.gain_db) / 20)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak > 0.99:
        x = x * (0.99 / peak)
    return x.astype(np.float32), speed


def _warp_track(track: np.ndarray, speed: float, n_new: int) -> np.ndarray:
    """Targets on the 25 fps grid of the sped-up audio: frame ``m`` at ``m * speed`` old frames."""
    old_t = np.arange(len(track), dtype=np.float64)
    new_t = np.arange(n_new, dtype=np.float64) * speed
    flat = track.reshape(len(track), -1).astype(np.float64)
    out = np.stack([np.interp(new_t, old_t, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape((n_new,) + track.shape[1:]).astype(track.dtype)


def augment_shards(src: str | Path, out: str | Path, *, copies: int = 2,
                   exclude_groups: Iterable[str] = (), settings: AugmentSettings | None = None,
                   seed: int = 0, overwrite: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Write ``copies`` augmented versions of every clip of ``src`` not in ``exclude_groups``.

    Each output clip has the source's arrays with ``audio`` replaced, ``features`` dropped (the
    trainer computes the model's own features from the audio) and every per-frame array
    (``targets_*``, ``blendshapes``, ``mask``) moved onto the new frame grid. Clips already
    written are skipped unless ``overwrite``.

    Returns:
        The merged manifest records of ``out``.

    Raises:
        DataError: ``src`` holds no clips, or ``copies`` is out of range.
    """
    if not 1 <= int(copies) <= 20:
        raise DataError(f"copies must be within 1..20, got {copies}")
    src, out = Path(src), Path(out)
    if src.resolve() == out.resolve():
        raise DataError(f"{out}: the augmented shards must go to another folder than {src}")
    records = list_clips(src)
    if not records:
        raise DataError(f"{src}: no prepared clips (run 'speechface prepare av' first)")
    excluded = set(exclude_groups)
    todo = [r for r in records if r.get("speaker", r["name"]) not in excluded]
    out.mkdir(parents=True, exist_ok=True)
    done = {p.stem for p in out.glob("*.npz")} if not overwrite else set()
    it: Sequence[dict[str, Any]] = todo
    if progress:
        from tqdm import tqdm

        it = tqdm(todo, desc="prepare augment", unit="clip", file=sys.stderr)
    for i, rec in enumerate(it):
        names = [f"{rec['name']}__aug{k}" for k in range(copies)]
        if all(n in done for n in names):
            continue
        arrays, meta = read_clip(src, rec["name"])
        n_old = len(arrays["audio"]) // SAMPLES_PER_FRAME
        for k, name in enumerate(names):
            if name in done:
                continue
            rng = np.random.default_rng([seed, i, k])
            audio, speed = augment_audio(arrays["audio"], rng, settings)
            n_new = len(audio) // SAMPLES_PER_FRAME
            new: dict[str, np.ndarray] = {"audio": audio}
            for key, a in arrays.items():
                if key in ("audio", "features", "meta_json"):
                    continue
                if a.ndim >= 1 and len(a) == n_old:
                    if a.dtype == bool:
                        new[key] = _warp_track(a.astype(np.float32), speed, n_new) > 0.999
                    else:
                        new[key] = _warp_track(a, speed, n_new)
                else:
                    new[key] = a
            new["features"] = np.zeros((0, n_new), np.float32)
            m = {k2: v for k2, v in meta.items() if k2 not in ("name", "file", "n_frames", "seconds",
                                                               "written_at", "features")}
            m.update(augmented_from=rec["name"], augment={"copy": k, "seed": seed,
                                                           "speed": round(speed, 4)})
            write_clip(out, name, new, m)
    return rebuild_manifest(out)


def groups_from_config(path: str) -> list[str]:
    """The ``val_groups`` (held-out speakers) of a training config file (YAML), as strings."""
    import yaml

    try:
        with open(path, "rb") as f:
            text = f.read((1 << 20) + 1)
        if len(text) > 1 << 20:
            raise DataError(f"{path}: larger than 1 MiB, not a training config")
        cfg = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{path}: cannot read val_groups: {e}") from e
    groups = (cfg or {}).get("val_groups") or []
    if not isinstance(groups, list):
        raise DataError(f"{path}: val_groups must be a list")
    return [str(g) for g in groups]
