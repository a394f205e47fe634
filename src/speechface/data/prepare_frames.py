"""Talking-face videos -> aligned face crops with per-frame teacher labels (``prepare frames``).

Still photos (LFW) show each face once, so a GANimation trainer learns expression changes only
through its critic. Video gives *pairs*: two frames of one clip are the same face, the same
camera and light, with different expressions, so ``G(frame_i, labels(frame_j))`` can be
compared with ``frame_j`` directly (the ``pairs`` option of
:class:`~speechface.training.ganimation.GANimationTrainer`). This module writes that data::

    speechface prepare frames ../shared/data/av_clips -o prepared/av_frames64 --size 64

For every clip: the frames (every ``stride``-th) are labelled by the MediaPipe teacher; one
square crop per clip (median face box over the clip, so the camera does not follow the
expression) is cut from every frame with the LFW framing (:data:`LFW_MARGIN`,
:data:`LFW_SHIFT`) and resized to ``size``. One ``.npz`` per clip::

    images       (N, size, size, 3) uint8   the crops
    au17         (N, 17) float32            AU proxy of each frame
    landmarks68  (N, 136) float32           68 points normalised to the crop (0-1)
    found        (N,) bool                  the teacher found the face
    frame_index  (N,) int64                 index in the video stream
    meta_json    ()                         name, group, source, crop box, framing

and ``manifest.json`` (or ``manifest.<i>of<n>.json`` per ``--shard``) lists them with their
speaker group (same rules and ``--groups`` file as ``prepare av``), so splits stay
speaker-disjoint. Existing complete files are kept (a re-run resumes).
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core._io import atomic_write, write_json
from ..core.errors import DataError
from ..spaces.space import get_space

__all__ = ["LFW_MARGIN", "LFW_SHIFT", "FRAMES_FORMAT", "prepare_frames", "load_frame_clips",
           "FrameClips", "random_pairs"]

#: Crop margin that reproduces the framing of ``../shared/data/faces128`` (LFW deep-funneled
#: centre crops): median over 33 LFW faces of ``(128 / mesh box side - 1) / 2`` is 0.04.
LFW_MARGIN = 0.05
#: ... and the MediaPipe mesh box centre lies 0.08 of the side below the crop centre (median 0.58).
LFW_SHIFT = 0.08
FRAMES_FORMAT = "speechface.face_frames/1"


def _clip_box(boxes: np.ndarray) -> tuple[float, float, float, float]:
    """One box for a clip: median centre and median side of the per-frame boxes."""
    cx = np.median((boxes[:, 0] + boxes[:, 2]) / 2)
    cy = np.median((boxes[:, 1] + boxes[:, 3]) / 2)
    half = np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])) / 2
    return float(cx - half), float(cy - half), float(cx + half), float(cy + half)


def _complete(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "meta_json.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def prepare_frames(inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                   size: int = 64, stride: int = 2, margin: float = LFW_MARGIN,
                   shift: float = LFW_SHIFT, max_frames: int | None = None,
                   groups: Mapping[str, str] | str | os.PathLike[str] | None = None,
                   group_by: str = "auto", shard: Any = None, model_path: Any = None,
                   overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Write aligned, labelled face crops of talking-face videos (see the module docstring).

    Args:
        inputs: video files or folders (searched recursively).
        out_dir: output folder.
        size: crop side in pixels (the translator's ``image_size``).
        stride: keep every ``stride``-th frame.
        margin, shift: crop framing (see :func:`~speechface.render.face.crop_face`); the defaults match
            the LFW crops the translators are trained on.
        max_frames: at most this many kept frames per clip (None = all).
        groups, group_by: speaker groups, as for ``prepare av``.
        shard: ``"i/n"``: only every n-th video starting at i (parallel writers).
        model_path: the ``face_landmarker.task`` bundle (default: found automatically).
        overwrite: redo clips that are already written.
        progress: a tqdm bar over the videos.

    Returns:
        Summary: ``out_dir``, ``n_videos``, ``n_written``, ``n_kept`` (already there),
        ``n_skipped`` (no face), ``n_frames``, ``seconds``, ``manifest``.

    Raises:
        DataError: no videos, bad arguments.
    """
    from ..render.face import crop_face
    from ..render.video import iter_video_frames
    from ..teachers.mediapipe import PROXY_NAME, MediaPipeTeacher, landmarks68_from_478
    from .prepare import clip_group, clip_name, find_videos, load_groups, parse_shard, select_shard

    if size < 8 or stride < 1:
        raise DataError(f"size must be >= 8 and stride >= 1, got {size}, {stride}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    i_shard, n_shard = parse_shard(shard)
    videos = select_shard(find_videos(inputs), (i_shard, n_shard))
    group_map = load_groups(groups)
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    n_written = n_kept = n_frames = 0
    skipped: list[str] = []
    it: Any = videos
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(videos, desc="face frames", unit="clip", leave=False)
    with MediaPipeTeacher(model_path, running_mode="image") as teacher:
        for video in it:
            name = clip_name(video)
            path = out / f"{name}.npz"
            if path.exists() and not overwrite and _complete(path):
                with np.load(path, allow_pickle=False) as z:
                    records.append(json.loads(str(z["meta_json"])))
                n_kept += 1
                continue
            imgs, obs, idx = [], [], []
            for fr in iter_video_frames(video):
                if fr.index % stride:
                    continue
                imgs.append(fr.image)
                obs.append(teacher.observe(np.ascontiguousarray(fr.image)))
                idx.append(fr.index)
                if max_frames and len(imgs) >= max_frames:
                    break
            found = np.array([o.found for o in obs], dtype=bool)
            if found.sum() < 2:
                skipped.append(name)
                continue
            box = _clip_box(np.stack([o.box for o in obs])[found])
            h, w = imgs[0].shape[:2]
            crops = [crop_face(im, box, margin=margin, size=size, shift=shift) for im in imgs]
            c = crops[0]
            norm_box = (c.x0 / w, c.y0 / h, (c.x0 + c.side) / w, (c.y0 + c.side) / h)
            lm = np.stack([landmarks68_from_478(o.landmarks, norm_box) for o in obs])
            lm[~found] = 0.0
            rec = {"format": FRAMES_FORMAT, "name": name, "file": path.name,
                   "group": clip_group(video, group_by, group_map), "source": str(video),
                   "n_frames": len(imgs), "n_found": int(found.sum()), "stride": stride,
                   "size": size, "margin": margin, "shift": shift,
                   "crop_box": [c.x0, c.y0, c.x0 + c.side, c.y0 + c.side],
                   "teacher": PROXY_NAME, "landmarks": "68 iBUG points normalised to the crop"}
            with atomic_write(path, "wb") as f:
                np.savez(f, images=np.stack([cr.image for cr in crops]),
                         au17=np.stack([o.au17 for o in obs]).astype(np.float32),
                         landmarks68=lm.astype(np.float32), found=found,
                         frame_index=np.asarray(idx, dtype=np.int64),
                         meta_json=np.array(json.dumps(rec)))
            records.append(rec)
            n_written += 1
            n_frames += len(imgs)
    part = None if n_shard == 1 else f"{i_shard}of{n_shard}"
    manifest = out / ("manifest.json" if part is None else f"manifest.{part}.json")
    write_json(manifest, {"format": FRAMES_FORMAT, "clips": sorted(records, key=lambda r: r["name"])})
    return {"out_dir": str(out), "n_videos": len(videos), "n_written": n_written,
            "n_kept": n_kept, "n_skipped": len(skipped), "skipped": skipped[:20],
            "n_frames": n_frames, "seconds": time.perf_counter() - start,
            "manifest": str(manifest)}


@dataclass
class FrameClips:
    """Face crops of several clips in memory (found frames only).

    Attributes:
        images: ``(N, 3, S, S)`` uint8.
        conds: ``(N, D)`` float32 labels in the requested space.
        clip: ``(N,)`` int64 clip index of each frame (into ``names`` / ``groups``).
        names, groups: per clip.
    """

    images: torch.Tensor
    conds: torch.Tensor
    clip: torch.Tensor
    names: list[str]
    groups: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def select_groups(self, keep: set[str]) -> FrameClips:
        """Only the clips whose group is in ``keep`` (clip indices renumbered)."""
        clips = [i for i, g in enumerate(self.groups) if g in keep]
        remap = torch.full((len(self.names),), -1, dtype=torch.long)
        remap[clips] = torch.arange(len(clips))
        rows = remap[self.clip] >= 0
        return FrameClips(self.images[rows], self.conds[rows], remap[self.clip[rows]],
                          [self.names[i] for i in clips], [self.groups[i] for i in clips])

    def frames_of(self) -> list[torch.Tensor]:
        """Row indices of each clip's frames."""
        order = torch.argsort(self.clip, stable=True)
        counts = torch.bincount(self.clip, minlength=len(self.names)).tolist()
        return list(torch.split(order, counts))

    def pair_index(self) -> list[torch.Tensor]:
        """Row indices of the frames of each clip that has two or more (for frame pairs)."""
        return [ix for ix in self.frames_of() if len(ix) >= 2]


def random_pairs(index: list[torch.Tensor], n: int, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices ``(i, j)`` of ``n`` random frame pairs, each from one clip of ``index``
    (:meth:`FrameClips.pair_index`); ``i == j`` is possible (an identity pair).

    Example:
        >>> i, j = random_pairs([torch.tensor([0, 1]), torch.tensor([2, 3, 4])], 5)
        >>> bool(((i < 2) == (j < 2)).all())
        True
    """
    rows_i, rows_j = [], []
    for c in torch.randint(0, len(index), (n,), generator=generator).tolist():
        a, b = torch.randint(0, len(index[c]), (2,), generator=generator).tolist()
        rows_i.append(index[c][a])
        rows_j.append(index[c][b])
    return torch.stack(rows_i), torch.stack(rows_j)


def load_frame_clips(root: str | os.PathLike[str], space: str = "au17",
                     image_size: int | None = None) -> FrameClips:
    """Read a ``prepare frames`` folder (all manifest parts) into memory.

    Raises:
        DataError: no manifest, a missing file, or crops of another size than ``image_size``.
    """
    sp = get_space(space)
    key = {"au17": "au17", "landmarks68": "landmarks68"}.get(sp.name)
    if key is None:
        raise DataError(f"face frames carry au17 and landmarks68 labels, not {sp.name!r}")
    root = Path(root)
    manifests = sorted(root.glob("manifest*.json"))
    if not manifests:
        raise DataError(f"{root}: no manifest.json (write it with `speechface prepare frames`)")
    recs: dict[str, dict[str, Any]] = {}
    for m in manifests:
        for r in json.loads(m.read_text())["clips"]:
            recs[r["name"]] = r
    images, conds, clip, names, groups = [], [], [], [], []
    for name in sorted(recs):
        path = root / recs[name]["file"]
        if not path.exists():
            raise DataError(f"{path}: listed in the manifest but missing")
        with np.load(path, allow_pickle=False) as z:
            found = z["found"]
            if found.sum() < 2:
                continue
            img = z["images"][found]
            if image_size is not None and img.shape[1] != image_size:
                raise DataError(f"{path}: crops are {img.shape[1]} px, need {image_size}")
            images.append(img)
            conds.append(z[key][found])
        clip.append(np.full(len(img), len(names), dtype=np.int64))
        names.append(name)
        groups.append(str(recs[name].get("group") or name))
    if not names:
        raise DataError(f"{root}: no clip with at least 2 labelled frames")
    return FrameClips(torch.from_numpy(np.concatenate(images)).permute(0, 3, 1, 2).contiguous(),
                      torch.from_numpy(np.concatenate(conds).astype(np.float32)),
                      torch.from_numpy(np.concatenate(clip)), names, groups)
