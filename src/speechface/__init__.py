"""speechface: speech to facial expression.

Estimate facial action units (AUs), emotion distributions or landmarks from speech, and
animate a still face photo with them.

>>> from speechface import AUEstimator          # doctest: +SKIP
>>> est = AUEstimator.from_pretrained()          # doctest: +SKIP
>>> result = est.predict("speech.wav")           # doctest: +SKIP
"""

from . import spaces  # noqa: F401  (importing registers the built-ins)
from .audio import features  # noqa: F401  (importing registers the built-ins)
from .core.errors import (
    AudioError,
    DataError,
    ImageError,
    ModelError,
    NoFaceError,
    SpeechfaceError,
    UnknownNameError,
)
from .core.registry import ESTIMATORS, EXPRESSION, FEATURES, SPACES, TRANSLATORS
from .core.results import Prediction
from .render import translators  # noqa: F401  (importing registers the built-ins)
from .render.animate import animate
from .render.result import Animation
from .render.translators import Translator
from .spaces.space import Space, get_space, list_spaces
from .speech import estimators  # noqa: F401  (importing registers the built-ins)
from .speech.model import (
    AUEstimator,
    BlendshapeEstimator,
    EmotionEstimator,
    LandmarkEstimator,
    SpeechEstimator,
)
from .teachers import expression  # noqa: F401  (importing registers the built-ins)
from .version import __version__

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
    from .core.registry import REGISTRIES

    if family not in REGISTRIES:
        raise UnknownNameError(f"unknown registry family {family!r}; choose from {', '.join(REGISTRIES)}")
    return REGISTRIES[family].list(pattern)
