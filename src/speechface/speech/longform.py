"""Bounded-memory features of very long audio (an hour and more), and of audio on stdin.

:func:`feature_blocks` reads a file block by block (``chunk_seconds`` per block) and yields the
feature frames the extractor computes on the whole file (up to float32 rounding) as they become
final. It only drives the components, each of which owns its block processing:

- :func:`speechface.audio.open_blocks` decodes the file (or cuts the array) into blocks;
- an :class:`~speechface.audio.AudioStream` downmixes, checks and resamples them exactly as
  :func:`~speechface.audio.load_audio` does, keeping the resampling kernel's context;
- the extractor's :meth:`~speechface.audio.features.FeatureExtractor.block_stream` turns samples
  into frames (log-mel: final frames, keeping half an STFT window; MFCC: mel power per block,
  then the clip-wide dB floor, DCT and deltas on the whole mel sequence; an extractor without
  a block plan buffers the whole input).

:meth:`~speechface.speech.SpeechEstimator.predict` uses it by itself for inputs longer than
:data:`LONG_SECONDS` (10 min), or when given ``chunk_seconds``, and runs the network on each
block of frames as it comes (:meth:`~speechface.speech.SpeechEstimator.predict_feature_blocks`:
the network's own stream, or the whole frame sequence for networks that cannot stream).
:func:`predict_long`, :func:`predict_blocks` and :func:`predict_stdin` are the same path for a
file, an iterable of blocks and stdin.

Memory: one block of audio (60 s at 48 kHz stereo: 23 MB) plus its intermediates and the
output (17 floats per frame: 6 MB per hour); MFCC features and networks that cannot stream
also hold the whole frame sequence (80 floats per 40 ms frame: 29 MB per hour). Whole-file ``predict`` holds the audio, its resampled copy, the complex
STFT (513 x 90,000 frames per hour: 370 MB) and every layer's activations at once.

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
from typing import IO, Any

import numpy as np
import soundfile as sf
import torch

from ..audio.waveform import AudioStream, open_blocks
from ..core.errors import AudioError

__all__ = ["feature_blocks", "iter_features", "long_features", "features_from_blocks",
           "predict_long", "predict_blocks", "predict_stdin", "is_long", "check_chunk",
           "LONG_SECONDS", "DEFAULT_CHUNK_SECONDS"]

#: ``SpeechEstimator.predict`` processes inputs longer than this (seconds) block by block.
LONG_SECONDS = 600.0
#: Default block length of :func:`predict_long` in seconds.
DEFAULT_CHUNK_SECONDS = 60.0


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


def check_chunk(chunk_seconds: float | None) -> float:
    """``chunk_seconds`` checked (default :data:`DEFAULT_CHUNK_SECONDS`).

    Raises:
        ValueError: not a positive finite number.

    Example:
        >>> check_chunk(None), check_chunk(2)
        (60.0, 2.0)
    """
    c = DEFAULT_CHUNK_SECONDS if chunk_seconds is None else chunk_seconds
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not np.isfinite(c) or c <= 0:
        raise ValueError(f"chunk_seconds must be a positive number of seconds, got {chunk_seconds!r}")
    return float(c)


def iter_features(features: Any, blocks: Iterable[Any], sample_rate: float, *,
                  name: str = "audio stream") -> Iterator[torch.Tensor]:
    """Feature frames of audio given as consecutive blocks, as they become final.

    With an extractor whose block plan gives final frames (log-mel: every block's frames
    once the samples under their windows arrived), one ``(frames, n_features)`` tensor per
    block, so no more than a block is held; with one that needs the whole sequence at the end
    (MFCC), a single tensor after the last block. Their concatenation is ``features(whole).T``.

    Args:
        features: a feature extractor (:class:`~speechface.audio.features.FeatureExtractor`).
        blocks: ``(time,)`` or ``(time, channels)`` sample blocks (float or int PCM) of any
            sizes, at ``sample_rate``.
        sample_rate: their rate in Hz (resampled to the extractor's rate).
        name: how to call the input in error messages.

    Raises:
        AudioError: NaN/infinite samples, no samples, or less than one 40 ms frame.

    Example:
        >>> from speechface.audio.features import create_features
        >>> parts = iter_features(create_features("logmel"), np.zeros((3, 3200), np.float32), 16000)
        >>> tuple(len(p) for p in parts)
        (5, 5, 5, 0)
    """
    audio = AudioStream(sample_rate, target_rate=features.sample_rate, name=name)
    frames = features.block_stream()
    if frames.finish_needs_all:
        parts = [frames.push(audio.push(block)) for block in blocks]
        parts.append(frames.push(audio.run(final=True), final=True))
        yield frames.finish(torch.cat(parts))
        return
    for block in blocks:
        yield frames.push(audio.push(block))
    yield frames.push(audio.run(final=True), final=True)


def features_from_blocks(features: Any, blocks: Iterable[Any], sample_rate: float, *,
                         name: str = "audio stream") -> torch.Tensor:
    """All feature frames of audio given as consecutive blocks: ``features(whole).T``
    (:func:`iter_features`, concatenated).

    Returns:
        ``(frames, n_features)`` float tensor, ``frames = samples_at_16kHz // 640``.

    Example:
        >>> from speechface.audio.features import create_features
        >>> features_from_blocks(create_features("logmel"), np.zeros((10, 3200), np.float32),
        ...                      16000).shape
        torch.Size([50, 80])
    """
    return torch.cat(list(iter_features(features, blocks, sample_rate, name=name)))


def feature_blocks(features: Any, audio: Any, sample_rate: float | None = None,
                   chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS) -> Iterator[torch.Tensor]:
    """Feature frames of a long file or array, read ``chunk_seconds`` at a time
    (:func:`iter_features` on :func:`~speechface.audio.open_blocks`).

    Args:
        features: a feature extractor.
        audio: a file path (read block by block with soundfile), or a ``(time,)`` /
            ``(channels, time)`` array or tensor (then give ``sample_rate``).
        sample_rate: rate of an array input; for a file, if given, it must match the header.
        chunk_seconds: block length in seconds (default 60); it sets the memory used, not the
            result.

    Yields:
        ``(frames, n_features)`` blocks whose concatenation is ``features(load_audio(audio)).T``.

    Raises:
        AudioError: the errors of :func:`~speechface.audio.load_audio`, naming the file.
    """
    with open_blocks(audio, sample_rate, check_chunk(chunk_seconds)) as (blocks, rate, label):
        yield from iter_features(features, blocks, rate, name=label)


def long_features(features: Any, audio: Any, sample_rate: float | None = None,
                  chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS) -> torch.Tensor:
    """All feature frames of a long file or array (:func:`feature_blocks`, concatenated):
    ``(frames, n_features)``, the rows of ``features(load_audio(audio)).T``.

    Example:
        >>> from speechface.audio.features import create_features
        >>> long_features(create_features("mfcc"), np.zeros(48000, np.float32), 16000, 1.0).shape
        torch.Size([75, 39])
    """
    return torch.cat(list(feature_blocks(features, audio, sample_rate, chunk_seconds)))


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
        A :class:`~speechface.core.results.Prediction`.

    Raises:
        AudioError: NaN/infinite samples, no samples, or less than one 40 ms frame.

    Example:
        >>> from speechface import AUEstimator
        >>> est = AUEstimator.create("cnn")
        >>> predict_blocks(est, np.zeros((10, 3200), np.float32), 16000).values.shape
        (50, 17)
    """
    return estimator.predict_feature_blocks(
        iter_features(estimator.features, blocks, sample_rate, name=name), source)


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
        A :class:`~speechface.core.results.Prediction`, ``frames = samples_at_16kHz // 640``.

    Raises:
        AudioError: the errors of :func:`~speechface.audio.load_audio`, naming the file.

    Example:
        >>> from speechface import AUEstimator
        >>> est = AUEstimator.create("cnn")
        >>> predict_long(est, np.zeros(16000 * 5, np.float32), 1.0, sample_rate=16000).values.shape
        (125, 17)
    """
    check_chunk(chunk_seconds)
    return estimator.predict_feature_blocks(
        feature_blocks(estimator.features, audio, sample_rate, chunk_seconds),
        audio if isinstance(audio, (str, os.PathLike)) else None)


def predict_stdin(estimator: Any, stream: IO[bytes] | None = None,
                  chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS) -> Any:
    """Predict from audio file bytes (WAV, FLAC, OGG, MP3 ...) on stdin.

    libsndfile needs to seek in its input, which a pipe cannot do, so the bytes are first
    copied to an anonymous temporary file (on disk: bounded memory); the audio is then decoded
    ``chunk_seconds`` at a time like :func:`predict_long`.

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
    chunk = check_chunk(chunk_seconds)
    stream = stream if stream is not None else sys.stdin.buffer
    label = "audio on stdin"
    with tempfile.TemporaryFile(prefix="speechface-stdin-") as tmp:
        shutil.copyfileobj(stream, tmp, 1 << 20)
        if tmp.tell() == 0:
            raise AudioError(f"{label} is empty (0 bytes); pipe an audio file, e.g. "
                             "'cat speech.wav | speechface predict - -o aus.csv'")
        tmp.seek(0)
        with open_blocks(tmp, None, chunk, name=label) as (blocks, rate, _):
            return estimator.predict_feature_blocks(
                iter_features(estimator.features, blocks, rate, name=label), "<stdin>")
