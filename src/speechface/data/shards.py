"""Prepared training clips on disk ("shards") and a torch Dataset over them.

A shard folder holds one ``NAME.npz`` per clip and a manifest:

=========================== ==================== ===============================================
array                       shape                meaning
=========================== ==================== ===============================================
``audio``                   ``(samples,)``       float32 speech, 16 kHz mono
``features``                ``(F, frames)``      float32 audio features (log-mel, 25 fps)
``targets_au17``            ``(frames, 17)``     float32 AU intensities 0-5 (teacher)
``targets_landmarks68``     ``(frames, 136)``    float32 landmarks68 (face-box units)
``blendshapes``             ``(frames, 52)``     float32 MediaPipe blendshapes (0 if none)
``mask``                    ``(frames,)``        bool, frames with a valid target
``meta_json``               ``()``               str, the clip's manifest record as JSON
=========================== ==================== ===============================================

Other arrays may be added (they are loaded too). Frame ``n`` is centred at ``n / 25`` s, and
``frames = len(audio) // 640``.

**Manifest.** Each writer process keeps its own manifest *part*: ``manifest.json`` for a single
process, ``manifest.<i>of<n>.json`` for shard ``i`` of ``n`` (see
:func:`speechface.data.prepare.prepare_av`), so parallel writers never touch the same file.
:func:`list_clips` merges every ``manifest*.json`` in the folder (a clip listed twice keeps the
most recently written record), drops records whose ``.npz`` is gone, and adds any ``.npz`` no part
lists (e.g. a writer killed between the two writes) from the record stored inside it.
:func:`rebuild_manifest` writes that merged view to ``manifest.json``. Every file is written
atomically (temporary file in the same folder + ``os.replace``); npz files are read with
``allow_pickle=False``.

Example:
    >>> ds = ShardDataset("prepared/av_mediapipe", split="train")   # doctest: +SKIP
    >>> item = ds[0]; item["features"].shape, item["targets_au17"].shape  # doctest: +SKIP
    (torch.Size([80, 75]), torch.Size([75, 17]))
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core._io import atomic_write, write_json
from ..core.errors import DataError

__all__ = [
    "ShardDataset",
    "write_clip",
    "read_clip",
    "clip_is_complete",
    "list_clips",
    "write_manifest",
    "rebuild_manifest",
    "group_split",
    "collate_clips",
    "REQUIRED_ARRAYS",
    "SAMPLES_PER_FRAME",
]

#: Arrays every clip has.
REQUIRED_ARRAYS: tuple[str, ...] = ("audio", "features", "targets_au17", "targets_landmarks68",
                                    "blendshapes", "mask")
#: 16 kHz samples per 25 fps frame.
SAMPLES_PER_FRAME = 640
MANIFEST_FORMAT = "speechface-shards"
MANIFEST_VERSION = 1


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_arrays(name: str, arrays: Mapping[str, np.ndarray]) -> int:
    missing = [k for k in REQUIRED_ARRAYS if k not in arrays]
    if missing:
        raise DataError(f"clip {name!r}: missing arrays {', '.join(missing)}")
    frames = int(arrays["mask"].shape[0])
    checks = {
        "audio": arrays["audio"].ndim == 1,
        "features": arrays["features"].ndim == 2 and arrays["features"].shape[1] == frames,
        "targets_au17": arrays["targets_au17"].shape == (frames, 17),
        "targets_landmarks68": arrays["targets_landmarks68"].shape == (frames, 136),
        "blendshapes": arrays["blendshapes"].shape == (frames, 52),
        "mask": arrays["mask"].ndim == 1,
    }
    bad = [f"{k} {arrays[k].shape}" for k, ok in checks.items() if not ok]
    if bad:
        raise DataError(f"clip {name!r}: bad shapes for {frames} frames: {', '.join(bad)}")
    return frames


def write_clip(root: str | os.PathLike[str], name: str, arrays: Mapping[str, Any],
               meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write one clip as ``root/name.npz`` atomically and return its manifest record.

    Args:
        root: the shard folder (created if needed).
        name: clip name (file stem; letters, digits, ``_-.``).
        arrays: at least :data:`REQUIRED_ARRAYS` (numpy arrays or tensors); floats are stored as
            float32, ``mask`` as bool.
        meta: JSON-plain metadata (source, speaker, teacher, feature config ...).

    Returns:
        The record ``{"name", "file", "n_frames", "seconds", "written_at", **meta}``; it is also
        stored inside the npz as ``meta_json``. The manifest is *not* updated here (see
        :func:`write_manifest`).

    Example:
        >>> rec = write_clip("shards", "clip1", arrays, {"speaker": "s1"})   # doctest: +SKIP
    """
    if not name or "/" in name or name.startswith(".") or name.startswith("manifest"):
        raise DataError(f"invalid clip name {name!r}")
    out: dict[str, np.ndarray] = {}
    for k, v in arrays.items():
        if k == "meta_json":
            continue
        a = _np(v)
        if k == "mask" or a.dtype == np.bool_:
            a = a.astype(np.bool_)
        elif np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32)
        if a.dtype == object:
            raise DataError(f"clip {name!r}: array {k!r} has object dtype")
        out[k] = np.ascontiguousarray(a)
    frames = _check_arrays(name, out)
    record: dict[str, Any] = {
        "name": name,
        "file": f"{name}.npz",
        "n_frames": frames,
        "seconds": round(float(out["audio"].shape[0]) / 16000.0, 4),
        "written_at": time.time(),
    }
    record.update(dict(meta or {}))
    record["name"], record["file"], record["n_frames"] = name, f"{name}.npz", frames
    out["meta_json"] = np.array(json.dumps(record))
    path = Path(root) / f"{name}.npz"
    with atomic_write(path, "wb") as f:
        np.savez(f, **out)
    return record


def _clip_file(root: str | os.PathLike[str], name: str | None) -> Path:
    p = Path(root)
    if name is not None:
        p = p / (name if name.endswith(".npz") else f"{name}.npz")
    return p


def read_clip(root: str | os.PathLike[str], name: str | None = None,
              keys: Iterable[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load one clip (``read_clip(root, name)`` or ``read_clip(path_to_npz)``).

    Args:
        keys: arrays to load (default: all).

    Returns:
        ``(arrays, record)``: numpy arrays by name and the clip's metadata record.

    Raises:
        DataError: missing or unreadable file.

    Example:
        >>> arrays, rec = read_clip("shards", "clip1")   # doctest: +SKIP
        >>> arrays["targets_au17"].shape                  # doctest: +SKIP
        (75, 17)
    """
    p = _clip_file(root, name)
    try:
        with np.load(p, allow_pickle=False) as z:
            wanted = list(z.files) if keys is None else [k for k in keys if k in z.files]
            arrays = {k: z[k] for k in wanted if k != "meta_json"}
            record = json.loads(str(z["meta_json"])) if "meta_json" in z.files else {}
    except FileNotFoundError as e:
        raise DataError(f"{p}: clip file not found") from e
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DataError(f"{p}: unreadable clip ({e})") from e
    if keys is not None:
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise DataError(f"{p}: clip has no arrays {', '.join(missing)}")
    return arrays, record


def clip_is_complete(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a readable clip npz holding :data:`REQUIRED_ARRAYS` (cheap check).

    Example:
        >>> clip_is_complete("shards/clip1.npz")   # doctest: +SKIP
        True
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            if not all(k in z.files for k in REQUIRED_ARRAYS):
                return False
            z["mask"]  # forces reading one member: catches truncated archives
            return True
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def _manifest_name(part: str | None) -> str:
    return "manifest.json" if not part else f"manifest.{part}.json"


def write_manifest(root: str | os.PathLike[str], records: Sequence[Mapping[str, Any]],
                   part: str | None = None, **extra: Any) -> Path:
    """Write a manifest (part) atomically: ``manifest.json`` or ``manifest.<part>.json``.

    Args:
        records: clip records (as returned by :func:`write_clip`).
        part: e.g. ``"2of4"`` for the 3rd of 4 parallel writers; ``None`` = ``manifest.json``.
        extra: top-level JSON-plain fields (tool, teacher, feature config ...).

    Example:
        >>> write_manifest("shards", [rec], part="0of2")   # doctest: +SKIP
        PosixPath('shards/manifest.0of2.json')
    """
    path = Path(root) / _manifest_name(part)
    doc = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **extra,
           "clips": sorted((dict(r) for r in records), key=lambda r: r["name"])}
    write_json(path, doc)
    return path


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable manifest ({e})") from e
    clips = doc.get("clips") if isinstance(doc, dict) else doc
    if not isinstance(clips, list):
        raise DataError(f"{path}: manifest has no 'clips' list")
    return [c for c in clips if isinstance(c, dict) and "name" in c]


def list_clips(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All clips of a shard folder: the merged manifest parts, checked against the npz files.

    Returns:
        Records sorted by name (each has ``name``, ``file``, ``n_frames``, ``seconds``,
        ``speaker`` ... as written).

    Raises:
        DataError: ``root`` is not a folder.

    Example:
        >>> [c["name"] for c in list_clips("shards")][:2]   # doctest: +SKIP
        ['grid_s1__bbaf2n', 'grid_s1__bbaf2s']
    """
    r = Path(root)
    if not r.is_dir():
        raise DataError(f"{r}: shard folder not found")
    merged: dict[str, dict[str, Any]] = {}
    for mf in sorted(r.glob("manifest*.json")):
        for rec in _read_manifest(mf):
            old = merged.get(rec["name"])
            if old is None or rec.get("written_at", 0) >= old.get("written_at", 0):
                merged[rec["name"]] = rec
    present = {p.stem for p in r.glob("*.npz") if not p.name.startswith(".")}
    out = {n: rec for n, rec in merged.items() if n in present}
    for n in sorted(present - set(out)):
        try:
            _, rec = read_clip(r, n, keys=())
        except DataError:
            continue  # unreadable leftovers are skipped; prepare rewrites them
        out[n] = rec or {"name": n, "file": f"{n}.npz"}
    return [out[n] for n in sorted(out)]


def rebuild_manifest(root: str | os.PathLike[str], **extra: Any) -> list[dict[str, Any]]:
    """Merge all manifest parts and npz files into ``manifest.json`` (atomic); return the clips.

    Example:
        >>> len(rebuild_manifest("shards"))   # doctest: +SKIP
        534
    """
    clips = list_clips(root)
    write_manifest(root, clips, None, **extra)
    return clips


def group_split(clips: Sequence[Mapping[str, Any]], val_fraction: float = 0.1, seed: int = 0,
                key: str = "speaker") -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split clips into train and validation with no group (speaker) in both.

    Groups are shuffled with ``seed`` and taken into validation until it holds at least
    ``val_fraction`` of the clips (at least one group when ``val_fraction > 0`` and there are
    two or more groups). Clips without ``key`` form their own group (their name).

    Returns:
        ``(train, val)`` lists of records, in input order.

    Example:
        >>> clips = [{"name": f"c{i}", "speaker": f"s{i % 3}"} for i in range(9)]
        >>> train, val = group_split(clips, 0.3, seed=0)
        >>> sorted({c["speaker"] for c in train} & {c["speaker"] for c in val})
        []
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def gid(c: Mapping[str, Any]) -> str:
        return str(c.get(key) or c.get("name"))

    groups = sorted({gid(c) for c in clips})
    counts = {g: 0 for g in groups}
    for c in clips:
        counts[gid(c)] += 1
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    val_groups: set[str] = set()
    taken, need = 0, val_fraction * len(clips)
    for g in order:
        if taken >= need or len(val_groups) >= len(groups) - 1:
            break
        if val_fraction > 0:
            val_groups.add(g)
            taken += counts[g]
    train = [c for c in clips if gid(c) not in val_groups]
    val = [c for c in clips if gid(c) in val_groups]
    return train, val


class ShardDataset(Dataset):
    """A torch Dataset of prepared clips (one item = one whole clip).

    Args:
        root: shard folder.
        split: ``None`` (all clips), ``"train"`` or ``"val"``: a group-disjoint split made by
            :func:`group_split` with ``val_fraction``, ``seed`` and ``key``.
        groups: keep only clips whose ``key`` (speaker/group id) is in this collection.
        keys: arrays to load (default: all arrays in the npz).
        val_fraction, seed, key: split settings (the same values give the same split).

    Items are dicts of tensors (``audio (samples,)``, ``features (F, frames)``,
    ``targets_au17 (frames, 17)``, ``targets_landmarks68 (frames, 136)``,
    ``blendshapes (frames, 52)``, ``mask (frames,)`` bool ...) plus ``name`` (str). Clips differ in
    length: batch them with :func:`collate_clips`.

    Example:
        >>> ds = ShardDataset("prepared/av_mediapipe", split="val")            # doctest: +SKIP
        >>> loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=collate_clips)  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str], split: str | None = None,
                 groups: Iterable[str] | None = None, *, keys: Iterable[str] | None = None,
                 val_fraction: float = 0.1, seed: int = 0, key: str = "speaker") -> None:
        self.root = Path(root)
        clips: list[Mapping[str, Any]] = list(list_clips(self.root))
        if groups is not None:
            wanted = {str(g) for g in groups}
            clips = [c for c in clips if str(c.get(key) or c.get("name")) in wanted]
        if split is not None:
            if split not in ("train", "val"):
                raise ValueError(f"split must be None, 'train' or 'val', got {split!r}")
            train, val = group_split(clips, val_fraction, seed, key)
            clips = train if split == "train" else val
        self.clips = clips
        self.keys = None if keys is None else tuple(keys)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.clips[i]
        arrays, _ = read_clip(self.root, rec["name"], self.keys)
        item: dict[str, Any] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        item["name"] = rec["name"]
        return item


def collate_clips(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pad a list of clip items to the longest clip and stack them.

    Frame-level arrays (first or last axis = the clip's ``n_frames``) are zero-padded along the
    frame axis, ``audio`` along samples; ``mask`` pads with ``False``. Adds ``lengths`` (frames
    per clip, ``(B,)`` int64); ``name`` becomes a list.

    Example:
        >>> a = {"features": torch.zeros(80, 5), "mask": torch.ones(5, dtype=torch.bool),
        ...      "targets_au17": torch.zeros(5, 17), "audio": torch.zeros(3200), "name": "a"}
        >>> b = {"features": torch.zeros(80, 3), "mask": torch.ones(3, dtype=torch.bool),
        ...      "targets_au17": torch.zeros(3, 17), "audio": torch.zeros(1920), "name": "b"}
        >>> out = collate_clips([a, b]); out["features"].shape, out["mask"].sum().item()
        (torch.Size([2, 80, 5]), 8)
    """
    if not batch:
        raise ValueError("empty batch")
    lengths = [int(b["mask"].shape[0]) for b in batch]
    out: dict[str, Any] = {"lengths": torch.tensor(lengths, dtype=torch.int64)}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        if not isinstance(vals[0], torch.Tensor):
            out[k] = list(vals)
            continue
        if k == "audio":
            axis = 0
        elif k == "features" or (vals[0].ndim >= 2 and k.startswith("features")):
            axis = vals[0].ndim - 1  # (..., F, frames)
        elif vals[0].ndim >= 1 and all(v.shape[0] == n for v, n in zip(vals, lengths)):
            axis = 0
        else:
            out[k] = torch.stack(vals)
            continue
        size = max(int(v.shape[axis]) for v in vals)
        padded = []
        for v in vals:
            pad_shape = list(v.shape)
            pad_shape[axis] = size - v.shape[axis]
            padded.append(torch.cat([v, v.new_zeros(pad_shape)], dim=axis))
        out[k] = torch.stack(padded)
    return out
