"""Bounded-memory prediction on very long audio (an hour and more), and on audio from stdin.

:func:`predict_long` reads a file block by block with soundfile (``chunk_seconds`` per block)
and gives the same values as :meth:`~speechface.speech.SpeechEstimator.predict` on the whole
file (up to float32 rounding): the blocks go through the exact streaming pipeline of
:mod:`speechface.streaming`, whose resampler, STFT and network keep just the context they need
between blocks (the resampling kernel, the STFT half window, the network's receptive field:
for ``cnn`` 8 feature frames on each side, ``dcnn`` 80).

Memory: one block of audio (60 s at 48 kHz stereo: 23 MB) plus its intermediates, plus the
output (17 floats per frame: 6 MB per hour). Whole-file ``predict`` holds the audio, its
resampled copy, the complex STFT (513 x 90,000 frames per hour: 370 MB) and every layer's
activations at once.

Models that cannot stream (``rnn``: bidirectional; ``lstm_mfcc``: utterance-level; MFCC
features with their clip-wide dB floor) are processed in two stages: the mel power frames are
computed block by block (80 floats per 40 ms frame: 29 MB per hour), then the feature
post-processing and the network run on the whole frame sequence, which is about 1/8 of the
audio's size at 16 kHz. Feature extractors other than log-mel / MFCC fall back to loading the
whole file.

``SpeechEstimator.predict`` switches to :func:`predict_long` by itself for inputs longer than
:data:`LONG_SECONDS` (10 min), or when given ``chunk_seconds``.

Example:
    >>> from speechface import AUEstimator                        # doctest: +SKIP
    >>> est = AUEstimator.from_pretrained()                       # doctest: +SKIP
    >>> r = predict_long(est, "lecture_1h.flac")                  # doctest: +SKIP
    >>> r.values.shape                                            # doctest: +SKIP
    (90000, 17)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf
import torch

from .audio import SILENT_CHANNEL_RATIO, _array_to_mono, _array_to_tensor, _check_rate
from .errors import AudioError
from .speech import _eval_mode
from .streaming import (
    StreamingEstimator,
    _Frontend,
    _log_mel_features,
    stream_support,
)

__all__ = ["predict_long", "predict_blocks", "predict_stdin", "is_long", "LONG_SECONDS",
           "DEFAULT_CHUNK_SECONDS"]

#: ``SpeechEstimator.predict`` processes inputs longer than this (seconds) with predict_long.
LONG_SECONDS = 600.0
#: Default block length of :func:`predict_long` in seconds.
DEFAULT_CHUNK_SECONDS = 60.0

_SF_ERRORS = (sf.SoundFileError, RuntimeError, TypeError, ValueError)


def is_long(audio: Any, sample_rate: float | None = None, threshold: float | None = None) -> bool:
    """Whether ``audio`` (a path, or an array with its ``sample_rate``) lasts over ``threshold``
    seconds (default :data:`LONG_SECONDS`, read at call time).

    Files are measured from their header; anything unreadable gives False (so that the normal
    loader reports the problem).

    Example:
        >>> is_long(np.zeros(16000 * 601, np.float32), 16000)
        True
    """
    if threshold is None:
        threshold = LONG_SECONDS
    if isinstance(audio, (str, os.PathLike)):
        try:
            info = sf.info(str(audio))
        except Exception:  # noqa: BLE001 - any problem: let load_audio explain it
            return False
        return info.samplerate > 0 and info.frames / info.samplerate > threshold
    if isinstance(audio, (np.ndarray, torch.Tensor)) and sample_rate:
        try:
            rate = float(sample_rate)
        except (TypeError, ValueError):
            return False
        if rate <= 0 or audio.ndim == 0:
            return False
        return max(audio.shape) / rate > threshold
    return False


def _check_chunk(chunk_seconds: float | None) -> float:
    c = DEFAULT_CHUNK_SECONDS if chunk_seconds is None else chunk_seconds
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not np.isfinite(c) or c <= 0:
        raise ValueError(f"chunk_seconds must be a positive number of seconds, got {chunk_seconds!r}")
    return float(c)


def predict_blocks(estimator: Any, blocks: Iterable[Any], sample_rate: float, *,
                   name: str = "audio stream", source: Any = None) -> Any:
    """Predict from audio given as consecutive blocks; same values as ``predict`` on their
    concatenation.

    Args:
        estimator: a :class:`~speechface.speech.SpeechEstimator`.
        blocks: ``(time,)`` or ``(time, channels)`` sample blocks (float or int PCM) of any
            sizes, at ``sample_rate``.
        sample_rate: their rate in Hz (resampled to the model's rate).
        name: how to call the input in error messages.
        source: recorded as ``Prediction.source`` (a path).

    Returns:
        A :class:`~speechface.results.Prediction`.

    Raises:
        AudioError: NaN/infinite samples, no samples, or less than one 40 ms frame.

    Example:
        >>> from speechface import AUEstimator
        >>> est = AUEstimator.create("cnn")
        >>> predict_blocks(est, np.zeros((10, 3200), np.float32), 16000).values.shape
        (50, 17)
    """
    if stream_support(estimator) is None:
        st = StreamingEstimator(estimator, sample_rate=sample_rate, name=name,
                                chunk_frames=1)
        raws = [st.push_raw(b) for b in blocks]
        raws.append(st.flush_raw())
        return estimator._result(torch.cat(raws), source)
    from .features.logmel import LogMel
    from .features.mfcc import MFCC

    fx = estimator.features
    if not isinstance(fx, (LogMel, MFCC)):  # unknown features: whole input (not bounded)
        parts = [_as_tensor_block(b, name) for b in blocks]
        wave = estimator.load(torch.cat(parts) if parts else torch.zeros(0), sample_rate)
        with _eval_mode(estimator):
            raw = estimator(estimator.featurize(wave)[None])[0]
        return estimator._result(raw, source)
    front = _Frontend(estimator, sample_rate, name)
    with _eval_mode(estimator):
        mels = []
        for b in blocks:
            front.add(b)
            mels.append(front.run())
        mels.append(front.run(final=True))
        mel = torch.cat(mels)
        if isinstance(fx, LogMel):
            feats = _log_mel_features(estimator, mel)
        else:
            feats = (_mfcc_from_mel(fx, mel) - estimator.feature_mean) / estimator.feature_std
        raw = estimator(feats[None])[0]
    return estimator._result(raw, source)


def _as_tensor_block(block: Any, name: str) -> torch.Tensor:
    t = _array_to_tensor(np.asarray(block) if not isinstance(block, torch.Tensor) else block, name)
    return t.mean(dim=1) if t.dim() == 2 else t.reshape(-1)


def _mfcc_from_mel(fx: Any, mel: torch.Tensor) -> torch.Tensor:
    """Mel power ``(frames, n_mels)`` -> ``(frames, n_features)``: the rest of ``MFCC.forward``."""
    from .features.mfcc import amplitude_to_db, compute_deltas

    mel_db = amplitude_to_db(mel.T[None], fx.top_db)  # (1, n_mels, frames)
    mfcc = torch.matmul(mel_db.transpose(-1, -2), fx.dct_mat).transpose(-1, -2)
    parts = [mfcc]
    for _ in range(fx.deltas):
        parts.append(compute_deltas(parts[-1], fx.delta_win_length))
    return torch.cat(parts, dim=-2)[0].T


def _open_checks(path: Path, label: str) -> None:
    if not path.exists():
        raise AudioError(f"audio file {label} does not exist")
    if path.is_dir():
        raise AudioError(f"audio file {label} is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {label} is empty (0 bytes)")


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
    below the loudest, as :func:`~speechface.audio.downmix` decides for a whole file) are left
    out of every block."""
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


def predict_long(estimator: Any, audio: Any, chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
                 *, sample_rate: float | None = None) -> Any:
    """Predict on long audio with bounded memory; the same values as ``predict`` (up to float32
    rounding).

    Args:
        estimator: a :class:`~speechface.speech.SpeechEstimator`.
        audio: a file path (read ``chunk_seconds`` at a time with soundfile), or a ``(time,)`` /
            ``(channels, time)`` array or tensor (processed in blocks; give ``sample_rate``).
        chunk_seconds: block length in seconds (default 60); it sets the memory used, not the
            result.
        sample_rate: rate of an array input; for a file, if given, it must match the header.

    Returns:
        A :class:`~speechface.results.Prediction`, ``frames = samples_at_16kHz // 640``.

    Raises:
        AudioError: the errors of :func:`~speechface.audio.load_audio`, naming the file.

    Example:
        >>> from speechface import AUEstimator
        >>> est = AUEstimator.create("cnn")
        >>> predict_long(est, np.zeros(16000 * 5, np.float32), 1.0, sample_rate=16000).values.shape
        (125, 17)
    """
    chunk = _check_chunk(chunk_seconds)
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        label = f"audio file '{path}'"
        _open_checks(path, f"'{path}'")
        with _open_sound(str(path), label) as f:
            rate = int(f.samplerate)
            if sample_rate is not None:
                given = _check_rate(sample_rate, "sample_rate", label)
                if given != rate:
                    raise AudioError(f"{label} is {rate} Hz but sample_rate={sample_rate!r} was "
                                     "given; sample_rate describes array input (the rate of a "
                                     "file is read from its header)")
            block = max(1, int(round(chunk * rate)))
            return predict_blocks(estimator, _read_blocks(f, block, label), rate, name=label,
                                  source=audio)
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        label = "audio array"
        wave, rate = _array_to_mono(audio, sample_rate, label,
                                    "predict_long(est, samples, sample_rate=44100)")
        block = max(1, int(round(chunk * rate)))
        blocks = (wave[i:i + block] for i in range(0, len(wave), block))
        return predict_blocks(estimator, blocks, rate, name=label)
    raise AudioError("predict_long: audio must be a file path, a numpy array or a torch tensor, "
                     f"got {type(audio).__name__}")


def predict_stdin(estimator: Any, stream: IO[bytes] | None = None,
                  chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS) -> Any:
    """Predict from audio file bytes (WAV, FLAC, OGG, MP3 ...) on stdin.

    libsndfile needs to seek in its input, which a pipe cannot do, so the bytes are first
    copied to an anonymous temporary file (on disk: bounded memory); the audio is then decoded
    ``chunk_seconds`` at a time and goes through the streaming pipeline like
    :func:`predict_long`.

    Args:
        estimator: a :class:`~speechface.speech.SpeechEstimator`.
        stream: a binary file object (default ``sys.stdin.buffer``).
        chunk_seconds: decoding block length in seconds.

    Raises:
        AudioError: no bytes, bytes that are not an audio file, and the errors of
            :func:`~speechface.audio.load_audio`, naming "audio on stdin".

    Example:
        >>> import io
        >>> buf = io.BytesIO(); sf.write(buf, np.zeros(16000, np.float32), 16000, format="WAV")
        >>> from speechface import AUEstimator
        >>> _ = buf.seek(0); predict_stdin(AUEstimator.create("mlp"), buf).values.shape
        (25, 17)
    """
    chunk = _check_chunk(chunk_seconds)
    stream = stream if stream is not None else sys.stdin.buffer
    label = "audio on stdin"
    with tempfile.TemporaryFile(prefix="speechface-stdin-") as tmp:
        shutil.copyfileobj(stream, tmp, 1 << 20)
        if tmp.tell() == 0:
            raise AudioError(f"{label} is empty (0 bytes); pipe an audio file, e.g. "
                             "'cat speech.wav | speechface predict - -o aus.csv'")
        tmp.seek(0)
        with _open_sound(tmp, label) as f:
            rate = int(f.samplerate)
            block = max(1, int(round(chunk * rate)))
            return predict_blocks(estimator, _read_blocks(f, block, label), rate, name=label,
                                  source="<stdin>")
