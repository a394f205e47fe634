"""``fer_cnn``: a compact VGG-style CNN with BatchNorm for FER+ faces (48x48 grey).

Layout (defaults = the packaged ``fer_cnn.ferplus``, 48x48 input)::

    stage 1: Conv3x3(1->32) BN ReLU, MaxPool2                           48 -> 24
    stage 2: Conv3x3(->64) BN ReLU, + [Conv3x3(64->64) BN ReLU] skip,  MaxPool2   24 -> 12
    stage 3: Conv3x3(->128) BN ReLU, + [Conv3x3(128->128) BN ReLU] skip, MaxPool2 12 -> 6
    stage 4: Conv3x3(->256) BN ReLU                                      6 -> 6
    global average pool -> Dropout(0.3) -> Linear(256 -> 8)

575,080 parameters and about 75 M multiply-adds per image: a much smaller cousin of the FER+
paper's VGG13 (Barsoum et al., 2016: 64-128-256-256 channels and two 1024-unit fully connected
layers, several million parameters). Global average pooling replaces the big fully connected
layers; BatchNorm and the identity skips (``residual=True``: ``h + conv(h)`` around the
2nd..nth convolution of a stage, the residual BN starting at zero) make it train in a few epochs
on a CPU.

Shapes: ``(batch, 1, input_size, input_size)`` pixels (normalised) -> ``(batch, 8)`` raw logits
in EMOTION8 order (softmax gives the emotion distribution).
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.registry import EXPRESSION
from .base import ExpressionNet

__all__ = ["FerCNN"]


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _Stage(nn.Module):
    """``depth`` conv-BN-ReLU layers (optionally with a skip around layers 2..depth), then pool."""

    def __init__(self, c_in: int, c_out: int, depth: int, pool: bool, residual: bool,
                 dropout: float) -> None:
        super().__init__()
        self.first = _conv_bn(c_in, c_out)
        self.rest = nn.ModuleList(_conv_bn(c_out, c_out) for _ in range(depth - 1))
        self.residual = residual
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        for layer in self.rest:
            h = h + layer(h) if self.residual else layer(h)
        return self.drop(self.pool(h))


@EXPRESSION.register("fer_cnn")
class FerCNN(ExpressionNet):
    """Compact VGG-style facial-expression CNN (see the module notes for the layout).

    Args:
        input_size: side of the square grey input in pixels (48 = FER+ native; any size >= 16
            works since the head pools globally).
        channels: output channels of each stage.
        depths: convolutions per stage (one entry per stage).
        pools: max-pool after each stage (default: all stages but the last).
        residual: add identity skips around the 2nd..nth convolution of each stage.
        dropout: dropout before the final linear layer.
        stage_dropout: channel dropout (``Dropout2d``) after each stage.

    Example:
        >>> net = FerCNN()
        >>> net(torch.zeros(2, 1, 48, 48)).shape
        torch.Size([2, 8])
    """

    paper = "compact VGG-style CNN after Barsoum et al., FER+ (ICMI 2016)"

    def __init__(self, input_size: int = 48, channels: tuple[int, ...] | list[int] = (32, 64, 128, 256),
                 depths: tuple[int, ...] | list[int] = (1, 2, 2, 1),
                 pools: tuple[bool, ...] | list[bool] | None = None, residual: bool = True,
                 dropout: float = 0.3, stage_dropout: float = 0.0) -> None:
        super().__init__(input_size)
        channels, depths = [int(c) for c in channels], [int(d) for d in depths]
        if len(channels) != len(depths) or not channels:
            raise ValueError(f"need one depth per stage: channels {channels}, depths {depths}")
        if any(d < 1 for d in depths):
            raise ValueError(f"every stage needs at least one convolution, got depths {depths}")
        pools = [True] * (len(channels) - 1) + [False] if pools is None else [bool(p) for p in pools]
        if len(pools) != len(channels):
            raise ValueError(f"need one pool flag per stage: {len(channels)} stages, {len(pools)} flags")
        if input_size // 2 ** sum(pools) < 1:
            raise ValueError(f"input_size {input_size} is too small for {sum(pools)} poolings")
        stages = []
        c_in = 1
        for c, d, p in zip(channels, depths, pools):
            stages.append(_Stage(c_in, c, d, p, residual, stage_dropout))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, self.n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if residual:  # start each residual branch near zero: the stage begins as a plain chain
            for stage in self.stages:
                for layer in stage.rest:
                    nn.init.zeros_(layer[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, H, W)`` normalised pixels -> ``(batch, 8)`` logits."""
        h = self.stages(x)
        return self.head(self.drop(h.mean((2, 3))))
