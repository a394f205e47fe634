"""CAUSE MLP: a frame-independent multilayer perceptron (Kameoka et al., Interspeech 2022)."""

from __future__ import annotations

import torch
from torch import nn

from ...core.registry import ESTIMATORS
from ._layers import wn_linear
from .base import Estimator

__all__ = ["MLP"]


@ESTIMATORS.register("mlp")
class MLP(Estimator):
    """Ten weight-normalised Linear layers with widths 128, 128, 64, 64, 32, 32, 16, 16, 8, out.

    Dropout 0.1 then LeakyReLU(0.1) follow every layer but the first and the last, as in the
    CAUSE paper. Each frame is mapped independently (receptive field: 1 frame).
    Parameters (80 log-mel bands -> au17): 44,026.

    Args:
        in_features: input feature size.
        space: conditioning space (output size = ``space.dim``).
        widths: hidden widths of layers 1-9.
        dropout: dropout probability.

    Shapes: ``(batch, frames, in_features) -> (batch, frames, space.dim)``.
    """

    paper = "Kameoka et al., CAUSE, Interspeech 2022 (MLP)"

    def __init__(self, in_features: int = 80, space: str = "au17",
                 widths: tuple[int, ...] | list[int] = (128, 128, 64, 64, 32, 32, 16, 16, 8),
                 dropout: float = 0.1) -> None:
        super().__init__(in_features, space)
        widths = list(widths)
        layers: list[nn.Module] = [wn_linear(in_features, widths[0])]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [wn_linear(a, b), nn.Dropout(dropout), nn.LeakyReLU(0.1)]
        layers.append(wn_linear(widths[-1], self.out_dim))
        self.net = nn.Sequential(*layers)

    @property
    def lookahead(self) -> int:
        return 0

    @property
    def receptive_field(self) -> int:
        return 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)
