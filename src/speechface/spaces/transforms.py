"""Condition transforms: pure functions on ``(frames, dim)`` condition arrays of a space.

What :func:`speechface.animate` does to a predicted track between the speech model and the
renderer, usable on its own (e.g. on a track to be exported to an avatar):

- :func:`convert_space`: values of one space -> another (emotion8 -> au17 through
  :func:`~speechface.spaces.space.emotion_to_au`);
- :func:`smooth_conditions`: zero-phase Gaussian smoothing over time;
- :func:`expand_dynamics`: widen the movement around the utterance mean;
- :func:`scale_conditions`: expression strength relative to the space's neutral value;
- :func:`retarget_landmarks`: predicted landmark motion moved onto one face's own points.

Example:
    >>> import numpy as np
    >>> v = np.random.default_rng(0).uniform(0, 5, (50, 17)).astype(np.float32)
    >>> v = scale_conditions(expand_dynamics(smooth_conditions(v, 1.5), "au17", 2.0), "au17", 0.5)
    >>> v.shape, bool(v.min() >= 0)
    ((50, 17), True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.errors import ModelError
from .space import emotion_to_au, get_space

__all__ = ["smooth_conditions", "scale_conditions", "expand_dynamics", "convert_space",
           "retarget_landmarks"]

#: The conversions :func:`convert_space` knows: (from, to) -> function of ``(frames, dim)``.
CONVERSIONS: dict[tuple[str, str], Any] = {("emotion8", "au17"): emotion_to_au}


def smooth_conditions(values: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase temporal smoothing: a centred Gaussian of ``sigma`` frames along axis 0.

    Centred (not an EMA), so the mouth does not lag behind the speech. Edges are handled by
    normalised convolution (each output is a weighted mean of the frames that exist), so a
    constant sequence stays constant and probabilities still sum to 1. ``sigma=0`` returns the
    values unchanged. At 25 fps, 1 frame = 40 ms; ``sigma=1.5`` mostly removes frame-to-frame
    jitter, ``sigma=3`` leaves only syllable-rate motion.

    Args:
        values: ``(frames, dim)`` float array.
        sigma: standard deviation in frames (>= 0).

    Returns:
        ``(frames, dim)`` float32.

    Example:
        >>> x = np.zeros((21, 1), np.float32); x[10] = 1
        >>> s = smooth_conditions(x, 1.0); round(float(s.sum()), 3), bool(s[10, 0] < 1)
        (1.0, True)
    """
    v = np.asarray(values, dtype=np.float32)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"smoothing must be a finite number of frames >= 0, got {sigma!r}")
    if sigma == 0 or len(v) < 2:
        return v.copy()
    radius = max(1, int(math.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    n = len(v)
    norm = np.convolve(np.ones(n), k, mode="full")[radius:radius + n]
    out = np.empty_like(v)
    for d in range(v.shape[1]):
        out[:, d] = np.convolve(v[:, d].astype(np.float64), k, mode="full")[radius:radius + n] / norm
    return out


def _into_space(out: np.ndarray, sp: Any) -> np.ndarray:
    """Clip values to the space's range; renormalise probability spaces to sum to 1."""
    if sp.low is not None or sp.high is not None:
        out = np.clip(out, sp.low, sp.high)
    if sp.activation == "softmax":
        out = np.clip(out, 0, None)
        out = out / np.maximum(out.sum(axis=-1, keepdims=True), 1e-8)
    return out.astype(np.float32)


def scale_conditions(values: np.ndarray, space: Any, strength: float) -> np.ndarray:
    """Scale conditions relative to the space's neutral value: ``neutral + strength * (v - neutral)``.

    ``strength=0`` gives the neutral face throughout, 1 the predicted expression, above 1 an
    exaggerated one. Results are clipped to the space's range; for probability spaces
    (``emotion8``) they are also renormalised to sum to 1.

    Args:
        values: ``(frames, dim)`` values of ``space``.
        space: a :class:`~speechface.spaces.Space` or its name.
        strength: a finite number >= 0.

    Returns:
        ``(frames, dim)`` float32.

    Example:
        >>> scale_conditions(np.full((2, 17), 2.0), "au17", 3.0)[0, 0]
        np.float32(5.0)
    """
    sp = get_space(space)
    if not (math.isfinite(strength) and strength >= 0):
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
    v = np.asarray(values, dtype=np.float32)
    if strength == 1.0:
        return v.copy()
    neutral = np.asarray(sp.neutral, dtype=np.float32) if sp.neutral else np.zeros(sp.dim, np.float32)
    out = neutral + np.float32(strength) * (v - neutral)
    return _into_space(out, sp)


def convert_space(values: np.ndarray, src: Any, dst: Any) -> np.ndarray:
    """Values of space ``src`` -> values of space ``dst`` (unchanged when they are the same).

    Known conversions: :data:`CONVERSIONS` (emotion8 -> au17 through
    :func:`~speechface.spaces.space.emotion_to_au`); any other pair is a ModelError.

    Args:
        values: ``(frames, src.dim)`` values.
        src: the values' :class:`~speechface.spaces.Space` or its name.
        dst: the space wanted (a :class:`~speechface.spaces.Space` or its name).

    Returns:
        ``(frames, dst.dim)`` float32 (``values`` itself when ``src`` is ``dst``).

    Example:
        >>> convert_space(np.full((3, 8), 0.125, np.float32), "emotion8", "au17").shape
        (3, 17)
    """
    src_name = getattr(src, "name", src)
    dst = get_space(dst)
    if src_name == dst.name:
        return values
    fn = CONVERSIONS.get((src_name, dst.name))
    if fn is None:
        raise ModelError(f"the speech estimator predicts {src_name} but the translator is "
                         f"conditioned on {dst.name}, and speechface has no {src_name} -> "
                         f"{dst.name} conversion; use an estimator that predicts {dst.name}")
    out = fn(values)
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    out = np.asarray(out, dtype=np.float32)
    if out.shape != (len(values), dst.dim):
        raise ModelError(f"spaces.{fn.__name__} returned shape {out.shape}, expected "
                         f"({len(values)}, {dst.dim})")
    return out


def expand_dynamics(values: np.ndarray, space: Any, factor: Any) -> np.ndarray:
    """Scale each dimension's movement around its utterance mean: ``mean + factor * (v - mean)``.

    Speech estimators trained with L1/L2 losses predict damped tracks (a regression to the
    mean); ``factor > 1`` widens the movement the model predicts without changing the average
    expression (``strength`` scales both). Results are clipped to the space's range and
    renormalised for probability spaces.

    Args:
        values: ``(frames, dim)`` values of ``space``.
        space: a :class:`~speechface.spaces.Space` or its name.
        factor: a finite number >= 0 (1 = unchanged, 0 = the utterance mean throughout), or one
            such number per dimension (``(dim,)``, e.g. an estimator's ``dynamics_gain``).

    Example:
        >>> expand_dynamics(np.array([[1.0], [3.0]]), "au17", 2.0)[:, 0].tolist()
        [0.0, 4.0]
    """
    sp = get_space(space)
    f = np.asarray(factor, dtype=np.float64)
    if f.ndim > 1 or (f.ndim == 1 and len(f) != sp.dim) or \
            not (np.isfinite(f).all() and (f >= 0).all()):
        raise ValueError(f"expressiveness must be a finite number >= 0 (or {sp.dim} of them), "
                         f"got {factor!r}")
    v = np.asarray(values, dtype=np.float32)
    if (f == 1.0).all():
        return v.copy()
    mean = v.mean(axis=0, keepdims=True)
    out = mean + f.astype(np.float32) * (v - mean)
    return _into_space(out, sp)


def retarget_landmarks(predicted: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Speech-predicted landmark motion -> target landmarks for one photo's face.

    ``predicted`` is ``landmarks68`` normalised to the *speaker's* face box; ``own`` are the
    photo's 68 points normalised to the translator's crop. The motion around the utterance
    mean is moved onto the photo's own points, scaled by the size of its face in the crop:
    ``own + (p_t - mean(p)) * (width, height of own)``. The photo keeps its face shape and pose;
    only the speech-driven movement (jaw, lips) is transferred.

    Args:
        predicted: ``(frames, 136)`` ``x_0..x_67, y_0..y_67``.
        own: ``(136,)`` the photo's points in the crop (0-1).

    Returns:
        ``(frames, 136)`` float32 targets in crop coordinates.

    Example:
        >>> p = np.zeros((2, 136), np.float32); p[1, 68 + 8] = 0.1   # chin 10 % lower
        >>> own = np.concatenate([np.linspace(0.2, 0.8, 68), np.linspace(0.3, 0.9, 68)])
        >>> out = retarget_landmarks(p, own); round(float(out[1, 76] - out[0, 76]), 3)
        0.06
    """
    pred = np.asarray(predicted, dtype=np.float32)
    own = np.asarray(own, dtype=np.float32).reshape(-1)
    if pred.ndim != 2 or pred.shape[1] != 136 or own.shape != (136,):
        raise ValueError(f"need predicted (frames, 136) and own (136,), got {pred.shape}, "
                         f"{own.shape}")
    w = float(own[:68].max() - own[:68].min())
    h = float(own[68:].max() - own[68:].min())
    scale = np.concatenate([np.full(68, w, np.float32), np.full(68, h, np.float32)])
    return (own + (pred - pred.mean(axis=0, keepdims=True)) * scale).astype(np.float32)
