"""Labelled face images in memory for the translator recipes (GANimation, landmark warp)."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError

__all__ = ["FaceTensors", "load_face_tensors"]


@dataclass
class FaceTensors:
    """Face images and their conditions in memory.

    Attributes:
        images: ``(N, 3, S, S)`` uint8.
        conds: ``(N, D)`` float32 space values (AU intensities 0-5, or probabilities).
        names: N image names (LFW ``Person_Name_NNNN.jpg`` for identities).
    """

    images: torch.Tensor
    conds: torch.Tensor
    names: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise DataError(f"images must be uint8 (N, 3, S, S), got {tuple(self.images.shape)} "
                            f"{self.images.dtype}")
        if self.conds.ndim != 2 or len(self.conds) != len(self.images):
            raise DataError(f"conds must be (N, D) with N = {len(self.images)}, got "
                            f"{tuple(self.conds.shape)}")
        if len(self.names) != len(self.images):
            raise DataError("one name per image is needed")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: list[int]) -> FaceTensors:
        """The images at positions ``idx``."""
        t = torch.as_tensor(idx, dtype=torch.long)
        return FaceTensors(self.images[t], self.conds[t], [self.names[i] for i in idx])


def load_face_tensors(images: str, labels: str, image_size: int, space: str = "au17",
                      max_images: int = 0, progress: bool = False) -> FaceTensors:
    """Read a labelled face folder (via :class:`~speechface.data.faces.FaceFolder`) into memory.

    Images are resized to ``image_size`` (Lanczos) and kept as uint8.

    Example:
        >>> data = load_face_tensors("ganimation_sample/imgs", "ganimation_sample/aus_openface.csv",
        ...                          64)                                            # doctest: +SKIP
        >>> data.images.shape, data.conds.shape                                    # doctest: +SKIP
        (torch.Size([4, 3, 64, 64]), torch.Size([4, 17]))
    """
    from PIL import Image

    from .faces import FaceFolder

    if not images or not labels:
        raise DataError("GANimation training needs 'images' (a face folder) and 'labels' (its CSV)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FaceFolder(images, au_csv=labels, space=space)
    for w in caught:
        if progress:
            print(f"note: {w.message}", file=sys.stderr)
    n = len(ds) if not max_images else min(max_images, len(ds))
    out = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    it: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="loading faces", unit="img", leave=False)
    for i in it:
        img = ds.load_image(i)
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.LANCZOS)
        out[i] = np.asarray(img)
    assert ds.aus is not None
    return FaceTensors(torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(),
                       torch.from_numpy(ds.aus[:n].copy()), [p.name for p in ds.paths[:n]])
