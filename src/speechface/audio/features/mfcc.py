"""MFCCs with deltas and delta-deltas at the video frame rate (39 values per frame).

Follows ``torchaudio.transforms.MFCC`` (mel power -> ``AmplitudeToDB("power", top_db=80)`` ->
orthonormal DCT-II) and ``torchaudio.functional.compute_deltas`` (5-frame regression, replicate
padding), in plain torch, on the same 25 fps framing as :class:`~speechface.audio.features.LogMel`.
"""

from __future__ import annotations

import math

import numpy as np  # noqa: F401  (used by the doctests)
import torch

from ...core.registry import FEATURES
from .base import FeatureExtractor, FeatureStream
from .logmel import MelPower, MelPowerStream

__all__ = ["MFCC", "MFCCBlockStream", "create_dct", "amplitude_to_db", "compute_deltas"]


def create_dct(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix, as ``torchaudio.functional.create_dct(n_mfcc, n_mels, "ortho")``.

    Returns:
        ``(n_mels, n_mfcc)`` matrix: ``mfcc = mel_db.transpose(-1, -2) @ dct``. Its columns are
        orthonormal (``dct.T @ dct == I``).

    Example:
        >>> d = create_dct(13, 40)
        >>> torch.allclose(d.T @ d, torch.eye(13), atol=1e-5)
        True
    """
    n = torch.arange(float(n_mels))
    k = torch.arange(float(n_mfcc)).unsqueeze(1)
    dct = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)  # (n_mfcc, n_mels)
    dct[0] *= 1.0 / math.sqrt(2.0)
    dct *= math.sqrt(2.0 / float(n_mels))
    return dct.t()


def amplitude_to_db(power: torch.Tensor, top_db: float | None = 80.0,
                    amin: float = 1e-10) -> torch.Tensor:
    """Power to decibels, ``10 * log10(clamp(x, amin))`` with reference 1, then floored at
    ``max - top_db`` where the max is taken **per spectrogram** (over the last two axes).

    For one clip this equals ``torchaudio.transforms.AmplitudeToDB("power", top_db)``.
    torchaudio takes the max jointly over the first axis of a 3-D input (it reads it as
    channels); here every ``(n_mels, frames)`` item is floored on its own, so a batch gives the
    same values as its items one at a time.

    Args:
        power: ``(..., n_mels, frames)`` non-negative power.
        top_db: dynamic range kept below each item's maximum (``None``: no floor).
        amin: clamp before the log.

    Example:
        >>> amplitude_to_db(torch.tensor([[1.0, 1e-12]])).tolist()
        [[0.0, -80.0]]
    """
    db = 10.0 * torch.log10(torch.clamp(power, min=amin))
    if top_db is not None and db.numel() > 0:
        peak = db.amax(dim=(-2, -1), keepdim=True)
        db = torch.max(db, peak - top_db)
    return db


def compute_deltas(x: torch.Tensor, win_length: int = 5) -> torch.Tensor:
    """Regression deltas along the last axis, as ``torchaudio.functional.compute_deltas``.

    ``d[t] = sum_{k=1..N} k * (x[t+k] - x[t-k]) / (2 * sum_{k=1..N} k^2)`` with
    ``N = (win_length - 1) // 2`` and the ends padded by repeating the edge frame.

    Args:
        x: ``(..., frames)`` tensor.
        win_length: odd window length >= 3.

    Example:
        >>> compute_deltas(torch.arange(6.0) * 10).tolist()
        [5.0, 8.0, 10.0, 10.0, 8.0, 5.0]
    """
    if win_length < 3:
        raise ValueError(f"win_length must be >= 3, got {win_length}")
    shape = x.shape
    if x.shape[-1] == 0:
        return x.clone()
    n = (win_length - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3
    flat = x.reshape(1, -1, shape[-1])
    flat = torch.nn.functional.pad(flat, (n, n), mode="replicate")
    kernel = torch.arange(-n, n + 1, 1, device=x.device, dtype=x.dtype).repeat(flat.shape[1], 1, 1)
    out = torch.nn.functional.conv1d(flat, kernel, groups=flat.shape[1]) / denom
    return out.reshape(shape)


@FEATURES.register("mfcc")
class MFCC(FeatureExtractor):
    """MFCCs + deltas + delta-deltas: ``(..., time) -> (..., 3 * n_mfcc, frames)`` (39 rows).

    Per frame: the mel power spectrogram of :class:`~speechface.audio.features.LogMel` (same 25 fps
    framing, centred STFT, ``frames = time // hop_length``) with ``n_mels=40`` bands, converted to
    dB with ``10 * log10(clamp(x, 1e-10))`` and floored at 80 dB below the clip's maximum (per
    item, over the kept frames), then the orthonormal DCT-II keeps ``n_mfcc=13`` coefficients
    (coefficient 0 included) - ``torchaudio.transforms.MFCC(n_mfcc=13, log_mels=False,
    melkwargs=...)``. Deltas use a 5-frame regression window with replicated edge frames, and the
    delta-deltas are the deltas of the deltas. Row order: 13 static, 13 delta, 13 delta-delta.

    Args:
        sample_rate: input rate in Hz (16000), as for :class:`LogMel`.
        fps: frame rate (25).
        n_mfcc: cepstral coefficients kept (13).
        n_mels: mel bands (40).
        n_fft: FFT size, as for :class:`LogMel`.
        win_length: window length, as for :class:`LogMel`.
        f_min: lowest mel frequency, as for :class:`LogMel`.
        f_max: highest mel frequency, as for :class:`LogMel`.
        top_db: dynamic range of the dB spectrogram (80; ``None`` disables the floor).
        deltas: number of delta orders appended: 0, 1 or 2 (default 2 -> 39 features).
        delta_win_length: frames in the delta regression window (5).

    Shape:
        ``(..., time)`` float -> ``(..., n_mfcc * (1 + deltas), time // hop_length)``.

    Example:
        >>> MFCC()(torch.randn(16000)).shape
        torch.Size([39, 25])
    """

    def __init__(self, sample_rate: int = 16000, fps: int = 25, n_mfcc: int = 13,
                 n_mels: int = 40, n_fft: int = 1024, win_length: int | None = None,
                 f_min: float = 0.0, f_max: float | None = None, top_db: float | None = 80.0,
                 deltas: int = 2, delta_win_length: int = 5) -> None:
        super().__init__(sample_rate, fps)
        if not 0 < n_mfcc <= n_mels:
            raise ValueError(f"need 0 < n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
        if deltas not in (0, 1, 2):
            raise ValueError(f"deltas must be 0, 1 or 2, got {deltas!r}")
        if delta_win_length < 3:
            raise ValueError(f"delta_win_length must be >= 3, got {delta_win_length}")
        self.n_mfcc = int(n_mfcc)
        self.n_mels = int(n_mels)
        self.n_fft = int(n_fft)
        self.win_length = int(win_length) if win_length is not None else None
        self.f_min = float(f_min)
        self.f_max = float(f_max) if f_max is not None else None
        self.top_db = float(top_db) if top_db is not None else None
        self.deltas = int(deltas)
        self.delta_win_length = int(delta_win_length)
        self.n_features = self.n_mfcc * (1 + self.deltas)
        self.spectrogram = MelPower(
            self.sample_rate, self.hop_length, self.n_fft, self.win_length or self.hop_length,
            self.n_mels, self.f_min,
            self.f_max if self.f_max is not None else float(self.sample_rate // 2), 2.0)
        self.register_buffer("dct_mat", create_dct(self.n_mfcc, self.n_mels), persistent=False)

    def from_mel_power(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel power ``(batch, n_mels, frames)`` of a *whole* clip -> ``(batch, n_features,
        frames)``: dB with the clip-wide floor, DCT, deltas (the rest of :meth:`forward`).

        Example:
            >>> MFCC().from_mel_power(torch.ones(1, 40, 7)).shape
            torch.Size([1, 39, 7])
        """
        mel_db = amplitude_to_db(mel, self.top_db)  # (batch, n_mels, frames)
        mfcc = torch.matmul(mel_db.transpose(-1, -2), self.dct_mat).transpose(-1, -2)
        parts = [mfcc]
        for _ in range(self.deltas):
            parts.append(compute_deltas(parts[-1], self.delta_win_length))
        return torch.cat(parts, dim=-2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., time)`` float samples -> ``(..., n_features, frames)``."""
        x, lead = self._frames_input(wave)
        out = self.from_mel_power(self.spectrogram(x))
        return out.reshape(*lead, *out.shape[-2:])

    def stream_reason(self) -> str | None:
        """MFCCs cannot stream: the dB floor is ``top_db`` below the maximum of the whole clip,
        and the deltas look ahead (no streaming implementation)."""
        if self.top_db is not None:
            return ("its MFCC features are floored at top_db below the maximum of the whole "
                    "clip, which is only known at the end")
        return "its MFCC deltas have no streaming implementation"

    def block_stream(self) -> FeatureStream:
        """Long inputs: mel power block by block (bounded by ``n_mels`` floats per frame), then
        :meth:`from_mel_power` on the whole mel sequence in :meth:`FeatureStream.finish`.

        Example:
            >>> fs = MFCC().block_stream()
            >>> mel = torch.cat([fs.push(np.zeros(16000, np.float32), final=True)])
            >>> mel.shape, fs.finish(mel).shape
            (torch.Size([25, 40]), torch.Size([25, 39]))
        """
        return MFCCBlockStream(self, self.spectrogram)


class MFCCBlockStream(MelPowerStream):
    """The MFCC block plan: mel power frames block by block (``(frames, n_mels)``), then
    :meth:`finish` applies the rest of ``MFCC.forward`` to the whole mel sequence."""

    extractor: MFCC
    finish_needs_all = True

    def finish(self, frames: torch.Tensor) -> torch.Tensor:
        return self.extractor.from_mel_power(frames.T[None])[0].T
