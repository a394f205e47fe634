"""Log mel spectrogram at the video frame rate (the default speechface feature).

The mel power spectrogram is exactly ``torchaudio.transforms.MelSpectrogram`` with
``n_fft=1024, win_length=640, hop_length=640, f_min=0, f_max=sr/2, n_mels=80, power=2,
mel_scale="htk", norm=None, center=True, pad_mode="reflect"`` and a periodic Hann window, written
in plain torch (torchaudio is not a dependency), minus its last frame (see :class:`LogMel`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ...core.registry import FEATURES
from .base import FeatureExtractor, FeatureStream, SampleBuffer

__all__ = ["LogMel", "MelPower", "MelPowerStream", "hz_to_mel", "mel_to_hz", "melscale_fbanks"]


def hz_to_mel(freq: float) -> float:
    """HTK mel scale: ``2595 * log10(1 + f / 700)``.

    Example:
        >>> round(hz_to_mel(1000.0))
        1000
    """
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def mel_to_hz(mels: torch.Tensor) -> torch.Tensor:
    """Inverse HTK mel scale, element-wise: ``700 * (10 ** (m / 2595) - 1)``.

    Example:
        >>> mel_to_hz(torch.tensor([0.0])).item()
        0.0
    """
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int,
                    sample_rate: int) -> torch.Tensor:
    """Triangular HTK mel filterbank, as ``torchaudio.functional.melscale_fbanks`` (norm=None).

    The STFT bins are ``linspace(0, sample_rate // 2, n_freqs)``; ``n_mels + 2`` points evenly
    spaced on the mel scale between ``f_min`` and ``f_max`` give the filters' edges and peaks.

    Args:
        n_freqs: number of STFT bins (``n_fft // 2 + 1``).
        f_min, f_max: frequency range in Hz.
        n_mels: number of filters.
        sample_rate: sample rate in Hz.

    Returns:
        ``(n_freqs, n_mels)`` float32 matrix: ``mel = power.transpose(-1, -2) @ fb``.

    Example:
        >>> melscale_fbanks(513, 0.0, 8000.0, 80, 16000).shape
        torch.Size([513, 80])
    """
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))


class MelPower(nn.Module):
    """Centred STFT power -> mel power, ``(batch, time) -> (batch, n_mels, time // hop)``.

    The spectrogram shared by :class:`LogMel` and :class:`~speechface.audio.features.MFCC`; see
    :class:`LogMel` for the framing. Its block-wise twin is :class:`MelPowerStream`.

    Example:
        >>> MelPower(16000, 640, 1024, 640, 80, 0.0, 8000.0, 2.0)(torch.zeros(2, 16000)).shape
        torch.Size([2, 80, 25])
    """

    def __init__(self, sample_rate: int, hop_length: int, n_fft: int, win_length: int,
                 n_mels: int, f_min: float, f_max: float, power: float) -> None:
        super().__init__()
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, "
                             f"f_max={f_max} at {sample_rate} Hz")
        if n_mels <= 0:
            raise ValueError(f"n_mels must be positive, got {n_mels}")
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.win_length = win_length
        self.power = power
        self.register_buffer("window", torch.hann_window(win_length, periodic=True),
                             persistent=False)
        self.register_buffer("fb", melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels,
                                                   sample_rate), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_frames = x.shape[-1] // self.hop_length
        n_mels = self.fb.shape[1]
        x = x.to(self.window.dtype)
        if n_frames == 0:
            return x.new_zeros(x.shape[0], n_mels, 0)
        if x.shape[-1] <= self.n_fft // 2:
            raise ValueError(f"{x.shape[-1]} samples are too few for a centred STFT with "
                             f"n_fft={self.n_fft} (reflect padding needs > {self.n_fft // 2})")
        spec = torch.stft(x, n_fft=self.n_fft, hop_length=self.hop_length,
                          win_length=self.win_length, window=self.window, center=True,
                          pad_mode="reflect", normalized=False, onesided=True,
                          return_complex=True)  # (batch, freq, time // hop + 1)
        spec = spec[..., :n_frames].abs().pow(self.power)
        return torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)


class MelPowerStream(FeatureStream):
    """:class:`MelPower` frame by frame, then ``post`` (the extractor's rest) on each block.

    Frame ``n`` is the STFT frame centred on sample ``n * hop``; it is computed from the samples
    under the non-zero part of its (zero-padded) window, ``[n*hop - 320, n*hop + 320)`` with the
    defaults, so it is final once those arrived. Frame 0 gets the reflect padding
    ``x[-k] = x[k]`` of the centred STFT; at the end (``final=True``) the reflect padding past
    the last sample is reproduced. Samples outside a frame's support meet a zero window.

    Args:
        extractor: the feature extractor (:class:`LogMel` or :class:`~speechface.audio.features.MFCC`).
        spectrogram: its :class:`MelPower`.
        post: mel power ``(frames, n_mels)`` -> the frames this stream returns (``None``: the
            mel power itself).
    """

    def __init__(self, extractor: FeatureExtractor, spectrogram: MelPower,
                 post: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__(extractor)
        sp = spectrogram
        self.sp = sp
        self.post = post
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
        super().reset()
        self.buf = SampleBuffer()

    def push(self, samples: np.ndarray, final: bool = False) -> torch.Tensor:
        self.buf.append(np.asarray(samples, np.float32))
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
            mel = torch.zeros(0, sp.fb.shape[1], device=sp.fb.device)
        else:
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
        return mel if self.post is None else self.post(mel)


@FEATURES.register("logmel")
class LogMel(FeatureExtractor):
    """Log mel spectrogram, one frame per video frame: ``(..., time) -> (..., n_mels, frames)``.

    ``log(mel_power + log_offset)``, where ``mel_power`` is ``torchaudio.transforms.
    MelSpectrogram`` with these arguments (HTK mel scale, no filterbank normalisation, power
    spectrum, periodic Hann window of ``win_length`` zero-padded centrally to ``n_fft`` as
    ``torch.stft`` does, ``center=True`` with reflect padding of ``n_fft // 2``). The natural log
    with an additive floor of 1e-6 (torchaudio MFCC's ``log_mels`` offset) keeps silence finite:
    digital silence maps to ``log(1e-6) = -13.8``.

    Framing and edges: frame ``n`` is centred on sample ``n * hop_length``, i.e. at ``n / fps``
    seconds, the timestamp of video frame ``n``; with the defaults its Hann window spans
    +-20 ms around it. The first frame's left half is reflect-padded audio. A centred STFT gives
    ``time // hop_length + 1`` frames; the last one (centred at or just before the end of the
    audio, half outside it) is dropped, so ``frames = time // hop_length`` (60 s -> exactly 1500
    frames, 1 s -> 25) and a clip's features line up one-to-one with its video frames. With the
    defaults (``win_length <= 2 * hop_length``) no kept frame reaches past the end of the audio.

    Args:
        sample_rate: input rate in Hz (16000).
        fps: frame rate (25); ``hop_length = sample_rate // fps``.
        n_mels: mel bands (80).
        n_fft: FFT size (1024).
        win_length: Hann window length (default ``hop_length``, 640).
        f_min: lowest mel frequency in Hz (0).
        f_max: highest mel frequency in Hz (``sample_rate / 2`` when ``None``).
        power: exponent of the magnitude (2 = power spectrum).
        log_offset: floor added before the log (1e-6).

    Shape:
        ``(..., time)`` float -> ``(..., n_mels, time // hop_length)``.

    Example:
        >>> fx = LogMel()
        >>> fx(torch.randn(2, 16000 * 60)).shape
        torch.Size([2, 80, 1500])
    """

    def __init__(self, sample_rate: int = 16000, fps: int = 25, n_mels: int = 80,
                 n_fft: int = 1024, win_length: int | None = None, f_min: float = 0.0,
                 f_max: float | None = None, power: float = 2.0,
                 log_offset: float = 1e-6) -> None:
        super().__init__(sample_rate, fps)
        self.n_mels = int(n_mels)
        self.n_fft = int(n_fft)
        self.win_length = int(win_length) if win_length is not None else None
        self.f_min = float(f_min)
        self.f_max = float(f_max) if f_max is not None else None
        self.power = float(power)
        self.log_offset = float(log_offset)
        self.n_features = self.n_mels
        self.spectrogram = MelPower(
            self.sample_rate, self.hop_length, self.n_fft, self.win_length or self.hop_length,
            self.n_mels, self.f_min,
            self.f_max if self.f_max is not None else float(self.sample_rate // 2), self.power)

    def mel_power(self, wave: torch.Tensor) -> torch.Tensor:
        """Mel power before the log: ``(..., time) -> (..., n_mels, time // hop_length)``.

        Example:
            >>> LogMel().mel_power(torch.zeros(3, 1280)).shape
            torch.Size([3, 80, 2])
        """
        x, lead = self._frames_input(wave)
        mel = self.spectrogram(x)
        return mel.reshape(*lead, *mel.shape[-2:])

    def from_mel_power(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel power (any shape) -> log mel energies, element-wise: ``log(mel + log_offset)``.

        Example:
            >>> round(LogMel().from_mel_power(torch.zeros(1)).item(), 4)     # log(1e-6)
            -13.8155
        """
        return torch.log(mel + self.log_offset)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., time)`` float samples -> ``(..., n_mels, frames)`` log mel energies."""
        return self.from_mel_power(self.mel_power(wave))

    def stream(self) -> MelPowerStream:
        """Log mel frames as the samples arrive (same values as :meth:`forward`).

        A frame is final once the samples under its window arrived: ``(n + 1) * hop`` samples
        give ``n + 1`` frames with the defaults.

        Example:
            >>> fs = LogMel().stream()
            >>> tuple(len(fs.push(np.zeros(k, np.float32))) for k in (639, 1, 640))
            (0, 1, 1)
        """
        return MelPowerStream(self, self.spectrogram, self.from_mel_power)
