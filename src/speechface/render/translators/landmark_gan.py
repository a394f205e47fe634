"""A landmark-conditioned face generator (registered as ``"landmark_gan"``).

The GANimation generator (same encoder, residual bottleneck, decoder, colour and attention
heads, ``out = A * input + (1 - A) * colour``) conditioned on **68 facial landmarks** instead of
AUs: the target points are rasterised into Gaussian heatmaps, one channel per face part, and
concatenated with the source face, so the network sees *where* each part must go while the
source image supplies identity, light and background.

The condition is the ``landmarks68`` space **in the frame of the crop** (x, y in 0-1 across the
translator's input image, as written by ``speechface prepare faces --landmarks`` and
``speechface prepare frames``). Parts (iBUG numbering): jaw 0-16, brows 17-21 / 22-26, nose
27-35, eyes 36-41 / 42-47, outer lips 48-59, inner lips 60-67.

Example:
    >>> import torch
    >>> from speechface.spaces import get_space
    >>> g = LandmarkGenerator(image_size=32, conv_dim=8, repeat_num=1)
    >>> lm = get_space("landmarks68").neutral_tensor()[None]
    >>> out, att = g(torch.zeros(1, 3, 32, 32), lm)
    >>> out.shape, g.encode_condition(lm, torch.zeros(1, 3, 32, 32)).shape
    (torch.Size([1, 3, 32, 32]), torch.Size([1, 8, 32, 32]))
"""

from __future__ import annotations

import torch

from ...core.registry import TRANSLATORS
from ...spaces.space import get_space
from .ganimation import GANimationGenerator

__all__ = ["LandmarkGenerator", "LandmarkHeatmapCondition", "LANDMARK_PARTS",
           "landmark_heatmaps"]

#: iBUG-68 index ranges of the heatmap channels.
LANDMARK_PARTS: tuple[tuple[str, range], ...] = (
    ("jaw", range(0, 17)), ("right_brow", range(17, 22)), ("left_brow", range(22, 27)),
    ("nose", range(27, 36)), ("right_eye", range(36, 42)), ("left_eye", range(42, 48)),
    ("outer_lips", range(48, 60)), ("inner_lips", range(60, 68)),
)


def landmark_heatmaps(cond: torch.Tensor, size: int, sigma: float = 1.0) -> torch.Tensor:
    """``(B, 136)`` crop-normalised ``x_0..x_67, y_0..y_67`` -> ``(B, 8, size, size)`` heatmaps.

    Each channel is the maximum over its part's points of ``exp(-d^2 / (2 sigma^2))``, ``d``
    in pixels at ``size``.

    Example:
        >>> lm = torch.full((1, 136), 0.5)
        >>> h = landmark_heatmaps(lm, 16); h.shape, round(float(h.max()), 3)
        (torch.Size([1, 8, 16, 16]), 0.779)
    """
    if cond.ndim != 2 or cond.shape[1] != 136:
        raise ValueError(f"landmarks must be (B, 136), got {tuple(cond.shape)}")
    b = cond.shape[0]
    xy = torch.stack([cond[:, :68], cond[:, 68:]], dim=-1) * size - 0.5   # pixel centres
    grid = torch.arange(size, dtype=cond.dtype, device=cond.device)
    gx = torch.exp(-(grid[None, None, :] - xy[..., 0:1]) ** 2 / (2 * sigma ** 2))  # (B, 68, S)
    gy = torch.exp(-(grid[None, None, :] - xy[..., 1:2]) ** 2 / (2 * sigma ** 2))
    maps = gy[..., :, None] * gx[..., None, :]                                     # (B, 68, S, S)
    out = cond.new_empty(b, len(LANDMARK_PARTS), size, size)
    for k, (_, idx) in enumerate(LANDMARK_PARTS):
        out[:, k] = maps[:, idx.start:idx.stop].amax(dim=1)
    return out


class LandmarkHeatmapCondition:
    """Mixin for translators that read the target landmarks as part heatmaps.

    Needs ``self.sigma`` (pixels at the input size); gives :attr:`condition_channels` (8) and
    :meth:`encode_condition` (``(B, 136)`` -> ``(B, 8, H, W)`` at the image's size).
    """

    sigma: float

    @property
    def condition_channels(self) -> int:
        """One heatmap per face part (8)."""
        return len(LANDMARK_PARTS)

    def encode_condition(self, cond: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """Target landmarks -> ``(B, 8, H, W)`` part heatmaps at the image's size."""
        if img.shape[-1] != img.shape[-2]:
            raise ValueError(f"{type(self).__name__} needs square images, got "
                             f"{tuple(img.shape[-2:])}")
        return landmark_heatmaps(cond.to(img.dtype), img.shape[-1], self.sigma)


@TRANSLATORS.register("landmark_gan")
class LandmarkGenerator(LandmarkHeatmapCondition, GANimationGenerator):
    """GANimation generator driven by rasterised landmark heatmaps (see the module docstring).

    Args:
        space: ``"landmarks68"`` (points normalised to the crop).
        image_size, conv_dim, repeat_num: as :class:`GANimationGenerator`.
        sigma: heatmap standard deviation in pixels at ``image_size``.
    """

    paper = ("GANimation (Pumarola et al., ECCV 2018) generator with landmark heatmaps, as in "
             "speech-driven landmark-to-face systems")
    default_space = "landmarks68"

    def __init__(self, space: str = "landmarks68", image_size: int = 64, conv_dim: int = 32,
                 repeat_num: int = 4, sigma: float = 1.0) -> None:
        if not get_space(space).points:
            raise ValueError(f"landmark_gan is conditioned on landmarks68, not {space!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.sigma = float(sigma)
        super().__init__(space=space, image_size=image_size, conv_dim=conv_dim,
                         repeat_num=repeat_num)

