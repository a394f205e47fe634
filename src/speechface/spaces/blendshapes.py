"""ARKit-52 blendshapes: MediaPipe order, conversions to and from the 17 AUs, blendshape groups.

The ``blendshapes52`` space (:data:`~speechface.spaces.ARKIT52_NAMES`) holds the 52 ARKit
blendshapes in MediaPipe FaceLandmarker's order with ``tongueOut`` last. The MediaPipe teacher
outputs 52 scores too, but its first one is ``_neutral`` (not an ARKit blendshape) and it has no
``tongueOut``; :func:`mediapipe_to_arkit52` drops the first and sets the last to 0.

Both directions between ARKit-52 and AU17 go through the teacher's documented tables:

- :func:`arkit52_to_au17`: :func:`~speechface.teachers.mediapipe.blendshapes_to_au17` (the AU
  proxy the AU models are trained on: ``AU = clip(5 * sum(w * blendshape), 0, 5)``);
- :func:`au17_to_arkit52`: :func:`~speechface.teachers.mediapipe.au17_to_blendshapes`, its
  per-AU inverse (``au17 -> arkit52 -> au17`` is exact for AUs in 0-5 with
  ``AU25 - AU26 <= 2.5``), so an AU model can drive an ARKit rig.

Example:
    >>> import numpy as np
    >>> au = np.zeros(17, np.float32); au[15] = 2.0                  # AU26 jaw drop = 2
    >>> bs = au17_to_arkit52(au); round(float(bs[ARKIT52_NAMES.index("jawOpen")]), 4)
    0.4
    >>> float(arkit52_to_au17(bs)[15])
    2.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..teachers.mediapipe import BLENDSHAPE_NAMES, au17_to_blendshapes, blendshapes_to_au17
from .space import ARKIT52_NAMES

__all__ = ["ARKIT52_NAMES", "MEDIAPIPE_INDEX", "BLENDSHAPE_GROUPS", "mediapipe_to_arkit52",
           "arkit52_to_mediapipe", "arkit52_to_au17", "au17_to_arkit52", "group_of"]

#: For each ARKit-52 blendshape (space order), its index in MediaPipe's 52 outputs
#: (:data:`~speechface.teachers.mediapipe.BLENDSHAPE_NAMES`), -1 for ``tongueOut``.
MEDIAPIPE_INDEX: tuple[int, ...] = tuple(
    BLENDSHAPE_NAMES.index(n) if n in BLENDSHAPE_NAMES else -1 for n in ARKIT52_NAMES)


def group_of(name: str) -> str:
    """The face region of an ARKit blendshape: ``"jaw/mouth"``, ``"brows"``, ``"eyes"``,
    ``"cheeks/nose"`` or ``"tongue"``.

    Example:
        >>> group_of("jawOpen"), group_of("cheekSquintLeft"), group_of("noseSneerRight")
        ('jaw/mouth', 'cheeks/nose', 'cheeks/nose')
    """
    if name.startswith(("jaw", "mouth")):
        return "jaw/mouth"
    if name.startswith("brow"):
        return "brows"
    if name.startswith("eye"):
        return "eyes"
    if name.startswith(("cheek", "nose")):
        return "cheeks/nose"
    if name == "tongueOut":
        return "tongue"
    raise KeyError(f"{name!r} is not an ARKit blendshape")


#: ``{group: [blendshape names]}`` in space order (the groups the model card reports on).
BLENDSHAPE_GROUPS: dict[str, list[str]] = {}
for _n in ARKIT52_NAMES:
    BLENDSHAPE_GROUPS.setdefault(group_of(_n), []).append(_n)


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach")


def _array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if _is_tensor(x) else x, dtype=np.float32)
    if a.shape[-1:] != (52,):
        raise ValueError(f"{what} needs a last dimension of 52, got {a.shape}")
    return a


def _like(out: np.ndarray, x: Any) -> Any:
    if _is_tensor(x):
        import torch

        return torch.from_numpy(out).to(x.device)
    return out


def mediapipe_to_arkit52(bs: Any) -> Any:
    """MediaPipe FaceLandmarker scores (with ``_neutral`` first) -> ARKit-52 (space order).

    Args:
        bs: ``(..., 52)`` in :data:`~speechface.teachers.mediapipe.BLENDSHAPE_NAMES` order (the
            shards' ``blendshapes`` array), numpy or torch.

    Returns:
        ``(..., 52)`` float32 in :data:`ARKIT52_NAMES` order; ``tongueOut`` = 0.

    Example:
        >>> x = np.arange(52, dtype=np.float32)            # MediaPipe index as the value
        >>> y = mediapipe_to_arkit52(x); float(y[0]), float(y[50]), float(y[51])
        (1.0, 51.0, 0.0)
    """
    a = _array(bs, "MediaPipe blendshapes")
    idx = np.asarray(MEDIAPIPE_INDEX)
    out = np.where(idx >= 0, a[..., np.maximum(idx, 0)], 0.0).astype(np.float32)
    return _like(out, bs)


def arkit52_to_mediapipe(x: Any) -> Any:
    """ARKit-52 (space order) -> MediaPipe's order (``_neutral`` = 0; ``tongueOut`` dropped).

    Example:
        >>> x = np.zeros(52, np.float32); x[ARKIT52_NAMES.index("jawOpen")] = 0.3
        >>> round(float(arkit52_to_mediapipe(x)[BLENDSHAPE_NAMES.index("jawOpen")]), 4)
        0.3
    """
    a = _array(x, "ARKit blendshapes")
    out = np.zeros(a.shape, np.float32)
    for i, j in enumerate(MEDIAPIPE_INDEX):
        if j >= 0:
            out[..., j] = a[..., i]
    return _like(out, x)


def arkit52_to_au17(x: Any) -> Any:
    """ARKit-52 values -> the 17 AU intensities (0-5) by the teacher's proxy table.

    ``AU = clip(5 * sum(w * blendshape), 0, 5)`` with
    :data:`~speechface.teachers.mediapipe.AU_FROM_BLENDSHAPES` (left/right pairs averaged;
    ``tongueOut``, gaze, jaw sideways, funnel, pucker, rolls and cheekPuff do not enter).

    Args:
        x: ``(..., 52)`` in :data:`ARKIT52_NAMES` order (numpy, list or torch).

    Returns:
        ``(..., 17)`` float32 in AU17 order, of the input's type.

    Example:
        >>> x = np.zeros(52, np.float32); x[ARKIT52_NAMES.index("mouthSmileLeft")] = 0.6
        >>> float(arkit52_to_au17(x)[8])            # AU12 = 5 * 0.5 * 0.6
        1.5
    """
    return blendshapes_to_au17(arkit52_to_mediapipe(x))


def au17_to_arkit52(au: Any) -> Any:
    """The 17 AU intensities (0-5) -> ARKit-52 values (0-1), the per-AU inverse of
    :func:`arkit52_to_au17` (rules: :func:`~speechface.teachers.mediapipe.au17_to_blendshapes`).

    Args:
        au: ``(..., 17)`` in AU17 order (numpy, list or torch).

    Returns:
        ``(..., 52)`` float32 in :data:`ARKIT52_NAMES` order, of the input's type; blendshapes
        no AU carries (gaze, ``tongueOut``, ...) are 0.

    Example:
        >>> au = np.zeros(17, np.float32); au[0] = 5.0                   # AU01 at full
        >>> float(au17_to_arkit52(au)[ARKIT52_NAMES.index("browInnerUp")])
        1.0
    """
    return mediapipe_to_arkit52(au17_to_blendshapes(au))
