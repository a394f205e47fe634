"""Feature extractors against torchaudio's formulas, re-written here in plain numpy.

The references below do not call speechface code: HTK mel scale, triangular filterbank built
from ``all_freqs = linspace(0, sr // 2, n_fft // 2 + 1)`` (torchaudio.functional.melscale_fbanks),
reflect-padded centred framing, periodic Hann window zero-padded to n_fft, ``|rfft|^2``,
AmplitudeToDB, an orthonormal DCT-II (scipy) and compute_deltas' regression with replicated edges.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.fft import dct as scipy_dct

from speechface.audio.features import MFCC, FeatureExtractor, LogMel, create_features
from speechface.audio.features.mfcc import compute_deltas, create_dct
from speechface.core.registry import FEATURES

SR = 16000
HOP = 640
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))
SPEECH = SHARED / "data" / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.flac"


# ---------------------------------------------------------------- references (numpy, float64)
def ref_fbank(n_fft: int = 1024, n_mels: int = 80, sr: int = SR, f_min: float = 0.0,
              f_max: float | None = None) -> np.ndarray:
    f_max = sr / 2 if f_max is None else f_max
    all_freqs = np.linspace(0, sr // 2, n_fft // 2 + 1)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    pts = 700.0 * (10.0 ** (np.linspace(mel(f_min), mel(f_max), n_mels + 2) / 2595.0) - 1.0)
    fb = np.zeros((len(all_freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = pts[m], pts[m + 1], pts[m + 2]
        rise = (all_freqs - lo) / (mid - lo)
        fall = (hi - all_freqs) / (hi - mid)
        fb[:, m] = np.maximum(0.0, np.minimum(rise, fall))
    return fb


def ref_mel_power(x: np.ndarray, n_mels: int = 80, n_fft: int = 1024, win: int = 640,
                  hop: int = HOP) -> np.ndarray:
    """(time,) -> (n_mels, time // hop): torchaudio MelSpectrogram, last frame dropped."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, n_fft // 2, mode="reflect")
    n = np.arange(win)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)  # periodic
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = hann
    n_frames = len(x) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # (frames, freq)
    return (power @ ref_fbank(n_fft, n_mels)).T


def ref_deltas(c: np.ndarray) -> np.ndarray:
    """compute_deltas(win_length=5) along the last axis, replicate padding."""
    p = np.concatenate([c[..., :1], c[..., :1], c, c[..., -1:], c[..., -1:]], axis=-1)
    t = c.shape[-1]
    return (2 * (p[..., 4:4 + t] - p[..., 0:t]) + (p[..., 3:3 + t] - p[..., 1:1 + t])) / 10.0


def ref_mfcc(x: np.ndarray) -> np.ndarray:
    db = 10 * np.log10(np.maximum(ref_mel_power(x, n_mels=40), 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    static = scipy_dct(db, type=2, norm="ortho", axis=0)[:13]
    d1 = ref_deltas(static)
    return np.concatenate([static, d1, ref_deltas(d1)], axis=0)


def _speech() -> np.ndarray:
    if not SPEECH.exists():
        pytest.skip(f"real speech not found at {SPEECH} (set SPEECHFACE_SHARED)")
    data, sr = sf.read(SPEECH, dtype="float32")
    assert sr == SR
    return data


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


# ---------------------------------------------------------------- log mel
def test_filterbank_matches_reference() -> None:
    fb = LogMel().spectrogram.fb.double().numpy()
    # built in float32 like torchaudio: edges carry ~1e-6 absolute rounding
    np.testing.assert_allclose(fb, ref_fbank(), rtol=1e-4, atol=1e-5)
    assert (fb.sum(0) > 0).all(), "an empty mel filter"


@pytest.mark.parametrize("n", [SR, SR + 333])
def test_logmel_matches_torchaudio_formula_random(n: int) -> None:
    x = _noise(n, seed=n)
    ref = ref_mel_power(x)
    fx = LogMel()
    got = fx.mel_power(torch.from_numpy(x)).double().numpy()
    assert got.shape == ref.shape == (80, n // HOP)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    logmel = LogMel()(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(logmel, np.log(ref + 1e-6), rtol=1e-4, atol=1e-5)


def test_logmel_matches_torchaudio_formula_real_speech() -> None:
    x = _speech()
    ref = ref_mel_power(x)
    out = LogMel()(torch.from_numpy(x)).double().numpy()
    assert out.shape == (80, len(x) // HOP)
    # on the log output: quiet high bands are tiny in absolute power, so compare log energies
    np.testing.assert_allclose(out, np.log(ref + 1e-6), rtol=1e-4, atol=1e-4)
    got = LogMel().mel_power(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_frame_n_is_centred_at_n_over_fps() -> None:
    """An impulse at sample k * hop peaks in frame k: frames sit on video-frame timestamps."""
    x = torch.zeros(SR)
    k = 7
    x[k * HOP] = 1.0
    energy = LogMel().mel_power(x).sum(0)
    assert int(energy.argmax()) == k
    assert energy[k - 1] < 1e-3 * energy[k] and energy[k + 1] < 1e-3 * energy[k]


def test_silence_is_finite_with_log_floor() -> None:
    out = LogMel()(torch.zeros(SR))
    assert torch.allclose(out, torch.full_like(out, float(np.log(1e-6))))


# ---------------------------------------------------------------- frame counts
@pytest.mark.parametrize("name", ["logmel", "mfcc"])
def test_frame_counts(name: str) -> None:
    fx = create_features(name)
    assert fx.hop_length == HOP and fx.fps == 25 and fx.sample_rate == SR
    assert fx(torch.randn(60 * SR)).shape == (fx.n_features, 1500)
    assert fx(torch.randn(SR)).shape == (fx.n_features, 25)
    for n in (641, 1279, 5 * HOP + 1, 12345, 33333):
        assert fx(torch.randn(n)).shape[-1] == n // HOP == fx.num_frames(n)
    assert fx(torch.randn(300)).shape == (fx.n_features, 0)
    assert fx.num_frames(60 * SR) == 1500


@pytest.mark.parametrize("name", ["logmel", "mfcc"])
def test_batch_dims_match_items(name: str) -> None:
    fx = create_features(name)
    x = torch.randn(2, 3, 7000) * torch.tensor([0.01, 0.1, 1.0]).view(1, 3, 1)
    out = fx(x)
    assert out.shape == (2, 3, fx.n_features, 7000 // HOP)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(out[i, j], fx(x[i, j]), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- MFCC
def test_mfcc_matches_reference_real_speech() -> None:
    x = _speech()
    out = MFCC()(torch.from_numpy(x)).double().numpy()
    ref = ref_mfcc(x)
    assert out.shape == ref.shape == (39, len(x) // HOP)
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=2e-3)


def test_mfcc_matches_reference_random() -> None:
    x = _noise(SR + 100)
    out = MFCC()(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(out, ref_mfcc(x), rtol=1e-4, atol=1e-3)  # dB units


def test_mfcc_deltas_of_constant_signal_vanish() -> None:
    t = torch.arange(3 * SR, dtype=torch.float64) / SR  # float64 phase: exact periodicity
    # 450 Hz = 18 periods per 640-sample hop: every frame sees the same samples
    x = 0.3 * torch.sin(2 * torch.pi * 450 * t) + 0.01 * torch.sin(2 * torch.pi * 3000 * t)
    out = MFCC()(x.float())
    static, d1, d2 = out[:13, 1:], out[13:26], out[26:]
    assert static.std(-1).max() < 0.05  # frame 0 sees the reflected edge; the rest are equal
    assert d1[:, 3:].abs().max() < 0.02 and d2[:, 5:].abs().max() < 0.02
    assert d1[:, :2].abs().max() > 0.1  # the edge frame does move the first deltas
    c = torch.full((13, 20), 4.2)
    assert compute_deltas(c).abs().max() < 1e-6


def test_dct_is_orthonormal_dct_ii() -> None:
    d = create_dct(13, 40).double()
    torch.testing.assert_close(d.T @ d, torch.eye(13, dtype=torch.float64), atol=1e-6, rtol=0)
    full = create_dct(40, 40).double().numpy()
    np.testing.assert_allclose(full.T, scipy_dct(np.eye(40), type=2, norm="ortho", axis=0),
                               atol=1e-5)


def test_compute_deltas_formula() -> None:
    c = np.random.default_rng(1).standard_normal((3, 13, 17))
    got = compute_deltas(torch.from_numpy(c)).numpy()
    np.testing.assert_allclose(got, ref_deltas(c), atol=1e-12)


# ---------------------------------------------------------------- registry / config
@pytest.mark.parametrize("name,kwargs", [("logmel", {}), ("mfcc", {}),
                                         ("logmel", {"n_mels": 64, "f_max": 7600.0}),
                                         ("mfcc", {"n_mels": 30, "deltas": 1})])
def test_config_round_trip(name: str, kwargs: dict) -> None:
    fx = create_features(name, **kwargs)
    assert isinstance(fx, FeatureExtractor) and fx.name == name
    cfg = json.loads(json.dumps(fx.config()))
    again = FEATURES.create(name, **cfg)
    assert again.config() == fx.config() and again.n_features == fx.n_features
    x = torch.randn(4000)
    torch.testing.assert_close(again(x), fx(x))
    assert fx.state_dict() == {}  # constants are non-persistent buffers


def test_registry_and_validation() -> None:
    assert {"logmel", "mfcc"} <= set(FEATURES.list())
    assert MFCC().n_features == 39 and LogMel().n_features == 80
    with pytest.raises(ValueError, match="multiple of fps"):
        LogMel(sample_rate=16000, fps=30)
    with pytest.raises(ValueError):
        MFCC(n_mfcc=50, n_mels=40)
    with pytest.raises(TypeError):
        LogMel()(torch.zeros(16000, dtype=torch.int16))
