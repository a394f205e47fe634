"""An utterance-level LSTM over MFCCs that predicts the utterance's mean conditioning vector."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ...core.registry import ESTIMATORS
from .base import Estimator

__all__ = ["LSTMMFCC"]


@ESTIMATORS.register("lstm_mfcc")
class LSTMMFCC(Estimator):
    """LSTM over 39 MFCCs (13 + deltas + delta-deltas) -> Linear head on the last hidden state.

    Predicts one vector per utterance: the mean AU vector (or mean emotion distribution) of the
    utterance. It is not frame-level: ``(batch, frames, 39) -> (batch, space.dim)``.
    Parameters (39 MFCCs -> au17, defaults): 88,721.

    Args:
        in_features: input feature size (39 for the ``mfcc`` extractor).
        space: conditioning space.
        hidden: LSTM units.
        num_layers: LSTM layers.
        dropout: dropout between LSTM layers and before the head.
    """

    frame_level = False
    default_feature = "mfcc"
    paper = "LSTM on MFCCs predicting utterance-mean AUs"

    def __init__(self, in_features: int = 39, space: str = "au17", hidden: int = 128,
                 num_layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__(in_features, space)
        self.lstm = nn.LSTM(in_features, hidden, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, self.out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)
        else:
            _, (h, _) = self.lstm(x)
        return self.head(self.drop(h[-1]))
