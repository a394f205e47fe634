"""Folders of face images, optionally with per-image action-unit intensities from a CSV.

The CSV is OpenFace style: a column with the image name (``image`` by default; names with or
without extension, with or without a folder) and the 17 ``AUxx_r`` intensity columns of
:data:`speechface.spaces.AU17` (other columns are ignored; header names are stripped, since
OpenFace writes ``" AU01_r"``)::

    image,AU01_r,AU02_r,AU04_r,...,AU45_r
    N_0000000356_00190,2.86,2.27,1.45,...,0.0

Face identities for identity-disjoint splits come from LFW-style file names
``Person_Name_NNNN.jpg`` (:func:`identity_of`, :func:`identity_split`).

>>> from speechface.data.faces import FaceFolder, identity_of
>>> ds = FaceFolder("ganimation_sample/imgs", au_csv="ganimation_sample/aus_openface.csv")
...                                                                   # doctest: +SKIP
>>> image, aus = ds[0]; image.size, aus.shape                         # doctest: +SKIP
((128, 128), (17,))
>>> identity_of("lfw/Aaron_Peirsol_0003.jpg")
'Aaron_Peirsol'
"""

from __future__ import annotations

import csv
import os
import random
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError, ImageError
from ..spaces.space import Space, get_space

__all__ = ["FaceFolder", "identity_of", "identity_split", "read_au_csv", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_IDENTITY_RE = re.compile(r"^(.+?)_(\d+)$")


def _key(name: str) -> str:
    """Matching key of an image name: base name without an image extension."""
    base = Path(name.strip().replace("\\", "/")).name
    stem, ext = os.path.splitext(base)
    return stem if ext.lower() in IMAGE_EXTENSIONS else base


def read_au_csv(path: str | os.PathLike[str], image_column: str = "image",
                space: str | Space = "au17") -> dict[str, np.ndarray]:
    """Read a per-image AU CSV into ``{image key: (D,) float32}``.

    Keys are base names without image extension (``"N_0000000356_00190"``).

    Args:
        path: the CSV file.
        image_column: the column holding image names.
        space: which columns to read (``space.columns``; default the 17 ``AUxx_r``).

    Raises:
        DataError: file unreadable, image column or value columns missing (all missing columns
            are named), a non-numeric or non-finite value, or the same image twice.

    Example:
        >>> aus = read_au_csv("ganimation_sample/aus_openface.csv")          # doctest: +SKIP
        >>> aus["N_0000000356_00190"].shape                                 # doctest: +SKIP
        (17,)
    """
    path = Path(path)
    columns = get_space(space).columns
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"{path}: cannot read AU CSV ({e})") from e
    with f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty CSV") from None
        if image_column not in header:
            raise DataError(f"{path}: no image column {image_column!r} (columns: "
                            f"{', '.join(header[:20])}{' ...' if len(header) > 20 else ''})")
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(f"{path}: missing AU columns {', '.join(missing)}")
        img_i = header.index(image_column)
        col_i = [header.index(c) for c in columns]
        out: dict[str, np.ndarray] = {}
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise DataError(f"{path}:{line}: {len(row)} fields, header has {len(header)}")
            key = _key(row[img_i])
            try:
                vals = np.array([float(row[k]) for k in col_i], dtype=np.float32)
            except ValueError:
                bad = [columns[j] for j, k in enumerate(col_i) if not _is_float(row[k])]
                raise DataError(f"{path}:{line}: non-numeric value in {', '.join(bad)}") from None
            if not np.isfinite(vals).all():
                raise DataError(f"{path}:{line}: non-finite AU value for {row[img_i]!r}")
            if key in out:
                raise DataError(f"{path}:{line}: image {row[img_i]!r} appears twice")
            out[key] = vals
    return out


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class FaceFolder(Sequence[Any]):
    """Face images in a folder (``.jpg``, ``.jpeg``, ``.png``), optionally with AU targets.

    Args:
        root: the image folder.
        au_csv: optional per-image AU CSV (see :func:`read_au_csv`). Images without a CSV row
            are skipped (count in :attr:`n_skipped`, a warning is issued) unless ``strict``.
        image_column: name column of the CSV.
        as_tensor: return images as float32 tensors ``(3, H, W)`` in [0, 1] and AUs as float32
            tensors ``(17,)``; otherwise PIL RGB images and numpy ``(17,)`` float32 arrays.
        transform: optional callable applied to the image after loading (and conversion).
        strict: with a CSV, an image missing from it raises :class:`DataError`.
        recursive: also list images in sub-folders.
        space: which CSV columns are the targets (default ``"au17"``).

    ``dataset[i]`` is ``(image, aus)`` with a CSV, else just ``image``.

    Attributes:
        paths: image paths, sorted. ``aus``: ``(N, 17)`` float32 (``None`` without CSV).
        skipped: images left out for lack of a CSV row; ``unmatched_rows``: CSV keys with no image.

    Example:
        >>> lfw = FaceFolder("faces128/lfw", as_tensor=True)           # doctest: +SKIP
        >>> lfw[0].shape, identity_of(lfw.paths[0])                    # doctest: +SKIP
        (torch.Size([3, 128, 128]), 'AJ_Cook')
    """

    def __init__(self, root: str | os.PathLike[str], au_csv: str | os.PathLike[str] | None = None,
                 image_column: str = "image", *, as_tensor: bool = False, transform: Any = None,
                 strict: bool = False, recursive: bool = False, space: str | Space = "au17"
                 ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: image folder not found")
        self.as_tensor = bool(as_tensor)
        self.transform = transform
        self.space = get_space(space)
        pattern = "**/*" if recursive else "*"
        paths = sorted(p for p in self.root.glob(pattern)
                       if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                       and not p.name.startswith("."))
        if not paths:
            raise DataError(f"{self.root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.skipped: list[Path] = []
        self.unmatched_rows: list[str] = []
        self.aus: np.ndarray | None = None
        if au_csv is not None:
            table = read_au_csv(au_csv, image_column=image_column, space=self.space)
            keep = [p for p in paths if _key(p.name) in table]
            self.skipped = [p for p in paths if _key(p.name) not in table]
            used = {_key(p.name) for p in keep}
            self.unmatched_rows = sorted(k for k in table if k not in used)
            if self.skipped and strict:
                names = ", ".join(p.name for p in self.skipped[:5])
                more = f" (and {len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
                raise DataError(f"{len(self.skipped)} images in {self.root} have no row in "
                                f"{au_csv}: {names}{more}")
            if not keep:
                raise DataError(f"no image in {self.root} has a row in {au_csv} (image names "
                                f"are matched without extension on column {image_column!r})")
            if self.skipped:
                warnings.warn(f"FaceFolder: {len(self.skipped)} of {len(paths)} images in "
                              f"{self.root} have no row in {au_csv}; skipped", stacklevel=2)
            paths = keep
            self.aus = np.stack([table[_key(p.name)] for p in paths]).astype(np.float32)
        self.paths: list[Path] = paths

    @property
    def n_skipped(self) -> int:
        """Number of images skipped for lack of a CSV row."""
        return len(self.skipped)

    @property
    def identities(self) -> list[str]:
        """:func:`identity_of` each image, in order (LFW-style names only)."""
        return [identity_of(p) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def load_image(self, i: int) -> Any:
        """Image ``i`` as PIL RGB (or a tensor with ``as_tensor``), before ``transform``."""
        from PIL import Image, UnidentifiedImageError

        path = self.paths[i]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise ImageError(f"{path}: cannot read image ({e})") from e
        if self.as_tensor:
            import torch

            arr = np.asarray(img, dtype=np.float32) / 255.0
            return torch.from_numpy(arr.transpose(2, 0, 1).copy())
        return img

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        img = self.load_image(i)
        if self.transform is not None:
            img = self.transform(img)
        if self.aus is None:
            return img
        aus = self.aus[i]
        if self.as_tensor:
            import torch

            return img, torch.from_numpy(aus.copy())
        return img, aus.copy()

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def subset(self, indices: Iterable[int]) -> FaceFolder:
        """A copy holding only ``indices`` (e.g. from :func:`identity_split`)."""
        idx = [int(i) for i in indices]
        new = object.__new__(FaceFolder)
        new.__dict__.update(self.__dict__)
        new.paths = [self.paths[i] for i in idx]
        new.aus = None if self.aus is None else self.aus[idx]
        return new

    def __repr__(self) -> str:
        extra = "" if self.aus is None else f", with {self.space.name} targets"
        return f"FaceFolder({str(self.root)!r}, {len(self)} images{extra})"


def identity_of(path: str | os.PathLike[str]) -> str:
    """Person identity of an LFW-style file name ``Person_Name_NNNN.jpg``.

    Raises:
        DataError: the name does not end in ``_<digits>``.

    Example:
        >>> identity_of("/data/lfw/George_W_Bush_0012.jpg")
        'George_W_Bush'
    """
    stem = Path(os.fspath(path)).stem
    m = _IDENTITY_RE.match(stem)
    if not m:
        raise DataError(f"{path!s}: cannot tell the identity (expected Person_Name_NNNN.jpg)")
    return m.group(1)


def identity_split(paths: Sequence[str | os.PathLike[str]] | FaceFolder,
                   val_fraction: float = 0.1, seed: int = 0, key: Any = identity_of
                   ) -> tuple[list[int], list[int]]:
    """Identity-disjoint (train, val) split of images: no person is on both sides.

    Identities are shuffled with ``seed`` and moved to validation until it holds at least
    ``val_fraction`` of the images.

    Args:
        paths: image paths or a :class:`FaceFolder`.
        val_fraction: target share of validation images (0 < f < 1).
        seed: shuffling seed (deterministic for the same input).
        key: ``path -> identity`` (default :func:`identity_of`).

    Returns:
        ``(train_indices, val_indices)``, sorted lists of positions in ``paths``.

    Example:
        >>> names = ["A_0001.jpg", "A_0002.jpg", "B_0001.jpg", "C_0001.jpg"]
        >>> tr, va = identity_split(names, val_fraction=0.25, seed=1)
        >>> sorted(tr + va), len({identity_of(names[i]) for i in va} &
        ...                      {identity_of(names[i]) for i in tr})
        ([0, 1, 2, 3], 0)
    """
    items = paths.paths if isinstance(paths, FaceFolder) else list(paths)
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(items):
        groups.setdefault(key(p), []).append(i)
    ids = sorted(groups)
    if len(ids) < 2:
        raise DataError(f"need at least 2 identities to split, got {len(ids)}")
    random.Random(seed).shuffle(ids)
    target = val_fraction * len(items)
    val: list[int] = []
    for ident in ids[:-1]:  # always leave at least one identity for training
        if len(val) >= target:
            break
        val.extend(groups[ident])
    val_set = set(val)
    train = [i for i in range(len(items)) if i not in val_set]
    return train, sorted(val)
