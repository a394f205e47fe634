"""GANimation (Pumarola et al., ECCV 2018): anatomically-aware facial animation from one image.

Generator (registered as ``"ganimation"``), the official topology with its sizes as arguments::

    [RGB ; condition tiled to H x W]                      3 + D channels
    7x7 conv -> conv_dim, InstanceNorm, ReLU
    2 x (4x4 conv stride 2, channels x2, IN, ReLU)         -> 4 conv_dim at H/4
    repeat_num residual blocks (3x3 conv, IN, ReLU, 3x3 conv, IN, + x)
    2 x (4x4 transposed conv stride 2, channels /2, IN, ReLU)
    colour head: 7x7 conv -> 3, tanh      attention head: 7x7 conv -> 1, sigmoid
    output = A * input + (1 - A) * colour

The reference model is ``image_size=128, conv_dim=64, repeat_num=6``. The condition is
normalised inside the network (AU intensity / 5 for ``au17``; probabilities as they are for
``emotion8``), so callers always pass space values.

:class:`GANimationCritic` (training only): ``repeat_num`` 4x4 stride-2 convs from ``conv_dim``
channels, doubling (64 -> 2048 at 128 px), LeakyReLU(0.01), no normalisation; a 3x3 conv gives
the WGAN score map and a conv with the remaining spatial size as kernel regresses the
(normalised) condition. ``repeat_num`` defaults to ``log2(image_size) - 1`` (6 at 128 px), so
the last feature map is 2x2 at any size.

Example:
    >>> import torch
    >>> g = GANimationGenerator(image_size=32, conv_dim=8, repeat_num=1)
    >>> out, att = g(torch.zeros(2, 3, 32, 32), torch.zeros(2, 17))
    >>> out.shape, att.shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 1, 32, 32]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...core.registry import TRANSLATORS
from ...spaces.space import get_space
from .base import ImageTranslator

__all__ = ["GANimationGenerator", "GANimationCritic", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """``x + IN(conv3x3(ReLU(IN(conv3x3(x)))))`` at constant width (the official block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        return x + self.main(x)


@TRANSLATORS.register("ganimation")
class GANimationGenerator(ImageTranslator):
    """The GANimation generator: attention + colour regression conditioned on AUs or emotions.

    Args:
        space: ``"au17"`` (AU intensities 0-5, divided by 5 inside) or ``"emotion8"``.
        image_size: square input size (a multiple of 4); 128 is the paper's.
        conv_dim: width of the first layer (64 in the paper); the bottleneck has 4x.
        repeat_num: residual blocks in the bottleneck (6 in the paper).

    ``forward(img (B, 3, S, S) in [-1, 1], cond (B, D)) -> (out, attention)``;
    ``forward_parts`` gives ``(colour, attention)``.
    """

    paper = "Pumarola et al., GANimation, ECCV 2018"

    def __init__(self, space: str = "au17", image_size: int = 128, conv_dim: int = 64,
                 repeat_num: int = 6) -> None:
        super().__init__(space=space, image_size=image_size)
        if conv_dim < 1 or repeat_num < 0:
            raise ValueError(f"conv_dim must be >= 1 and repeat_num >= 0, got {conv_dim}, "
                             f"{repeat_num}")
        c = conv_dim
        layers: list[nn.Module] = [
            nn.Conv2d(3 + self.condition_channels, c, 7, 1, 3, bias=False),
            nn.InstanceNorm2d(c, affine=True),
            nn.ReLU(inplace=True),
        ]
        for _ in range(2):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(2 * c, affine=True), nn.ReLU(inplace=True)]
            c *= 2
        layers += [ResidualBlock(c) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(c // 2, affine=True), nn.ReLU(inplace=True)]
            c //= 2
        self.main = nn.Sequential(*layers)
        self.colour = nn.Sequential(nn.Conv2d(c, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attention = nn.Sequential(nn.Conv2d(c, 1, 7, 1, 3, bias=False), nn.Sigmoid())

    def forward_parts(self, img: torch.Tensor, cond: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(colour (B, 3, S, S) in [-1, 1], attention (B, 1, S, S) in (0, 1))``."""
        self.check_inputs(img, cond)
        feats = self.main(torch.cat([img, self.encode_condition(cond, img)], dim=1))
        return self.colour(feats), self.attention(feats)


class GANimationCritic(nn.Module):
    """The GANimation critic (WGAN-GP) with a condition-regression head. Training only.

    Args:
        space: conditioning space; the regression head has ``space.dim`` outputs on the
            network scale (AU / 5 for ``au17``).
        image_size: square input size (a power of two times 2: 32, 64, 128 ...).
        conv_dim: channels of the first conv (64 in the paper).
        repeat_num: stride-2 convs; default ``log2(image_size) - 1`` (a 2x2 final map).

    ``forward(img (B, 3, S, S)) -> (score (B, 1, S', S'), cond (B, D))``.

    Example:
        >>> d = GANimationCritic(image_size=32, conv_dim=8)
        >>> score, cond = d(torch.zeros(2, 3, 32, 32)); score.shape, cond.shape
        (torch.Size([2, 1, 2, 2]), torch.Size([2, 17]))
    """

    def __init__(self, space: str = "au17", image_size: int = 128, conv_dim: int = 64,
                 repeat_num: int | None = None) -> None:
        super().__init__()
        self.space = get_space(space)
        if repeat_num is None:
            repeat_num = max(1, int(round(math.log2(image_size))) - 1)
        k = image_size // 2 ** repeat_num
        if k < 1 or k * 2 ** repeat_num != image_size:
            raise ValueError(f"image_size {image_size} is not divisible by 2**{repeat_num}")
        self.hparams = {"space": self.space.name, "image_size": image_size,
                        "conv_dim": conv_dim, "repeat_num": repeat_num}
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        c = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.01)]
            c *= 2
        self.main = nn.Sequential(*layers)
        self.score = nn.Conv2d(c, 1, 3, 1, 1, bias=False)
        self.regress = nn.Conv2d(c, self.space.dim, k, bias=False)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``img (B, 3, S, S)`` in [-1, 1] -> (WGAN score map, normalised condition ``(B, D)``)."""
        h = self.main(img)
        return self.score(h), self.regress(h).flatten(1)
