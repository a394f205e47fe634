"""Stage 3, conditions: the conditioning spaces and the transforms between them.

In: a predicted sequence. Out: the conditions a renderer or an avatar is driven by.

- :mod:`~speechface.spaces.space`: the spaces (``au17``, ``emotion8``, ``landmarks68``,
  ``blendshapes52``): labels, ranges, activation, loss; EMFACS emotion prototypes;
- :mod:`~speechface.spaces.blendshapes`: ARKit-52 blendshapes <-> the 17 AUs;
- :mod:`~speechface.spaces.emotion_control`: put a chosen emotion on a speech-driven track;
- :mod:`~speechface.spaces.transforms`: condition transforms (convert between spaces, smooth,
  widen the movement, scale the strength, retarget landmarks).
"""

from .space import (
    ARKIT52_NAMES,
    AU17,
    AU_NAMES,
    BLENDSHAPES52,
    EMOTION8,
    EMOTION_AU_PROTOTYPES,
    LANDMARKS68,
    Space,
    emotion_to_au,
    get_space,
    list_spaces,
)
from .transforms import (
    convert_space,
    expand_dynamics,
    retarget_landmarks,
    scale_conditions,
    smooth_conditions,
)

__all__ = ["Space", "get_space", "list_spaces", "AU17", "EMOTION8", "LANDMARKS68", "AU_NAMES",
           "EMOTION_AU_PROTOTYPES", "emotion_to_au", "BLENDSHAPES52", "ARKIT52_NAMES",
           "convert_space", "smooth_conditions", "expand_dynamics", "scale_conditions",
           "retarget_landmarks"]
