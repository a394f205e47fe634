"""Augmentation of image batches in plain torch (the FER+ recipe uses them on whole batches).

- :func:`augment_batch`: random flip, rotation, scale and shift with one ``affine_grid`` /
  ``grid_sample`` (resizing comes free);
- :func:`jitter_batch`: random brightness and contrast;
- :func:`erase_batch`: random erasing of a rectangle.

Each takes a ``torch.Generator`` so a run can draw the same batches again (resume).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["augment_batch", "jitter_batch", "erase_batch"]


def augment_batch(x: torch.Tensor, generator: torch.Generator | None = None, *, flip: bool = True,
                  rotate_deg: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                  shift_px: float = 4.0, out_size: int | None = None,
                  pad_mode: str = "border") -> torch.Tensor:
    """Random flip + rotation + scale + shift of a batch with one ``affine_grid``/``grid_sample``.

    Args:
        x: ``(B, C, H, W)`` float images (square: ``H == W``).
        generator: torch generator for the random parameters (None = the global one).
        flip: mirror half of the images horizontally.
        rotate_deg: rotation drawn uniformly in ``[-rotate_deg, rotate_deg]``.
        scale: zoom factor range (``> 1`` enlarges the face).
        shift_px: translation drawn uniformly in ``[-shift_px, shift_px]`` input pixels per axis.
        out_size: output side (default: the input's); resizing comes free with the warp.
        pad_mode: ``grid_sample`` padding (``"border"``, ``"zeros"``, ``"reflection"``).

    Returns:
        ``(B, C, out_size, out_size)`` warped images.

    Example:
        >>> augment_batch(torch.rand(4, 1, 48, 48), torch.Generator().manual_seed(0)).shape
        torch.Size([4, 1, 48, 48])
    """
    b, c, h, w = x.shape
    size = out_size or h

    def uniform(lo: float, hi: float, n: int = b) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    ang = uniform(-rotate_deg, rotate_deg) * (math.pi / 180.0)
    s = uniform(scale[0], scale[1])
    tx = uniform(-shift_px, shift_px) * (2.0 / w)  # 1 pixel = 2/W in normalised coordinates
    ty = uniform(-shift_px, shift_px) * (2.0 / h)
    f = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    # theta maps output coordinates to input coordinates: in = R(ang) / s @ diag(f, 1) @ out + t
    theta = torch.stack([torch.stack([cos * f, -sin, tx], 1),
                         torch.stack([sin * f, cos, ty], 1)], 1).to(x.device, x.dtype)
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=pad_mode, align_corners=False)


def jitter_batch(x: torch.Tensor, generator: torch.Generator | None = None, *,
                 brightness: float = 0.2, contrast: float = 0.3, pixel_std: float = 1.0) -> torch.Tensor:
    """Random per-image brightness and contrast of a normalised batch.

    Each image ``x_i`` becomes ``(x_i - mean_i) * c + mean_i + b / pixel_std`` with
    ``c ~ U(1 - contrast, 1 + contrast)`` and ``b ~ U(-brightness, brightness)`` (``b`` in 0-1
    pixel units, hence the division by the normalisation's ``pixel_std``).

    Args:
        x: ``(B, C, H, W)`` normalised images.
        generator: torch generator (None = the global one).
        brightness: largest brightness shift, 0-1 pixel scale.
        contrast: largest relative contrast change.
        pixel_std: the pixel std used to normalise ``x``.

    Returns:
        ``(B, C, H, W)`` jittered images.

    Example:
        >>> jitter_batch(torch.zeros(3, 1, 8, 8), torch.Generator().manual_seed(0)).shape
        torch.Size([3, 1, 8, 8])
    """
    b = x.shape[0]
    c = 1.0 + contrast * (2 * torch.rand(b, generator=generator) - 1)
    shift = brightness * (2 * torch.rand(b, generator=generator) - 1) / pixel_std
    c = c.to(x.device, x.dtype).view(b, 1, 1, 1)
    shift = shift.to(x.device, x.dtype).view(b, 1, 1, 1)
    m = x.mean((1, 2, 3), keepdim=True)
    return (x - m) * c + m + shift


def erase_batch(x: torch.Tensor, generator: torch.Generator | None = None, *, prob: float = 0.5,
                area: tuple[float, float] = (0.02, 0.2),
                ratio: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """Random erasing: with probability ``prob`` a random rectangle of each image becomes 0.

    In normalised space 0 is the mean training pixel. The rectangle covers a fraction of the image
    drawn in ``area`` with an aspect ratio (height / width) drawn log-uniformly in ``ratio``.

    Args:
        x: ``(B, C, H, W)`` normalised images.
        generator: torch generator (None = the global one).
        prob: probability that an image gets a rectangle.
        area: range of the rectangle's area as a fraction of the image.
        ratio: range of its aspect ratio.

    Returns:
        ``(B, C, H, W)`` images.

    Example:
        >>> y = erase_batch(torch.ones(2, 1, 16, 16), torch.Generator().manual_seed(0), prob=1.0)
        >>> bool((y == 0).any(dim=(1, 2, 3)).all())
        True
    """
    b, _, h, w = x.shape

    def rnd() -> torch.Tensor:
        return torch.rand(b, generator=generator)

    a = (area[0] + (area[1] - area[0]) * rnd()) * h * w
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    ar = torch.exp(lo + (hi - lo) * rnd())
    eh = torch.sqrt(a * ar).clamp(1, h)
    ew = torch.sqrt(a / ar).clamp(1, w)
    y0 = (rnd() * (h - eh + 1)).floor()
    x0 = (rnd() * (w - ew + 1)).floor()
    on = rnd() < prob
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    m = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + eh).view(b, 1, 1))
         & (xs >= x0.view(b, 1, 1)) & (xs < (x0 + ew).view(b, 1, 1)) & on.view(b, 1, 1))
    return x.masked_fill(m[:, None].to(x.device), 0.0)
