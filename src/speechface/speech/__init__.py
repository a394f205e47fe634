"""Stage 2, speech: feature frames -> AUs, emotions, landmarks or blendshapes per frame.

In: audio (through :mod:`speechface.audio`). Out: a :class:`~speechface.core.results.Prediction`.

- :mod:`~speechface.speech.model`: the user-facing estimators (``SpeechEstimator``,
  ``AUEstimator`` ...): features + normalisation + network + calibration;
- :mod:`speechface.speech.estimators`: the registered networks (``mlp`` ... ``cnn_gru``), each
  saying how it streams;
- :mod:`~speechface.speech.longform` (long files, stdin, block iterables) and
  :mod:`~speechface.speech.streaming` (pushed chunks): drivers that only drive the components.
"""

from .model import (
    AudioInput,
    AUEstimator,
    BlendshapeEstimator,
    EmotionEstimator,
    LandmarkEstimator,
    SpeechEstimator,
    estimator_class,
)

__all__ = ["SpeechEstimator", "AUEstimator", "EmotionEstimator", "LandmarkEstimator",
           "BlendshapeEstimator", "AudioInput", "estimator_class"]
