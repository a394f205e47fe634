"""Streaming inference: push audio chunks of any size, get 25 fps frames as soon as they are final.

>>> from speechface import AUEstimator
>>> est = AUEstimator.create("cnn")
>>> st = est.stream()                                   # 16 kHz input (give sample_rate= else)
>>> a = st.push(np.zeros(10_000, np.float32))           # any chunk size, even 1 sample
>>> b = st.push(np.zeros(6_000, np.float32))
>>> c = st.flush()                                      # end of input: the last frames
>>> len(a) + len(b) + len(c), st.latency_seconds       # 16000 samples -> 25 frames
(25, 0.36)

**Exactness.** The frames a stream returns are the frames
:meth:`~speechface.speech.SpeechEstimator.predict` gives on the whole audio, for every chunking,
up to float32 rounding (the same operations on differently sized tensors may round
differently): below 1e-5 for a network whose outputs are of order 1; a trained model whose
output calibration scales an AU by ~100 scales that too (the packaged ``cnn.au17`` model:
1.6e-5, while ``predict`` itself is 2.6e-5 from exact float64 arithmetic). How:

- *resampling* (input at another rate than the model's 16 kHz) is the polyphase windowed-sinc
  filter of :func:`speechface.audio.resample` applied block by block: output block ``b`` needs
  the input samples ``[b*o - width, b*o + o + width)``, so it is computed once those arrived,
  with the same kernel; at :meth:`StreamingEstimator.flush` the zero padding past the end and
  the exact output length ``ceil(n * new / orig)`` are reproduced;
- *features*: log-mel frame ``n`` is the STFT frame centred on sample ``n * 640``; it is
  computed from the samples under the non-zero part of its (zero-padded) Hann window, i.e.
  ``[n*640 - 320, n*640 + 320)`` with the defaults. Frame 0 gets the reflect padding
  ``x[-k] = x[k]`` of the centred STFT. Samples outside that support are multiplied by a zero
  window, so they need not have arrived;
- *network*: an estimator whose output frame ``t`` depends on the feature frames
  ``[t - past, t + lookahead]`` (``receptive_field = past + 1 + lookahead``: ``cnn``, ``dcnn``,
  ``mlp``) is recomputed on a sliding window of ``past`` + new + ``lookahead`` feature frames.
  Outputs closer than ``past`` frames to the window start are dropped, except when the window
  starts at the utterance start, so the zero padding of every layer at the utterance start is
  reproduced exactly; the padding at the end is reproduced at :meth:`flush`. ``cnn_gru``
  (context windows + a causal GRU) keeps the GRU state between chunks.

**Latency.** Offline, ``frames = samples // 640``: a trailing partial frame does not exist.
Output frame ``t`` (timestamp ``t / 25`` s) is therefore final only once frame
``t + lookahead`` is known to exist, i.e. after sample ``(t + lookahead + 1) * 640 - 1``: the
latency is ``(lookahead + 1) / 25`` s: the model's look-ahead plus one 40 ms hop (20 ms of
it is the STFT's half window, the other 20 ms waits for the hop to be complete, since
predicting past a partial frame at the end would change the last frames). Per model (16 kHz
input): ``mlp`` 40 ms, ``cnn`` 360 ms (look-ahead 320 ms), ``cnn_gru`` 240 ms (200 ms),
``dcnn`` 3.24 s (3.2 s). Input at another rate adds the resampling filter's half width
(``width + o`` input samples, under 1 ms). ``chunk_frames=k`` batches the network calls by
``k`` frames (adds up to ``k - 1`` frames of latency, fewer calls).

**Not streamable** (:class:`StreamingError` when the stream is created, with the reason):
``rnn`` (a bidirectional LSTM: every output frame depends on the whole utterance, so no
bounded latency exists; use ``predict`` / :func:`speechface.longform.predict_long` on the
complete audio), utterance-level models (``lstm_mfcc``: one vector per utterance), and MFCC
features (their dB floor is ``top_db`` below the maximum of the *whole* clip).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import nn

from .audio import FPS, _array_to_tensor, _check_rate, _reduced_rates, _sinc_resample_kernel
from .errors import AudioError, SpeechfaceError
from .speech import _eval_mode

__all__ = ["StreamingEstimator", "StreamingError", "stream_support"]


class StreamingError(SpeechfaceError, ValueError):
    """A model that cannot stream with bounded latency, or a stream used after :meth:`flush`."""


# --------------------------------------------------------------------------- support checks
def _feature_reason(fx: nn.Module) -> str | None:
    from .features.logmel import LogMel

    if isinstance(fx, LogMel):
        return None
    name = getattr(fx, "name", type(fx).__name__)
    if name == "mfcc":
        return ("its MFCC features are floored at top_db below the maximum of the whole clip, "
                "which is only known at the end")
    return f"its feature extractor {name!r} has no streaming implementation (only logmel)"


def _network_reason(net: nn.Module) -> str | None:
    from .estimators.cnn_gru import CNNGRU

    arch = getattr(net, "arch", type(net).__name__)
    if not getattr(net, "frame_level", True):
        return f"{arch!r} is utterance-level: it predicts one vector from the whole utterance"
    if isinstance(net, CNNGRU):
        return None
    look, field = getattr(net, "lookahead", None), getattr(net, "receptive_field", None)
    if look is None:
        what = "a bidirectional recurrent network: " if arch == "rnn" else ""
        return (f"{arch!r} is {what}every output frame depends on the whole utterance, so it "
                f"cannot stream with bounded latency")
    if field is None:
        return f"{arch!r} has an unbounded receptive field and no streaming implementation"
    return None


def stream_support(estimator: Any) -> str | None:
    """Why ``estimator`` cannot stream, or ``None`` when it can.

    Example:
        >>> from speechface import AUEstimator
        >>> stream_support(AUEstimator.create("cnn")) is None
        True
        >>> "whole utterance" in stream_support(AUEstimator.create("rnn"))
        True
    """
    return _network_reason(estimator.network) or _feature_reason(estimator.features)


# --------------------------------------------------------------------------- input conversion
def _as_mono(samples: Any, label: str) -> np.ndarray:
    """A chunk as 1-D float32 numpy: 1-D is mono, 2-D is ``(time, channels)`` (averaged)."""
    if isinstance(samples, np.ndarray) and samples.dtype == np.float32 and samples.ndim == 1:
        return samples.copy()  # the caller may reuse its buffer for the next chunk
    if not isinstance(samples, (np.ndarray, torch.Tensor)):
        samples = np.asarray(samples, dtype=np.float32)
    t = _array_to_tensor(samples, label)
    if t.dim() == 0:
        t = t.reshape(1)
    elif t.dim() == 2:
        if t.shape[1] > 64 and t.shape[0] < t.shape[1]:
            raise AudioError(f"{label}: a chunk of shape {tuple(t.shape)} looks like (channels, "
                             "time); streamed chunks are (time,) or (time, channels), e.g. "
                             "chunk.T")
        t = t.mean(dim=1) if t.shape[1] > 1 else t[:, 0]
    elif t.dim() != 1:
        raise AudioError(f"{label}: a chunk must be (time,) mono or (time, channels) samples, "
                         f"got shape {tuple(t.shape)}")
    return np.array(t.numpy(), dtype=np.float32)  # a copy: never a view of the caller's data


class _Buffer:
    """Samples ``[start, end)`` of a signal as one numpy array, appended to and trimmed."""

    def __init__(self) -> None:
        self.data = np.zeros(0, np.float32)
        self.start = 0

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, x: np.ndarray) -> None:
        self.data = np.concatenate([self.data, x]) if len(self.data) else x

    def trim(self, keep_from: int) -> None:
        if keep_from > self.start:
            cut = min(keep_from - self.start, len(self.data))
            self.data = self.data[cut:].copy()
            self.start += cut

    def take(self, idx_start: int, idx_stop: int, *, total: int | None = None,
             reflect_start: bool = False) -> np.ndarray:
        """Samples ``[idx_start, idx_stop)``; 0 where not (yet) available.

        ``reflect_start``: index ``-k`` reads sample ``k`` (reflect padding); ``total``: the
        signal ended at ``total`` and index ``total - 1 + k`` reads ``total - 1 - k``.
        """
        if idx_start >= self.start and idx_stop <= self.end:
            return self.data[idx_start - self.start:idx_stop - self.start]
        idx = np.arange(idx_start, idx_stop)
        if total is not None:
            idx = np.where(idx >= total, 2 * (total - 1) - idx, idx)
        if reflect_start:
            idx = np.abs(idx)
        ok = (idx >= self.start) & (idx < self.end)
        out = np.zeros(len(idx), np.float32)
        out[ok] = self.data[idx[ok] - self.start]
        return out


# --------------------------------------------------------------------------- resampling
class _StreamResampler:
    """:func:`speechface.audio.resample` computed block by block (same kernel, same blocks)."""

    def __init__(self, orig: float, new: float, lowpass_filter_width: int = 6,
                 rolloff: float = 0.99) -> None:
        self.orig, self.new = float(orig), float(new)
        o, n = _reduced_rates(self.orig, self.new, lowpass_filter_width)
        kernel, width = _sinc_resample_kernel(o, n, lowpass_filter_width, rolloff,
                                              torch.float32, torch.device("cpu"))
        self.o, self.n, self.kernel, self.width = o, n, kernel, width
        self.ratio = Fraction(self.new) / Fraction(self.orig)
        self.reset()

    def reset(self) -> None:
        self.buf = _Buffer()
        self.blocks = 0
        self.pending = np.zeros(0, np.float32)
        self.released = 0

    def input_needed(self, wanted: int) -> int:
        """Input samples after which ``wanted`` output samples can be released."""
        if wanted <= 0:
            return 0
        blocks = -(-wanted // self.n)
        by_blocks = (blocks - 1) * self.o + self.width + self.o
        by_length = math.floor(Fraction(wanted - 1) / self.ratio) + 1
        return max(by_blocks, by_length)

    def push(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        """Append input samples; return the output samples that are now final."""
        self.buf.append(x)
        n_in = self.buf.end
        o, w = self.o, self.width
        avail = n_in // o + 1 if final else max(0, (n_in - w - o) // o + 1)
        if avail > self.blocks:
            b0, b1 = self.blocks, avail
            seg = self.buf.take(b0 * o - w, b1 * o + w)
            y = torch.nn.functional.conv1d(torch.from_numpy(seg)[None, None], self.kernel, stride=o)
            self.pending = np.concatenate([self.pending, y[0].T.reshape(-1).numpy()])
            self.blocks = b1
            self.buf.trim(b1 * o - w)
        limit = math.ceil(Fraction(n_in) * self.ratio)  # the exact output length so far
        count = min(len(self.pending), limit - self.released)
        out = self.pending[:count]
        if final and count < limit - self.released:  # approximated ratio: zero tail
            out = np.concatenate([out, np.zeros(limit - self.released - count, np.float32)])
        self.pending = self.pending[count:]
        self.released += len(out)
        return out


# --------------------------------------------------------------------------- features
class _MelStream:
    """Mel power frames of :class:`~speechface.features.logmel._MelPower`, frame by frame."""

    def __init__(self, spectrogram: nn.Module) -> None:
        sp = spectrogram
        self.sp = sp
        self.hop, self.n_fft = int(sp.hop_length), int(sp.n_fft)
        self.pad = self.n_fft // 2
        full = torch.zeros(self.n_fft)
        left = (self.n_fft - int(sp.win_length)) // 2
        full[left:left + int(sp.win_length)] = sp.window.detach().cpu().float()
        nz = torch.nonzero(full).flatten()
        # frame n reads samples [n*hop + first, n*hop + last] (the non-zero window)
        self.first = int(nz[0]) - self.pad if len(nz) else 0
        self.last = int(nz[-1]) - self.pad if len(nz) else 0
        self.reset()

    def reset(self) -> None:
        self.buf = _Buffer()
        self.frames = 0

    def push(self, x: np.ndarray, final: bool = False) -> torch.Tensor:
        """Append samples; return ``(new_frames, n_mels)`` mel power frames that are final."""
        self.buf.append(x)
        n = self.buf.end
        if final:
            count = n // self.hop
        else:
            count = min(n // self.hop, max(0, (n - 1 - self.last) // self.hop + 1))
            if -self.first >= n:  # frame 0's reflect padding not there yet
                count = 0
        a, b = self.frames, count
        sp = self.sp
        if b <= a:
            return torch.zeros(0, sp.fb.shape[1], device=sp.fb.device)
        seg = self.buf.take(a * self.hop - self.pad, (b - 1) * self.hop - self.pad + self.n_fft,
                            total=n if final else None, reflect_start=True)
        wave = torch.from_numpy(np.ascontiguousarray(seg))[None].to(sp.window.device)
        spec = torch.stft(wave.to(sp.window.dtype), n_fft=self.n_fft, hop_length=self.hop,
                          win_length=sp.win_length, window=sp.window, center=False,
                          normalized=False, onesided=True, return_complex=True)
        power = spec.abs().pow(sp.power)
        mel = torch.matmul(power.transpose(-1, -2), sp.fb)[0]  # (frames, n_mels)
        self.frames = b
        self.buf.trim(max(0, b * self.hop - self.pad))
        return mel


class _Frontend:
    """Input chunks -> (resampled) samples -> mel power frames, with the checks of load_audio."""

    def __init__(self, estimator: Any, sample_rate: float | None, name: str) -> None:
        self.name = name
        self.model_rate = int(estimator.sample_rate)
        self.rate = (float(self.model_rate) if sample_rate is None
                     else _check_rate(sample_rate, "sample_rate", name))
        self.resampler = (None if self.rate == self.model_rate
                          else _StreamResampler(self.rate, self.model_rate))
        self.mel = _MelStream(estimator.features.spectrogram)
        self.reset()

    def reset(self) -> None:
        self.pending: list[np.ndarray] = []
        self.n_in = 0
        self.n_model = 0
        if self.resampler is not None:
            self.resampler.reset()
        self.mel.reset()

    def add(self, samples: Any) -> None:
        x = _as_mono(samples, self.name)
        if len(x) == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            total = x.sum()
        if not np.isfinite(total):  # fast path: a NaN / inf makes the sum NaN / inf
            finite = np.isfinite(x)  # (a sum of huge finite values can overflow too)
            if not finite.all():
                first = self.n_in + int(np.argmin(finite))
                raise AudioError(f"{self.name} contains NaN or infinite samples (first at "
                                 f"sample {first}, {first / self.rate:.3f} s)")
        self.pending.append(x)
        self.n_in += len(x)

    def input_needed(self, model_samples: int) -> int:
        """Input samples after which ``model_samples`` samples at the model rate exist."""
        if self.resampler is None:
            return model_samples
        return self.resampler.input_needed(model_samples)

    def run(self, final: bool = False) -> torch.Tensor:
        """Process the pending input; return the new mel power frames ``(frames, n_mels)``."""
        x = (np.concatenate(self.pending) if len(self.pending) > 1
             else self.pending[0] if self.pending else np.zeros(0, np.float32))
        self.pending = []
        if self.resampler is not None:
            x = self.resampler.push(x, final=final)
        self.n_model += len(x)
        if final:
            if self.n_in == 0:
                raise AudioError(f"{self.name} has no samples")
            min_len = math.ceil(self.model_rate / FPS)
            if self.n_model < min_len:
                raise AudioError(f"{self.name} is too short: "
                                 f"{self.n_model / self.model_rate * 1000:.1f} ms ({self.n_model} "
                                 f"samples at {self.model_rate:g} Hz); at least one {FPS} fps "
                                 f"frame of 40 ms ({min_len} samples) is needed")
        return self.mel.push(x, final=final)


def _log_mel_features(estimator: Any, mel: torch.Tensor) -> torch.Tensor:
    """Mel power ``(frames, n_mels)`` -> normalised log-mel features, as ``featurize`` does."""
    fx = estimator.features
    feats = torch.log(mel + fx.log_offset)
    return (feats - estimator.feature_mean) / estimator.feature_std


# --------------------------------------------------------------------------- network runners
class _WindowRunner:
    """Finite receptive field: recompute on ``past + new + lookahead`` feature frames."""

    def __init__(self, estimator: Any) -> None:
        net = estimator.network
        self.est = estimator
        self.right = int(net.lookahead)
        self.past = int(net.receptive_field) - 1 - self.right
        self.reset()

    def reset(self) -> None:
        self.feats: torch.Tensor | None = None
        self.f_start = 0
        self.f_end = 0
        self.n_out = 0

    def push(self, feats: torch.Tensor, final: bool, min_new: int) -> torch.Tensor:
        """Append feature frames that exist; return the raw outputs that are now final."""
        if len(feats):
            self.feats = feats if self.feats is None else torch.cat([self.feats, feats])
            self.f_end += len(feats)
        until = self.f_end if final else self.f_end - self.right
        new = until - self.n_out
        if new <= 0 or (new < min_new and not final) or self.feats is None:
            return torch.zeros(0, self.est.network.out_dim, device=self.est.device)
        s = max(0, self.n_out - self.past)
        raw = self.est(self.feats[s - self.f_start:][None])[0]
        out = raw[self.n_out - s:until - s]
        self.n_out = until
        keep = max(0, self.n_out - self.past)
        self.feats = self.feats[keep - self.f_start:]
        self.f_start = keep
        return out


class _ContextGRURunner:
    """``cnn_gru``: per-frame context windows (zero-padded at the edges) + a causal GRU state."""

    def __init__(self, estimator: Any) -> None:
        self.est = estimator
        self.net = estimator.network
        self.right = int(self.net.context) // 2
        self.reset()

    def reset(self) -> None:
        self.feats: torch.Tensor | None = None
        self.f_start = 0
        self.f_end = 0
        self.n_out = 0
        self.hidden: torch.Tensor | None = None

    def push(self, feats: torch.Tensor, final: bool, min_new: int) -> torch.Tensor:
        """Append feature frames that exist; return the raw outputs that are now final."""
        net, h = self.net, self.right
        if len(feats):
            self.feats = feats if self.feats is None else torch.cat([self.feats, feats])
            self.f_end += len(feats)
        until = self.f_end if final else self.f_end - h
        new = until - self.n_out
        if new <= 0 or (new < min_new and not final) or self.feats is None:
            return torch.zeros(0, net.out_dim, device=self.est.device)
        lo, hi = self.n_out - h, until + h
        x = self.feats[max(lo, 0) - self.f_start:min(hi, self.f_end) - self.f_start]
        x = nn.functional.pad(x, (0, 0, max(0, -lo), max(0, hi - self.f_end)))
        f = x.shape[1]
        win = x.unfold(0, net.context, 1)  # (new, F, context)
        z = net.convs(win.reshape(new, 1, f, net.context))
        z = torch.relu(net.embed(z.flatten(1))).view(1, new, -1)
        y, self.hidden = net.gru(z, self.hidden)
        raw = net.head(y)[0] * self.est.out_scale + self.est.out_bias
        self.n_out = until
        keep = max(0, self.n_out - h)
        self.feats = self.feats[keep - self.f_start:]
        self.f_start = keep
        return raw


# --------------------------------------------------------------------------- the stream
class StreamingEstimator:
    """Frame-by-frame inference on audio pushed in chunks (see the module docstring).

    Made by :meth:`SpeechEstimator.stream() <speechface.speech.SpeechEstimator.stream>`.

    Args:
        estimator: a streamable :class:`~speechface.speech.SpeechEstimator` (log-mel features
            and a ``cnn`` / ``dcnn`` / ``mlp`` / ``cnn_gru`` network).
        chunk_frames: run the network once at least this many new frames are final (1 = emit
            every frame as soon as possible).
        sample_rate: rate of the pushed samples in Hz (default: the model's, 16 kHz); any other
            rate is resampled exactly as :func:`~speechface.audio.resample` does.
        name: how to call the input in error messages.

    Raises:
        StreamingError: the model cannot stream (``rnn``, utterance-level models, MFCC
            features); the message says why.

    Example:
        >>> from speechface import AUEstimator
        >>> st = AUEstimator.create("mlp").stream(sample_rate=48000)
        >>> frames = [st.push(c) for c in np.zeros((30, 1600), np.float32)]  # 30 x 33 ms
        >>> sum(map(len, frames)) + len(st.flush())
        25
    """

    def __init__(self, estimator: Any, *, chunk_frames: int = 1, sample_rate: float | None = None,
                 name: str | None = None) -> None:
        reason = stream_support(estimator)
        if reason is not None:
            raise StreamingError(f"model {estimator.name!r} cannot stream: {reason}; use "
                                 "predict() on the complete audio (predict_long for very long "
                                 "files), or a streamable model (log-mel features and a cnn, "
                                 "dcnn, mlp or cnn_gru network)")
        if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
            raise ValueError(f"chunk_frames must be an int >= 1, got {chunk_frames!r}")
        from .estimators.cnn_gru import CNNGRU

        self.estimator = estimator
        self.chunk_frames = chunk_frames
        self._empty_raw = torch.zeros(0, estimator.network.out_dim)
        self.name = name or "audio stream"
        self._front = _Frontend(estimator, sample_rate, self.name)
        self._runner: _WindowRunner | _ContextGRURunner = (
            _ContextGRURunner(estimator) if isinstance(estimator.network, CNNGRU)
            else _WindowRunner(estimator))
        self.reset()

    # ------------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> float:
        """Rate of the pushed samples in Hz."""
        return self._front.rate

    @property
    def fps(self) -> int:
        """Output frames per second (25)."""
        return int(self.estimator.fps)

    @property
    def labels(self) -> tuple[str, ...]:
        """Names of the output columns."""
        return tuple(self.estimator.labels)

    @property
    def lookahead_frames(self) -> int:
        """Future feature frames an output frame depends on (cnn: 8, dcnn: 80, mlp: 0)."""
        return self._runner.right

    @property
    def latency_samples(self) -> int:
        """Input samples between frame 0's timestamp and the push that returns frame 0.

        ``(lookahead + chunk_frames) * 640`` at 16 kHz; more at other input rates (the
        resampler's half kernel). Frame ``t`` is returned once ``latency_samples`` samples past
        its timestamp ``t / 25`` s have been pushed (exactly so at 16 kHz).
        """
        hop = self.estimator.features.hop_length
        return self._front.input_needed((self._runner.right + self.chunk_frames) * hop)

    @property
    def latency_seconds(self) -> float:
        """:attr:`latency_samples` in seconds (cnn at 16 kHz: 0.36)."""
        return self.latency_samples / self.sample_rate

    @property
    def samples_pushed(self) -> int:
        """Input samples received so far."""
        return self._front.n_in

    @property
    def frames_emitted(self) -> int:
        """Output frames returned so far."""
        return self._runner.n_out

    @property
    def finished(self) -> bool:
        """True after :meth:`flush` (until :meth:`reset`)."""
        return self._done

    # ------------------------------------------------------------------ streaming
    def reset(self) -> None:
        """Forget all input: start a new utterance."""
        self._front.reset()
        self._runner.reset()
        self._done = False
        self._need = self._next_need()

    def _next_need(self) -> int:
        hop = self.estimator.features.hop_length
        frames = self._runner.n_out + self._runner.right + self.chunk_frames
        return max(self._front.input_needed(frames * hop), self._front.n_in + 1)

    def _check_open(self) -> None:
        if self._done:
            raise StreamingError(f"{self.name}: the stream was flushed; call reset() to start "
                                 "a new utterance")

    def _run(self, final: bool) -> torch.Tensor:
        est = self.estimator
        with _eval_mode(est):
            mel = self._front.run(final=final)
            feats = _log_mel_features(est, mel)
            raw = self._runner.push(feats, final, self.chunk_frames)
            return raw.detach().clone()

    def push_raw(self, samples: Any) -> torch.Tensor:
        """As :meth:`push`, but the raw calibrated network outputs (before ``space.activate``)."""
        self._check_open()
        self._front.add(samples)
        if self._front.n_in < self._need:
            return self._empty_raw
        raw = self._run(final=False)
        self._need = self._next_need()
        return raw.cpu()

    def flush_raw(self) -> torch.Tensor:
        """As :meth:`flush`, but the raw calibrated network outputs."""
        self._check_open()
        self._done = True
        return self._run(final=True).cpu()

    def _values(self, raw: torch.Tensor) -> np.ndarray:
        if raw.shape[0] == 0:
            return np.zeros((0, raw.shape[1]), np.float32)
        return self.estimator.space.activate(raw).float().numpy()

    def push(self, samples: Any) -> np.ndarray:
        """Add a chunk of samples and return the frames that became final.

        Args:
            samples: any number of samples (also 0, 1, or a count that is not a multiple of
                the 640-sample hop): ``(time,)`` mono or ``(time, channels)`` (averaged), float
                in [-1, 1] or int PCM (scaled as :func:`~speechface.audio.load_audio` does),
                numpy array, tensor or list, at :attr:`sample_rate`.

        Returns:
            ``(new_frames, dim)`` float32 values of the model's space (often 0 rows), following
            the frames returned before.

        Raises:
            AudioError: NaN / infinite samples (the message gives the sample index).
            StreamingError: the stream was already flushed.
        """
        return self._values(self.push_raw(samples))

    def flush(self) -> np.ndarray:
        """End of input: return the remaining frames (``samples // 640`` frames in all).

        Raises:
            AudioError: no samples, or less than one 40 ms frame in all.
        """
        return self._values(self.flush_raw())

    def process(self, chunks: Iterable[Any]) -> Any:
        """Push every chunk, flush, and return a :class:`~speechface.results.Prediction`.

        Example:
            >>> from speechface import AUEstimator
            >>> st = AUEstimator.create("cnn").stream()
            >>> st.process(np.zeros((4, 4000), np.float32)).values.shape
            (25, 17)
        """
        self.reset()
        raws = [self.push_raw(c) for c in chunks]
        raws.append(self.flush_raw())
        return self.estimator._result(torch.cat(raws), None)

    def __repr__(self) -> str:
        return (f"StreamingEstimator({self.estimator.name!r}, {self.sample_rate:g} Hz, "
                f"latency {self.latency_seconds * 1000:.0f} ms, {self.frames_emitted} frames out)")
