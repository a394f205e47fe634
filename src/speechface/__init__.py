"""speechface: speech to facial expression.

Estimate facial action units (AUs), emotion distributions or landmarks from speech, and
animate a still face photo with them.

>>> from speechface import AUEstimator          # doctest: +SKIP
>>> est = AUEstimator.from_pretrained()          # doctest: +SKIP
>>> result = est.predict("speech.wav")           # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import estimators, expression, features, spaces, translators  # noqa: E402,F401  (importing registers the built-ins)
from .animate import Animation, animate  # noqa: E402
from .errors import (  # noqa: E402
    AudioError,
    DataError,
    ImageError,
    ModelError,
    NoFaceError,
    SpeechfaceError,
    UnknownNameError,
)
from .registry import ESTIMATORS, EXPRESSION, FEATURES, SPACES, TRANSLATORS  # noqa: E402
from .results import Prediction  # noqa: E402
from .spaces import Space, get_space, list_spaces  # noqa: E402
from .speech import (  # noqa: E402
    AUEstimator,
    BlendshapeEstimator,
    EmotionEstimator,
    LandmarkEstimator,
    SpeechEstimator,
)
from .translators import Translator  # noqa: E402

__all__ = [
    "__version__",
    "AUEstimator",
    "EmotionEstimator",
    "LandmarkEstimator",
    "BlendshapeEstimator",
    "SpeechEstimator",
    "Prediction",
    "Translator",
    "animate",
    "Animation",
    "list_models",
    "AudioError",
    "DataError",
    "ImageError",
    "ModelError",
    "NoFaceError",
    "SpeechfaceError",
    "UnknownNameError",
    "ESTIMATORS",
    "EXPRESSION",
    "FEATURES",
    "SPACES",
    "TRANSLATORS",
    "Space",
    "get_space",
    "list_spaces",
]


def list_models(pattern: str = "*", family: str = "estimators") -> list[str]:
    """Names in a registry family (``"estimators"``, ``"features"``, ``"spaces"``,
    ``"translators"``, ``"expression"``) matching a shell-style pattern.

    >>> list_models("*cnn*")      # doctest: +SKIP
    ['cnn', 'cnn_gru', 'dcnn']
    """
    from .registry import REGISTRIES

    if family not in REGISTRIES:
        raise UnknownNameError(f"unknown registry family {family!r}; choose from {', '.join(REGISTRIES)}")
    return REGISTRIES[family].list(pattern)
