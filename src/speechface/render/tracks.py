"""Teacher tracks of talking-face clips for fitting the mesh renderer: per frame the 478-point
MediaPipe mesh in pixels and the 52 blendshapes, cached as one ``.npz`` per clip.

Example:
    >>> from speechface.render.tracks import track_clip                    # doctest: +SKIP
    >>> tr = track_clip("talk.mp4", "cache/")                              # doctest: +SKIP
    >>> tr["mesh"].shape, tr["blendshapes"].shape                          # doctest: +SKIP
    ((75, 478, 3), (75, 52))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["track_clip", "mesh_pixels"]


def mesh_pixels(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe's normalised mesh ``(..., 478, 3)`` -> pixels: ``x * W``, ``y * H``, ``z * W``.

    Example:
        >>> mesh_pixels(np.full((478, 3), 0.5, np.float32), 200, 100)[0].tolist()
        [100.0, 50.0, 100.0]
    """
    lm = np.asarray(landmarks, dtype=np.float32)
    scale = np.array([width, height, width], np.float32)
    return lm * scale


def track_clip(video: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None,
               *, max_frames: int | None = None, teacher: Any = None) -> dict[str, np.ndarray]:
    """Run the MediaPipe teacher (video mode) on every frame of a clip.

    Args:
        video: a video file with a face.
        cache_dir: where ``<clip name>.npz`` is kept (read back when present); None = no cache.
        max_frames: decode at most this many frames.
        teacher: a :class:`~speechface.teachers.MediaPipeTeacher` to reuse (video mode).

    Returns:
        ``{"mesh": (N, 478, 3) float32 pixels, "blendshapes": (N, 52) float32,
        "found": (N,) bool, "times": (N,) float64, "size": (2,) int (W, H)}``.
    """
    from ..data.prepare import clip_name

    path = Path(video)
    cached = Path(cache_dir) / f"{clip_name(path)}.npz" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        with np.load(cached) as z:
            return {k: z[k] for k in z.files}
    from ..teachers.mediapipe import MediaPipeTeacher
    from .video import read_video

    clip = read_video(path, max_frames=max_frames)
    own = teacher is None
    t = MediaPipeTeacher(running_mode="video") if own else teacher
    try:
        track = t.observe_video(clip)
    finally:
        if own:
            t.close()
    h, w = clip.frames.shape[1:3]
    out = {"mesh": mesh_pixels(track.landmarks478, w, h), "blendshapes": track.blendshapes,
           "found": track.found, "times": track.times, "size": np.array([w, h], np.int64)}
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **out)
        os.replace(tmp, cached)
    return out
