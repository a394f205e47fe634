"""Read talking-face videos (frames, timestamps and the 16 kHz speech track) with PyAV.

Any container and frame rate FFmpeg reads works (``.mp4``, ``.mpg``, ``.mov``, ``.mkv`` ...),
including variable or fractional rates (29.97 fps): every frame keeps its own timestamp, so later
steps resample onto the 25 fps grid of the audio features instead of assuming a rate.

**Clock.** All times are seconds on the clip's audio clock: ``0`` is the first sample of
:attr:`VideoClip.audio` (the audio stream's start). When a file has no audio stream, ``0`` is the
video stream's start. A video stream that starts after its audio (an edit list, a late first
frame) therefore gives ``times[0] > 0``, and frames stay in sync with the speech.

Needs the ``[video]`` extra (``pip install speechface[video]``, i.e. PyAV).

Example:
    >>> from speechface.render.video import read_video          # doctest: +SKIP
    >>> clip = read_video("talk.mp4")                    # doctest: +SKIP
    >>> clip.frames.shape, clip.fps, clip.audio.shape     # doctest: +SKIP
    ((75, 288, 360, 3), 25.0, torch.Size([48000]))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DataError, SpeechfaceError

__all__ = [
    "VideoClip",
    "VideoFrame",
    "read_video",
    "iter_video_frames",
    "read_video_audio",
    "video_info",
    "VIDEO_EXTENSIONS",
]

#: File name suffixes treated as videos when a folder is scanned.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mpg", ".mpeg", ".mov", ".mkv", ".avi", ".webm", ".m4v")

AUDIO_RATE = 16000


@dataclass
class VideoFrame:
    """One decoded video frame.

    Attributes:
        index: position in the stream (0, 1, 2 ...).
        time: presentation time in seconds on the clip's audio clock (see module docstring).
        image: ``(H, W, 3)`` uint8 RGB, C-contiguous.
    """

    index: int
    time: float
    image: np.ndarray


@dataclass
class VideoClip:
    """A decoded video: frames, their times and the speech track.

    Attributes:
        frames: ``(N, H, W, 3)`` uint8 RGB, C-contiguous.
        times: ``(N,)`` float64 presentation times in seconds (audio clock, see module docstring).
        fps: the stream's average frame rate (frames per second).
        audio: ``(samples,)`` float32 mono at 16 kHz, or ``None`` when the file has no audio.
        path: the file it was read from.

    Example:
        >>> clip = read_video("talk.mp4", max_frames=10)   # doctest: +SKIP
        >>> clip.num_frames, clip.duration                  # doctest: +SKIP
        (10, 0.4)
    """

    frames: np.ndarray
    times: np.ndarray
    fps: float
    audio: torch.Tensor | None
    path: Path
    sample_rate: int = AUDIO_RATE

    @property
    def num_frames(self) -> int:
        """Number of decoded frames ``N``."""
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered by the frames: ``times[-1] + 1 / fps`` (0 for an empty clip)."""
        return float(self.times[-1] + 1.0 / self.fps) if len(self.times) else 0.0

    def __iter__(self) -> Iterator[VideoFrame]:
        for i in range(self.num_frames):
            yield VideoFrame(i, float(self.times[i]), self.frames[i])


def _require_av() -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SpeechfaceError("reading videos needs PyAV: pip install 'speechface[video]'") from e
    return av


def _open(path: str | os.PathLike[str]) -> tuple[Any, Path]:
    av = _require_av()
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: video file not found")
    if p.is_dir():
        raise DataError(f"{p}: is a folder, not a video file")
    try:
        container = av.open(str(p))
    except av.FFmpegError as e:
        raise DataError(f"{p}: not a readable video ({e})") from e
    if not container.streams.video:
        container.close()
        raise DataError(f"{p}: has no video stream")
    return container, p


def _start_seconds(stream: Any) -> float | None:
    if stream.start_time is None or stream.time_base is None:
        return None
    return float(stream.start_time * stream.time_base)


def _clock_origin(container: Any) -> float:
    """Seconds (stream time) that map to 0: the audio start, else the video start, else 0."""
    if container.streams.audio:
        t = _start_seconds(container.streams.audio[0])
        if t is not None:
            return t
    t = _start_seconds(container.streams.video[0])
    return 0.0 if t is None else t


def _stream_fps(stream: Any) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if rate is None or float(rate) <= 0:
        return None
    return float(rate)


def _iter_frames(container: Any, path: Path, max_frames: int | None) -> Iterator[VideoFrame]:
    av = _require_av()
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    origin = _clock_origin(container)
    fps = _stream_fps(stream) or 25.0
    tb = stream.time_base
    last = None
    i = 0
    try:
        for frame in container.decode(stream):
            if max_frames is not None and i >= max_frames:
                break
            if frame.pts is not None and tb is not None:
                t = float(frame.pts * tb) - origin
            elif last is not None:
                t = last + 1.0 / fps
            else:
                t = 0.0
            last = t
            image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            yield VideoFrame(i, t, image)
            i += 1
    except av.FFmpegError as e:
        raise DataError(f"{path}: cannot decode video frame {i} ({e})") from e


def iter_video_frames(path: str | os.PathLike[str], *, max_frames: int | None = None
                      ) -> Iterator[VideoFrame]:
    """Decode a video frame by frame (memory-light).

    Args:
        path: a video file.
        max_frames: stop after this many frames.

    Yields:
        :class:`VideoFrame` objects: ``index``, ``time`` (s, audio clock) and ``image``
        ``(H, W, 3)`` uint8 RGB, C-contiguous.

    Raises:
        DataError: the file is missing, is not a video or has no video stream.

    Example:
        >>> for f in iter_video_frames("talk.mp4", max_frames=2):   # doctest: +SKIP
        ...     print(f.index, round(f.time, 2), f.image.shape)
        0 0.0 (288, 360, 3)
        1 0.04 (288, 360, 3)
    """
    container, p = _open(path)
    try:
        yield from _iter_frames(container, p, max_frames)
    finally:
        container.close()


def _decode_audio(container: Any, path: Path, sample_rate: int) -> torch.Tensor | None:
    av = _require_av()
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    try:
        for frame in container.decode(stream):
            frame.pts = None  # the resampler keeps its own continuous clock
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as e:
        raise DataError(f"{path}: cannot decode the audio stream ({e})") from e
    wave = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return torch.from_numpy(np.ascontiguousarray(wave))


def read_video_audio(path: str | os.PathLike[str], *, sample_rate: int = AUDIO_RATE
                     ) -> torch.Tensor | None:
    """Decode only the audio track of a video, as mono float32 at ``sample_rate``.

    Sample 0 is time 0 of the clip's clock (see module docstring).

    Returns:
        ``(samples,)`` float32 tensor, or ``None`` when the file has no audio stream.

    Example:
        >>> wave = read_video_audio("talk.mp4")   # doctest: +SKIP
        >>> wave.shape                             # doctest: +SKIP
        torch.Size([48000])
    """
    container, p = _open(path)
    try:
        return _decode_audio(container, p, sample_rate)
    finally:
        container.close()


def video_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Stream metadata without decoding: fps, frame count (if the container says), size, audio.

    Example:
        >>> video_info("talk.mp4")   # doctest: +SKIP
        {'fps': 25.0, 'frames': 75, 'width': 360, 'height': 288, 'duration': 3.04, 'has_audio': True, ...}
    """
    container, p = _open(path)
    try:
        v = container.streams.video[0]
        a = container.streams.audio[0] if container.streams.audio else None
        return {
            "path": str(p),
            "fps": _stream_fps(v),
            "frames": int(v.frames) or None,
            "width": int(v.codec_context.width),
            "height": int(v.codec_context.height),
            "duration": float(container.duration) / 1e6 if container.duration else None,
            "video_codec": v.codec_context.name,
            "has_audio": a is not None,
            "audio_rate": int(a.rate) if a is not None else None,
            "audio_codec": a.codec_context.name if a is not None else None,
        }
    finally:
        container.close()


def read_video(path: str | os.PathLike[str], *, max_frames: int | None = None,
               audio: bool = True, sample_rate: int = AUDIO_RATE) -> VideoClip:
    """Read a whole video: RGB frames, their timestamps, the frame rate and 16 kHz mono audio.

    Args:
        path: a video file in any container/codec FFmpeg reads.
        max_frames: keep only the first ``max_frames`` frames; the audio is then cut to the time
            they cover (``times[-1] + 1/fps``).
        audio: decode the audio track (``False``: ``clip.audio`` is ``None``).
        sample_rate: audio rate (default 16 kHz, what the feature extractors expect).

    Returns:
        :class:`VideoClip` with ``frames`` ``(N, H, W, 3)`` uint8 (C-contiguous), ``times``
        ``(N,)`` seconds, ``fps``, ``audio`` ``(samples,)`` float32 or ``None``, ``path``.

    Raises:
        DataError: the file is missing, is not a video, has no video stream or fails to decode.

    Example:
        >>> clip = read_video("grid_s1/bbaf3s.mp4")   # doctest: +SKIP
        >>> clip.frames.shape, clip.fps                # doctest: +SKIP
        ((75, 288, 360, 3), 25.0)
    """
    container, p = _open(path)
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        frames: list[np.ndarray] = []
        times: list[float] = []
        for f in _iter_frames(container, p, max_frames):
            frames.append(f.image)
            times.append(f.time)
    finally:
        container.close()
    if not frames:
        raise DataError(f"{p}: the video stream has no decodable frames")
    t = np.asarray(times, dtype=np.float64)
    if fps is None:
        fps = 1.0 / float(np.median(np.diff(t))) if len(t) > 1 else 25.0
    wave = None
    if audio:
        wave = read_video_audio(p, sample_rate=sample_rate)
        if wave is not None and max_frames is not None and len(frames) >= max_frames:
            wave = wave[: int(round((t[-1] + 1.0 / fps) * sample_rate))].clone()
    return VideoClip(frames=np.stack(frames), times=t, fps=float(fps), audio=wave, path=p,
                     sample_rate=sample_rate)

