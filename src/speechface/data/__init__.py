"""Data: datasets, readers and preparation of training targets.

In: talking-face videos, RAVDESS, FER+, face folders, OpenFace CSVs (and the teachers' labels).
Out: prepared shards and clips for training (:mod:`speechface.training`) and held-out
evaluation (:mod:`speechface.evaluation`).

- :mod:`~speechface.data.openface`: read OpenFace 2 CSVs / AU tables, resample tracks onto the
  25 fps feature grid.
- :mod:`~speechface.data.shards`: one ``.npz`` per clip + manifest; :class:`ShardDataset`.
- :mod:`~speechface.data.prepare`: talking-face videos -> shards (``speechface prepare av``).
- :mod:`~speechface.data.ravdess`, :mod:`~speechface.data.ferplus`, :mod:`~speechface.data.faces`:
  RAVDESS speech (file-name fields), FER+ vote distributions, face folders with AU CSVs.

Example:
    >>> from speechface.data import ShardDataset, collate_clips   # doctest: +SKIP
    >>> ds = ShardDataset("prepared/av_mediapipe", split="train")  # doctest: +SKIP
"""

from .faces import FaceFolder, identity_of, identity_split
from .ferplus import FerPlus, FerPlusDataset, load_ferplus
from .openface import OpenFaceTrack, read_au_table, read_openface_csv, to_frame_grid
from .prepare import prepare_av
from .ravdess import (
    RAVDESS_EMOTIONS,
    RAVDESS_TO_EMOTION8,
    RavdessDataset,
    RavdessInfo,
    actor_split,
    parse_ravdess_name,
)
from .shards import (
    ShardDataset,
    collate_clips,
    group_split,
    list_clips,
    read_clip,
    rebuild_manifest,
    write_clip,
)

__all__ = [
    "FaceFolder",
    "identity_of",
    "identity_split",
    "FerPlus",
    "FerPlusDataset",
    "load_ferplus",
    "RAVDESS_EMOTIONS",
    "RAVDESS_TO_EMOTION8",
    "RavdessDataset",
    "RavdessInfo",
    "actor_split",
    "parse_ravdess_name",
    "OpenFaceTrack",
    "read_au_table",
    "read_openface_csv",
    "to_frame_grid",
    "prepare_av",
    "ShardDataset",
    "collate_clips",
    "group_split",
    "list_clips",
    "read_clip",
    "rebuild_manifest",
    "write_clip",
]
