"""The mouth on unseen voices through bad microphones and rooms: noise, a second talker, a
telephone line, reverberation, a quiet recording.

For each of the speech models' held-out clips (``val_groups`` of ``configs/cause_cnn.yaml``; 10
speakers never trained on) the speech is degraded in a fixed, seeded way, the packaged models
predict from it, and the per-clip Pearson r between the prediction and the speaker's **real**
mouth opening (MediaPipe ``jawOpen`` of the video, from the clean recording) is averaged over
clips, with a 95 % bootstrap CI over clips. Three tracks:

- ``AU26`` of ``cnn.au17-whisper`` (the model ``animate`` drives with);
- ``jawOpen`` of ``cnn.blendshapes52-whisper`` (the ARKit model);
- the mouth-sync driver (:func:`speechface.render.mouth_sync.mouth_track` of both, smoothed 1.5
  frames): what ``animate`` turns into the rendered mouth.

Conditions (all at 16 kHz, the degradation applied to the whole clip):

- ``clean``;
- ``white SNR 20 / 10 / 5 dB``: white Gaussian noise;
- ``talker SNR 10 / 5 dB``: a second voice (RAVDESS actor 1's utterances back to back) under
  the speaker, the hardest case for a model that cannot tell voices apart;
- ``telephone``: 300-3400 Hz band, resampled to 8 kHz and back, 8-bit mu-law;
- ``reverb RT60 0.6 s``: an exponentially decaying noise impulse response, 70 % wet;
- ``quiet -30 dB``: the recording 30 dB lower (a distant or badly set microphone).

``--emotion`` also scores the emotion default (``stats_pool.emotion8-ravdess-whisper``) on its
held-out RAVDESS actors (3, 8, 15, 22; 240 utterances) under the same conditions: 7-way accuracy
(calm counted as neutral) with a 95 % bootstrap CI over utterances.

Run from the repository root (needs ``prepared/av_mediapipe`` from ``speechface prepare av``
and ../shared)::

    python benchmarks/heldout_robustness.py [--emotion] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from speechface import SpeechEstimator
from speechface.data.shards import list_clips, read_clip
from speechface.evaluation.metrics import bootstrap_mean_ci
from speechface.render.mouth_sync import MouthSync, mouth_track
from speechface.spaces.blendshapes import ARKIT52_NAMES
from speechface.spaces.transforms import smooth_conditions
from speechface.teachers.mediapipe import BLENDSHAPE_NAMES

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))
SR = 16000
JAW_MP = BLENDSHAPE_NAMES.index("jawOpen")
JAW_ARKIT = ARKIT52_NAMES.index("jawOpen")
AU26 = 15


def _mix(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    p = float(np.mean(x ** 2)) + 1e-12
    noise = noise * math.sqrt(p / 10 ** (snr_db / 10) / (float(np.mean(noise ** 2)) + 1e-12))
    return x + noise


@lru_cache(maxsize=1)
def _talker_speech() -> np.ndarray:
    """RAVDESS actor 1's utterances back to back (read once)."""
    files = sorted((SHARED / "data" / "ravdess" / "Actor_01").glob("*.flac"))
    if not files:
        raise SystemExit(f"RAVDESS actor 1 not found under {SHARED} (set SPEECHFACE_SHARED)")
    parts = []
    for f in files:
        a, sr = sf.read(f, dtype="float32")
        if sr != SR:
            raise SystemExit(f"{f}: expected 16 kHz, got {sr}")
        parts.append(a)
    return np.concatenate(parts)


def _talker(n: int) -> np.ndarray:
    """``n`` samples of the second talker (repeated if the clip is longer than all of them)."""
    return np.resize(_talker_speech(), n)


def _band(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / SR)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, len(x))


def _telephone(x: np.ndarray) -> np.ndarray:
    y = _band(x, 300.0, 3400.0)[::2]                    # 8 kHz (band-limited below 4 kHz)
    peak = float(np.abs(y).max()) + 1e-9
    mu = 255.0
    c = np.sign(y / peak) * np.log1p(mu * np.abs(y / peak)) / np.log1p(mu)
    c = np.round(c * 127) / 127                          # 8-bit mu-law
    y = np.sign(c) * ((1 + mu) ** np.abs(c) - 1) / mu * peak
    up = np.zeros(len(x))
    up[: 2 * len(y): 2] = y
    return 2.0 * _band(up, 0.0, 3400.0)                  # back to 16 kHz


def _reverb(x: np.ndarray, rng: np.random.Generator, rt60: float = 0.6) -> np.ndarray:
    t = np.arange(int(rt60 * 1.2 * SR)) / SR
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    ir[0] = 1.0
    ir /= np.sqrt((ir ** 2).sum())
    wet = np.convolve(x, ir)[: len(x)]
    return 0.3 * x + 0.7 * wet * (np.std(x) / max(np.std(wet), 1e-9))


def conditions(x: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(len(x))
    talker = _talker(len(x))
    out = {"clean": x}
    for snr in (20, 10, 5):
        out[f"white SNR {snr} dB"] = _mix(x, white, snr)
    for snr in (10, 5):
        out[f"talker SNR {snr} dB"] = _mix(x, talker, snr)
    out["telephone"] = _telephone(x)
    out["reverb RT60 0.6 s"] = _reverb(x, rng)
    out["quiet -30 dB"] = x * 10 ** (-30 / 20)
    peak = max(float(np.abs(v).max()) for v in out.values())
    scale = 0.99 / peak if peak > 0.99 else 1.0          # nothing clips, same scale for all
    return {k: (v * scale).astype(np.float32) for k, v in out.items()}


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-8 and b.std() > 1e-8 else 0.0


def emotion_table(model_name: str | None = None, actors: tuple[int, ...] = (3, 8, 15, 22)
                  ) -> dict[str, dict]:
    """7-way accuracy of an emotion model (default: the packaged one) on RAVDESS actors (default:
    its held-out ones), per condition."""
    from speechface.data.ravdess import RavdessDataset
    from speechface.pretrained import DEFAULT_MODELS

    seven = [0, 1, 2, 3, 4, 5, 6]      # EMOTION8 without contempt (RAVDESS has none)
    model = SpeechEstimator.from_pretrained(model_name or DEFAULT_MODELS["emotion8"])
    ds = RavdessDataset(SHARED / "data" / "ravdess", actors=list(actors), with_audio=False,
                        vocal_channel="speech")
    true = np.asarray(ds.emotion8_labels())
    hits: dict[str, list[float]] = {}
    for k, path in enumerate(ds.paths):
        audio, sr = sf.read(path, dtype="float32")
        if sr != SR:
            raise SystemExit(f"{path}: expected 16 kHz, got {sr}")
        for cond, wave in conditions(audio.astype(np.float64), seed=1000 + k).items():
            probs = np.asarray(model.predict(wave, sample_rate=SR).values).mean(0)
            hits.setdefault(cond, []).append(float(probs[seven].argmax() == true[k]))
    print(f"\n| condition | {model.name}: 7-way accuracy, {len(true)} utterances of actors "
          f"{', '.join(map(str, actors))} |")
    print("|---|---:|")
    out = {}
    for cond, h in hits.items():
        v = np.array(h)
        lo, hi = bootstrap_mean_ci(v)
        print(f"| {cond} | {v.mean():.3f} [{lo:.3f}, {hi:.3f}] |")
        out[cond] = {"accuracy_7": float(v.mean()), "ci": [lo, hi]}
    return out


def mouth_table(data: str, config: str) -> dict[str, dict]:
    """Per condition: mean per-clip r of AU26, ARKit jawOpen and the mouth-sync driver."""
    held = set(yaml.safe_load((REPO / config).read_text())["val_groups"])
    recs = [r for r in list_clips(data) if r.get("speaker", r["name"]) in held]
    if not recs:
        raise SystemExit(f"no held-out clips in {data} (run `speechface prepare av` first)")
    au_model = SpeechEstimator.from_pretrained("cnn.au17-whisper")
    ark_model = SpeechEstimator.from_pretrained("cnn.blendshapes52-whisper")
    print(f"{len(recs)} held-out clips", flush=True)
    rows: dict[str, dict[str, list[float]]] = {}
    for k, rec in enumerate(recs):
        arrays, _ = read_clip(data, rec["name"])
        real = arrays["blendshapes"][:, JAW_MP]
        mask = arrays["mask"].astype(bool) if "mask" in arrays else np.ones(len(real), bool)
        for cond, wave in conditions(np.asarray(arrays["audio"], np.float64), seed=k).items():
            au = np.asarray(au_model.predict(wave, sample_rate=SR).values)
            jaw = np.asarray(ark_model.predict(wave, sample_rate=SR).values)[:, JAW_ARKIT]
            n = min(len(au), len(jaw), len(real))
            m = mask[:n]
            drv = smooth_conditions(mouth_track(au[:n], jaw[:n])[:, None].astype(np.float32),
                                    MouthSync().smoothing)[:, 0]
            row = rows.setdefault(cond, {"AU26": [], "jawOpen": [], "driver": []})
            row["AU26"].append(_r(au[:n, AU26][m], real[:n][m]))
            row["jawOpen"].append(_r(jaw[:n][m], real[:n][m]))
            row["driver"].append(_r(drv[m], real[:n][m]))
    print("\n| condition | AU26 (`cnn.au17-whisper`) | jawOpen (`cnn.blendshapes52-whisper`) "
          "| mouth-sync driver |")
    print("|---|---:|---:|---:|")
    out = {}
    for cond, row in rows.items():
        cells = []
        for key in ("AU26", "jawOpen", "driver"):
            v = np.array(row[key])
            lo, hi = bootstrap_mean_ci(v)
            cells.append(f"{v.mean():.2f} [{lo:.2f}, {hi:.2f}]")
            out.setdefault(cond, {})[key] = {"mean": float(v.mean()), "ci": [lo, hi],
                                             "per_clip": v.tolist()}
        print(f"| {cond} | " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="prepared/av_mediapipe")
    ap.add_argument("--config", default="configs/cause_cnn.yaml")
    ap.add_argument("--json", default=None)
    ap.add_argument("--emotion", action="store_true", help="also the emotion default on RAVDESS")
    ap.add_argument("--emotion-model", default=None, help="another emotion model folder")
    ap.add_argument("--emotion-actors", type=int, nargs="+", default=[3, 8, 15, 22])
    ap.add_argument("--no-mouth", action="store_true", help="skip the mouth models")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(f"load average {os.getloadavg()}", flush=True)
    out = {} if args.no_mouth else mouth_table(args.data, args.config)
    if args.emotion:
        out["emotion"] = emotion_table(args.emotion_model, tuple(args.emotion_actors))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
