"""Read talking-face videos (frames, timestamps and the 16 kHz speech track) and write animations.

Reading: :func:`read_video`, :func:`iter_video_frames`, :func:`read_video_audio`,
:func:`video_info`. Writing (what :meth:`speechface.Animation.save` calls):
:func:`write_video` (H.264 + AAC) and :func:`write_image_animation` (GIF / WebP).

Any container and frame rate FFmpeg reads works (``.mp4``, ``.mpg``, ``.mov``, ``.mkv`` ...),
including variable or fractional rates (29.97 fps): every frame keeps its own timestamp, so later
steps resample onto the 25 fps grid of the audio features instead of assuming a rate.

**Clock.** All times are seconds on the clip's audio clock: ``0`` is the first sample of
:attr:`VideoClip.audio` (the audio stream's start). When a file has no audio stream, ``0`` is the
video stream's start. A video stream that starts after its audio (an edit list, a late first
frame) therefore gives ``times[0] > 0``, and frames stay in sync with the speech. AAC encoder
warm-up that an MP4 does not mark for removal (1024 samples, 64 ms at 16 kHz) is dropped from
the audio (:func:`speechface.audio.waveform.unsignalled_aac_priming`): kept, it would put the
speech 64 ms late against the frames.

Needs the ``[video]`` extra (``pip install speechface[video]``, i.e. PyAV).

Example:
    >>> from speechface.render.video import read_video          # doctest: +SKIP
    >>> clip = read_video("talk.mp4")                    # doctest: +SKIP
    >>> clip.frames.shape, clip.fps, clip.audio.shape     # doctest: +SKIP
    ((75, 288, 360, 3), 25.0, torch.Size([48000]))
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.waveform import unsignalled_aac_priming
from ..core.errors import DataError, SpeechfaceError

__all__ = [
    "VideoClip",
    "VideoFrame",
    "read_video",
    "iter_video_frames",
    "read_video_audio",
    "video_info",
    "VIDEO_EXTENSIONS",
    "VIDEO_FORMATS",
    "IMAGE_FORMATS",
    "BIG_FRAME_PIXELS",
    "output_format",
    "write_video",
    "write_image_animation",
]

#: File name suffixes treated as videos when a folder is scanned.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mpg", ".mpeg", ".mov", ".mkv", ".avi", ".webm", ".m4v")

AUDIO_RATE = 16000

#: Output file types :func:`write_video` writes (H.264 + AAC).
VIDEO_FORMATS = (".mp4", ".m4v", ".mov", ".mkv")
#: Output file types :func:`write_image_animation` writes (no sound).
IMAGE_FORMATS = (".gif", ".webp")
#: Frames larger than this (pixels) are encoded with x264's low-memory settings: one
#: reference frame, no B-frames, a 2-frame lookahead, one thread (30 frames of 6000x6000:
#: 4.5 GB with the defaults, 1.2 GB so; the background is static, so quality barely changes).
BIG_FRAME_PIXELS = 4_000_000
_LOW_MEMORY_X264 = "rc-lookahead=2:sync-lookahead=0:threads=1:bframes=0:ref=1:mbtree=0"


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
    # the encoder's warm-up that the container forgot to mark, in output samples
    priming = unsignalled_aac_priming(path, stream.codec_context.name)
    priming = int(round(priming * sample_rate / float(stream.rate or sample_rate)))
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
    return torch.from_numpy(np.ascontiguousarray(wave[priming:]))


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


# --------------------------------------------------------------------------- writing
def output_format(path: str | os.PathLike[str]) -> str:
    """The lower-case suffix of an output file, or ValueError naming the types that work.

    Example:
        >>> output_format("talking.MP4")
        '.mp4'
    """
    ext = Path(path).suffix.lower()
    if ext not in VIDEO_FORMATS + IMAGE_FORMATS:
        raise ValueError(f"{Path(path).name}: unsupported output type {ext or '(none)'!r}; use "
                         f"{', '.join(VIDEO_FORMATS + IMAGE_FORMATS)}")
    return ext


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], *,
                size: tuple[int, int], fps: float, audio: np.ndarray | None = None,
                sample_rate: int = AUDIO_RATE, crf: int = 18, preset: str = "medium",
                audio_bitrate: int = 96000) -> None:
    """Encode frames (and mono speech) as H.264 (libx264, yuv420p, ``crf``) + AAC with PyAV.

    yuv420p needs an even width and height: an odd side is padded by repeating the last pixel
    row / column (1 px). Frames over :data:`BIG_FRAME_PIXELS` are encoded with x264's
    low-memory settings (one reference frame, no B-frames, short lookahead). The container
    follows the suffix of ``path`` (see :data:`VIDEO_FORMATS`).

    Args:
        path: the file to write (overwritten).
        frames: ``(H, W, 3)`` uint8 frames, consumed one at a time.
        size: ``(W, H)`` of every frame.
        fps: frame rate.
        audio: ``(samples,)`` float32 mono at ``sample_rate`` (None or empty: no audio stream).

    Raises:
        SpeechfaceError: PyAV missing or without an H.264 encoder.

    Example:
        >>> write_video("out.mp4", [np.zeros((32, 48, 3), np.uint8)] * 25, size=(48, 32),
        ...             fps=25.0)                                  # doctest: +SKIP
    """
    try:
        import av
    except ImportError as e:
        raise SpeechfaceError("writing video needs PyAV: pip install 'speechface[video]'"
                              ) from e
    w, h = size
    ew, eh = w + (w % 2), h + (h % 2)
    rate = Fraction(fps).limit_denominator(1001)
    options = {"crf": str(int(crf)), "preset": preset}
    if ew * eh > BIG_FRAME_PIXELS:  # x264 holds ~40 frames by default: 4.5 GB at 6000x6000
        options["x264-params"] = _LOW_MEMORY_X264
    with av.open(str(path), "w") as out:
        vs = None
        for codec in ("libx264", "h264"):
            try:
                vs = out.add_stream(codec, rate=rate, options=options)
                break
            except (ValueError, av.error.FFmpegError):  # type: ignore[attr-defined]
                continue
        if vs is None:
            raise SpeechfaceError("this PyAV build has no H.264 encoder; save as .gif / .webp "
                                  "or install the PyPI wheel of av")
        vs.width, vs.height, vs.pix_fmt = ew, eh, "yuv420p"
        astream = None
        if audio is not None and len(audio):
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = "mono"
            astream.bit_rate = int(audio_bitrate)
        for i, f in enumerate(frames):
            if (ew, eh) != (w, h):
                f = np.pad(f, ((0, eh - h), (0, ew - w), (0, 0)), mode="edge")
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if astream is not None:
            wave = np.clip(audio, -1.0, 1.0).astype(np.float32)
            step = 1024 * 16
            for start in range(0, len(wave), step):
                chunk = np.ascontiguousarray(wave[None, start:start + step])
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate = sample_rate
                af.pts = start
                for pkt in astream.encode(af):
                    out.mux(pkt)
            for pkt in astream.encode():
                out.mux(pkt)


def write_image_animation(path: str | os.PathLike[str], frames: Iterable[np.ndarray], *,
                          fps: float, kind: str, quality: int = 90,
                          palette_sample: np.ndarray | None = None) -> None:
    """Write frames as a looping animated GIF or WebP (no sound) with PIL.

    - ``kind=".gif"``: one 256-colour palette for all frames (from ``palette_sample``, an
      ``(h, w, 3)`` uint8 image such as a few frames stacked; default the first frame), no
      dithering, so a static background neither flickers nor costs space (identical consecutive
      frames are merged by PIL, their durations summed);
    - ``kind=".webp"``: lossy at ``quality``.

    Args:
        path: the file to write (overwritten).
        frames: ``(H, W, 3)`` uint8 frames (a WebP's are held in memory: PIL counts them first).
        fps: frame rate (each frame lasts ``round(1000 / fps)`` ms).
        kind: ``".gif"`` or ``".webp"`` (see :data:`IMAGE_FORMATS`).

    Example:
        >>> write_image_animation("still.gif", [np.zeros((8, 8, 3), np.uint8)] * 3, fps=25.0,
        ...                       kind=".gif")                     # doctest: +SKIP
    """
    from PIL import Image

    if kind not in IMAGE_FORMATS:
        raise ValueError(f"kind must be one of {', '.join(IMAGE_FORMATS)}, got {kind!r}")
    ms = int(round(1000.0 / fps))
    images = (Image.fromarray(f) for f in frames)
    if kind == ".gif":
        first = next(images)
        sample = first if palette_sample is None else Image.fromarray(palette_sample)
        palette = sample.quantize(256, method=Image.Quantize.FASTOCTREE)
        quantized = (f.quantize(palette=palette, dither=Image.Dither.NONE)
                     for f in itertools.chain([first], images))
        head = next(quantized)
        head.save(path, format="GIF", save_all=True, append_images=quantized, duration=ms,
                  loop=0)
    else:
        first = next(images)
        first.save(path, format="WEBP", save_all=True, append_images=list(images),
                   duration=ms, loop=0, quality=quality)
