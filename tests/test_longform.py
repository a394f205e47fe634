"""speechface.speech.longform: block-wise prediction of long audio equals whole-file prediction."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import EXAMPLES
from speechface import SpeechEstimator
from speechface.audio import resample
from speechface.cli import main
from speechface.core.errors import AudioError
from speechface.speech import longform
from speechface.speech.longform import is_long, predict_long, predict_stdin

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def long_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """3 min of real speech (the example tiled, with noise): 16 kHz FLAC, 48 kHz stereo 24-bit."""
    x, _ = sf.read(str(EXAMPLES / "speech.wav"), dtype="float32")
    rng = np.random.default_rng(0)
    x = np.tile(x, 21)[:16000 * 180 + 457]
    x = (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)
    d = tmp_path_factory.mktemp("long")
    sf.write(d / "a16.flac", x, 16000, subtype="PCM_16")
    x48 = resample(torch.from_numpy(x[:16000 * 100]), 16000, 48000).numpy()
    sf.write(d / "a48.wav", np.stack([x48, 0.5 * x48], 1), 48000, subtype="PCM_24")
    return {"16k": d / "a16.flac", "48k": d / "a48.wav"}


def _model(arch: str, **kw) -> SpeechEstimator:
    torch.manual_seed(2)
    est = SpeechEstimator.create(arch, **kw)
    n = est.features.n_features
    est.set_normalization(torch.randn(n), torch.rand(n) + 0.5)
    return est.eval()


@pytest.mark.parametrize("arch,kw", [
    ("cnn", {}), ("dcnn", {}), ("rnn", {}), ("lstm_mfcc", {}), ("mlp", {"feature": "mfcc"}),
], ids=["cnn", "dcnn", "rnn", "lstm_mfcc", "mlp-mfcc"])
def test_blocks_equal_whole_file(arch: str, kw: dict, long_files: dict[str, Path]) -> None:
    est = _model(arch, **kw)
    path = long_files["16k"]
    ref = est.predict(path)
    got = predict_long(est, path, chunk_seconds=7.3)  # blocks shorter than dcnn's field (6.4 s)
    assert got.values.shape == ref.values.shape
    assert got.source == str(path)
    np.testing.assert_allclose(got.values, ref.values, atol=1e-5, rtol=0)


def test_48khz_stereo_24bit_blocks_equal_whole_file(long_files: dict[str, Path]) -> None:
    est = _model("cnn")
    ref = est.predict(long_files["48k"])
    got = predict_long(est, long_files["48k"], chunk_seconds=2.9)
    assert len(got) == 100 * 25
    np.testing.assert_allclose(got.values, ref.values, atol=1e-5, rtol=0)


def test_array_input_and_predict_chunk_seconds(long_files: dict[str, Path]) -> None:
    est = _model("cnn")
    x, sr = sf.read(str(long_files["16k"]), dtype="float32")
    ref = est.predict(x, sr).values
    np.testing.assert_allclose(predict_long(est, x, 5, sample_rate=sr).values, ref, atol=1e-5)
    np.testing.assert_allclose(est.predict(x, sr, chunk_seconds=11).values, ref, atol=1e-5)


def test_predict_switches_to_blocks_for_long_inputs(long_files: dict[str, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = longform.feature_blocks
    monkeypatch.setattr(longform, "feature_blocks",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    est = _model("mlp")
    assert not is_long(long_files["16k"])
    est.predict(long_files["16k"])
    assert calls == []
    monkeypatch.setattr(longform, "LONG_SECONDS", 120.0)
    assert is_long(long_files["16k"]) and not is_long(long_files["48k"])
    assert is_long(np.zeros(16000 * 121, np.float32), 16000)
    assert not is_long(EXAMPLES / "missing.wav")
    est.predict(long_files["16k"])
    assert len(calls) == 1


def test_errors_name_the_file(tmp_path: Path, long_files: dict[str, Path]) -> None:
    est = _model("mlp")
    with pytest.raises(AudioError, match=r"audio file '.*nope.wav' does not exist"):
        predict_long(est, tmp_path / "nope.wav")
    (tmp_path / "text.wav").write_text("not audio\n" * 10)
    with pytest.raises(AudioError, match=r"text.wav' is not a readable audio file"):
        predict_long(est, tmp_path / "text.wav")
    with pytest.raises(AudioError, match="is 48000 Hz but sample_rate=16000"):
        predict_long(est, long_files["48k"], sample_rate=16000)
    with pytest.raises(AudioError, match="sample_rate is required"):
        predict_long(est, np.zeros(16000, np.float32))
    with pytest.raises(ValueError, match="chunk_seconds"):
        predict_long(est, long_files["16k"], chunk_seconds=0)


def test_stdin_bytes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    est = _model("cnn")
    wav = (EXAMPLES / "speech.wav").read_bytes()
    ref = est.predict(EXAMPLES / "speech.wav").values
    np.testing.assert_allclose(predict_stdin(est, io.BytesIO(wav), chunk_seconds=1).values, ref,
                               atol=1e-5)
    with pytest.raises(AudioError, match="audio on stdin is empty"):
        predict_stdin(est, io.BytesIO(b""))
    # the command line: `speechface predict - -o aus.csv` < speech.wav
    out = tmp_path / "aus.csv"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(wav)))
    assert main(["predict", "-", "-o", str(out), "--random-weights", "cnn"]) == 0
    assert len(out.read_text().splitlines()) == 1 + len(ref)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"RIFF garbage" * 10)))
    assert main(["predict", "-", "-o", str(tmp_path / "bad.csv"), "--random-weights", "cnn"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("speechface: error: audio on stdin is not a readable audio file")
    assert not (tmp_path / "bad.csv").exists()
