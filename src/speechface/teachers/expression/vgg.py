"""``vgg13``: the FER+ paper's VGG13-style network (Barsoum et al., ICMI 2016), 64x64 grey input.

Layout (defaults = the paper's network, with BatchNorm added after every convolution)::

    block 1: 2 x [Conv3x3(->64)  BN ReLU], MaxPool2, Dropout(0.25)     64 -> 32
    block 2: 2 x [Conv3x3(->128) BN ReLU], MaxPool2, Dropout(0.25)     32 -> 16
    block 3: 3 x [Conv3x3(->256) BN ReLU], MaxPool2, Dropout(0.25)     16 -> 8
    block 4: 3 x [Conv3x3(->256) BN ReLU], MaxPool2, Dropout(0.25)      8 -> 4
    head "flatten": 256x4x4 -> FC 1024 ReLU Dropout(0.5) -> FC 1024 ReLU Dropout(0.5) -> FC 8

8,759,624 parameters and about 0.87 G multiply-adds per 64x64 image. ``head="avg"`` (global
average pooling instead of flattening) with a narrower ``fc`` makes a compact variant: with
``fc=[512]`` it has 3.64 M parameters, the same convolutions and the same multiply-adds.

``flip_average=True`` averages the logits of the image and its mirror image in eval mode (a
test-time augmentation that doubles inference cost; training is unchanged).

Shapes: ``(batch, 1, input_size, input_size)`` normalised pixels -> ``(batch, 8)`` raw logits in
EMOTION8 order.
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.registry import EXPRESSION
from .base import ExpressionNet

__all__ = ["VGG13"]


@EXPRESSION.register("vgg13")
class VGG13(ExpressionNet):
    """VGG13-style facial-expression network of the FER+ paper (see the module notes).

    Args:
        input_size: side of the square grey input (the paper: 64; FER+ faces are upsampled from
            48). Must be divisible by ``2 ** len(channels)`` when ``head="flatten"``.
        channels: output channels of each block.
        depths: 3x3 convolutions per block.
        fc: widths of the hidden fully connected layers (the paper: ``[1024, 1024]``).
        head: ``"flatten"`` (the paper) or ``"avg"`` (global average pooling, fewer parameters).
        dropout: dropout after each hidden fully connected layer.
        block_dropout: dropout after each block's max-pooling.
        batch_norm: BatchNorm after every convolution (not in the paper; it trains faster).
        flip_average: in eval mode, average the logits of the input and its mirror image.

    Example:
        >>> net = VGG13()
        >>> net(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 8])
        >>> VGG13(head="avg", fc=[512]).num_parameters()
        3642184
    """

    paper = "Barsoum et al., Training deep networks for FER with crowd-sourced label distribution (ICMI 2016)"

    def __init__(self, input_size: int = 64, channels: tuple[int, ...] | list[int] = (64, 128, 256, 256),
                 depths: tuple[int, ...] | list[int] = (2, 2, 3, 3),
                 fc: tuple[int, ...] | list[int] = (1024, 1024), head: str = "flatten",
                 dropout: float = 0.5, block_dropout: float = 0.25, batch_norm: bool = True,
                 flip_average: bool = False) -> None:
        super().__init__(input_size)
        channels, depths, fc = [int(c) for c in channels], [int(d) for d in depths], [int(f) for f in fc]
        if len(channels) != len(depths) or not channels:
            raise ValueError(f"need one depth per block: channels {channels}, depths {depths}")
        if any(d < 1 for d in depths) or any(c < 1 for c in channels) or any(f < 1 for f in fc):
            raise ValueError(f"channels, depths and fc widths must be positive: {channels}, "
                             f"{depths}, {fc}")
        if head not in ("flatten", "avg"):
            raise ValueError(f"head must be 'flatten' or 'avg', got {head!r}")
        side = input_size // 2 ** len(channels)
        if side < 1 or (head == "flatten" and side * 2 ** len(channels) != input_size):
            raise ValueError(f"input_size {input_size} must be divisible by 2**{len(channels)} = "
                             f"{2 ** len(channels)} for {len(channels)} poolings")
        layers: list[nn.Module] = []
        c_in = 1
        for c, d in zip(channels, depths):
            for _ in range(d):
                layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c))
                layers.append(nn.ReLU(inplace=True))
                c_in = c
            layers.append(nn.MaxPool2d(2))
            if block_dropout > 0:
                layers.append(nn.Dropout(block_dropout))
        self.features = nn.Sequential(*layers)
        self.head_kind = head
        width = c_in * side * side if head == "flatten" else c_in
        mlp: list[nn.Module] = []
        for f in fc:
            mlp += [nn.Linear(width, f), nn.ReLU(inplace=True)]
            if dropout > 0:
                mlp.append(nn.Dropout(dropout))
            width = f
        mlp.append(nn.Linear(width, self.n_classes))
        self.classifier = nn.Sequential(*mlp)
        self.flip_average = bool(flip_average)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        h = h.flatten(1) if self.head_kind == "flatten" else h.mean((2, 3))
        return self.classifier(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, S, S)`` normalised pixels -> ``(batch, 8)`` logits."""
        if self.flip_average and not self.training:
            return 0.5 * (self._logits(x) + self._logits(x.flip(-1)))
        return self._logits(x)
