"""Audio input: load a file or an array as a mono float32 waveform at 16 kHz, and resample it.

speechface works on 16 kHz mono speech analysed at 25 frames per second (one 640-sample hop per
video frame). :func:`load_audio` is the single entry point that turns what a user has (a wav,
flac, ogg or mp3 path, a numpy array, a torch tensor) into that waveform, with a clear
:class:`~speechface.core.errors.AudioError` for anything unusable. :func:`resample` is a plain-torch
port of ``torchaudio.functional.resample`` with its default settings.

>>> from speechface.audio import load_audio
>>> wave = load_audio("speech.mp3")        # doctest: +SKIP
>>> wave.shape, wave.dtype                  # doctest: +SKIP
(torch.Size([52800]), torch.float32)
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf
import torch

from ..core._io import atomic_path
from ..core.errors import AudioError

__all__ = ["SAMPLE_RATE", "FPS", "AudioSource", "load_audio", "resample", "save_audio", "downmix",
           "SILENT_CHANNEL_RATIO", "AudioStream", "StreamResampler", "open_blocks",
           "unsignalled_aac_priming", "AAC_PRIMING_SAMPLES"]

SAMPLE_RATE = 16000
"""Sample rate (Hz) every speechface feature extractor and model expects."""

FPS = 25
"""Feature / video frame rate: one frame every 40 ms (640 samples at 16 kHz)."""

AudioSource = str | os.PathLike | np.ndarray | torch.Tensor

# Largest resampling kernel (elements) built exactly as torchaudio does; rates whose reduced ratio
# would need more (e.g. 44101 Hz -> 16 kHz) are resampled with a close rational approximation.
_MAX_KERNEL = 1 << 24

_INT_SCALE = {  # numpy integer dtype -> (offset, divisor) mapping it to [-1, 1)
    np.dtype(np.int8): (0.0, 128.0),
    np.dtype(np.uint8): (128.0, 128.0),
    np.dtype(np.int16): (0.0, 32768.0),
    np.dtype(np.int32): (0.0, 2.0**31),
}


def _check_rate(rate: object, what: str, label: str) -> float:
    """Return ``rate`` as a float, or raise AudioError if it is not a positive finite number."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise AudioError(f"{label}: {what} must be a number in Hz, got {rate!r}")
    value = float(rate)
    if not math.isfinite(value) or value <= 0:
        raise AudioError(f"{label}: {what} must be a positive finite number of Hz, got {rate!r}")
    return value


def _read_file(path: Path, label: str) -> tuple[np.ndarray, int]:
    """Read ``path`` with soundfile as ``(time, channels)`` float32 and its sample rate."""
    if not path.exists():
        raise AudioError(f"audio file {label} does not exist")
    if path.is_dir():
        raise AudioError(f"audio file {label} is a directory, not an audio file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"audio file {label} cannot be accessed: {exc}") from None
    if size == 0:
        raise AudioError(f"audio file {label} is empty (0 bytes)")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        found = _read_with_av(path, label)  # a video, AAC/M4A, ...: its audio track via PyAV
        if found is None:
            raise AudioError(f"audio file {label} is not a readable audio file "
                             f"(corrupt or unsupported format; libsndfile says: {reason})"
                             ) from None
        data, rate = found
    except OSError as exc:
        raise AudioError(f"audio file {label} cannot be read: {exc}") from None
    return data, int(rate)


#: Encoder priming of FFmpeg's AAC encoder, in samples at the stream's rate: the decoder outputs
#: this much warm-up before the first real sample. An MP4 normally says so in the sound track's
#: edit list (FFmpeg then drops it while decoding); see :func:`unsignalled_aac_priming`.
AAC_PRIMING_SAMPLES = 1024

_MP4_SUFFIXES = (".mp4", ".m4a", ".m4v", ".mov")


def _mp4_boxes(f: IO[bytes], start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the ISO-BMFF boxes in ``[start, end)`` (header reads
    only, so a large ``mdat`` is never read)."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = int.from_bytes(head[:4], "big"), head[4:8]
        body = pos + 8
        if size == 1 and len(head) == 16:
            size, body = int.from_bytes(head[8:16], "big"), pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos:
            return
        yield kind, body, pos + size
        pos += size


def _sound_edit_start(path: Path) -> int | None:
    """The first sound track's edit-list media time (in its timescale; empty edits, which only
    delay the track, are skipped): 0 when the track has no edit list; None when the file is not
    an MP4/MOV or has no sound track."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            moov = next(((s, e) for k, s, e in _mp4_boxes(f, 0, end) if k == b"moov"), None)
            if moov is None or moov[1] - moov[0] > 64 << 20:
                return None
            f.seek(moov[0])
            data = f.read(moov[1] - moov[0])
    except OSError:
        return None
    buf = io.BytesIO(data)
    for kind, s, e in _mp4_boxes(buf, 0, len(data)):
        if kind != b"trak":
            continue
        kids = {k: (ks, ke) for k, ks, ke in _mp4_boxes(buf, s, e)}
        mdia = {k: (ks, ke) for k, ks, ke in _mp4_boxes(buf, *kids.get(b"mdia", (0, 0)))}
        if b"hdlr" not in mdia or data[mdia[b"hdlr"][0] + 8:mdia[b"hdlr"][0] + 12] != b"soun":
            continue
        for k, ks, ke in _mp4_boxes(buf, *kids.get(b"edts", (0, 0))):
            if k != b"elst" or ks + 8 > len(data):
                continue
            wide = data[ks] == 1
            size = 8 if wide else 4
            count = int.from_bytes(data[ks + 4:ks + 8], "big")
            for i in range(count):  # the first entry that is not an empty edit (media time -1)
                at = ks + 8 + i * (2 * size + 4) + size
                if at + size > min(ke, len(data)):
                    break
                media_time = int.from_bytes(data[at:at + size], "big", signed=True)
                if media_time != -1:
                    return media_time
        return 0
    return None


def unsignalled_aac_priming(path: str | os.PathLike[str], codec: str) -> int:
    """Samples of AAC encoder priming at the start of ``path``'s decoded audio that its container
    does not mark for removal (0 when there are none).

    An AAC encoder starts with :data:`AAC_PRIMING_SAMPLES` samples of warm-up (64 ms at 16 kHz).
    An MP4 declares them with the sound track's edit list (media time > 0) and FFmpeg, hence
    PyAV, drops them. Some muxers leave the edit list out; the decoded audio then starts with
    the warm-up and everything in it plays 64 ms late against the video: a talking-face clip's
    lips lead its speech. The shared ``av_clips`` MP4s are such files (their first 1024 decoded
    samples are 30-100x quieter than the room noise that follows). This returns the samples to
    drop: :data:`AAC_PRIMING_SAMPLES` for an AAC sound track of an MP4/MOV whose edit list starts
    at media time 0 or is missing, else 0.

    Args:
        path: the file.
        codec: the decoder's name of the audio stream (PyAV's ``stream.codec_context.name``).

    Returns:
        A number of samples at the audio stream's own rate.
    """
    if codec != "aac" or Path(path).suffix.lower() not in _MP4_SUFFIXES:
        return 0
    start = _sound_edit_start(Path(path))
    return AAC_PRIMING_SAMPLES if start is not None and start <= 0 else 0


def _read_with_av(path: Path, label: str) -> tuple[np.ndarray, int] | None:
    """The first audio track of a container libsndfile cannot read (mp4, mkv, m4a, webm ...)
    as ``(time, channels)`` float32 and its rate; None when PyAV is missing or cannot open it.

    A video without an audio track raises AudioError saying so.
    """
    try:
        import av
    except ImportError:
        return None
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None
    try:
        if not container.streams.audio:
            if container.streams.video:
                raise AudioError(f"audio file {label} is a video without an audio track")
            return None
        stream = container.streams.audio[0]
        rate = int(stream.rate or stream.codec_context.sample_rate or 0)
        channels = max(1, int(stream.codec_context.channels or 1))
        if rate <= 0:
            return None
        layout = "mono" if channels == 1 else ("stereo" if channels == 2 else None)
        resampler = av.AudioResampler(format="flt", layout=layout or stream.layout.name,
                                      rate=rate)
        chunks: list[np.ndarray] = []
        for frame in container.decode(stream):
            frame.pts = None
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1, channels))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1, channels))
    except av.FFmpegError as exc:
        raise AudioError(f"audio file {label}: cannot decode its audio track ({exc})") from None
    finally:
        container.close()
    data = np.concatenate(chunks) if chunks else np.zeros((0, channels), np.float32)
    # the encoder's warm-up that the container forgot to mark (see unsignalled_aac_priming)
    data = data[unsignalled_aac_priming(path, stream.codec_context.name):]
    return np.ascontiguousarray(data, dtype=np.float32), rate


#: A channel whose RMS is below this fraction of the loudest channel's (-60 dB) is left out of
#: the mono mix (a dead or unplugged channel would otherwise halve the level).
SILENT_CHANNEL_RATIO = 1e-3


def downmix(x: torch.Tensor, channel_axis: int = 1) -> torch.Tensor:
    """Mono from multichannel samples: the mean of the channels that carry signal.

    A channel more than 60 dB below the loudest one (RMS ratio under
    :data:`SILENT_CHANNEL_RATIO`, e.g. an unplugged microphone recorded as silence) is left out
    of the mean, so speech on one channel of a stereo file keeps its level. When every channel
    is silent (or there is only one) it is the plain mean. Long files read in blocks
    (:func:`~speechface.speech.longform.predict_long`) decide once, on the first block with signal;
    streamed chunks (:meth:`~speechface.speech.SpeechEstimator.stream`) are averaged as they
    come (a chunk is too short to judge a channel).

    Args:
        x: ``(time, channels)`` (``channel_axis=1``) or ``(channels, time)`` (``channel_axis=0``).

    Returns:
        ``(time,)`` float tensor.

    Example:
        >>> x = torch.stack([torch.ones(4) * 0.5, torch.zeros(4)], 1)   # right channel silent
        >>> downmix(x).tolist()
        [0.5, 0.5, 0.5, 0.5]
    """
    if x.shape[channel_axis] == 1:
        return x.select(channel_axis, 0)
    rms = x.to(torch.float64).pow(2).mean(dim=1 - channel_axis).sqrt()
    keep = rms >= rms.max() * SILENT_CHANNEL_RATIO
    if bool(keep.all()) or not bool(keep.any()):
        return x.mean(dim=channel_axis)
    return x.index_select(channel_axis, keep.nonzero()[:, 0]).mean(dim=channel_axis)


def _array_to_tensor(source: np.ndarray | torch.Tensor, label: str) -> torch.Tensor:
    """Float32 tensor from an array; integer PCM is scaled to [-1, 1)."""
    if isinstance(source, torch.Tensor):
        t = source.detach().cpu()
        if t.is_floating_point():
            return t.to(torch.float32)
        if t.is_complex() or t.dtype == torch.bool:
            raise AudioError(f"{label}: unsupported sample type {t.dtype}; give real samples")
        source = t.numpy()
    arr = np.asarray(source)
    if arr.dtype.kind == "f":
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if arr.dtype in _INT_SCALE:
        offset, divisor = _INT_SCALE[arr.dtype]
        out = (arr.astype(np.float32) - np.float32(offset)) / np.float32(divisor)
        return torch.from_numpy(np.ascontiguousarray(out))
    raise AudioError(f"{label}: unsupported sample type {arr.dtype}; give float samples in "
                     "[-1, 1] or int8/uint8/int16/int32 PCM")


def _array_to_mono(source: np.ndarray | torch.Tensor, sample_rate: float | None, label: str,
                   example: str) -> tuple[torch.Tensor, float]:
    """A sample array and its rate -> (mono float32 waveform, checked rate), with clear errors.

    ``example`` shows the call with a sample rate, for the message when it is missing.
    """
    if sample_rate is None:
        raise AudioError(f"{label}: sample_rate is required when passing samples as an array "
                         f"(for example {example})")
    rate = _check_rate(sample_rate, "sample_rate", label)
    samples = _array_to_tensor(source, label)
    if samples.dim() <= 2 and samples.numel() == 0:
        raise AudioError(f"{label} has no samples (shape {tuple(samples.shape)})")
    return _to_mono(samples, label), rate


def _to_mono(x: torch.Tensor, label: str) -> torch.Tensor:
    """1-D mono from 1-D or 2-D samples (the smaller axis of a 2-D array is channels)."""
    if x.dim() == 1:
        return x
    if x.dim() == 2:
        channel_axis = 0 if x.shape[0] <= x.shape[1] else 1
        return downmix(x, channel_axis)
    raise AudioError(f"{label}: expected 1-D (time) or 2-D (channels x time or time x channels) "
                     f"samples, got shape {tuple(x.shape)}")


def load_audio(
    source: AudioSource,
    sample_rate: float | None = None,
    *,
    target_rate: float = SAMPLE_RATE,
    name: str | None = None,
) -> torch.Tensor:
    """Load speech as a mono float32 waveform at ``target_rate`` (16 kHz by default).

    Args:
        source: a path (``str`` or ``Path``) to a wav, flac, ogg or mp3 file (anything libsndfile
            reads; other containers such as a video's audio track (mp4, mkv, webm, m4a) are
            decoded with PyAV when it is installed), or samples as a numpy array or torch tensor. Array layouts: 1-D ``(time,)`` is
            mono; 2-D is multichannel and **the smaller axis is the channel axis**, so both
            ``(channels, time)`` (torch style) and ``(time, channels)`` (soundfile style) work
            (a square array is read as ``(channels, time)``). Float samples are used as they are
            (nominally in [-1, 1]); integer PCM is scaled to [-1, 1): int16 / 32768,
            int32 / 2**31, int8 / 128, uint8 (x - 128) / 128.
        sample_rate: the rate of an array ``source`` in Hz (required for arrays). For a file the
            rate comes from its header; if you also pass ``sample_rate`` it must match.
        target_rate: output rate in Hz; resampled with :func:`resample` when it differs.
        name: how to call the source in error messages (default: the path, or ``"array"``).

    Returns:
        ``(time,)`` float32 tensor, channels averaged (:func:`downmix`: the mean over the
        channels that carry signal; a channel 60 dB below the loudest is left out).

    Raises:
        AudioError: naming the file (or array) and the problem: missing file, directory, empty
            (0-byte) file, unreadable/corrupt/unsupported file, zero samples, NaN or infinite
            samples, a missing or non-positive/non-finite sample rate, or audio shorter than one
            25 fps frame (40 ms) after resampling. Silence is valid.

    Example:
        >>> import numpy as np
        >>> stereo = np.zeros((2, 48000), dtype=np.float32)   # 1 s at 48 kHz
        >>> load_audio(stereo, 48000).shape
        torch.Size([16000])
    """
    target = _check_rate(target_rate, "target_rate", name or "load_audio")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = repr(name) if name is not None else f"'{path}'"
        data, file_rate = _read_file(path, label)
        if sample_rate is not None:
            given = _check_rate(sample_rate, "sample_rate", f"audio file {label}")
            if given != file_rate:
                raise AudioError(f"audio file {label} is {file_rate} Hz but sample_rate={sample_rate!r} "
                                 "was given; sample_rate describes array input (the rate of a file "
                                 "is read from its header), use target_rate= to resample")
        rate = float(file_rate)
        label = f"audio file {label}"
        if data.size == 0:
            raise AudioError(f"{label} has no samples")
        wave = downmix(torch.from_numpy(data))  # (time, channels); silent channels left out
    elif isinstance(source, (np.ndarray, torch.Tensor)):
        label = f"audio {name!r}" if name is not None else "audio array"
        wave, rate = _array_to_mono(source, sample_rate, label, "load_audio(samples, 44100)")
    else:
        raise AudioError("load_audio: source must be a file path, a numpy array or a torch tensor, "
                         f"got {type(source).__name__}")

    if not bool(torch.isfinite(wave.sum())):  # fast path: any NaN / inf makes the sum one
        finite = torch.isfinite(wave)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0, 0])
            raise AudioError(f"{label} contains NaN or infinite samples (first at sample "
                             f"{first}, {first / rate:.3f} s)")
    wave = resample(wave, rate, target)
    min_len = math.ceil(target / FPS)
    if wave.numel() < min_len:
        raise AudioError(f"{label} is too short: {wave.numel() / target * 1000:.1f} ms "
                         f"({wave.numel()} samples at {target:g} Hz); at least one {FPS} fps frame "
                         f"of 40 ms ({min_len} samples) is needed")
    return wave.contiguous()


def _reduced_rates(orig: float, new: float, width_factor: int) -> tuple[int, int]:
    """Rates reduced by their gcd, as torchaudio does; approximated when the kernel is huge."""
    if float(orig).is_integer() and float(new).is_integer():
        o, n = int(orig), int(new)
        g = math.gcd(o, n)
        o, n = o // g, n // g
    else:
        ratio = Fraction(new) / Fraction(orig)
        o, n = ratio.denominator, ratio.numerator
    width = math.ceil(width_factor * o / (min(o, n) * 0.99))
    if n * (o + 2 * width) > _MAX_KERNEL:
        ratio = (Fraction(n, o)).limit_denominator(1000)
        o, n = ratio.denominator, ratio.numerator
    return o, n


def _sinc_resample_kernel(orig: int, new: int, lowpass_filter_width: int, rolloff: float,
                          dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, int]:
    """torchaudio's ``_get_sinc_resample_kernel`` with ``sinc_interp_hann``: ``(new, 1, taps)``."""
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = torch.arange(-width, width + orig, dtype=dtype, device=device)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype, device=device)[:, None, None] / new + idx
    t *= base_freq
    t = t.clamp_(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    scale = base_freq / orig
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * scale
    return kernels, width


def resample(wave: torch.Tensor, orig_rate: float, new_rate: float, *,
             lowpass_filter_width: int = 6, rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited windowed-sinc resampling along the last axis.

    Numerically the algorithm of ``torchaudio.functional.resample`` with its defaults
    (``sinc_interp_hann``, ``lowpass_filter_width=6``, ``rolloff=0.99``): the rates are reduced by
    their gcd, a polyphase kernel of Hann-windowed sincs with cutoff ``0.99 * min(rates) / 2`` is
    built, and it is applied with one strided ``conv1d``. The signal is taken as zero outside
    its ends. Integer rates and float rates work; non-integer rates (or integer rates with a huge
    reduced ratio, such as 44101 -> 16000) use the nearest ratio with a denominator <= 1000, and
    the output still has the exact length.

    Args:
        wave: ``(..., time)`` floating-point tensor.
        orig_rate: its sample rate in Hz.
        new_rate: the wanted sample rate in Hz.
        lowpass_filter_width: sinc zero crossings on each side of the kernel centre.
        rolloff: cutoff as a fraction of the lower Nyquist frequency.

    Returns:
        ``(..., ceil(time * new_rate / orig_rate))`` tensor of the same dtype (``wave`` itself when
        the rates are equal).

    Example:
        >>> x = torch.randn(2, 48000)
        >>> resample(x, 48000, 16000).shape
        torch.Size([2, 16000])
    """
    orig_rate = float(orig_rate)
    new_rate = float(new_rate)
    if not (math.isfinite(orig_rate) and math.isfinite(new_rate)) or orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive and finite, got {orig_rate} -> {new_rate}")
    if lowpass_filter_width <= 0:
        raise ValueError("lowpass_filter_width must be positive")
    if not wave.is_floating_point():
        raise TypeError(f"resample needs a floating-point waveform, got {wave.dtype}")
    if orig_rate == new_rate:
        return wave
    o, n = _reduced_rates(orig_rate, new_rate, lowpass_filter_width)
    kernel, width = _sinc_resample_kernel(o, n, lowpass_filter_width, rolloff, wave.dtype, wave.device)

    shape = wave.shape
    length = shape[-1]
    x = wave.reshape(-1, length)
    x = torch.nn.functional.pad(x, (width, width + o))
    y = torch.nn.functional.conv1d(x[:, None], kernel, stride=o)  # (batch, n, blocks)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target_length = math.ceil(Fraction(length) * Fraction(new_rate) / Fraction(orig_rate))
    if y.shape[-1] < target_length:  # only with an approximated ratio
        y = torch.nn.functional.pad(y, (0, target_length - y.shape[-1]))
    y = y[:, :target_length]
    return y.reshape(*shape[:-1], target_length)


def save_audio(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int, *,
               subtype: str | None = None) -> Path:
    """Write audio atomically (temporary file in the same folder, then ``os.replace``).

    The format follows the file extension (``.wav``, ``.flac``, ``.ogg`` ...). Integer subtypes
    (the default for wav/flac is 16-bit PCM) clip samples to [-1, 1] first.

    Args:
        path: destination file.
        wave: ``(time,)`` mono or ``(channels, time)`` float samples.
        sample_rate: sample rate in Hz.
        subtype: soundfile subtype such as ``"PCM_16"``, ``"PCM_24"`` or ``"FLOAT"``
            (default: the format's default).

    Returns:
        The path written.

    Example:
        >>> save_audio("tone.wav", torch.zeros(16000), 16000)   # doctest: +SKIP
        PosixPath('tone.wav')
    """
    path = Path(path)
    rate = _check_rate(sample_rate, "sample_rate", f"save_audio {str(path)!r}")
    if not rate.is_integer():
        raise AudioError(f"save_audio {str(path)!r}: sample_rate must be a whole number of Hz, "
                         f"got {sample_rate!r}")
    data = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.T  # soundfile wants (time, channels)
    elif data.ndim != 1:
        raise AudioError(f"save_audio {str(path)!r}: expected (time,) or (channels, time) samples, "
                         f"got shape {data.shape}")
    if subtype is None or subtype.upper() not in ("FLOAT", "DOUBLE"):
        data = np.clip(data, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, int(rate), subtype=subtype)
    return path


# --------------------------------------------------------------------------- audio in blocks
_SF_ERRORS = (sf.SoundFileError, RuntimeError, TypeError, ValueError)


def _open_sound(file: Any, label: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(file)
    except _SF_ERRORS as exc:
        reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        raise AudioError(f"{label} is not a readable audio file (corrupt or unsupported "
                         f"format; libsndfile says: {reason})") from None
    except OSError as exc:
        raise AudioError(f"{label} cannot be read: {exc}") from None


def _read_blocks(f: sf.SoundFile, block: int, label: str) -> Iterator[np.ndarray]:
    """``(time, channels)`` blocks; channels found silent in the first block with signal (60 dB
    below the loudest, as :func:`downmix` decides for a whole file) are left out of every
    block."""
    keep = None
    while True:
        try:
            data = f.read(block, dtype="float32", always_2d=True)
        except _SF_ERRORS as exc:
            raise AudioError(f"{label} could not be decoded to the end (corrupt?): {exc}") from None
        if len(data) == 0:
            return
        if keep is None and data.shape[1] > 1:
            rms = np.sqrt(np.mean(np.square(data, dtype=np.float64), axis=0))
            if rms.max() > 0:
                keep = rms >= rms.max() * SILENT_CHANNEL_RATIO
        yield data if keep is None or keep.all() else data[:, keep]


@contextlib.contextmanager
def open_blocks(source: AudioSource | IO[bytes], sample_rate: float | None = None,
                block_seconds: float = 60.0, *, name: str | None = None
                ) -> Iterator[tuple[Iterable[np.ndarray], float, str]]:
    """Open audio for reading ``block_seconds`` at a time: ``(blocks, rate, label)``.

    A file (a path, or a seekable binary file object such as a spooled stdin) is decoded block
    by block with soundfile: ``(time, channels)`` float32 blocks, bounded memory. An array or
    tensor is downmixed as :func:`load_audio` does and cut into ``(time,)`` blocks. Feed the
    blocks to an :class:`AudioStream` at ``rate``; ``label`` names the input in messages.

    Args:
        source: a path, a binary file object, or samples (then give ``sample_rate``).
        sample_rate: rate of array samples; for a file, if given, it must match the header.
        block_seconds: block length in seconds.
        name: how to call the input in messages (default: the path / "audio array").

    Raises:
        AudioError: as :func:`load_audio` (missing, empty, unreadable file, missing rate ...).

    Example:
        >>> with open_blocks(np.zeros(48000, np.float32), 16000, 1.0) as (blocks, rate, label):
        ...     [len(b) for b in blocks], rate, label
        ([16000, 16000, 16000], 16000.0, 'audio array')
    """
    if isinstance(source, (np.ndarray, torch.Tensor)):
        label = name or "audio array"
        wave, rate = _array_to_mono(source, sample_rate, label,
                                    "predict_long(est, samples, sample_rate=44100)")
        block = max(1, int(round(block_seconds * rate)))
        yield (wave[i:i + block].numpy() for i in range(0, len(wave), block)), rate, label
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or f"audio file '{path}'"
        if not path.exists():
            raise AudioError(f"{label} does not exist")
        if path.is_dir():
            raise AudioError(f"{label} is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(f"{label} is empty (0 bytes)")
        file: Any = str(path)
    elif hasattr(source, "read"):
        label, file = name or "audio input", source
    else:
        raise AudioError("audio must be a file path, a numpy array or a torch tensor, "
                         f"got {type(source).__name__}")
    with _open_sound(file, label) as f:
        rate = float(f.samplerate)
        if sample_rate is not None:
            given = _check_rate(sample_rate, "sample_rate", label)
            if given != rate:
                raise AudioError(f"{label} is {int(rate)} Hz but sample_rate={sample_rate!r} was "
                                 "given; sample_rate describes array input (the rate of a "
                                 "file is read from its header)")
        block = max(1, int(round(block_seconds * rate)))
        yield _read_blocks(f, block, label), rate, label


class StreamResampler:
    """:func:`resample` computed block by block: the same kernel and the same output blocks.

    Output block ``b`` (``n`` samples) needs the input samples ``[b*o - width, b*o + o + width)``
    (``o``, ``n``: the reduced rates), so it is computed once those arrived; with
    ``final=True`` the zero padding past the end and the exact output length
    ``ceil(len * new / orig)`` are reproduced.

    Example:
        >>> r = StreamResampler(48000, 16000)
        >>> x = torch.randn(4800)
        >>> y = np.concatenate([r.push(x[:1000].numpy()), r.push(x[1000:].numpy(), final=True)])
        >>> bool(np.allclose(y, resample(x, 48000, 16000).numpy(), atol=1e-6))
        True
    """

    def __init__(self, orig: float, new: float, lowpass_filter_width: int = 6,
                 rolloff: float = 0.99) -> None:
        self.orig, self.new = float(orig), float(new)
        o, n = _reduced_rates(self.orig, self.new, lowpass_filter_width)
        kernel, width = _sinc_resample_kernel(o, n, lowpass_filter_width, rolloff,
                                              torch.float32, torch.device("cpu"))
        self.o, self.n, self.kernel, self.width = o, n, kernel, width
        self.ratio = Fraction(self.new) / Fraction(self.orig)
        self.reset()

    def reset(self) -> None:
        """Forget all input."""
        self.data = np.zeros(0, np.float32)  # input samples [start, start + len(data))
        self.start = 0
        self.blocks = 0
        self.pending = np.zeros(0, np.float32)
        self.released = 0

    def input_needed(self, wanted: int) -> int:
        """Input samples after which ``wanted`` output samples can be released."""
        if wanted <= 0:
            return 0
        blocks = -(-wanted // self.n)
        by_blocks = (blocks - 1) * self.o + self.width + self.o
        by_length = math.floor(Fraction(wanted - 1) / self.ratio) + 1
        return max(by_blocks, by_length)

    def _take(self, a: int, b: int) -> np.ndarray:
        """Input samples ``[a, b)``, zero outside what is held."""
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, self.start), min(b, self.start + len(self.data))
        if hi > lo:
            out[lo - a:hi - a] = self.data[lo - self.start:hi - self.start]
        return out

    def push(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        """Append input samples; return the output samples that are now final."""
        self.data = np.concatenate([self.data, x]) if len(self.data) else x
        n_in = self.start + len(self.data)
        o, w = self.o, self.width
        avail = n_in // o + 1 if final else max(0, (n_in - w - o) // o + 1)
        if avail > self.blocks:
            b0, b1 = self.blocks, avail
            seg = self._take(b0 * o - w, b1 * o + w)
            y = torch.nn.functional.conv1d(torch.from_numpy(seg)[None, None], self.kernel, stride=o)
            self.pending = np.concatenate([self.pending, y[0].T.reshape(-1).numpy()])
            self.blocks = b1
            keep = b1 * o - w
            if keep > self.start:
                cut = min(keep - self.start, len(self.data))
                self.data, self.start = self.data[cut:].copy(), self.start + cut
        limit = math.ceil(Fraction(n_in) * self.ratio)  # the exact output length so far
        count = min(len(self.pending), limit - self.released)
        out = self.pending[:count]
        if final and count < limit - self.released:  # approximated ratio: zero tail
            out = np.concatenate([out, np.zeros(limit - self.released - count, np.float32)])
        self.pending = self.pending[count:]
        self.released += len(out)
        return out


def _chunk_to_mono(samples: Any, label: str) -> np.ndarray:
    """A chunk as 1-D float32 numpy: 1-D is mono, 2-D is ``(time, channels)`` (averaged)."""
    if isinstance(samples, np.ndarray) and samples.dtype == np.float32 and samples.ndim == 1:
        return samples.copy()  # the caller may reuse its buffer for the next chunk
    if not isinstance(samples, (np.ndarray, torch.Tensor)):
        samples = np.asarray(samples, dtype=np.float32)
    t = _array_to_tensor(samples, label)
    if t.dim() == 0:
        t = t.reshape(1)
    elif t.dim() == 2:
        if t.shape[1] > 64 and t.shape[0] < t.shape[1]:
            raise AudioError(f"{label}: a chunk of shape {tuple(t.shape)} looks like (channels, "
                             "time); streamed chunks are (time,) or (time, channels), e.g. "
                             "chunk.T")
        t = t.mean(dim=1) if t.shape[1] > 1 else t[:, 0]
    elif t.dim() != 1:
        raise AudioError(f"{label}: a chunk must be (time,) mono or (time, channels) samples, "
                         f"got shape {tuple(t.shape)}")
    return np.array(t.numpy(), dtype=np.float32)  # a copy: never a view of the caller's data


class AudioStream:
    """Audio chunks of any size -> mono float32 samples at ``target_rate``, block by block.

    The concatenated output equals :func:`load_audio` on the concatenated input (downmix, int
    PCM scaling, resampling), with its checks: NaN / infinite samples (named by index), no
    samples, less than one 40 ms frame.

    Args:
        sample_rate: rate of the pushed chunks in Hz (default ``target_rate``).
        target_rate: rate of the output (the model's, 16 kHz).
        name: how to call the input in error messages.

    Example:
        >>> s = AudioStream(48000)
        >>> a = s.push(np.zeros(4800, np.float32)); b = s.push(np.zeros((4800, 2)), final=True)
        >>> len(a) + len(b)
        3200
    """

    def __init__(self, sample_rate: float | None = None, target_rate: float = SAMPLE_RATE,
                 name: str = "audio stream") -> None:
        self.name = name
        self.target_rate = int(target_rate)
        self.rate = (float(self.target_rate) if sample_rate is None
                     else _check_rate(sample_rate, "sample_rate", name))
        self.resampler = (None if self.rate == self.target_rate
                          else StreamResampler(self.rate, self.target_rate))
        self.reset()

    def reset(self) -> None:
        """Forget all input."""
        self.pending: list[np.ndarray] = []
        self.n_in = 0
        self.n_out = 0
        if self.resampler is not None:
            self.resampler.reset()

    def add(self, samples: Any) -> None:
        """Queue a chunk (``(time,)`` or ``(time, channels)``, float or int PCM); checked now."""
        x = _chunk_to_mono(samples, self.name)
        if len(x) == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            total = x.sum()
        if not np.isfinite(total):  # fast path: a NaN / inf makes the sum NaN / inf
            finite = np.isfinite(x)  # (a sum of huge finite values can overflow too)
            if not finite.all():
                first = self.n_in + int(np.argmin(finite))
                raise AudioError(f"{self.name} contains NaN or infinite samples (first at "
                                 f"sample {first}, {first / self.rate:.3f} s)")
        self.pending.append(x)
        self.n_in += len(x)

    def input_needed(self, samples: int) -> int:
        """Input samples after which ``samples`` output samples exist."""
        if self.resampler is None:
            return samples
        return self.resampler.input_needed(samples)

    def run(self, final: bool = False) -> np.ndarray:
        """Process the queued chunks; return the new output samples (all of them if ``final``).

        Raises:
            AudioError: at ``final``, no samples or less than one 40 ms frame in all.
        """
        x = (np.concatenate(self.pending) if len(self.pending) > 1
             else self.pending[0] if self.pending else np.zeros(0, np.float32))
        self.pending = []
        if self.resampler is not None:
            x = self.resampler.push(x, final=final)
        self.n_out += len(x)
        if final:
            if self.n_in == 0:
                raise AudioError(f"{self.name} has no samples")
            min_len = math.ceil(self.target_rate / FPS)
            if self.n_out < min_len:
                raise AudioError(f"{self.name} is too short: "
                                 f"{self.n_out / self.target_rate * 1000:.1f} ms ({self.n_out} "
                                 f"samples at {self.target_rate:g} Hz); at least one {FPS} fps "
                                 f"frame of 40 ms ({min_len} samples) is needed")
        return x

    def push(self, samples: Any, final: bool = False) -> np.ndarray:
        """:meth:`add` then :meth:`run`."""
        self.add(samples)
        return self.run(final)
