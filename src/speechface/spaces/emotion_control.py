"""Emotion control at inference: put a chosen emotion on a speech-driven AU or ARKit track.

:func:`apply_emotion` blends the FACS prototype of an emotion (EMFACS, after Ekman & Friesen;
:data:`~speechface.spaces.EMOTION_AU_PROTOTYPES`) - or a per-frame emotion distribution such as
the speech emotion model's output - with a speech-driven track, in the ``au17`` space (0-5) or the
``blendshapes52`` ARKit space (0-1). ``animate(..., emotion="happiness", intensity=0.7)`` uses it.

**Prototypes** (AU intensity 3 = FACS level C at ``intensity=1``): happiness 6+12; sadness
1+4+15; surprise 1+2+5+26; fear 1+2+4+5+7+20+26; anger 4+5+7+23; disgust 9+10+15 (EMFACS 9+15+16:
AU16 is not among the 17 AUs, AU10 stands in); contempt 12+14 *unilateral*: in ``au17`` at half
intensity on both sides (the AUs are bilateral), in ``blendshapes52`` on the right side only
(``mouthSmileRight`` + ``mouthDimpleRight`` at 0.6, R12+R14 as FACS codes it). In ARKit terms
each AU moves the blendshapes :func:`~speechface.spaces.blendshapes.au17_to_arkit52` gives it (AU12 ->
``mouthSmileLeft/Right``, AU1 -> ``browInnerUp``, ...).

**Blend rule** (per frame ``t`` and channel ``c``; ``S`` the speech-driven track, ``P`` the
prototype at full intensity, ``k`` the intensity)::

    out[t, c] = S[t, c]                               for the articulation channels
    out[t, c] = clip(S[t, c] + k[t] * P[t, c], lo, hi)  for every other channel

- *Articulation channels* keep the speech: AU25 (lips part) and AU26 (jaw drop) in ``au17``;
  ``jawOpen``, ``jawForward/Left/Right``, ``mouthClose``, ``mouthFunnel``, ``mouthPucker``,
  ``mouthLowerDownLeft/Right``, ``mouthRollLower/Upper`` and ``tongueOut`` in ``blendshapes52``.
  Surprise's and fear's jaw drop (AU26) is therefore *not* added: a held-open jaw would erase the
  closures of /p b m/ and the rhythm of the syllables, which is what the speech track is for.
- *Every other channel* (brows, lids, cheeks, nose, lip corners, lip stretch/press/raise) gets
  the prototype *added*: the speech-driven movement rides on top of the emotion's offset
  unchanged (up to clipping at the range), and ``k = 0`` or ``neutral`` returns the track as it
  was.

Example:
    >>> import numpy as np
    >>> track = np.zeros((3, 17), np.float32); track[:, 15] = [0.0, 2.0, 4.0]   # AU26 moves
    >>> out = apply_emotion(track, "surprise", 1.0, space="au17")
    >>> out[:, 0].tolist(), out[:, 15].tolist()            # AU01 added, AU26 unchanged
    ([3.0, 3.0, 3.0], [0.0, 2.0, 4.0])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .space import AU_NAMES, EMOTION_AU_PROTOTYPES, EMOTIONS, PROTOTYPE_INTENSITY, get_space

__all__ = ["EMOTION_ALIASES", "ARTICULATION", "emotion_weights", "emotion_prototype",
           "apply_emotion"]

#: Other spellings accepted for the EMOTION8 names (RAVDESS labels, adjectives).
EMOTION_ALIASES: dict[str, str] = {
    "happy": "happiness", "joy": "happiness", "sad": "sadness", "surprised": "surprise",
    "angry": "anger", "fearful": "fear", "afraid": "fear", "disgusted": "disgust",
    "contemptuous": "contempt", "calm": "neutral", "none": "neutral",
}

#: Channels that carry articulation in each space: the blend leaves them to the speech track.
ARTICULATION: dict[str, tuple[str, ...]] = {
    "au17": ("AU25", "AU26"),
    "blendshapes52": ("jawOpen", "jawForward", "jawLeft", "jawRight", "mouthClose",
                      "mouthFunnel", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
                      "mouthRollLower", "mouthRollUpper", "tongueOut"),
}
_SPACES = tuple(ARTICULATION)


def _space_name(space: Any) -> str:
    name = get_space(space).name if not isinstance(space, str) else space
    if name not in _SPACES:
        raise ValueError(f"emotion control works on au17 or blendshapes52 tracks, not {name!r} "
                         "(a landmarks68 animation has no expression channels to blend)")
    return name


def emotion_weights(emotion: Any) -> np.ndarray:
    """An emotion given in any accepted form as EMOTION8 weights: ``(8,)`` or ``(T, 8)``.

    Args:
        emotion: a name (``"happiness"``, ``"happy"``, ...; see :data:`EMOTION_ALIASES`), a
            ``{name: weight}`` mapping, an ``(8,)`` / ``(T, 8)`` array of EMOTION8 weights (the
            emotion model's per-frame distribution), or an ``emotion8``
            :class:`~speechface.core.results.Prediction`.

    Raises:
        ValueError: unknown name, negative or non-finite weights, wrong shape.

    Example:
        >>> emotion_weights("happy").tolist()
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        >>> emotion_weights({"sadness": 0.5, "anger": 0.5})[[3, 4]].tolist()
        [0.5, 0.5]
    """
    from ..core.results import Prediction

    def index(name: str) -> int:
        key = str(name).strip().lower()
        key = EMOTION_ALIASES.get(key, key)
        if key not in EMOTIONS:
            raise ValueError(f"unknown emotion {name!r}; choose from {', '.join(EMOTIONS)}")
        return EMOTIONS.index(key)

    if isinstance(emotion, Prediction):
        if emotion.space != "emotion8":
            raise ValueError(f"an emotion track must be an emotion8 prediction, got {emotion.space}")
        emotion = emotion.values
    if isinstance(emotion, str):
        w = np.zeros(len(EMOTIONS), np.float32)
        w[index(emotion)] = 1.0
        return w
    if isinstance(emotion, Mapping):
        w = np.zeros(len(EMOTIONS), np.float32)
        for k, v in emotion.items():
            w[index(k)] += float(v)
    else:
        w = np.asarray(emotion, dtype=np.float32)
        if w.ndim not in (1, 2) or w.shape[-1] != len(EMOTIONS):
            raise ValueError(f"emotion weights must be (8,) or (frames, 8) in EMOTION8 order "
                             f"({', '.join(EMOTIONS)}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("emotion weights must be finite and >= 0")
    return w


def _prototype_matrix(space: str) -> np.ndarray:
    """``(8, dim)``: each EMOTION8 prototype at full intensity in ``space``."""
    aus = list(AU_NAMES)
    m = np.zeros((len(EMOTIONS), len(aus)), np.float32)
    for i, emo in enumerate(EMOTIONS):
        for au, v in EMOTION_AU_PROTOTYPES[emo].items():
            m[i, aus.index(au)] = v
    if space == "au17":
        return m
    from .blendshapes import ARKIT52_NAMES, au17_to_arkit52

    lips = m.copy()
    lips[:, aus.index("AU25")] = lips[:, aus.index("AU26")]  # a jaw drop parts the lips
    ark = au17_to_arkit52(lips)
    c = EMOTIONS.index("contempt")  # unilateral R12 + R14 (the right side), not half of both
    ark[c] = 0.0
    for name in ("mouthSmileRight", "mouthDimpleRight"):
        ark[c, ARKIT52_NAMES.index(name)] = PROTOTYPE_INTENSITY / 5.0
    return ark


def emotion_prototype(emotion: Any, space: str = "au17") -> np.ndarray:
    """The prototype (full intensity) of ``emotion`` in ``space``: ``(dim,)`` or ``(T, dim)``.

    A weighted mixture (``{"happiness": 0.5, "surprise": 0.5}`` or a distribution) gives the
    weighted sum of the prototypes (weights are used as given: a distribution sums to 1).

    Example:
        >>> p = emotion_prototype("happiness", "blendshapes52")
        >>> from speechface.spaces.blendshapes import ARKIT52_NAMES
        >>> [ARKIT52_NAMES[i] for i in np.flatnonzero(p)]
        ['cheekSquintLeft', 'cheekSquintRight', 'mouthSmileLeft', 'mouthSmileRight']
    """
    name = _space_name(space)
    return (emotion_weights(emotion) @ _prototype_matrix(name)).astype(np.float32)


def apply_emotion(values: Any, emotion: Any, intensity: Any = 1.0, *,
                  space: Any = "au17") -> np.ndarray:
    """Blend an emotion's FACS prototype into a speech-driven track (rule: module docstring).

    Args:
        values: ``(frames, 17)`` AU intensities (``space="au17"``) or ``(frames, 52)`` ARKit
            weights (``space="blendshapes52"``); numpy, torch or a
            :class:`~speechface.core.results.Prediction` (its space is used).
        emotion: see :func:`emotion_weights`; None or ``"neutral"`` = unchanged. A ``(frames,
            8)`` distribution must have the track's number of frames.
        intensity: ``k`` >= 0: a number or a ``(frames,)`` array (a ramp); 1 = the prototype
            at FACS level C (AU 3, ARKit 0.6), 0 = no change.
        space: ``"au17"`` or ``"blendshapes52"`` (or the Space); a Prediction brings its own.

    Returns:
        ``(frames, dim)`` float32 values in the space's range.

    Raises:
        ValueError: another space (landmarks68, emotion8), a bad emotion or intensity, or
            mismatched frame counts.

    Example:
        >>> from speechface.spaces.blendshapes import ARKIT52_NAMES
        >>> speech = np.zeros((2, 52), np.float32); speech[:, ARKIT52_NAMES.index("jawOpen")] = [0.1, 0.5]
        >>> out = apply_emotion(speech, "happiness", 0.5, space="blendshapes52")
        >>> smile, jaw = ARKIT52_NAMES.index("mouthSmileLeft"), ARKIT52_NAMES.index("jawOpen")
        >>> np.round(out[:, smile], 3).tolist(), np.round(out[:, jaw], 3).tolist()
        ([0.3, 0.3], [0.1, 0.5])
    """
    from ..core.results import Prediction

    if isinstance(values, Prediction):
        space, values = values.space, values.values
    name = _space_name(space)
    sp = get_space(name)
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    s = np.asarray(values, dtype=np.float32)
    if s.ndim != 2 or s.shape[1] != sp.dim:
        raise ValueError(f"a {name} track is (frames, {sp.dim}) values, got shape {s.shape}")
    if emotion is None:
        return s.copy()
    proto = emotion_prototype(emotion, name)
    if proto.ndim == 2 and len(proto) != len(s):
        raise ValueError(f"the emotion track has {len(proto)} frames, the values {len(s)}")
    k = np.asarray(intensity, dtype=np.float32)
    if k.ndim == 0:
        if not (math.isfinite(float(k)) and float(k) >= 0):
            raise ValueError(f"intensity must be a finite number >= 0, got {intensity!r}")
    elif k.shape != (len(s),) or not np.isfinite(k).all() or (k < 0).any():
        raise ValueError(f"an intensity curve must be ({len(s)},) finite values >= 0, "
                         f"got shape {k.shape}")
    k = k.reshape(-1, 1) if k.ndim else k
    art = np.isin(np.asarray(sp.labels), ARTICULATION[name])
    out = np.clip(s + k * np.broadcast_to(proto, s.shape), sp.low, sp.high)
    out[:, art] = s[:, art]
    return out.astype(np.float32)
