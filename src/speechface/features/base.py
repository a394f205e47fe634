"""The feature-extractor base class and the name-based constructor.

A feature extractor is a torchaudio-style :class:`torch.nn.Module`: ``(..., time)`` float
samples at ``sample_rate`` in, ``(..., n_features, frames)`` out, one frame per video frame at
``fps`` (25 by default, a hop of 640 samples at 16 kHz). Constant tensors (windows,
filterbanks, DCT matrices) are non-persistent buffers: they follow ``.to(device)`` but are not
saved in a ``state_dict``, because the constructor arguments (:meth:`FeatureExtractor.config`)
rebuild them.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ..registry import FEATURES

__all__ = ["FeatureExtractor", "create_features"]


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
