"""Speech features at the video frame rate: ``(..., time) -> (..., n_features, frames)``.

Importing this package registers the built-in extractors in :data:`speechface.core.registry.FEATURES`:

- ``logmel`` (:class:`LogMel`): 80 log mel energies per 40 ms frame (the default).
- ``mfcc`` (:class:`MFCC`): 13 MFCCs + deltas + delta-deltas = 39 values per frame.

Each extractor also says how it processes a stream or a long input in blocks
(:meth:`FeatureExtractor.stream`, :meth:`FeatureExtractor.block_stream`).

>>> from speechface.audio.features import create_features
>>> fx = create_features("logmel")
>>> fx.num_frames(16000 * 60)
1500
"""

from . import logmel, mfcc, whisper  # noqa: F401  (registers the extractors)
from .base import (
    FeatureExtractor,
    FeatureStream,
    OverlapWindowStream,
    SampleBuffer,
    WholeInputStream,
    create_features,
    overlap_windows,
)
from .logmel import LogMel
from .mfcc import MFCC

__all__ = ["FeatureExtractor", "FeatureStream", "WholeInputStream", "OverlapWindowStream",
           "SampleBuffer", "overlap_windows", "LogMel", "MFCC", "create_features"]
