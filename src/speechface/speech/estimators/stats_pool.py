"""Windowed statistics pooling: a frame-level classifier of the speaking style around each frame.

Emotion is a property of stretches of speech, not of single 40 ms frames. :class:`StatsPool`
projects each frame, takes the **mean and standard deviation of the projection over a window** of
``2 * context + 1`` frames centred on every frame (frames outside the utterance, or padding, are
left out of the statistics), and maps them through a small MLP to the space's raw outputs. With a
pretrained speech encoder's features (``feature: whisper``) this is the per-frame form of the
"pooled encoder states + linear classifier" recipe that recognises acted emotions across speakers;
the utterance prediction is the mean of the per-frame probabilities (``Prediction.mean``).

Receptive field ``2 * context + 1`` frames, look-ahead ``context`` frames (2 s with the default
50), so a logmel version streams with a latency of about 2 s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...core.registry import ESTIMATORS
from .base import Estimator, length_mask

__all__ = ["StatsPool"]


@ESTIMATORS.register("stats_pool")
class StatsPool(Estimator):
    """Frame projection -> windowed mean + std -> MLP.

    Args:
        in_features: input feature size (384 for Whisper tiny).
        space: conditioning space.
        proj: width of the frame projection.
        hidden: width of the MLP's hidden layer.
        context: frames on each side of the pooling window (50 = 2 s at 25 fps).
        dropout: dropout on the pooled statistics.

    Shapes: ``(batch, frames, in_features) -> (batch, frames, space.dim)``.

    Example:
        >>> net = StatsPool(in_features=16, space="emotion8", proj=8, hidden=8, context=3)
        >>> net(torch.randn(2, 20, 16)).shape
        torch.Size([2, 20, 8])
    """

    paper = "statistics pooling over a sliding window (x-vector style) on frozen encoder states"

    def __init__(self, in_features: int = 384, space: str = "emotion8", proj: int = 256,
                 hidden: int = 256, context: int = 50, dropout: float = 0.3) -> None:
        super().__init__(in_features, space)
        if not 0 <= int(context) <= 1000:
            raise ValueError(f"context must be within 0..1000 frames, got {context}")
        self.context = int(context)
        self.frame = nn.Sequential(nn.Linear(in_features, proj), nn.GELU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * proj, hidden), nn.GELU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, self.out_dim))

    @property
    def lookahead(self) -> int:
        return self.context

    @property
    def receptive_field(self) -> int:
        return 2 * self.context + 1

    def _window_sum(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, frames, C) -> sums over the centred window (zero padded)."""
        k = 2 * self.context + 1
        pooled = F.avg_pool1d(x.transpose(1, 2), k, stride=1, padding=self.context,
                              count_include_pad=True)
        return pooled.transpose(1, 2) * k

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.frame(x)
        mask = length_mask(lengths, x.shape[1], x.device)
        w = torch.ones_like(h[..., :1]) if mask is None else mask[..., None].to(h.dtype)
        h = h * w
        n = self._window_sum(w).clamp_min(1.0)
        mean = self._window_sum(h) / n
        var = (self._window_sum(h * h) / n - mean * mean).clamp_min(1e-6)
        return self.head(torch.cat([mean, var.sqrt()], dim=-1))
