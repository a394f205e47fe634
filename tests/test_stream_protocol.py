"""The components' own streaming: feature streams, block plans and network streams equal the
whole-input forward for any chunking, and a new extractor or network streams with no edit to
streaming.py / longform.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from speechface import SpeechEstimator
from speechface.audio.features import (
    FeatureExtractor,
    FeatureStream,
    OverlapWindowStream,
    WholeInputStream,
    create_features,
    overlap_windows,
)
from speechface.core.registry import FEATURES
from speechface.speech.estimators import WindowStream, create_estimator, list_estimators
from speechface.speech.longform import features_from_blocks, predict_long
from speechface.speech.streaming import StreamingError, stream_support

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_cuts(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    cuts, i = [], 0
    while i < n:
        k = int(rng.choice([0, 1, 5, 319, 320, 639, 640, 641, 2000, 9000]))
        cuts.append(min(k, n - i))
        i += k
    return cuts


def _pushed(fs: FeatureStream, x: np.ndarray, seed: int) -> torch.Tensor:
    parts, i = [], 0
    for k in _random_cuts(len(x), seed):
        parts.append(fs.push(x[i:i + k]))
        i += k
    parts.append(fs.push(x[:0], final=True))
    return fs.finish(torch.cat(parts))


# --------------------------------------------------------------------------- feature streams
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,kw", [("logmel", {}), ("logmel", {"n_mels": 40, "n_fft": 2048, "win_length": 1280}),
                                     ("mfcc", {})], ids=["logmel", "logmel-40", "mfcc"])
def test_block_stream_equals_forward(name: str, kw: dict, seed: int, speech: np.ndarray) -> None:
    fx = create_features(name, **kw)
    x = speech[:30_000 + 37 * seed]
    ref = fx(torch.from_numpy(x)).T
    got = _pushed(fx.block_stream(), x, seed)
    assert got.shape == ref.shape == (len(x) // 640, fx.n_features)
    torch.testing.assert_close(got, ref, atol=2e-4, rtol=1e-5)


def test_logmel_stream_returns_each_frame_once_its_window_arrived() -> None:
    fs = create_features("logmel").stream()
    assert [len(fs.push(np.zeros(k, np.float32))) for k in (639, 1, 639, 1, 1280)] == [0, 1, 0, 1, 2]
    assert fs.samples_needed(3) == 3 * 640
    fs.reset()
    assert fs.frames == 0 and len(fs.push(np.zeros(640, np.float32))) == 1


def test_mfcc_says_why_it_cannot_stream_but_has_a_bounded_block_plan() -> None:
    fx = create_features("mfcc")
    assert "top_db below the maximum of the whole clip" in fx.stream_reason()
    assert "deltas" in create_features("mfcc", top_db=None).stream_reason()
    with pytest.raises(NotImplementedError, match="cannot stream"):
        fx.stream()
    plan = fx.block_stream()
    assert not isinstance(plan, WholeInputStream)
    assert plan.push(np.zeros(6400, np.float32)).shape[1] == fx.n_mels  # mel power per block


@pytest.mark.parametrize("window,overlap", [(7, 3), (20, 4), (9, 0), (30, 29)])
def test_overlap_windows_and_their_stream_agree(window: int, overlap: int,
                                                speech: np.ndarray) -> None:
    fx = create_features("logmel")

    def per_window(wave: torch.Tensor) -> torch.Tensor:  # context matters: window-wise centring
        y = fx(wave)
        return y - y.mean(dim=-1, keepdim=True)

    for n in (50_000, 50_000 + 640 * 3 + 17, 640 * window, 640 * (window + 1) + 5, 3000):
        x = speech[:n]
        whole = overlap_windows(per_window, torch.from_numpy(x)[None], 640, window, overlap)[0]
        assert whole.shape == (80, n // 640)
        fs = OverlapWindowStream(fx, per_window, window, overlap)
        for seed in range(2):
            fs.reset()
            torch.testing.assert_close(_pushed(fs, x, seed), whole.T, atol=1e-4, rtol=1e-5)


def test_overlap_window_stream_returns_frames_before_the_end() -> None:
    fx = create_features("logmel")
    fs = OverlapWindowStream(fx, fx, 10, 4)
    got, pushed = 0, 0
    for _ in range(40):
        got += len(fs.push(np.zeros(640, np.float32)))
        pushed += 640
        assert pushed >= fs.samples_needed(got)  # never later than promised
        assert got == 0 or pushed < fs.samples_needed(got + 1)
    assert got >= 40 - 10 - 4
    got += len(fs.push(np.zeros(0, np.float32), final=True))
    assert got == 40


def test_whisper_features_take_long_input_in_windows(speech: np.ndarray) -> None:
    fx = create_features("whisper", window_seconds=2.0, overlap_seconds=0.4)
    assert "whole encoder window" in fx.stream_reason()
    x = speech[:16000 * 6 + 321]
    ref = fx(torch.from_numpy(x)).T
    plan = fx.block_stream()
    assert isinstance(plan, OverlapWindowStream)
    got = _pushed(plan, x, 4)
    assert got.shape == ref.shape == (len(x) // 640, 384)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    est = SpeechEstimator.create("cnn", feature="whisper",
                                 feature_args={"window_seconds": 2.0, "overlap_seconds": 0.4})
    with pytest.raises(StreamingError, match="whole encoder window"):
        est.stream()
    np.testing.assert_allclose(est.predict(x, 16000, chunk_seconds=0.7).values,
                               est.predict(x, 16000).values, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- new extractors
class _Energy(FeatureExtractor):
    """Log energy of each hop and its first difference: 2 features, streams hop by hop."""

    n_features = 2

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x, lead = self._frames_input(wave)
        n = x.shape[-1] // self.hop_length
        e = torch.log(x[:, :n * self.hop_length].reshape(x.shape[0], n, -1).pow(2).mean(-1)
                      + 1e-6)
        d = torch.diff(e, dim=-1, prepend=e[:, :1])
        return torch.stack([e, d], dim=1).reshape(*lead, 2, n)

    def stream(self) -> FeatureStream:
        return _EnergyStream(self)


class _EnergyStream(FeatureStream):
    def reset(self) -> None:
        super().reset()
        self.rest = np.zeros(0, np.float32)
        self.prev: torch.Tensor | None = None

    def __init__(self, fx: _Energy) -> None:
        super().__init__(fx)
        self.reset()

    def push(self, samples: np.ndarray, final: bool = False) -> torch.Tensor:
        x = np.concatenate([self.rest, np.asarray(samples, np.float32)])
        hop = self.extractor.hop_length
        n = len(x) // hop
        self.rest = x[n * hop:]
        if n == 0:
            return self._empty()
        e = torch.log(torch.from_numpy(x[:n * hop]).reshape(n, hop).pow(2).mean(-1) + 1e-6)
        first = e[:1] if self.prev is None else self.prev
        d = torch.diff(e, prepend=first)
        self.prev = e[-1:]
        self.frames += n
        return torch.stack([e, d], dim=1)


class _Windowed(FeatureExtractor):
    """A Whisper-like extractor: log-mel centred over 2 s windows overlapping by 0.4 s."""

    n_features = 80

    def __init__(self, sample_rate: int = 16000, fps: int = 25) -> None:
        super().__init__(sample_rate, fps)
        self.mel = create_features("logmel", sample_rate=sample_rate, fps=fps)

    def _window(self, wave: torch.Tensor) -> torch.Tensor:
        y = self.mel(wave)
        return y - y.mean(dim=-1, keepdim=True)

    def stream_reason(self) -> str | None:
        return "it works on 2 s windows (block processing only)"

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x, lead = self._frames_input(wave)
        out = overlap_windows(self._window, x, self.hop_length, 50, 10)
        return out.reshape(*lead, *out.shape[-2:])

    def block_stream(self) -> FeatureStream:
        return OverlapWindowStream(self, self._window, 50, 10)


class _NoPlan(_Energy):
    """Energy without any streaming code: long inputs fall back to the whole input."""

    stream = FeatureExtractor.stream


@pytest.fixture
def registered():
    FEATURES.register("test_energy")(_Energy)
    FEATURES.register("test_windowed")(_Windowed)
    FEATURES.register("test_noplan")(_NoPlan)
    yield
    for name in ("test_energy", "test_windowed", "test_noplan"):
        FEATURES.unregister(name)


def _estimator(arch: str, feature: str) -> SpeechEstimator:
    torch.manual_seed(3)
    est = SpeechEstimator.create(arch, feature=feature)
    n = est.features.n_features
    est.set_normalization(torch.randn(n) - 3, torch.rand(n) + 0.5)
    return est.eval()


@pytest.mark.parametrize("arch", ["cnn", "mlp", "cnn_gru"])
def test_a_new_streaming_extractor_streams_with_no_other_edit(arch: str, registered,
                                                              speech: np.ndarray) -> None:
    est = _estimator(arch, "test_energy")
    assert stream_support(est) is None
    x = speech[:40_000]
    ref = est.predict(x, 16000).values
    st = est.stream()
    got = [st.push(x[i:i + 777]) for i in range(0, len(x), 777)] + [st.flush()]
    np.testing.assert_allclose(np.concatenate(got), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(predict_long(est, x, 0.9, sample_rate=16000).values, ref,
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("feature,plan", [("test_windowed", OverlapWindowStream),
                                          ("test_noplan", WholeInputStream)])
def test_extractors_that_cannot_stream_still_take_long_input(feature: str, plan: type,
                                                             registered,
                                                             speech: np.ndarray) -> None:
    est = _estimator("cnn", feature)
    assert isinstance(est.features.block_stream(), plan)
    with pytest.raises(StreamingError, match="cannot stream: its feature extractor|2 s windows"):
        est.stream()
    ref = est.predict(speech, 16000).values
    np.testing.assert_allclose(predict_long(est, speech, 1.1, sample_rate=16000).values, ref,
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose(est.predict(speech, 16000, chunk_seconds=2.3).values, ref,
                               atol=1e-5, rtol=0)


def test_features_from_blocks_resamples_like_load_audio(speech: np.ndarray) -> None:
    from speechface.audio import load_audio, resample

    fx = create_features("logmel")
    x = resample(torch.from_numpy(speech[:20_000]), 16000, 44100).numpy()
    ref = fx(load_audio(x, 44100)).T
    blocks = (x[i:i + 3333] for i in range(0, len(x), 3333))
    torch.testing.assert_close(features_from_blocks(fx, blocks, 44100), ref, atol=2e-4, rtol=1e-5)


# --------------------------------------------------------------------------- network streams
@pytest.mark.parametrize("arch", list_estimators())
def test_every_network_streams_exactly_or_says_why(arch: str) -> None:
    torch.manual_seed(0)
    net = create_estimator(arch).eval()
    reason = net.stream_reason()
    if reason is not None:
        with pytest.raises(NotImplementedError, match=re.escape(reason[:30])):
            net.stream()
        return
    x = torch.randn(230, net.in_features)
    with torch.inference_mode():
        ref = net(x[None])[0]
        for seed in range(3):
            ns = net.stream()
            rng = np.random.default_rng(seed)
            parts, i = [], 0
            while i < len(x):
                k = int(rng.integers(0, 40))
                parts.append(ns.push(x[i:i + k], min_new=int(rng.integers(1, 4))))
                i += k
            parts.append(ns.push(x[:0], final=True))
            got = torch.cat(parts)
            assert ns.n_out == len(x)
            torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    expected = {"cnn": 8, "dcnn": 80, "mlp": 0, "cnn_gru": 5}
    if arch in expected:
        assert ns.lookahead == expected[arch]


def test_window_stream_needs_a_finite_receptive_field() -> None:
    rnn = create_estimator("rnn")
    assert "bidirectional" in rnn.stream_reason()
    with pytest.raises(NotImplementedError, match="bidirectional"):
        rnn.stream()
    with pytest.raises(ValueError, match="no finite receptive field"):
        WindowStream(rnn)
    assert "utterance-level" in create_estimator("lstm_mfcc", in_features=39).stream_reason()


def test_long_input_runs_a_stateful_network_in_blocks(speech: np.ndarray) -> None:
    torch.manual_seed(5)
    est = SpeechEstimator.create("cnn_gru").eval()
    ref = est.predict(speech, 16000).values
    got = est.predict(speech, 16000, chunk_seconds=0.5).values  # network blocks of 12 frames
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
