"""Face-mesh geometry for the mesh renderer: topology, pose normalisation, AU <-> blendshapes.

- :data:`ANCHORS`: vertices of the MediaPipe mesh that expressions hardly move (forehead, nose
  bridge, temples, inner eye corners); a similarity transform fitted on them removes head pose
  and scale (:func:`similarity`, :func:`to_canonical`).
- :func:`mesh_topology`: the mesh's 852 triangles, the face-oval loop and the inner-lip loop,
  derived from the tesselation MediaPipe ships (``FaceLandmarksConnections``); a fitted model
  stores them, so rendering does not need these tables again.
- :func:`au17_to_blendshapes`: the inverse of the AU proxy
  (:func:`~speechface.teachers.mediapipe.blendshapes_to_au17`): 17 AU intensities -> the 52
  blendshape scores that give them back.

Example:
    >>> au = np.zeros((1, 17), np.float32); au[0, 15] = 2.0          # AU26 jaw drop
    >>> bs = au17_to_blendshapes(au); round(float(bs[0, 25]), 2)      # jawOpen
    0.4
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ANCHORS", "INNER_LIPS", "similarity", "apply_similarity", "to_canonical",
           "mesh_topology", "au17_to_blendshapes", "N_VERTICES"]

#: Mesh vertices used by the renderer (the 468 face points; 468-477 are the irises).
N_VERTICES = 468

#: Vertices that expressions hardly move: forehead (10, 151, 9, 109, 338, 67, 297), nose bridge
#: and back (8, 168, 6, 197, 195, 5, 4, 1), temples / cheek sides (127, 356, 234, 454, 93, 323),
#: inner eye corners (133, 362).
ANCHORS: tuple[int, ...] = (10, 151, 9, 109, 338, 67, 297, 8, 168, 6, 197, 195, 5, 4, 1,
                            127, 356, 234, 454, 93, 323, 133, 362)

#: The inner-lip loop (left corner 78, upper lip to 308, lower lip back): the mouth opening.
INNER_LIPS: tuple[int, ...] = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308,
                               324, 318, 402, 317, 14, 87, 178, 88, 95)


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ s * R @ src + t`` (Umeyama 1991), any dimension.

    Args:
        src, dst: ``(K, D)`` corresponding points.

    Returns:
        ``(s, R (D, D), t (D,))`` with ``R`` a proper rotation.

    Example:
        >>> p = np.random.default_rng(0).normal(size=(10, 3))
        >>> s, R, t = similarity(p, 2 * p + 1)
        >>> round(s, 6), bool(np.allclose(R, np.eye(3))), t.round(6).tolist()
        (2.0, True, [1.0, 1.0, 1.0])
    """
    a = np.asarray(src, np.float64)
    b = np.asarray(dst, np.float64)
    ma, mb = a.mean(0), b.mean(0)
    a0, b0 = a - ma, b - mb
    cov = b0.T @ a0 / len(a)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(len(sig))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    var = (a0 ** 2).sum() / len(a)
    s = float((sig * d).sum() / max(var, 1e-12))
    t = mb - s * r @ ma
    return s, r, t


def apply_similarity(points: np.ndarray, s: float, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``s * R @ p + t`` for ``(..., D)`` points."""
    return s * np.asarray(points, np.float64) @ r.T + t


def to_canonical(meshes: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Align every mesh onto ``template`` by a similarity on :data:`ANCHORS` (pose removed).

    Args:
        meshes: ``(N, V, 3)`` meshes in any unit (pixels).
        template: ``(V, 3)`` the canonical mesh.

    Returns:
        ``(N, V, 3)`` float32 in the template's frame and scale.
    """
    out = np.empty(np.shape(meshes), np.float32)
    a = list(ANCHORS)
    for i, m in enumerate(np.asarray(meshes, np.float64)):
        s, r, t = similarity(m[a], template[a])
        out[i] = apply_similarity(m, s, r, t)
    return out


def mesh_topology() -> dict[str, np.ndarray]:
    """Triangles and loops of the MediaPipe face mesh, from the tesselation MediaPipe ships.

    Returns:
        ``{"triangles": (852, 3) int64, "oval": (36,) int64 (the face outline, in order),
        "inner_lips": (20,) int64}``.

    Raises:
        SpeechfaceError: MediaPipe is not installed (``pip install 'speechface[face]'``).
    """
    try:
        from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarksConnections as C
    except ImportError as e:  # pragma: no cover - depends on the environment
        from ..core.errors import SpeechfaceError

        raise SpeechfaceError("the mesh topology needs: pip install 'speechface[face]'") from e
    edges = np.array([(c.start, c.end) for c in C.FACE_LANDMARKS_TESSELATION], np.int64)
    tri = edges[0::3, 0], edges[1::3, 0], edges[2::3, 0]
    triangles = np.stack(tri, 1)
    oval_edges = {c.start: c.end for c in C.FACE_LANDMARKS_FACE_OVAL}
    start = next(iter(oval_edges))
    oval = [start]
    while oval_edges[oval[-1]] != start:
        oval.append(oval_edges[oval[-1]])
    return {"triangles": triangles, "oval": np.array(oval, np.int64),
            "inner_lips": np.array(INNER_LIPS, np.int64)}


def au17_to_blendshapes(au: Any) -> np.ndarray:
    """17 AU proxy intensities (0-5) -> 52 blendshape scores that map back onto them.

    The inverse of :func:`~speechface.teachers.mediapipe.blendshapes_to_au17`: each AU sets its
    blendshapes (left and right alike) to ``AU / 5``; AU26 sets ``jawOpen``, and AU25 beyond
    AU26 lowers the lower lip (``mouthLowerDown``; below AU26: ``mouthClose``, lips held
    together while the jaw drops).

    Args:
        au: ``(..., 17)`` AU intensities in AU17 order.

    Returns:
        ``(..., 52)`` float32 scores in ``BLENDSHAPE_NAMES`` order (unclipped).

    Example:
        >>> from speechface.teachers.mediapipe import blendshapes_to_au17
        >>> a = np.array([[1, 2, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 2.5, 1.5, 4]], np.float32)
        >>> bool(np.allclose(blendshapes_to_au17(au17_to_blendshapes(a)), a, atol=1e-5))
        True
    """
    from ..spaces.space import AU_NAMES
    from ..teachers.mediapipe import AU_FROM_BLENDSHAPES, BLENDSHAPE_NAMES

    a = np.asarray(au, np.float32)
    if a.shape[-1] != 17:
        raise ValueError(f"AUs need a last dimension of 17, got {a.shape}")
    idx = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
    out = np.zeros(a.shape[:-1] + (52,), np.float32)
    names = list(AU_NAMES)
    for j, name in enumerate(names):
        if name == "AU25":
            continue
        for bs, _w in AU_FROM_BLENDSHAPES[name]:
            out[..., idx[bs]] = a[..., j] / 5.0
    rest = (a[..., names.index("AU25")] - a[..., names.index("AU26")]) / 5.0
    out[..., idx["mouthLowerDownLeft"]] = 2.0 * np.maximum(rest, 0)
    out[..., idx["mouthLowerDownRight"]] = 2.0 * np.maximum(rest, 0)
    out[..., idx["mouthClose"]] = np.maximum(-rest, 0)
    return out
