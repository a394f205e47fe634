"""load_audio on every supported input, its error messages, resample and save_audio."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechface.audio import FPS, SAMPLE_RATE, load_audio, resample, save_audio
from speechface.core.errors import AudioError, SpeechfaceError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))
RAVDESS = SHARED / "data" / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.flac"


def tone(freq: float, sr: int, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ref_resample(x: np.ndarray, orig: int, new: int, width: int = 6,
                 rolloff: float = 0.99) -> np.ndarray:
    """torchaudio's sinc_interp_hann resampler written as a direct sum (float64, no polyphase):
    y[j] = sum_i x[i] * base/orig * sinc(base (i/orig - j/new)) * cos^2(pi t / 2 width), |t| < width.
    """
    base = min(orig, new) * rolloff
    n_out = math.ceil(len(x) * new / orig)
    i = np.arange(len(x))
    y = np.empty(n_out)
    for j in range(n_out):
        t = base * (i / orig - j / new)
        t = np.clip(t, -width, width)
        h = np.sinc(t) * np.cos(np.pi * t / width / 2) ** 2 * base / orig
        y[j] = np.dot(x, h)
    return y


# ---------------------------------------------------------------- files
@pytest.mark.parametrize("ext,fmt,subtype,tol", [
    ("wav", "WAV", "PCM_16", 1e-4),
    ("wav", "WAV", "PCM_24", 1e-6),
    ("wav", "WAV", "FLOAT", 1e-7),
    ("flac", "FLAC", "PCM_16", 1e-4),
    ("ogg", "OGG", "VORBIS", None),
    ("mp3", "MP3", "MPEG_LAYER_III", None),
])
def test_formats(tmp_path: Path, ext: str, fmt: str, subtype: str, tol: float | None) -> None:
    x = tone(440, SAMPLE_RATE)
    path = tmp_path / f"speech.{ext}"
    sf.write(path, x, SAMPLE_RATE, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.dim() == 1
    if tol is not None:  # lossless: exact length and samples
        assert wave.shape == (len(x),)
        np.testing.assert_allclose(wave.numpy(), x, atol=tol)
    else:  # lossy codecs: about the same length and the same tone
        assert abs(len(wave) - len(x)) < 0.02 * SAMPLE_RATE
        spectrum = np.abs(np.fft.rfft(wave.numpy()))
        peak_hz = spectrum.argmax() * SAMPLE_RATE / len(wave)
        assert abs(peak_hz - 440) < 5
    assert load_audio(str(path)).shape == wave.shape  # str paths too


def test_stereo_file_is_downmixed_by_mean(tmp_path: Path) -> None:
    left, right = tone(440, SAMPLE_RATE), tone(1000, SAMPLE_RATE, amp=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path).numpy(), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_file_rates_resampled_to_16k(tmp_path: Path, rate: int) -> None:
    n = round(0.5 * rate) + 7
    x = tone(300, rate, seconds=n / rate)
    path = tmp_path / f"r{rate}.flac"
    sf.write(path, x, rate)
    wave = load_audio(path)
    assert wave.shape == (math.ceil(n * SAMPLE_RATE / rate),)
    mid = slice(200, len(wave) - 200)
    np.testing.assert_allclose(wave.numpy()[mid], tone(300, SAMPLE_RATE, n / rate)[mid], atol=2e-3)
    assert load_audio(path, target_rate=rate).shape == (n,)  # no resampling at the file's rate


# ---------------------------------------------------------------- arrays
def test_numpy_int16_is_scaled() -> None:
    pcm = (tone(440, SAMPLE_RATE) * 32767).astype(np.int16)
    wave = load_audio(pcm, SAMPLE_RATE)
    np.testing.assert_allclose(wave.numpy(), pcm / 32768.0, atol=1e-7)
    u8 = np.array([0, 128, 255] * 300, dtype=np.uint8)
    assert load_audio(u8, 16000)[:3].tolist() == [-1.0, 0.0, 127 / 128]
    i32 = np.full(900, 2**30, dtype=np.int32)
    assert torch.allclose(load_audio(i32, 16000), torch.tensor(0.5))


def test_torch_tensor_channels_first_and_last() -> None:
    x = torch.randn(2, 3000)
    wave = load_audio(x, SAMPLE_RATE)
    torch.testing.assert_close(wave, x.mean(0))
    torch.testing.assert_close(load_audio(x.T.numpy(), SAMPLE_RATE), x.mean(0))  # (time, ch)
    torch.testing.assert_close(load_audio(x[0].double(), SAMPLE_RATE), x[0])
    assert load_audio(torch.zeros(1, 48000), 48000.0).shape == (16000,)  # silence is valid


# ---------------------------------------------------------------- errors
def _raises(match: str, *args, **kwargs) -> str:
    with pytest.raises(AudioError, match=match) as info:
        load_audio(*args, **kwargs)
    assert isinstance(info.value, SpeechfaceError) and isinstance(info.value, ValueError)
    return str(info.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    assert "nope.wav" in _raises("does not exist", tmp_path / "nope.wav")
    assert str(tmp_path) in _raises("is a directory", tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    assert "empty.wav" in _raises(r"empty \(0 bytes\)", tmp_path / "empty.wav")
    (tmp_path / "notes.wav").write_text("this is not audio, just text\n" * 20)
    assert "notes.wav" in _raises("not a readable audio file", tmp_path / "notes.wav")
    good = tmp_path / "cut.flac"
    sf.write(good, tone(440, SAMPLE_RATE), SAMPLE_RATE)
    (tmp_path / "broken.flac").write_bytes(good.read_bytes()[:40])
    assert "broken.flac" in _raises("not a readable audio file|no samples", tmp_path / "broken.flac")


def test_content_errors_name_the_file(tmp_path: Path) -> None:
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    assert "zero.wav" in _raises("has no samples", tmp_path / "zero.wav")
    bad = tone(440, SAMPLE_RATE)
    bad[100] = np.nan
    sf.write(tmp_path / "nan.wav", bad, SAMPLE_RATE, subtype="FLOAT")
    msg = _raises("NaN or infinite", tmp_path / "nan.wav")
    assert "nan.wav" in msg and "sample 100" in msg
    sf.write(tmp_path / "short.wav", np.zeros(300, np.float32), SAMPLE_RATE)
    msg = _raises("too short", tmp_path / "short.wav")
    assert "short.wav" in msg and "18.8 ms" in msg and "40 ms" in msg
    sf.write(tmp_path / "short48.wav", np.zeros(1900, np.float32), 48000)  # 634 samples at 16 k
    assert "short48.wav" in _raises("too short", tmp_path / "short48.wav")
    assert load_audio(np.zeros(SAMPLE_RATE // FPS), SAMPLE_RATE).shape == (640,)  # exactly 40 ms
    assert "44100 Hz" in _raises("sample_rate describes array", _write(tmp_path, 44100), 16000)


def _write(tmp_path: Path, rate: int) -> Path:
    path = tmp_path / f"at{rate}.wav"
    sf.write(path, tone(440, rate), rate)
    return path


def test_array_errors() -> None:
    x = np.zeros(1000, np.float32)
    assert "array" in _raises("sample_rate is required", x)
    for rate in (0, -16000, float("nan"), float("inf")):
        _raises("positive finite", x, rate)
    _raises("has no samples", np.zeros((2, 0), np.float32), 16000)
    _raises("NaN or infinite", np.array([0.0, np.inf] * 500), 16000)
    _raises("shape", np.zeros((2, 2, 1000), np.float32), 16000)
    _raises("unsupported sample type", np.zeros(1000, np.complex64), 16000)
    assert "'clip 7'" in _raises("too short", np.zeros(100), 16000, name="clip 7")
    _raises("source must be", [0.0] * 1000, 16000)


# ---------------------------------------------------------------- resample
def test_resample_sine_48k_to_16k_matches_analytic() -> None:
    x = torch.from_numpy(tone(1000, 48000, seconds=0.25))
    y = resample(x, 48000, 16000)
    assert y.shape == (4000,)
    expected = tone(1000, 16000, seconds=0.25)
    err = (y.numpy() - expected)[100:-100]
    assert np.abs(err).max() < 2e-3


@pytest.mark.parametrize("orig,new", [(48000, 16000), (16000, 48000), (22050, 16000),
                                      (44100, 16000), (8000, 16000), (16000, 24000),
                                      (24000.0, 16000.0)])
def test_resample_equals_torchaudio_formula(orig: float, new: float) -> None:
    x = np.random.default_rng(0).standard_normal(301)
    y = resample(torch.from_numpy(x), orig, new)  # float64 in, float64 kernel
    ref = ref_resample(x, int(orig), int(new))
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-9)


def test_resample_removes_tone_above_new_nyquist() -> None:
    # 0.5-amplitude tones above the 8 kHz Nyquist of 16 kHz would alias; the filter (cutoff
    # 7.92 kHz, 6 zero crossings) attenuates them by > 45 dB, by > 80 dB well into the stop band
    for freq, limit in ((10000, 3e-3), (14000, 1e-4)):
        y = resample(torch.from_numpy(tone(freq, 48000, seconds=0.5)), 48000, 16000)
        assert y[200:-200].abs().max() < limit
    kept = resample(torch.from_numpy(tone(3000, 48000, seconds=0.5)), 48000, 16000)
    assert kept[200:-200].abs().max() > 0.49


@pytest.mark.parametrize("n", [1, 999, 4801, 22050])
@pytest.mark.parametrize("orig,new", [(22050, 16000), (44100, 16000), (48000, 16000),
                                      (8000, 16000), (24000, 16000), (16000, 22050),
                                      (16000, 44100), (16000, 48000), (16000, 8000)])
def test_resample_length(n: int, orig: int, new: int) -> None:
    y = resample(torch.zeros(3, n), orig, new)
    assert y.shape == (3, math.ceil(n * new / orig))


def test_resample_batch_same_rate_and_round_trip() -> None:
    x = torch.randn(2, 3, 1600)
    y = resample(x, 16000, 22050)
    torch.testing.assert_close(y[1, 2], resample(x[1, 2], 16000, 22050))
    assert resample(x, 16000, 16000) is x
    back = resample(resample(torch.from_numpy(tone(500, 16000)), 16000, 44100), 44100, 16000)
    np.testing.assert_allclose(back.numpy()[100:-100], tone(500, 16000)[100:-100], atol=2e-3)
    odd = resample(torch.from_numpy(tone(300, 16000)), 16000, 22050.5)  # non-integer rate
    assert odd.shape == (math.ceil(8000 * 22050.5 / 16000),)
    with pytest.raises(ValueError):
        resample(x, 0, 16000)


# ---------------------------------------------------------------- save + real data
def test_save_audio_round_trip(tmp_path: Path) -> None:
    x = torch.from_numpy(tone(440, SAMPLE_RATE))
    path = save_audio(tmp_path / "out.wav", x * 3, SAMPLE_RATE)  # clipped to [-1, 1]
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    back = load_audio(path)
    assert back.abs().max() <= 1.0 and back.shape == x.shape
    save_audio(path, torch.stack([x, -x]), SAMPLE_RATE, subtype="FLOAT")  # overwrite, stereo
    info = sf.info(path)
    assert info.channels == 2 and info.subtype == "FLOAT"
    assert load_audio(path).abs().max() < 1e-7


def test_real_ravdess_clip() -> None:
    if not RAVDESS.exists():
        pytest.skip(f"real RAVDESS clip not found at {RAVDESS} (set SPEECHFACE_SHARED)")
    wave = load_audio(RAVDESS)
    assert wave.dtype == torch.float32 and wave.dim() == 1
    assert 3.0 < len(wave) / SAMPLE_RATE < 3.6
    assert torch.isfinite(wave).all() and 0.01 < wave.abs().max() <= 1.0
