"""speechface.speech.streaming: chunked input of any size gives predict()'s frames, with bounded latency."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechface import AUEstimator, EmotionEstimator, SpeechEstimator
from speechface.audio import resample
from speechface.core.errors import AudioError, SpeechfaceError
from speechface.speech.streaming import StreamingError, StreamingEstimator, stream_support

ARCHS = ["cnn", "dcnn", "mlp", "cnn_gru"]
LATENCY_S = {"cnn": 0.36, "dcnn": 3.24, "mlp": 0.04, "cnn_gru": 0.24}


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(arch: str, space: str | None = None) -> SpeechEstimator:
    """Random weights with non-trivial normalisation, calibration and BatchNorm statistics."""
    torch.manual_seed(1)
    est = SpeechEstimator.create(arch, space=space)
    n = est.features.n_features
    est.set_normalization(torch.randn(n) - 5, torch.rand(n) + 0.5)
    est.set_calibration(torch.rand(est.network.out_dim) + 0.5, torch.randn(est.network.out_dim))
    for m in est.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return est.eval()


def _chunks(x: np.ndarray, size: int | str, seed: int = 0):
    if size == "random":
        rng = np.random.default_rng(seed)
        i = 0
        while i < len(x):
            k = int(rng.choice([0, 1, 7, 639, 640, 641, 1000, 5000, 17_000]))
            yield x[i:i + k]
            i += k
    else:
        for i in range(0, len(x), size):
            yield x[i:i + size]


def _streamed(st: StreamingEstimator, chunks) -> np.ndarray:
    out = [st.push(c) for c in chunks]
    out.append(st.flush())
    return np.concatenate(out)


@pytest.mark.parametrize("size", [1, 100, 640, 641, 16000, "random"],
                         ids=lambda s: f"chunk{s}")
@pytest.mark.parametrize("arch", ARCHS)
def test_stream_equals_offline_predict(arch: str, size: int | str, speech: np.ndarray) -> None:
    # one-sample chunks on 1.3 s (20,800 pushes); other sizes on 4 s, and for dcnn the whole
    # 8.8 s, more than its 161-frame receptive field, so the sliding window really slides
    x = speech[:20_813] if size == 1 else speech if arch == "dcnn" else speech[:64_333]
    est = _model(arch)
    ref = est.predict(x, 16000).values
    got = _streamed(est.stream(), _chunks(x, size))
    assert got.shape == ref.shape == (len(x) // 640, est.network.out_dim)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("rate", [48000, 44100, 8000])
def test_stream_at_another_rate_is_resampled_exactly(rate: int, speech: np.ndarray) -> None:
    x = resample(torch.from_numpy(speech[:40_000]), 16000, rate).numpy()
    est = _model("cnn")
    ref = est.predict(x, rate).values
    got = _streamed(est.stream(sample_rate=rate), _chunks(x, "random", seed=rate))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_stereo_and_int16_chunks_are_downmixed_and_scaled_like_load_audio(speech: np.ndarray
                                                                          ) -> None:
    pcm = np.round(np.stack([speech[:30_000], 0.3 * speech[:30_000]], 1) * 32767).astype(np.int16)
    est = _model("mlp")
    ref = est.predict(pcm.T.copy(), 16000).values  # (channels, time) offline
    got = _streamed(est.stream(), (pcm[i:i + 999] for i in range(0, len(pcm), 999)))
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_packaged_default_model_streams_like_predict(speech: np.ndarray) -> None:
    from speechface.pretrained import DEFAULT_MODELS

    # the default (Whisper front end) cannot stream and says why; the packaged streaming default can
    with pytest.raises(StreamingError, match="whole encoder window"):
        AUEstimator.from_pretrained().stream()
    est = AUEstimator.from_pretrained(DEFAULT_MODELS["stream_au17"])
    x = speech[:48_000]
    got = _streamed(est.stream(sample_rate=16000), _chunks(x, "random", seed=3))
    ref = est.predict(x, 16000).values
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_a_reused_input_buffer_is_copied(speech: np.ndarray) -> None:
    est = _model("cnn")
    ref = est.predict(speech[:32_000], 16000).values
    st = est.stream()
    buf = np.empty(1000, np.float32)  # an audio callback filling the same buffer every time
    out = []
    for i in range(0, 32_000, 1000):
        buf[:] = speech[i:i + 1000]
        out.append(st.push(buf))
    got = np.concatenate([*out, st.flush()])
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_emotion_stream_applies_softmax_and_chunk_frames_batches(speech: np.ndarray) -> None:
    est = _model("cnn", space="emotion8")
    assert isinstance(est, EmotionEstimator)
    ref = est.predict(speech, 16000).values
    st = est.stream(chunk_frames=5)
    outs = [st.push(c) for c in _chunks(speech, 3001)]
    assert all(len(o) == 0 or len(o) >= 5 for o in outs)
    got = np.concatenate([*outs, st.flush()])
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_process_returns_a_prediction_and_training_mode_is_kept(speech: np.ndarray) -> None:
    est = _model("dcnn").train()  # dropout on: the stream must still run in eval mode
    st = est.stream()
    pred = st.process(_chunks(speech, 4000))
    assert est.training
    ref = est.predict(speech, 16000)
    assert pred.labels == ref.labels and pred.fps == 25.0
    np.testing.assert_allclose(pred.values, ref.values, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- latency
@pytest.mark.parametrize("arch", ARCHS)
def test_latency_is_lookahead_plus_one_hop(arch: str, speech: np.ndarray) -> None:
    est = _model(arch)
    st = est.stream()
    look = {"cnn": 8, "dcnn": 80, "mlp": 0, "cnn_gru": 5}[arch]
    assert st.lookahead_frames == look
    assert st.latency_samples == (look + 1) * 640
    assert st.latency_seconds == pytest.approx(LATENCY_S[arch])
    # frame t is returned by the push that completes sample (t + lookahead + 1) * 640 - 1
    pushed = 0
    for t in range(3):
        edge = (t + look + 1) * 640
        assert len(st.push(speech[pushed:edge - 1])) == 0
        assert st.frames_emitted == t
        assert len(st.push(speech[edge - 1:edge])) == 1
        assert st.frames_emitted == t + 1
        pushed = edge


def test_latency_at_48khz_includes_the_resampling_filter() -> None:
    st = _model("cnn").stream(sample_rate=48000)
    assert 0.36 < st.latency_seconds < 0.361
    x = np.zeros(st.latency_samples, np.float32)
    assert len(st.push(x[:-1])) == 0 and len(st.push(x[-1:])) == 1


# --------------------------------------------------------------------------- what cannot stream
@pytest.mark.parametrize("arch,kw,needle", [
    ("rnn", {}, "bidirectional recurrent network: every output frame depends on the whole "
                "utterance, so it cannot stream with bounded latency"),
    ("lstm_mfcc", {}, "utterance-level"),
    ("cnn", {"feature": "mfcc"}, "MFCC features are floored at top_db"),
], ids=["rnn", "lstm_mfcc", "cnn-mfcc"])
def test_models_that_cannot_stream_say_why(arch: str, kw: dict, needle: str) -> None:
    est = SpeechEstimator.create(arch, **kw)
    assert needle in (stream_support(est) or "")
    with pytest.raises(StreamingError, match="cannot stream") as e:
        est.stream()
    assert needle in str(e.value) and "predict()" in str(e.value)
    assert isinstance(e.value, SpeechfaceError)


# --------------------------------------------------------------------------- bad use
def test_end_of_stream_errors_and_reset(speech: np.ndarray) -> None:
    st = AUEstimator.create("mlp").stream()
    with pytest.raises(AudioError, match="audio stream has no samples"):
        st.flush()
    st.reset()
    st.push(speech[:639])
    with pytest.raises(AudioError, match=r"too short: 39.9 ms \(639 samples"):
        st.flush()
    with pytest.raises(StreamingError, match="flushed; call reset"):
        st.push(speech[:10])
    st.reset()
    assert st.samples_pushed == 0 and st.frames_emitted == 0
    assert len(_streamed(st, _chunks(speech[:6400], 1000))) == 10


def test_nan_chunk_names_the_sample() -> None:
    st = AUEstimator.create("mlp").stream(sample_rate=8000)
    st.push(np.zeros(8000, np.float32))
    bad = np.zeros(100, np.float32)
    bad[42] = np.nan
    with pytest.raises(AudioError, match=r"NaN or infinite samples \(first at sample 8042, 1.005 s\)"):
        st.push(bad)


def test_bad_arguments() -> None:
    est = AUEstimator.create("mlp")
    with pytest.raises(ValueError, match="chunk_frames"):
        est.stream(chunk_frames=0)
    with pytest.raises(AudioError, match="sample_rate"):
        est.stream(sample_rate=-5)
    with pytest.raises(AudioError, match=r"\(time, channels\)"):
        est.stream().push(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(AudioError, match=r"looks like \(channels, time\)"):
        est.stream().push(np.zeros((2, 1600), np.float32))


@pytest.mark.parametrize("size", [641, "random"], ids=lambda s: f"chunk{s}")
@pytest.mark.parametrize("delay", [1.0, 1.6])
def test_an_output_delay_streams_like_predict_and_keeps_the_latency(delay: float, size, speech: np.ndarray
                                                                   ) -> None:
    x = speech[:64_333]
    est = _model("cnn")
    plain = est.predict(x, 16000).values
    latency = est.stream().latency_seconds
    est.output_delay = delay
    ref = est.predict(x, 16000).values
    got = _streamed(est.stream(), _chunks(x, size))
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    assert est.stream().latency_seconds == latency
    # frame t shows the undelayed output at t - delay (before the start: the first frame)
    k, w = int(delay), delay - int(delay)
    np.testing.assert_allclose(ref[10], (1 - w) * plain[10 - k] + w * plain[9 - k], atol=1e-5)
    np.testing.assert_allclose(ref[0], plain[0], atol=1e-6)
    assert ref.shape == plain.shape
