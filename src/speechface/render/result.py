"""What :func:`speechface.animate` returns: an :class:`Animation` (frames, frame rate, speech,
conditions), its frames composed on demand by a :class:`FrameComposer`; saved through the
writers of :mod:`speechface.render.video`.

Example:
    >>> import numpy as np
    >>> anim = Animation(np.zeros((10, 32, 48, 3), np.uint8), fps=25.0)
    >>> len(anim), anim.size, anim.duration
    (10, (48, 32), 0.4)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core._io import atomic_path
from ..core.results import Prediction
from .face import FaceBox, FaceCrop, blend_region
from .video import (
    AUDIO_RATE,
    VIDEO_FORMATS,
    output_format,
    write_image_animation,
    write_video,
)

__all__ = ["Animation", "FrameComposer"]


class FrameComposer:
    """Builds frame i on demand: the photo with face i pasted in (optionally beside the photo).

    The faces come from ``render(start, stop) -> (stop - start, S, S, 3)`` uint8, called one
    batch of ``batch`` frames at a time and kept only until the next batch is needed, so
    writing a video holds one batch of faces and one full frame, whatever its length.
    """

    def __init__(self, photo: np.ndarray, crop: FaceCrop, render: Any, length: int,
                 batch: int, feather: float, side_by_side: bool) -> None:
        self.photo = photo
        self.crop = crop
        self.render = render
        self.length = int(length)
        self.batch = max(1, int(batch))
        self.feather = feather
        self.side_by_side = side_by_side
        self._start = -1
        self._faces: np.ndarray | None = None

    def __len__(self) -> int:
        return self.length

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.photo.shape[:2]
        return (h, 2 * w if self.side_by_side else w)

    def face(self, i: int) -> np.ndarray:
        """The rendered face crop of frame ``i`` (its batch is rendered if needed)."""
        start = (i // self.batch) * self.batch
        if start != self._start or self._faces is None:
            self._faces = None  # free the previous batch before rendering the next
            stop = min(start + self.batch, self.length)
            self._faces = self.render(start, stop)
            self._start = start
        return self._faces[i - start]

    def frame(self, i: int) -> np.ndarray:
        h, w = self.photo.shape[:2]
        (rows, cols), patch = blend_region(self.photo, self.crop, self.face(i), self.feather,
                                            "ellipse")
        if self.side_by_side:
            out = np.empty((h, 2 * w, 3), np.uint8)
            out[:, :w] = self.photo
            out[:, w:] = self.photo
            if patch is not None:
                out[rows, slice(cols.start + w, cols.stop + w)] = patch
            return out
        out = self.photo.copy()
        if patch is not None:
            out[rows, cols] = patch
        return out


class Animation:
    """A talking-face animation: frames, frame rate, the speech and the conditions behind it.

    Frames made by :func:`speechface.animate` are composed on demand (the photo + one face crop per
    frame), so a long animation of a big photo does not hold every full frame in memory until
    :attr:`frames` is read; :meth:`save` and :meth:`iter_frames` stream them.

    Args:
        frames: ``(N, H, W, 3)`` uint8 array (or an internal on-demand source).
        fps: frames per second (25 for speechface estimators).
        audio: ``(samples,)`` float32 mono speech at ``sample_rate`` (None: silent).
        sample_rate: rate of ``audio`` in Hz.
        conditions: the estimator's :class:`~speechface.core.results.Prediction`.
        driving: ``(N, D)`` float32 values actually given to the translator (after space
            conversion, smoothing and strength).
        face: the animated :class:`~speechface.render.face.FaceBox`; ``face_index`` its position left to
            right and ``n_faces`` how many faces the photo has.
        info: provenance: model names and whether they are trained, smoothing, strength,
            crop margin (set by :func:`speechface.animate`).

    Example:
        >>> anim = Animation(np.zeros((10, 32, 48, 3), np.uint8), fps=25.0)
        >>> len(anim), anim.size, anim.duration
        (10, (48, 32), 0.4)
        >>> anim.save("still.gif")                  # doctest: +SKIP
    """

    def __init__(self, frames: Any, *, fps: float = 25.0, audio: np.ndarray | None = None,
                 sample_rate: int = AUDIO_RATE, conditions: Prediction | None = None,
                 driving: np.ndarray | None = None, face: FaceBox | None = None,
                 face_index: int | None = None, n_faces: int | None = None,
                 info: dict[str, Any] | None = None) -> None:
        if isinstance(frames, FrameComposer):
            self._source: FrameComposer | None = frames
            self._frames: np.ndarray | None = None
        else:
            arr = np.asarray(frames)
            if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
                raise ValueError(f"frames must be a non-empty uint8 (N, H, W, 3) array, got "
                                 f"{arr.shape} {arr.dtype}")
            self._source, self._frames = None, arr
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.fps = float(fps)
        self.audio = None if audio is None else np.asarray(audio, dtype=np.float32).reshape(-1)
        self.sample_rate = int(sample_rate)
        self.conditions = conditions
        self.driving = driving
        self.face = face
        self.face_index = face_index
        self.n_faces = n_faces
        self.info = dict(info or {})

    # ------------------------------------------------------------------ frames
    def __len__(self) -> int:
        return len(self._frames) if self._frames is not None else len(self._source)  # type: ignore[arg-type]

    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return len(self)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of a frame in pixels."""
        if self._frames is not None:
            return (int(self._frames.shape[2]), int(self._frames.shape[1]))
        h, w = self._source.shape  # type: ignore[union-attr]
        return (w, h)

    @property
    def duration(self) -> float:
        """Video duration in seconds (``N / fps``)."""
        return len(self) / self.fps

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as ``(H, W, 3)`` uint8."""
        if self._frames is not None:
            return self._frames[i]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range for {n} frames")
        return self._source.frame(i % n)  # type: ignore[union-attr]

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield the ``(H, W, 3)`` uint8 frames in order (without holding them all)."""
        for i in range(len(self)):
            yield self.frame(i)

    @property
    def frames(self) -> np.ndarray:
        """All frames, ``(N, H, W, 3)`` uint8 (built on first access, then kept).

        Needs ``N * H * W * 3`` bytes (e.g. 225 frames of a 1024x1024 photo: 700 MB); prefer
        :meth:`save` / :meth:`iter_frames` for long animations of large photos.
        """
        if self._frames is None:
            w, h = self.size
            out = np.empty((len(self), h, w, 3), np.uint8)
            for i, f in enumerate(self.iter_frames()):
                out[i] = f
            self._frames = out
        return self._frames

    def __repr__(self) -> str:
        w, h = self.size
        snd = f", audio {len(self.audio) / self.sample_rate:.2f} s" if self.audio is not None else ""
        return f"Animation({len(self)} frames, {w}x{h}, {self.fps:g} fps{snd})"

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike[str], *, crf: int = 18, preset: str = "medium",
             audio_bitrate: int = 96000, quality: int = 90) -> Path:
        """Write the animation; the format follows the file extension.

        - ``.mp4`` (also ``.m4v``, ``.mov``, ``.mkv``): H.264 (libx264, yuv420p, ``crf``) + AAC
          mono with the speech, via PyAV (``pip install 'speechface[video]'``). yuv420p needs
          an even width and height: an odd side is padded by repeating the last pixel row /
          column (1 px). Frames over 4 megapixels are encoded with x264's low-memory settings
          (one reference frame, no B-frames, short lookahead), so a huge photo does not need
          gigabytes of encoder buffers.
        - ``.gif``: 40 ms per frame at 25 fps, looping, no sound; one 256-colour palette
          for all frames, no dithering (identical consecutive frames are merged by PIL, their
          durations summed).
        - ``.webp``: animated WebP (lossy, ``quality``), looping, no sound.

        The file is written to a temporary name beside ``path`` and renamed when complete: on
        any error no partial output is left.

        Returns:
            ``path`` as a :class:`~pathlib.Path`.

        Raises:
            ValueError: an unsupported extension.
            SpeechfaceError: PyAV missing (for video) or without an H.264 / AAC encoder.

        Example:
            >>> anim.save("talking.mp4")     # doctest: +SKIP
            PosixPath('talking.mp4')
        """
        path = Path(path)
        ext = output_format(path)
        with atomic_path(path) as tmp:
            if ext in VIDEO_FORMATS:
                write_video(tmp, self.iter_frames(), size=self.size, fps=self.fps,
                            audio=self.audio, sample_rate=self.sample_rate, crf=crf,
                            preset=preset, audio_bitrate=audio_bitrate)
            else:
                # the GIF palette from the first, middle and last frame
                n = len(self)
                sample = np.concatenate([self.frame(0), self.frame(n // 2), self.frame(n - 1)]) \
                    if ext == ".gif" else None
                write_image_animation(tmp, self.iter_frames(), fps=self.fps, kind=ext,
                                      quality=quality, palette_sample=sample)
        return path
