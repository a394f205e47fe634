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
1.6e-5, while ``predict`` itself is 2.6e-5 from exact float64 arithmetic). This module only
drives the components, each of which owns its streaming:

- *audio*: :class:`~speechface.audio.AudioStream` downmixes and checks the chunks like
  :func:`~speechface.audio.load_audio`; resampling (input at another rate than the model's
  16 kHz) is the polyphase windowed-sinc filter of :func:`speechface.audio.resample` applied
  block by block (:class:`~speechface.audio.StreamResampler`): output block ``b`` needs
  the input samples ``[b*o - width, b*o + o + width)``, so it is computed once those arrived,
  with the same kernel; at :meth:`StreamingEstimator.flush` the zero padding past the end and
  the exact output length ``ceil(n * new / orig)`` are reproduced;
- *features*: the extractor's :meth:`~speechface.audio.features.FeatureExtractor.stream`; log-mel
  frame ``n`` is the STFT frame centred on sample ``n * 640``; it is
  computed from the samples under the non-zero part of its (zero-padded) Hann window, i.e.
  ``[n*640 - 320, n*640 + 320)`` with the defaults. Frame 0 gets the reflect padding
  ``x[-k] = x[k]`` of the centred STFT. Samples outside that support are multiplied by a zero
  window, so they need not have arrived;
- *network*: the network's :meth:`~speechface.speech.estimators.Estimator.stream`; an estimator
  whose output frame ``t`` depends on the feature frames
  ``[t - past, t + lookahead]`` (``receptive_field = past + 1 + lookahead``: ``cnn``, ``dcnn``,
  ``mlp``) is recomputed on a sliding window of ``past`` + new + ``lookahead`` feature frames.
  Outputs closer than ``past`` frames to the window start are dropped, except when the window
  starts at the utterance start, so the zero padding of every layer at the utterance start is
  reproduced exactly; the padding at the end is reproduced at :meth:`flush`
  (:class:`~speechface.speech.estimators.WindowStream`). ``cnn_gru`` (context windows + a causal GRU)
  keeps the GRU state between chunks (:class:`~speechface.speech.estimators.cnn_gru.CNNGRUStream`).

**Latency.** Offline, ``frames = samples // 640``: a trailing partial frame does not exist.
Output frame ``t`` (timestamp ``t / 25`` s) is therefore final only once frame
``t + lookahead`` is known to exist, i.e. after sample ``(t + lookahead + 1) * 640 - 1``: the
latency is ``(lookahead + 1) / 25`` s: the model's look-ahead plus one 40 ms hop (20 ms of
it is the STFT's half window, the other 20 ms waits for the hop to be complete, since
predicting past a partial frame at the end would change the last frames). Per model (16 kHz
input): ``mlp`` 40 ms, ``cnn`` 360 ms (look-ahead 320 ms), ``cnn_gru`` 240 ms (200 ms),
``dcnn`` 3.24 s (3.2 s). Input at another rate adds the resampling filter's half width
(``width + o`` input samples, under 1 ms). ``chunk_frames=k`` batches the network calls by
``k`` frames (adds up to ``k - 1`` frames of latency, fewer calls). A model's fitted
:attr:`~speechface.speech.SpeechEstimator.output_delay` adds none: output frame ``t`` uses the
network's frames up to ``t`` (:class:`~speechface.speech.delay.OutputDelay`).

**Not streamable** (:class:`StreamingError` when the stream is created, with the reason):
``rnn`` (a bidirectional LSTM: every output frame depends on the whole utterance, so no
bounded latency exists; use ``predict`` / :func:`speechface.speech.longform.predict_long` on the
complete audio), utterance-level models (``lstm_mfcc``: one vector per utterance), and MFCC
features (their dB floor is ``top_db`` below the maximum of the *whole* clip). The reasons come
from the components (:meth:`~speechface.speech.estimators.Estimator.stream_reason`,
:meth:`~speechface.audio.features.FeatureExtractor.stream_reason`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ..audio.waveform import AudioStream
from ..core.errors import SpeechfaceError
from .delay import OutputDelay

__all__ = ["StreamingEstimator", "StreamingError", "stream_support"]


class StreamingError(SpeechfaceError, ValueError):
    """A model that cannot stream with bounded latency, or a stream used after :meth:`flush`."""


def stream_support(estimator: Any) -> str | None:
    """Why ``estimator`` cannot stream, or ``None`` when it can (its network's reason first,
    then its feature extractor's).

    Example:
        >>> from speechface import AUEstimator
        >>> stream_support(AUEstimator.create("cnn")) is None
        True
        >>> "whole utterance" in stream_support(AUEstimator.create("rnn"))
        True
    """
    return estimator.network.stream_reason() or estimator.features.stream_reason()


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
        self.estimator = estimator
        self.chunk_frames = chunk_frames
        self._empty_raw = torch.zeros(0, estimator.network.out_dim)
        self.name = name or "audio stream"
        self._audio = AudioStream(sample_rate, target_rate=estimator.sample_rate, name=self.name)
        self._features = estimator.features.stream()
        self._network = estimator.network.stream()
        self.reset()

    # ------------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> float:
        """Rate of the pushed samples in Hz."""
        return self._audio.rate

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
        return int(self._network.lookahead)

    def _input_for_outputs(self, outputs: int) -> int:
        """Input samples after which ``outputs`` output frames can be returned."""
        frames = outputs + self.lookahead_frames
        return self._audio.input_needed(self._features.samples_needed(frames))

    @property
    def latency_samples(self) -> int:
        """Input samples between frame 0's timestamp and the push that returns frame 0.

        ``(lookahead + chunk_frames) * 640`` at 16 kHz; more at other input rates (the
        resampler's half kernel). Frame ``t`` is returned once ``latency_samples`` samples past
        its timestamp ``t / 25`` s have been pushed (exactly so at 16 kHz).
        """
        return self._input_for_outputs(self.chunk_frames)

    @property
    def latency_seconds(self) -> float:
        """:attr:`latency_samples` in seconds (cnn at 16 kHz: 0.36)."""
        return self.latency_samples / self.sample_rate

    @property
    def samples_pushed(self) -> int:
        """Input samples received so far."""
        return self._audio.n_in

    @property
    def frames_emitted(self) -> int:
        """Output frames returned so far."""
        return self._network.n_out

    @property
    def finished(self) -> bool:
        """True after :meth:`flush` (until :meth:`reset`)."""
        return self._done

    # ------------------------------------------------------------------ streaming
    def reset(self) -> None:
        """Forget all input: start a new utterance."""
        self._audio.reset()
        self._features.reset()
        self._network.reset()
        self._delay = OutputDelay(self.estimator.output_delay)
        self._done = False
        self._need = self._next_need()

    def _next_need(self) -> int:
        needed = self._input_for_outputs(self._network.n_out + self.chunk_frames)
        return max(needed, self._audio.n_in + 1)

    def _check_open(self) -> None:
        if self._done:
            raise StreamingError(f"{self.name}: the stream was flushed; call reset() to start "
                                 "a new utterance")

    def _run(self, final: bool) -> torch.Tensor:
        est = self.estimator
        with est.eval_mode():
            feats = self._features.push(self._audio.run(final=final), final=final)
            x = est.normalize(feats.to(est.device))
            raw = self._network.push(x, final, self.chunk_frames)
            return self._delay.push(est.calibrate(raw)).detach().clone()

    def push_raw(self, samples: Any) -> torch.Tensor:
        """As :meth:`push`, but the raw calibrated (and delayed) network outputs, before
        ``space.activate``."""
        self._check_open()
        self._audio.add(samples)
        if self._audio.n_in < self._need:
            return self._empty_raw
        raw = self._run(final=False)
        self._need = self._next_need()
        return raw.cpu()

    def flush_raw(self) -> torch.Tensor:
        """As :meth:`flush`, but the raw calibrated (and delayed) network outputs."""
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
        """Push every chunk, flush, and return a :class:`~speechface.core.results.Prediction`.

        Example:
            >>> from speechface import AUEstimator
            >>> st = AUEstimator.create("cnn").stream()
            >>> st.process(np.zeros((4, 4000), np.float32)).values.shape
            (25, 17)
        """
        self.reset()
        raws = [self.push_raw(c) for c in chunks]
        raws.append(self.flush_raw())
        return self.estimator.to_prediction(torch.cat(raws), None)

    def __repr__(self) -> str:
        return (f"StreamingEstimator({self.estimator.name!r}, {self.sample_rate:g} Hz, "
                f"latency {self.latency_seconds * 1000:.0f} ms, {self.frames_emitted} frames out)")
