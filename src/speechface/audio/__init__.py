"""Stage 1, audio: a file, array, stdin or chunks -> 16 kHz mono samples -> feature frames.

In: speech (any rate, any channels). Out: a mono float32 waveform at 16 kHz
(:mod:`~speechface.audio.waveform`: ``load_audio``, ``resample``, block reading, chunk streams),
and 25 fps feature frames ``(n_features, frames)`` from the registered extractors in
:mod:`speechface.audio.features` (log-mel, MFCC, Whisper encoder), each of which also streams.

>>> from speechface.audio import load_audio      # doctest: +SKIP
>>> wave = load_audio("speech.wav")             # doctest: +SKIP
"""

from .waveform import (
    FPS,
    SAMPLE_RATE,
    SILENT_CHANNEL_RATIO,
    AudioSource,
    AudioStream,
    StreamResampler,
    downmix,
    load_audio,
    open_blocks,
    resample,
    save_audio,
)

__all__ = ["SAMPLE_RATE", "FPS", "AudioSource", "load_audio", "resample", "save_audio", "downmix",
           "SILENT_CHANNEL_RATIO", "AudioStream", "StreamResampler", "open_blocks"]
