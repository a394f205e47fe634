"""CAUSE RNN: Linear -> bidirectional LSTM -> Linear (Kameoka et al., Interspeech 2022)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ...core.registry import ESTIMATORS
from ._layers import wn_linear
from .base import Estimator

__all__ = ["RNN"]


@ESTIMATORS.register("rnn")
class RNN(Estimator):
    """Linear 128 -> 4-layer bidirectional LSTM (64 units per direction) -> Linear out.

    Weight normalisation on the two Linear layers, as in the CAUSE paper. Bidirectional: every
    output frame depends on the whole utterance, so it cannot stream with bounded latency.
    Parameters (80 log-mel bands -> au17): 410,018.

    Args:
        in_features: input feature size.
        space: conditioning space.
        hidden: LSTM units per direction.
        num_layers: LSTM layers.
        proj: width of the input Linear layer.
        dropout: dropout between LSTM layers.

    Shapes: ``(batch, frames, in_features) -> (batch, frames, space.dim)``.
    """

    paper = "Kameoka et al., CAUSE, Interspeech 2022 (RNN)"

    def __init__(self, in_features: int = 80, space: str = "au17", hidden: int = 64,
                 num_layers: int = 4, proj: int = 128, dropout: float = 0.0) -> None:
        super().__init__(in_features, space)
        self.inp = wn_linear(in_features, proj)
        self.lstm = nn.LSTM(proj, hidden, num_layers=num_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.out = wn_linear(2 * hidden, self.out_dim)

    def stream_reason(self) -> str | None:
        """A bidirectional LSTM cannot stream: say so."""
        return (f"{self.arch!r} is a bidirectional recurrent network: every output frame depends "
                "on the whole utterance, so it cannot stream with bounded latency")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.inp(x)
        if lengths is not None:
            frames = h.shape[1]
            packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            h, _ = pad_packed_sequence(y, batch_first=True, total_length=frames)
        else:
            h, _ = self.lstm(h)
        return self.out(h)
