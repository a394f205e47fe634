"""The feature-extractor base class and the name-based constructor.

A feature extractor is a torchaudio-style :class:`torch.nn.Module`: ``(..., time)`` float
samples at ``sample_rate`` in, ``(..., n_features, frames)`` out, one frame per video frame at
``fps`` (25 by default, a hop of 640 samples at 16 kHz). Constant tensors (windows,
filterbanks, DCT matrices) are non-persistent buffers: they follow ``.to(device)`` but are not
saved in a ``state_dict``, because the constructor arguments (:meth:`FeatureExtractor.config`)
rebuild them.

**Streaming and long inputs.** An extractor also says how it processes a signal that arrives in
blocks, so that :mod:`speechface.speech.streaming` and :mod:`speechface.speech.longform` only drive it:

- :meth:`FeatureExtractor.stream` returns a :class:`FeatureStream` whose frames equal
  ``forward`` on the whole signal (up to float32 rounding) with bounded latency;
  :meth:`FeatureExtractor.stream_reason` says why an extractor cannot (``None`` when it can).
- :meth:`FeatureExtractor.block_stream` is what long inputs use: the streaming frames when the
  extractor streams; otherwise a stream of *intermediate* frames computed block by block plus a
  :meth:`FeatureStream.finish` step on the whole intermediate sequence (MFCC: mel power blocks,
  then the clip-wide dB floor, DCT and deltas), or, as the last resort, the whole input
  buffered (:class:`WholeInputStream`). An extractor that works on long windows with overlap
  (the Whisper encoder) returns an :class:`OverlapWindowStream` and computes ``forward`` with
  the same windows (:func:`overlap_windows`), so both give the same frames.

A new extractor is one file and one decorator; implementing :meth:`FeatureExtractor.stream`
(or :meth:`FeatureExtractor.block_stream`) is optional.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ...core.registry import FEATURES

__all__ = ["FeatureExtractor", "FeatureStream", "WholeInputStream", "OverlapWindowStream",
           "SampleBuffer", "overlap_windows", "create_features"]


class SampleBuffer:
    """Samples ``[start, end)`` of a 1-D signal as one float32 numpy array, appended to and trimmed.

    Example:
        >>> b = SampleBuffer(); b.append(np.arange(5, dtype=np.float32)); b.trim(2)
        >>> b.take(1, 6).tolist()               # sample 1 was trimmed, 5 has not arrived: 0
        [0.0, 2.0, 3.0, 4.0, 0.0]
    """

    def __init__(self) -> None:
        self.data = np.zeros(0, np.float32)
        self.start = 0

    @property
    def end(self) -> int:
        """Index one past the last sample appended."""
        return self.start + len(self.data)

    def append(self, x: np.ndarray) -> None:
        """Append ``(n,)`` float32 samples."""
        self.data = np.concatenate([self.data, x]) if len(self.data) else x

    def trim(self, keep_from: int) -> None:
        """Forget the samples before index ``keep_from``."""
        if keep_from > self.start:
            cut = min(keep_from - self.start, len(self.data))
            self.data = self.data[cut:].copy()
            self.start += cut

    def take(self, idx_start: int, idx_stop: int, *, total: int | None = None,
             reflect_start: bool = False) -> np.ndarray:
        """Samples ``[idx_start, idx_stop)``; 0 where not (yet, or no longer) available.

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


class FeatureStream:
    """Frames of a feature extractor computed from a signal that arrives in blocks.

    :meth:`push` takes 1-D float32 samples at the extractor's ``sample_rate`` and returns the
    frames that became final, time first: ``(new_frames, k)``. For a true stream
    (:meth:`FeatureExtractor.stream`) ``k = n_features`` and the frames are the rows of
    ``forward(whole_signal).T``; for a block plan (:meth:`FeatureExtractor.block_stream`) they
    may be intermediate frames that :meth:`finish` turns into features once all are known.

    Subclasses implement :meth:`push` and :meth:`reset`, and :meth:`samples_needed` when a frame
    needs more than its own hop of samples.

    Example:
        >>> from speechface.audio.features import create_features
        >>> fs = create_features("logmel").stream()
        >>> fs.push(np.zeros(1000, np.float32)).shape, fs.push(np.zeros(600, np.float32)).shape
        (torch.Size([1, 80]), torch.Size([1, 80]))
    """

    #: True when :meth:`finish` needs the whole sequence of pushed frames (then the frames
    #: :meth:`push` returns are intermediate; False: they are final features, usable at once).
    finish_needs_all: bool = False

    def __init__(self, extractor: FeatureExtractor) -> None:
        self.extractor = extractor
        self.frames = 0  # frames returned so far

    def reset(self) -> None:
        """Forget all samples: start a new signal."""
        self.frames = 0

    def push(self, samples: np.ndarray, final: bool = False) -> torch.Tensor:
        """Append samples; return the ``(new_frames, k)`` frames that are final.

        With ``final=True`` the signal ends after ``samples``: the remaining frames
        (``num_frames(total)`` in all) are returned.
        """
        raise NotImplementedError

    def finish(self, frames: torch.Tensor) -> torch.Tensor:
        """All pushed frames ``(frames, k)`` -> features ``(frames, n_features)`` (identity here)."""
        return frames

    def samples_needed(self, frames: int) -> int:
        """Samples after which :meth:`push` has returned ``frames`` frames (``frames * hop``)."""
        return max(0, int(frames)) * self.extractor.hop_length

    def _empty(self, k: int | None = None) -> torch.Tensor:
        return torch.zeros(0, self.extractor.n_features if k is None else k)


class WholeInputStream(FeatureStream):
    """The fallback block plan: keep every sample and run ``forward`` once at the end.

    Memory grows with the input (4 bytes per sample); extractors that can do better override
    :meth:`FeatureExtractor.block_stream`.
    """

    def reset(self) -> None:
        super().reset()
        self.parts: list[np.ndarray] = []

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__(extractor)
        self.reset()

    def push(self, samples: np.ndarray, final: bool = False) -> torch.Tensor:
        if len(samples):
            self.parts.append(np.asarray(samples, np.float32))
        if not final:
            return self._empty()
        wave = torch.from_numpy(np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32))
        self.parts = []
        dev = next((b.device for b in self.extractor.buffers()), torch.device("cpu"))
        out = self.extractor(wave.to(dev)).T
        self.frames += len(out)
        return out


def _window_plan(n: int, window: int, overlap: int, start: int = 0
                 ) -> Iterator[tuple[int, int, int, int]]:
    """The windows of :func:`overlap_windows` from window start ``start`` on, for ``n`` frames:
    ``(first frame, end frame, keep from, keep to)`` (keep range relative to the window)."""
    step = window - overlap
    while True:
        end = min(start + window, n)
        start = max(0, end - window)  # the last window: full length, ending at the end
        keep_from = 0 if start == 0 else overlap // 2
        keep_to = end - start if end == n else window - (overlap - overlap // 2)
        yield start, end, keep_from, keep_to
        if end == n:
            return
        start += step


def overlap_windows(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, hop: int,
                    window: int, overlap: int) -> torch.Tensor:
    """Apply ``fn`` to a long signal in overlapping windows and stitch the kept frames.

    Up to ``window`` frames go to ``fn`` at once. Longer input: windows of ``window`` frames
    start every ``window - overlap`` frames; each keeps its frames but the outer
    ``overlap // 2`` (first window: from frame 0; last window: moved back to end at the
    signal's end, kept to the end, and written last). Every kept frame so has about
    ``overlap / 2`` frames of context on both sides, except at the signal's ends.
    :class:`OverlapWindowStream` computes exactly the same frames block by block.

    Args:
        fn: samples ``(batch, n * hop)`` -> frames ``(batch, k, n)``.
        x: ``(batch, time)`` samples.
        hop: samples per frame.
        window: frames per window.
        overlap: frames shared by consecutive windows (``0 <= overlap < window``).

    Returns:
        ``(batch, k, time // hop)`` frames.

    Example:
        >>> f = lambda x: x.reshape(1, 1, -1, 2).sum(-1)          # 2 samples per frame, k = 1
        >>> overlap_windows(f, torch.arange(12.0)[None], 2, 4, 2).tolist()
        [[[1.0, 5.0, 9.0, 13.0, 17.0, 21.0]]]
    """
    if not 0 <= overlap < window:
        raise ValueError(f"need 0 <= overlap < window, got overlap={overlap}, window={window}")
    n = x.shape[-1] // hop
    if n <= window:
        return fn(x[..., :n * hop])
    out: torch.Tensor | None = None
    for start, end, keep_from, keep_to in _window_plan(n, window, overlap):
        y = fn(x[..., start * hop:end * hop])
        if out is None:
            out = y.new_empty(*y.shape[:-1], n)
        out[..., start + keep_from:start + keep_to] = y[..., keep_from:keep_to]
    assert out is not None
    return out


class OverlapWindowStream(FeatureStream):
    """The frames of :func:`overlap_windows`, computed block by block (one window in memory).

    A window is computed once more than its frames exist (so it is not the last, end-aligned
    one); its kept frames are returned once the last window, which may be moved back over them,
    can no longer reach them. At ``final=True`` the remaining windows are computed as
    :func:`overlap_windows` does.

    Args:
        extractor: the feature extractor (its ``hop_length``; its buffers give the device).
        fn: samples ``(batch, n * hop)`` -> ``(batch, k, n)``, as given to
            :func:`overlap_windows` by the extractor's ``forward``.
        window: frames per window, as for :func:`overlap_windows`.
        overlap: frames shared by consecutive windows, as for :func:`overlap_windows`.
    """

    def __init__(self, extractor: FeatureExtractor, fn: Callable[[torch.Tensor], torch.Tensor],
                 window: int, overlap: int) -> None:
        super().__init__(extractor)
        if not 0 <= overlap < window:
            raise ValueError(f"need 0 <= overlap < window, got overlap={overlap}, window={window}")
        self.fn = fn
        self.window, self.overlap = int(window), int(overlap)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.buf = SampleBuffer()
        self.start = 0  # first frame of the next window
        self.pending: torch.Tensor | None = None  # (k, frames) from self.frames on, not returned

    def samples_needed(self, frames: int) -> int:
        """Samples after which ``frames`` frames are returned (before the end of the input)."""
        if frames <= 0:
            return 0
        w, o = self.window, self.overlap
        step = w - o
        # the window whose kept part reaches frame `frames - 1`, computed once it is not the last
        k = max(0, -(-(int(frames) - (w - (o - o // 2))) // step))
        need = max(int(frames) + w - o // 2, k * step + w + 1)
        return need * self.extractor.hop_length

    def _run(self, a: int, b: int) -> torch.Tensor:
        hop = self.extractor.hop_length
        seg = torch.from_numpy(self.buf.take(a * hop, b * hop).copy())
        ref = next(self.extractor.buffers(), None)
        if ref is not None:
            seg = seg.to(ref.device, ref.dtype if ref.is_floating_point() else torch.float32)
        return self.fn(seg[None])[0]  # (k, b - a)

    def _write(self, at: int, y: torch.Tensor) -> None:
        """Put frames ``y (k, m)`` at frame ``at`` (>= self.frames) of the pending output."""
        if self.pending is None:
            self.pending = y.new_zeros(y.shape[0], 0)
        end = self.frames + self.pending.shape[1]
        if at + y.shape[1] > end:
            grow = y.new_zeros(y.shape[0], at + y.shape[1] - end)
            self.pending = torch.cat([self.pending, grow], dim=1)
        self.pending[:, at - self.frames:at - self.frames + y.shape[1]] = y

    def _release(self, upto: int) -> torch.Tensor:
        if self.pending is None or upto <= self.frames:
            return self._empty()
        k = min(upto - self.frames, self.pending.shape[1])
        out, self.pending = self.pending[:, :k].T, self.pending[:, k:]
        self.frames += k
        return out

    def push(self, samples: np.ndarray, final: bool = False) -> torch.Tensor:
        self.buf.append(np.asarray(samples, np.float32))
        hop, w, o = self.extractor.hop_length, self.window, self.overlap
        step = w - o
        have = self.buf.end // hop  # frames that exist so far
        if not final:
            while have > self.start + w:  # this window is not the last one
                a = self.start
                keep_from = 0 if a == 0 else o // 2
                keep_to = w - (o - o // 2)
                self._write(a + keep_from, self._run(a, a + w)[:, keep_from:keep_to])
                self.start += step
                self.buf.trim(max(0, self.start - step + 1) * hop)
            # the last window starts at or after have - w: frames before its kept part are final
            return self._release(have - w + o // 2)
        if have <= w and self.start == 0:
            if have:
                self._write(0, self._run(0, have))
        else:
            for a, b, keep_from, keep_to in _window_plan(have, w, o, self.start):
                self._write(a + keep_from, self._run(a, b)[:, keep_from:keep_to])
        return self._release(have)
class FeatureExtractor(nn.Module):
    """Base class of speechface feature extractors.

    Subclasses call ``super().__init__(sample_rate, fps)``, set :attr:`n_features`, store every
    constructor argument under the same attribute name (so :meth:`config` can read it back) and
    implement ``forward(wave: (..., time)) -> (..., n_features, num_frames(time))``.

    Args:
        sample_rate: input sample rate in Hz (16000).
        fps: output frame rate (25); ``sample_rate`` must be a multiple of it.

    Attributes:
        sample_rate, fps: as given.
        hop_length: ``sample_rate // fps`` samples between frames (640 at 16 kHz, 25 fps).
        n_features: values per frame.

    Example:
        >>> fx = create_features("logmel")
        >>> fx(torch.zeros(16000)).shape      # 1 s -> 25 frames
        torch.Size([80, 25])
    """

    n_features: int = 0

    def __init__(self, sample_rate: int = 16000, fps: int = 25) -> None:
        super().__init__()
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
        if int(fps) != fps or fps <= 0:
            raise ValueError(f"fps must be a positive whole number, got {fps!r}")
        if sample_rate % fps:
            raise ValueError(f"sample_rate {sample_rate} is not a multiple of fps {fps}: the hop "
                             f"between frames would not be a whole number of samples")
        self.sample_rate = int(sample_rate)
        self.fps = int(fps)
        self.hop_length = self.sample_rate // self.fps

    @property
    def name(self) -> str:
        """The registry name (``"logmel"``, ``"mfcc"``), or the lower-cased class name."""
        return getattr(type(self), "registry_name", type(self).__name__.lower())

    def num_frames(self, n_samples: int) -> int:
        """Frames produced from ``n_samples`` samples: ``n_samples // hop_length``.

        Example:
            >>> create_features("logmel").num_frames(16000 * 60)
            1500
        """
        return int(n_samples) // self.hop_length

    def config(self) -> dict[str, Any]:
        """The constructor keyword arguments (JSON-plain), so that
        ``FEATURES.create(fx.name, **fx.config())`` rebuilds an identical extractor.

        Example:
            >>> fx = create_features("mfcc", n_mels=30)
            >>> create_features(fx.name, **fx.config()).n_mels
            30
        """
        params = inspect.signature(type(self).__init__).parameters
        out: dict[str, Any] = {}
        for key, p in params.items():
            if key == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = getattr(self, key)
            if isinstance(value, torch.Tensor):
                value = value.tolist()
            out[key] = value
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    # ------------------------------------------------------------------ streaming protocol
    def stream_reason(self) -> str | None:
        """Why this extractor cannot stream with bounded latency, or ``None`` when it can.

        The default: it can when the subclass implements :meth:`stream`.

        Example:
            >>> create_features("logmel").stream_reason() is None
            True
        """
        if type(self).stream is FeatureExtractor.stream:
            return f"its feature extractor {self.name!r} has no streaming implementation"
        return None

    def stream(self) -> FeatureStream:
        """A :class:`FeatureStream` giving ``forward``'s frames as the samples arrive.

        Raises:
            NotImplementedError: the extractor cannot stream (:meth:`stream_reason` says why).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot stream: {self.stream_reason()}")

    def block_stream(self) -> FeatureStream:
        """How a long input is processed block by block (see the module docstring).

        Default: :meth:`stream` when the extractor streams, else :class:`WholeInputStream`.
        Whatever it returns, ``finish(cat(push(block) ...))`` equals ``forward(whole).T``.

        Example:
            >>> fx = create_features("mfcc")
            >>> fs = fx.block_stream()
            >>> parts = [fs.push(np.zeros(8000, np.float32)), fs.push(np.zeros(0), final=True)]
            >>> fs.finish(torch.cat(parts)).shape
            torch.Size([12, 39])
        """
        if self.stream_reason() is None:
            return self.stream()
        return WholeInputStream(self)

    def _frames_input(self, wave: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Check ``wave`` and flatten it to ``(batch, time)``; return it and the leading shape."""
        if not isinstance(wave, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor (..., time), "
                            f"got {type(wave).__name__}")
        if wave.dim() == 0:
            raise ValueError(f"{type(self).__name__} expects (..., time) samples, got a scalar")
        if not wave.is_floating_point():
            raise TypeError(f"{type(self).__name__} expects float samples, got {wave.dtype} "
                            "(use speechface.audio.load_audio to convert PCM)")
        lead = tuple(wave.shape[:-1])
        return wave.reshape(-1, wave.shape[-1]), lead


def create_features(name: str = "logmel", **kwargs: Any) -> FeatureExtractor:
    """Build the feature extractor registered as ``name`` with keyword arguments.

    Args:
        name: a name from ``FEATURES.list()`` (``"logmel"``, ``"mfcc"``).
        **kwargs: constructor arguments of that extractor.

    Example:
        >>> create_features("mfcc").n_features
        39
    """
    return FEATURES.create(name, **kwargs)
