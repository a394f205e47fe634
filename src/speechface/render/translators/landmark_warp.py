"""A landmark-driven **warping** face generator (registered as ``"landmark_warp"``).

Where :class:`~speechface.render.translators.LandmarkGenerator` must paint every changed pixel, this
network moves them: a small U-Net reads the source face together with Gaussian heatmaps of the
68 *target* landmarks (one channel per face part, as in ``landmark_gan``) and two coordinate
channels, and predicts

- a dense **flow** field (where each output pixel samples the input, in the normalised
  ``[-1, 1]`` coordinates of ``grid_sample``, at most ``max_flow``),
- an **attention** mask A and a **colour** image C for what a warp cannot make (the inside of
  an opening mouth, teeth, shading),

and returns ``A * warp(face, flow) + (1 - A) * C``. The flow is resolution-free, so
:meth:`speechface.render.translators.Translator.translate` applies it to the **full-resolution** crop
(only the colour image is upsampled): the face keeps its detail at any photo size.

The flow head starts at zero and the attention head near one, so the untrained network returns
its input; training (:class:`~speechface.training.LandmarkWarpTrainer`) teaches it to move face
parts onto the target points from pairs of frames of talking-face videos and from LFW photos
with random smooth deformations.

Example:
    >>> import torch
    >>> from speechface.spaces import get_space
    >>> g = LandmarkWarpGenerator(image_size=32, conv_dim=8)
    >>> lm = get_space("landmarks68").neutral_tensor()[None]
    >>> img = torch.rand(1, 3, 32, 32) * 2 - 1
    >>> out, att = g(img, lm)
    >>> out.shape, att.shape, bool(torch.allclose(out, img, atol=0.1))
    (torch.Size([1, 3, 32, 32]), torch.Size([1, 1, 32, 32]), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...core.registry import TRANSLATORS
from ...spaces.space import get_space
from .base import ImageTranslator, identity_grid, warp_image
from .landmark_gan import LandmarkHeatmapCondition

__all__ = ["LandmarkWarpGenerator", "warp_image", "identity_grid"]


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    k = 4 if stride == 2 else 3
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, 1), _norm(cout), nn.LeakyReLU(0.2, True),
                         nn.Conv2d(cout, cout, 3, 1, 1), _norm(cout), nn.LeakyReLU(0.2, True))


@TRANSLATORS.register("landmark_warp")
class LandmarkWarpGenerator(LandmarkHeatmapCondition, ImageTranslator):
    """U-Net predicting flow + attention + colour from a face and target landmark heatmaps.

    Args:
        space: ``"landmarks68"`` (x_0..x_67, y_0..y_67 normalised to the crop).
        image_size: square input size (a multiple of ``2 ** depth``).
        conv_dim: channels at full resolution; they double per level up to ``4 * conv_dim``.
        depth: down-sampling levels (3: a 64 px input reaches 8 x 8).
        sigma: heatmap standard deviation in pixels at ``image_size``.
        max_flow: largest displacement, in ``[-1, 1]`` units (0.25 = an eighth of the side).

    ``forward(img, cond) -> (out, attention)``; :meth:`forward_warp` gives
    ``(colour, attention, flow)``.
    """

    paper = ("landmark-driven warping generator (flow + attention + colour), in the family of "
             "X2Face / monkey-net talking-head models")
    default_space = "landmarks68"

    def __init__(self, space: str = "landmarks68", image_size: int = 64, conv_dim: int = 24,
                 depth: int = 3, sigma: float = 1.5, max_flow: float = 0.25) -> None:
        if not get_space(space).points:
            raise ValueError(f"landmark_warp is conditioned on landmarks68, not {space!r}")
        super().__init__(space=space, image_size=image_size)
        if conv_dim < 1 or depth < 1:
            raise ValueError(f"conv_dim and depth must be >= 1, got {conv_dim}, {depth}")
        if image_size % 2 ** depth:
            raise ValueError(f"image_size {image_size} is not divisible by 2**{depth}")
        if not sigma > 0 or not max_flow > 0:
            raise ValueError(f"sigma and max_flow must be > 0, got {sigma!r}, {max_flow!r}")
        self.sigma, self.max_flow = float(sigma), float(max_flow)
        widths = [min(conv_dim * 2 ** i, 4 * conv_dim) for i in range(depth + 1)]
        self.inc = _block(3 + self.condition_channels + 2, widths[0])
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1], 2) for i in range(depth))
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i])
                                for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], 6, 3, 1, 1)
        with torch.no_grad():       # start as the identity: no flow, attention ~0.95
            self.head.weight[:3].zero_()
            self.head.bias.zero_()
            self.head.bias[2] = 3.0

    def forward_warp(self, img: torch.Tensor, cond: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(colour (B, 3, S, S), attention (B, 1, S, S), flow (B, 2, S, S))``."""
        self.check_inputs(img, cond)
        b, _, h, w = img.shape
        coords = identity_grid(b, h, w, dtype=img.dtype, device=img.device).permute(0, 3, 1, 2)
        x = self.inc(torch.cat([img, self.encode_condition(cond, img), coords], dim=1))
        skips = [x]
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()
        for layer in self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = layer(torch.cat([x, skips.pop()], dim=1))
        y = self.head(x)
        flow = self.max_flow * torch.tanh(y[:, :2])
        return torch.tanh(y[:, 3:]), torch.sigmoid(y[:, 2:3]), flow

    def forward(self, img: torch.Tensor, cond: torch.Tensor  # type: ignore[override]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``img (B, 3, S, S)`` in [-1, 1], target landmarks ``(B, 136)`` -> ``(out, attention)``."""
        colour, attention, flow = self.forward_warp(img, cond)
        return attention * warp_image(img, flow) + (1 - attention) * colour, attention
