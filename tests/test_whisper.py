"""The ``whisper`` feature extractor: Whisper's log-mel and encoder in plain torch.

The reference values come from an independent implementation (CTranslate2's Whisper encoder and
librosa's Slaney filterbank) shipped with the encoder copy in ../shared; the filterbank is also
checked here against a numpy re-derivation of librosa's formula.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechface import AUEstimator
from speechface.audio.features import create_features
from speechface.audio.features.whisper import (
    PACKAGED_WHISPER,
    WhisperFeatures,
    load_whisper_encoder,
    seam_error,
    slaney_mel_fbanks,
    whisper_log_mel,
)
from speechface.core.errors import ModelError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEECHFACE_SHARED", REPO.parent / "shared"))
REF_DIR = SHARED / "models" / "whisper-tiny.en-encoder"


@pytest.fixture(scope="module")
def fx() -> WhisperFeatures:
    return WhisperFeatures()


def _reference() -> tuple[np.lib.npyio.NpzFile, np.ndarray]:
    ref_path = REF_DIR / "reference.npz"
    if not ref_path.is_file():
        pytest.skip(f"Whisper reference values not found at {ref_path} (set SPEECHFACE_SHARED)")
    ref = np.load(ref_path, allow_pickle=False)
    audio, sr = sf.read(SHARED / str(ref["audio_file"]), dtype="float32")
    assert sr == 16000
    return ref, audio[: int(float(ref["seconds"]) * sr)]


def test_slaney_filterbank_matches_numpy_formula() -> None:
    # librosa.filters.mel(sr=16000, n_fft=400, n_mels=80), written out in numpy
    sr, n_fft, n_mels = 16000, 400, 80

    def hz_to_mel(f):
        f = np.asarray(f, float)
        lin = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)

    def mel_to_hz(m):
        m = np.asarray(m, float)
        return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), m * 200.0 / 3)

    fftfreqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = (fftfreqs - mel_f[i]) / (mel_f[i + 1] - mel_f[i])
        upper = (mel_f[i + 2] - fftfreqs) / (mel_f[i + 2] - mel_f[i + 1])
        weights[i] = np.maximum(0, np.minimum(lower, upper)) * 2.0 / (mel_f[i + 2] - mel_f[i])
    np.testing.assert_allclose(slaney_mel_fbanks().numpy(), weights, rtol=1e-9, atol=1e-12)


@pytest.mark.shared
def test_log_mel_and_encoder_match_the_independent_reference() -> None:
    ref, audio = _reference()
    mel = whisper_log_mel(torch.from_numpy(audio)[None])[0]
    assert mel.shape == ref["log_mel"].shape
    assert float((mel - torch.from_numpy(ref["log_mel"])).abs().max()) < 1e-5
    enc = load_whisper_encoder()
    out = enc(mel[None])[0]
    assert out.shape == ref["encoder_output"].shape
    # float16 weights computed in float32 against CTranslate2 in float32: 1.5e-5 measured
    assert float((out - torch.from_numpy(ref["encoder_output"])).abs().max()) < 1e-4


@pytest.mark.shared
def test_features_are_the_encoder_states_at_25_fps(fx: WhisperFeatures) -> None:
    ref, audio = _reference()
    feats = fx(torch.from_numpy(audio))
    assert feats.shape == (384, len(audio) // 640)  # 2 s -> 50 frames
    h = torch.from_numpy(ref["encoder_output"])     # 50 frames per second
    n = 10                                           # frame n at n / 25 s = encoder frame 2n
    expected = 0.5 * h[2 * n] + 0.25 * (h[2 * n - 1] + h[2 * n + 1])
    assert torch.allclose(feats[:, n], expected, atol=2e-4)


def test_shapes_batches_and_short_input(fx: WhisperFeatures) -> None:
    x = torch.randn(2, 3, 16000) * 0.1
    out = fx(x)
    assert out.shape == (2, 3, 384, 25)
    assert torch.allclose(out[1, 2], fx(x[1, 2]), atol=1e-4)
    assert fx(torch.zeros(639)).shape == (384, 0)
    assert fx(torch.randn(700) * 0.1).shape == (384, 1)
    assert torch.isfinite(fx(torch.zeros(16000))).all()  # digital silence


def test_long_input_goes_through_overlapping_windows() -> None:
    fx = WhisperFeatures(window_seconds=4.0, overlap_seconds=1.0)
    torch.manual_seed(0)
    x = torch.randn(16000 * 11) * 0.1
    out = fx(x)
    assert out.shape == (384, 275)
    # the first window is kept up to its last overlap/2 frames
    first = fx(x[: 16000 * 4])
    assert torch.allclose(out[:, :87], first[:, :87], atol=1e-4)
    # the last window ends at the end of the audio and is kept from overlap/2 on
    last = fx(x[-16000 * 4:])
    assert torch.allclose(out[:, -80:], last[:, -80:], atol=1e-4)
    err = seam_error(fx, x, seconds=11)
    assert err["seams"] >= 1 and np.isfinite(err["seam_rel_rms"])


def test_encoder_is_frozen_and_not_saved(tmp_path: Path) -> None:
    est = AUEstimator.create("cnn", feature="whisper")
    assert not any(k.startswith("features.") for k in est.state_dict())
    assert all(p.requires_grad for p in est.parameters())  # the encoder is not a parameter
    est.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["feature"]["name"] == "whisper" and cfg["feature"]["args"]["model"] == "tiny.en"
    back = AUEstimator.from_pretrained(tmp_path / "m")
    wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    np.testing.assert_allclose(back.predict(wav, sample_rate=16000).values,
                               est.predict(wav, sample_rate=16000).values, atol=1e-5)


def test_loads_a_local_folder_and_a_prepopulated_hub_cache(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "whisper-copy"
    shutil.copytree(PACKAGED_WHISPER, folder)
    assert load_whisper_encoder(str(folder)).d_model == 384
    # a Hub cache laid out as huggingface_hub does, then offline loading by repo id
    repo = tmp_path / "hub" / "models--someone--whisper-test"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(PACKAGED_WHISPER / name, snap / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    enc = load_whisper_encoder("someone/whisper-test")
    assert len(enc.layers) == 4
    with pytest.raises(ModelError, match="someone/not-there"):
        load_whisper_encoder("someone/not-there")


def test_bad_arguments_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="16000"):
        create_features("whisper", sample_rate=8000)
    with pytest.raises(ValueError, match="layer"):
        WhisperFeatures(layer=9)
    with pytest.raises(ValueError, match="window_seconds"):
        WhisperFeatures(window_seconds=60)
    with pytest.raises(ModelError, match="config.json"):
        load_whisper_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"d_model": 10**9}))
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError):
        load_whisper_encoder(str(tmp_path))


def test_padding_to_30_s_is_whispers_own_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(16000 * 2) * 0.1
    fx = WhisperFeatures(layer=2, pad_seconds=30)
    out = fx(x)
    assert out.shape == (384, 50)
    assert fx.config()["pad_seconds"] == 30
    # the encoder on the log-mel of the audio followed by silence up to 30 s (3000 mel frames)
    mel = whisper_log_mel(torch.nn.functional.pad(x, (0, 16000 * 28))[None])
    assert mel.shape[-1] == 3000
    h = load_whisper_encoder()(mel, 2)[0]
    n = 10
    assert torch.allclose(out[:, n], 0.5 * h[2 * n] + 0.25 * (h[2 * n - 1] + h[2 * n + 1]),
                          atol=1e-4)
    # the padding changes the states (the encoder attends to the silence too)
    assert (out - WhisperFeatures(layer=2)(x)).abs().max() > 1e-2
    with pytest.raises(ValueError, match="pad_seconds"):
        WhisperFeatures(pad_seconds=5)


def test_utterance_normalisation_standardises_each_dimension() -> None:
    fx = WhisperFeatures(normalize="utterance")
    out = fx(torch.randn(16000 * 2) * 0.1)
    assert torch.allclose(out.mean(-1), torch.zeros(384), atol=1e-4)
    assert torch.allclose(out.std(-1, unbiased=False), torch.ones(384), atol=1e-2)
    assert fx.config()["normalize"] == "utterance"
    with pytest.raises(ValueError, match="normalize"):
        WhisperFeatures(normalize="global")


def test_training_clips_cache_whisper_features(tmp_path: Path) -> None:
    from speechface.data.clips import load_training_clips
    from speechface.data.shards import write_clip

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16000).astype(np.float32)
    write_clip(tmp_path, "c1", {"audio": audio, "features": np.zeros((80, 25), np.float32),
                                "targets_au17": np.zeros((25, 17), np.float32),
                                "targets_landmarks68": np.zeros((25, 136), np.float32),
                                "blendshapes": np.zeros((25, 52), np.float32),
                                "mask": np.ones(25, bool)}, {"speaker": "s"})
    first = load_training_clips(str(tmp_path), "au17", "whisper")
    cached = list((tmp_path / ".feature_cache").rglob("c1.*.npy"))
    assert len(cached) == 1
    np.save(cached[0], np.full((384, 25), 7.0, np.float32))  # the cache is what gets read
    again = load_training_clips(str(tmp_path), "au17", "whisper")
    assert float(again[0].features[0, 0]) == 7.0
    assert torch.allclose(first[0].features,
                          WhisperFeatures()(torch.from_numpy(audio)).T, atol=1e-5)
    other = load_training_clips(str(tmp_path), "au17", "whisper", {"layer": 2})  # another key
    assert float(other[0].features[0, 0]) != 7.0


def test_bfloat16_compute_is_close_to_float32() -> None:
    x = torch.randn(16000) * 0.1
    a = WhisperFeatures(layer=2)(x)
    b = WhisperFeatures(layer=2, compute_dtype="bfloat16")(x)
    assert float((a - b).norm() / a.norm()) < 0.05
    with pytest.raises(ValueError, match="compute_dtype"):
        WhisperFeatures(compute_dtype="int8")
