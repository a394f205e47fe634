"""FER+ reader: FER2013 48x48 grey faces with 10 crowd-sourced emotion votes each.

The packed file (``ferplus_trainval.npz``, loaded with ``allow_pickle=False``) holds, per split
(``train`` 28,558 images, ``valid`` 3,579): ``<split>_jpeg`` (all JPEG bytes concatenated),
``<split>_offsets`` (image ``i`` is ``jpeg[offsets[i]:offsets[i+1]]``), ``<split>_votes``
``(N, 10)`` and ``<split>_names``; ``vote_columns`` = the 8 emotions of
:data:`speechface.spaces.EMOTION8` followed by ``unknown`` and ``NF`` (not a face).

Label schemes of the FER+ paper (Barsoum et al., 2016, arXiv:1608.01041):

- ``"majority"`` (MV): one label per image, the most-voted emotion (:meth:`FerPlus.majority`).
- ``"probability"`` (PLD, probabilistic label drawing): the vote distribution over the 8
  emotions; training draws a one-hot label from it anew each epoch.
- ``"crossentropy"`` (CEL): the same vote distribution, used directly as a soft target of a
  cross-entropy / KL loss (speechface's ``emotion8`` space trains this way).

PLD and CEL share the target distribution and differ only in how a training loop uses it, so
:meth:`FerPlus.distributions` returns the same array for both. Here the distribution is the
plain renormalised vote count over the 8 emotions (``unknown`` and ``NF`` dropped); the FER+
reference code additionally removes single votes (``min_votes=2``), drops images whose top vote is
``unknown``/``NF`` (``drop_unknown=True``) and, for PLD/CEL, keeps only the top emotions covering
75% of the votes (not implemented).

Decoding all 32,137 JPEGs with Pillow takes about 2.4 s on one CPU core (train 2.1 s, valid
0.3 s; about 70 us per image), so there is no cache file.

>>> from speechface.data.ferplus import load_ferplus
>>> fer = load_ferplus("../shared/data/ferplus/ferplus_trainval.npz", "valid")  # doctest: +SKIP
>>> fer.images.shape, fer.votes.shape                                         # doctest: +SKIP
((3579, 48, 48), (3579, 10))
>>> dist, keep = fer.distributions()                                          # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.errors import DataError
from ..spaces.space import EMOTION8

__all__ = ["FerPlus", "FerPlusDataset", "load_ferplus", "FERPLUS_VOTE_COLUMNS"]

#: Column order of the FER+ vote arrays.
FERPLUS_VOTE_COLUMNS = (*EMOTION8.labels, "unknown", "NF")
SPLITS = ("train", "valid")
SCHEMES = ("majority", "probability", "crossentropy")


@dataclass
class FerPlus:
    """One decoded FER+ split.

    Attributes:
        images: ``(N, 48, 48)`` uint8 grey images.
        votes: ``(N, 10)`` int64 vote counts in :data:`FERPLUS_VOTE_COLUMNS` order.
        names: ``(N,)`` str, original FER2013 file names (``"fer0000000.png"``).
        split: ``"train"`` or ``"valid"``.
        vote_columns: the 10 column names.
    """

    images: np.ndarray
    votes: np.ndarray
    names: np.ndarray
    split: str
    vote_columns: tuple[str, ...] = FERPLUS_VOTE_COLUMNS

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _emotion_votes(self, min_votes: int, drop_unknown: bool) -> tuple[np.ndarray, np.ndarray]:
        v = self.votes.astype(np.int64).copy()
        if min_votes > 1:
            v[v < min_votes] = 0
        emo = v[:, :8]
        keep = emo.sum(1) > 0
        if drop_unknown:
            # the reference code drops images whose (first) top vote is unknown or NF
            keep &= v.argmax(1) < 8
        return emo, keep

    def distributions(self, scheme: str = "probability", *, min_votes: int = 1,
                      drop_unknown: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Emotion target distributions over the 8 EMOTION8 classes.

        Args:
            scheme: ``"probability"`` or ``"crossentropy"`` (same vote distribution, see the
                module notes); ``"majority"`` gives one-hot rows of :meth:`majority`.
            min_votes: votes below this count are zeroed first (FER+ reference: 2).
            drop_unknown: also drop rows whose most-voted column is ``unknown``/``NF``.

        Returns:
            ``(dist, keep)``: ``dist`` is ``(M, 8)`` float32 with rows summing to 1 for the
            ``M = keep.sum()`` kept images; ``keep`` is the ``(N,)`` bool mask of kept images
            (rows without any emotion vote are always dropped).

        Example:
            >>> fer = FerPlus(np.zeros((2, 48, 48), np.uint8),
            ...               np.array([[3, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            ...                         [0, 0, 0, 0, 0, 0, 0, 0, 2, 8]]), np.array(["a", "b"]),
            ...               "train")
            >>> dist, keep = fer.distributions()
            >>> dist.tolist(), keep.tolist()
            ([[0.75, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], [True, False])
        """
        if scheme not in SCHEMES:
            raise DataError(f"unknown FER+ scheme {scheme!r}; choose from {SCHEMES}")
        if scheme == "majority":
            labels, keep = self.majority(min_votes=min_votes, drop_unknown=drop_unknown)
            return np.eye(8, dtype=np.float32)[labels], keep
        emo, keep = self._emotion_votes(min_votes, drop_unknown)
        e = emo[keep].astype(np.float64)
        return (e / e.sum(1, keepdims=True)).astype(np.float32), keep

    def majority(self, *, min_votes: int = 1, strict: bool = False,
                 drop_unknown: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Majority-vote labels (EMOTION8 indices).

        The label is the most-voted of the 8 emotions; ties go to the lower index (the EMOTION8
        order, so ``neutral`` wins ties). Rows without emotion votes are dropped.

        Args:
            min_votes: votes below this count are zeroed first (FER+ reference: 2).
            strict: keep only rows whose top emotion has more than half of *all* votes (including
                ``unknown``/``NF``), as in the FER+ paper's majority scheme.
            drop_unknown: also drop rows whose most-voted column is ``unknown``/``NF``.

        Returns:
            ``(labels, keep)``: ``(M,)`` int64 labels of the kept rows and the ``(N,)`` bool mask.

        Example:
            >>> fer = FerPlus(np.zeros((2, 48, 48), np.uint8),
            ...               np.array([[4, 0, 0, 4, 2, 0, 0, 0, 0, 0],
            ...                         [0, 0, 6, 0, 0, 0, 4, 0, 0, 0]]), np.array(["a", "b"]),
            ...               "train")
            >>> fer.majority()[0].tolist(), fer.majority(strict=True)[0].tolist()
            ([0, 2], [2])
        """
        emo, keep = self._emotion_votes(min_votes, drop_unknown)
        labels = emo.argmax(1)
        if strict:
            v = self.votes.astype(np.int64).copy()
            if min_votes > 1:
                v[v < min_votes] = 0
            top = emo[np.arange(len(emo)), labels]
            keep &= 2 * top > v.sum(1)
        return labels[keep].astype(np.int64), keep

    def subset(self, index: Any) -> FerPlus:
        """A new :class:`FerPlus` with rows ``index`` (mask, slice or integer array)."""
        return FerPlus(self.images[index], self.votes[index], self.names[index], self.split,
                       self.vote_columns)


def load_ferplus(path: str | os.PathLike[str], split: str = "train", limit: int | None = None,
                 progress: bool = True) -> FerPlus:
    """Load and decode one split of the packed FER+ file.

    Args:
        path: the ``.npz`` (e.g. ``<shared>/data/ferplus/ferplus_trainval.npz``).
        split: ``"train"`` or ``"valid"``.
        limit: decode only the first ``limit`` images (tests, quick looks).
        progress: show a tqdm progress bar while decoding.

    Returns:
        :class:`FerPlus` with ``images`` ``(N, 48, 48)`` uint8, ``votes`` ``(N, 10)``,
        ``names`` ``(N,)``.

    Raises:
        DataError: missing file or arrays, inconsistent offsets, an undecodable image.

    Example:
        >>> fer = load_ferplus("ferplus_trainval.npz", "valid", limit=100)   # doctest: +SKIP
        >>> fer.images.shape                                              # doctest: +SKIP
        (100, 48, 48)
    """
    from PIL import Image, UnidentifiedImageError

    if split not in SPLITS:
        raise DataError(f"unknown FER+ split {split!r}; choose from {SPLITS} "
                        "(the test split is not distributed here)")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: FER+ file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            needed = [f"{split}_jpeg", f"{split}_offsets", f"{split}_votes", f"{split}_names"]
            missing = [k for k in needed if k not in z.files]
            if missing:
                raise DataError(f"{path}: arrays {missing} missing (has {sorted(z.files)})")
            jpeg = z[f"{split}_jpeg"]
            offsets = z[f"{split}_offsets"].astype(np.int64)
            votes = z[f"{split}_votes"].astype(np.int64)
            names = z[f"{split}_names"].astype(str)
            columns = tuple(str(c) for c in z["vote_columns"]) if "vote_columns" in z.files \
                else FERPLUS_VOTE_COLUMNS
    except DataError:
        raise
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read FER+ arrays ({e})") from e
    if columns != FERPLUS_VOTE_COLUMNS:
        raise DataError(f"{path}: vote_columns {columns} != expected {FERPLUS_VOTE_COLUMNS}")
    n = len(votes)
    if votes.ndim != 2 or votes.shape[1] != 10 or len(names) != n or len(offsets) != n + 1:
        raise DataError(f"{path}: inconsistent {split} arrays: votes {votes.shape}, "
                        f"names {names.shape}, offsets {offsets.shape}")
    if offsets[0] != 0 or offsets[-1] != len(jpeg) or np.any(np.diff(offsets) <= 0):
        raise DataError(f"{path}: {split}_offsets do not partition {split}_jpeg")
    if limit is not None:
        n = max(0, min(n, int(limit)))

    images = np.empty((n, 48, 48), dtype=np.uint8)
    rng = range(n)
    if progress:
        from tqdm.auto import tqdm

        rng = tqdm(rng, desc=f"decoding FER+ {split}", unit="img", leave=False)
    for i in rng:
        buf = jpeg[offsets[i]:offsets[i + 1]]
        try:
            with Image.open(io.BytesIO(buf.tobytes())) as im:
                if im.mode != "L":
                    im = im.convert("L")
                a = np.asarray(im)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{path}: {split} image {i} ({names[i]}) cannot be decoded ({e})") from e
        if a.shape != (48, 48):
            raise DataError(f"{path}: {split} image {i} ({names[i]}) is {a.shape}, not 48x48")
        images[i] = a
    return FerPlus(images=images, votes=votes[:n], names=names[:n], split=split)


class FerPlusDataset(Dataset):
    """A torch ``Dataset`` of FER+ images and emotion distributions.

    Items are ``(image, dist)``: ``image`` a float32 tensor ``(1, 48, 48)`` in [0, 1] (after
    ``transform``, if given, which receives and returns that tensor), ``dist`` a float32
    tensor ``(8,)`` in EMOTION8 order. Only images kept by
    :meth:`FerPlus.distributions` appear.

    Args:
        ferplus: a loaded :class:`FerPlus` split.
        transform: optional callable applied to the image tensor (augmentation, resizing).
        scheme, min_votes, drop_unknown: passed to :meth:`FerPlus.distributions`.

    Example:
        >>> ds = FerPlusDataset(load_ferplus(npz, "train"))                  # doctest: +SKIP
        >>> image, dist = ds[0]; image.shape, dist.shape                     # doctest: +SKIP
        (torch.Size([1, 48, 48]), torch.Size([8]))
    """

    def __init__(self, ferplus: FerPlus, transform: Any = None, scheme: str = "probability",
                 min_votes: int = 1, drop_unknown: bool = False) -> None:
        dist, keep = ferplus.distributions(scheme, min_votes=min_votes, drop_unknown=drop_unknown)
        self.ferplus = ferplus
        self.transform = transform
        self.index = np.flatnonzero(keep)
        self.targets = torch.from_numpy(dist)
        self._images = torch.from_numpy(np.ascontiguousarray(ferplus.images))

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        j = int(self.index[i])
        img = self._images[j].unsqueeze(0).float().div_(255.0)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[i]
